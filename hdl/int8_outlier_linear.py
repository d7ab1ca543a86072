"""LLM.int8() linear tile engine: vector-wise int8 product with the outlier columns on a wide side path.

Computes :func:`qarith.golden.int8_outlier_linear.int8_outlier_linear`: for a tile of ``rows``
activation rows (signed ``in_width``-bit fixed-point codes) and int8 weight codes, the exact integer
``acc = c * (X8 W8^T) + 127 * (x[:, O] W8[:, O]^T)`` per row and output channel.

Input beats are reduction steps ``k``, as :class:`~qarith.hdl.mac_array.MacArray`'s: ``x`` (column ``k``
of the activations, one code per row), ``w`` (the ``cols`` weight codes of feature ``k``) and ``last`` on
the tile's final step (K = 1 .. ``max_k`` steps). Output beats are the tile's rows in order (``acc``,
``cols`` values of ``out_bits``), ``last`` on the final row.

Structure::

    steps --> tile buffer (K words: x, w, outlier flag) + masked row absmax (per row, |x| < t)
                 |
             replay: |x| * 127 / c, 7 restoring stages, round half to even --> X8 (0 on outlier columns)
                 |                                                           |
                 +--> side array (in_width x 8 bits), x on outlier columns --+--> int8 array (8 x 8 bits)
                                                  |                                  |
                                                 S  ------->  acc = c C32 + 127 S  <-- C32

``ingest``
    One step per cycle into the tile buffer. Each row keeps the largest ``|x| < t`` it has seen (``t``
    the threshold code, a constant of the config); a step with any ``|x| >= t`` is marked an outlier
    column in its buffer word (outlier columns are decided over the tile's rows, which all arrive in
    the same beat).
``replay``
    Once the tile is in and the previous tile's rows have left the arrays, the row scales are frozen and
    the buffer is read back one step per cycle into a stalling pipeline: ``127 |x| / c`` by restoring
    division (7 quotient bits: ``|x| <= c`` for every element that is kept), rounded half to even, signed,
    and set to 0 on outlier columns and rows with ``c = 0``. The pipeline feeds both arrays in lockstep:
    the int8 array the codes ``X8`` and ``W8``, the side array the activation codes of the outlier
    columns (0 elsewhere) and ``W8``. Both are :class:`~qarith.hdl.mac_array.MacArray` instances.
``output``
    Both arrays' rows leave together: each is dequantized by its row scale (``c * C32``, one multiply
    per column), the side sum scaled by 127 and added, and registered.

The next tile is ingested while the arrays finish the previous one; its replay waits until the previous
tile's last row has left the arrays, so a tile costs about ``2 K`` cycles plus the pipeline (the single
buffer is the limit: double buffering would overlap ingest and replay).
Latency: :meth:`Int8OutlierLinear.tile_latency`.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.int8_outlier_linear import Q, Int8OutlierLinearConfig
from .common.component import BlockComponent
from .mac_array import MacArray

__all__ = ["Int8OutlierLinear"]

#: Quotient bits of ``127 |x| / c``: at most 127.
QUOTIENT_BITS = 7
#: Replay pipeline stages from the buffer read to the arrays' inputs: the read, the numerator,
#: one per quotient bit, the rounding.
REPLAY_STAGES = 1 + 1 + QUOTIENT_BITS + 1


class Int8OutlierLinear(BlockComponent):
    """LLM.int8() tile engine: masked row absmax, quantizer, int8 and side MAC arrays, dequantization.

    Parameters
    ----------
    cfg : Int8OutlierLinearConfig

    Members
    -------
    i : In(stream.Signature(StructLayout({"x": ArrayLayout(signed(in_width), rows), "w": ArrayLayout(signed(8), cols), "last": 1})))
    o : Out(stream.Signature(StructLayout({"acc": ArrayLayout(signed(out_bits), cols), "last": 1})))
    """

    config_class = Int8OutlierLinearConfig

    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        self.int8_array = MacArray(cfg.int8_mac)
        self.side_array = MacArray(cfg.side_mac)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "x": data.ArrayLayout(signed(cfg.in_width), cfg.rows),
                "w": data.ArrayLayout(signed(8), cfg.cols),
                "last": 1,
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "acc": data.ArrayLayout(signed(cfg.out_bits), cfg.cols),
                "last": 1,
            }))),
        })

    def tile_latency(self, k):
        """Cycles from accepting the last step of a ``k``-step tile to its first output row being valid,
        when the previous tile has left the arrays: the state change and the scale capture (2), the
        replay's ``k`` reads, the pipeline to the arrays, the array's latency and the output register."""
        return 2 + (k - 1) + REPLAY_STAGES + self.int8_array.latency + 1

    @property
    def latency(self):
        """:meth:`tile_latency` of the deepest tile, ``max_k`` steps."""
        return self.tile_latency(self.cfg.max_k)

    @property
    def throughput(self):
        """Peak int8 MACs per cycle of the int8 array (a tile takes about twice its K in cycles)."""
        return self.int8_array.throughput

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.int8_array = int8_array = self.int8_array
        m.submodules.side_array = side_array = self.side_array
        rows, cols, width = cfg.rows, cfg.cols, cfg.in_width
        threshold = cfg.threshold_code

        # -- ingest -------------------------------------------------------------------------------
        word = data.StructLayout({"x": data.ArrayLayout(signed(width), rows),
                                  "w": data.ArrayLayout(signed(8), cols), "outlier": 1})
        m.submodules.tile = tile = Memory(shape=word, depth=cfg.max_k, init=[])
        write = tile.write_port()
        read = tile.read_port(domain="sync")

        magnitudes = [Signal(unsigned(width), name=f"magnitude{r}") for r in range(rows)]
        m.d.comb += [magnitudes[r].eq(abs(self.i.payload.x[r])) for r in range(rows)]
        scale_in = [Signal(unsigned(cfg.scale_bits), name=f"scale_in{r}") for r in range(rows)]
        scale = [Signal(unsigned(cfg.scale_bits), name=f"scale{r}") for r in range(rows)]
        k_in = Signal(range(cfg.max_k))
        k_end = Signal(range(cfg.max_k))
        k_rep = Signal(range(cfg.max_k))
        busy = Signal()           # a replayed tile still has rows in the arrays
        issuing = Signal()
        advance = Signal()

        # The phase is a plain register read through continuous assignments (no FSM's comb process):
        # Icarus evaluates a process only on a change of its inputs, and a state that never changes from
        # its initial value would leave such outputs undefined.
        phase = Signal(range(3))          # 0: ingest, 1: wait for the arrays, 2: replay
        ingesting, accepted = Signal(), Signal()
        m.d.comb += [
            ingesting.eq(phase == 0),
            issuing.eq(phase == 2),
            self.i.ready.eq(ingesting),
            accepted.eq(ingesting & self.i.valid),
            write.en.eq(accepted),
            write.addr.eq(k_in),
            write.data.x.eq(self.i.payload.x),
            write.data.w.eq(self.i.payload.w),
            write.data.outlier.eq(Cat(mag >= threshold for mag in magnitudes).any()),
        ]
        with m.If(accepted):
            m.d.sync += k_in.eq(k_in + 1)
            for r in range(rows):
                with m.If((magnitudes[r] < threshold) & (magnitudes[r] > scale_in[r])):
                    m.d.sync += scale_in[r].eq(magnitudes[r])
            with m.If(self.i.payload.last):
                m.d.sync += [k_end.eq(k_in), phase.eq(1)]
        with m.If((phase == 1) & ~busy):
            m.d.sync += [k_in.eq(0), k_rep.eq(0), busy.eq(1), phase.eq(2)]
            m.d.sync += [scale[r].eq(scale_in[r]) for r in range(rows)]
            m.d.sync += [scale_in[r].eq(0) for r in range(rows)]
        with m.If(issuing & advance):
            m.d.sync += k_rep.eq(k_rep + 1)
            with m.If(k_rep == k_end):
                m.d.sync += phase.eq(0)

        # -- replay: a pipeline that moves as a whole while the arrays take its last stage -----------
        def stage(value, name):
            later = Signal.like(value, name=name)
            with m.If(advance):
                m.d.sync += later.eq(value)
            return later

        m.d.comb += [read.addr.eq(k_rep), read.en.eq(advance)]
        valid = stage(issuing, "read_valid")
        last = stage(k_rep == k_end, "read_last")
        step = read.data
        x, w, outlier = step.x, step.w, step.outlier

        # Numerators 127 |x| and signs; from here on x, w and the flags ride along.
        numerators = [stage(abs(x[r]) * Q, f"numerator{r}") for r in range(rows)]
        negative = [stage(x[r] < 0, f"negative{r}") for r in range(rows)]
        flags = [valid, last, outlier]
        carried = [x, w]

        def carry(name):
            nonlocal flags, carried
            flags = [stage(f, f"{name}_flag{n}") for n, f in enumerate(flags)]
            carried = [stage(c, f"{name}_{kind}") for c, kind in zip(carried, ("x", "w"))]

        carry("num")
        # Restoring division, one quotient bit per stage, most significant first; the quotient grows
        # by one bit per stage.
        remainder_width = width + QUOTIENT_BITS
        remainders, quotients = numerators, [Cat() for _ in range(rows)]
        for bit in reversed(range(QUOTIENT_BITS)):
            next_remainders, next_quotients = [], []
            for r in range(rows):
                trial = scale[r] << bit
                fits = remainders[r] >= trial
                remainder = Signal(unsigned(remainder_width), name=f"remainder{r}_{bit}")
                with m.If(advance):
                    m.d.sync += remainder.eq(Mux(fits, remainders[r] - trial, remainders[r]))
                next_remainders.append(remainder)
                next_quotients.append(stage(Cat(fits, quotients[r]), f"quotient{r}_{bit}"))
            remainders, quotients = next_remainders, next_quotients
            negative = [stage(n, f"negative{r}_{bit}") for r, n in enumerate(negative)]
            carry(f"div{bit}")

        codes = []
        for r in range(rows):
            twice = remainders[r] << 1
            up = (twice > scale[r]) | ((twice == scale[r]) & quotients[r][0])
            magnitude = quotients[r] + up
            keep = ~flags[2] & (scale[r] != 0)
            code = Mux(keep, Mux(negative[r], -magnitude, magnitude), 0)
            codes.append(stage(code.as_signed()[:8].as_signed(), f"x8_{r}"))
        carry("round")
        valid, last, outlier = flags
        x, w = carried

        both_ready = int8_array.i.ready & side_array.i.ready
        m.d.comb += [
            advance.eq(~valid | both_ready),
            int8_array.i.valid.eq(valid & side_array.i.ready),
            side_array.i.valid.eq(valid & int8_array.i.ready),
            int8_array.i.payload.last.eq(last),
            side_array.i.payload.last.eq(last),
            int8_array.i.payload.b.eq(w),
            side_array.i.payload.b.eq(w),
        ]
        for r in range(rows):
            m.d.comb += [
                int8_array.i.payload.a[r].eq(codes[r]),
                side_array.i.payload.a[r].eq(Mux(outlier, x[r], 0)),
            ]

        # -- output: dequantize by the row scale, add the side sum, register ------------------------
        out_row = Signal(range(rows))
        take = Signal()
        o_valid = Signal()
        o_payload = Signal.like(self.o.payload)
        row_scale = Array(scale)[out_row]
        m.d.comb += [
            take.eq(int8_array.o.valid & side_array.o.valid & (~o_valid | self.o.ready)),
            int8_array.o.ready.eq(take),
            side_array.o.ready.eq(take),
            self.o.valid.eq(o_valid),
            self.o.payload.eq(o_payload),
        ]
        with m.If(~o_valid | self.o.ready):
            m.d.sync += o_valid.eq(take)
        with m.If(take):
            for c in range(cols):
                m.d.sync += o_payload.acc[c].eq(row_scale * int8_array.o.payload.acc[c]
                                                + side_array.o.payload.acc[c] * Q)
            m.d.sync += o_payload.last.eq(int8_array.o.payload.last)
            m.d.sync += out_row.eq(Mux(out_row == rows - 1, 0, out_row + 1))
            with m.If(int8_array.o.payload.last):
                m.d.sync += busy.eq(0)
        return m
