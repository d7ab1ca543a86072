"""Output-stationary systolic MAC array.

Computes :func:`qarith.golden.mac_array.mac_tiles`: for every tile, ``rows x cols`` exact integer dot
products over a K-step reduction.

Input: one beat per reduction step ``k``: ``a`` (column ``k`` of A, ``rows`` codes), ``b`` (row ``k`` of
B, ``cols`` codes) and ``last`` on the tile's final step. Output: the tile, one row of ``cols``
accumulators per beat in row order, ``last`` on its final row.

Structure. Operands enter skewed (physical row ``p`` delayed ``p`` cycles, column ``c`` delayed ``c``)
and move one processing element (PE) per cycle right (A) and down (B), so PE ``(p, c)`` sees step ``k``
at cycle ``t_k + p + c``. Step flags (valid, first, last) ride a central delay line that PE ``(p, c)``
taps at ``p + c`` (plus one with the product register). Each PE keeps its accumulator and one drain
register: on a tile's last step the final sum goes to the drain register while the accumulator starts
the next tile, so tiles follow each other without bubbles. Once a column's drain registers are all
loaded, the column shifts down once per cycle for ``rows`` cycles; a register stops shifting as soon as
the data above it is gone, which frees it for the next tile's result. Logical row ``r`` sits in physical
row ``rows - 1 - r`` so rows leave the bottom in order; a triangle of registers deskews the columns.

The array itself never stalls: results go into an output FIFO and the input accepts a beat only while
the FIFO has room for every row already promised plus one more tile (credits). Two tiles' last steps
must be at least ``rows`` cycles apart (the drain takes ``rows`` cycles); the input holds back a
``last`` step that comes earlier, so tiles with ``K < rows`` cost bubbles and nothing else.

Throughput: ``rows * cols`` MACs per cycle for ``K >= rows``. Latency: :attr:`MacArray.latency`.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..golden.mac_array import MacArrayConfig

__all__ = ["MacArray"]


def _shape(width, is_signed):
    return signed(width) if is_signed else unsigned(width)


class MacArray(wiring.Component):
    """Systolic ``rows x cols`` MAC array with streaming input and output.

    Parameters
    ----------
    cfg : MacArrayConfig

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(a, rows), "b": ArrayLayout(b, cols), "last": 1})))
    o : Out(stream.Signature(StructLayout({"acc": ArrayLayout(acc, cols), "last": 1})))
    """

    def __init__(self, cfg):
        if not isinstance(cfg, MacArrayConfig):
            self._MustUse__silence = True  # never constructed, so never to be elaborated
            raise TypeError(f"Configuration must be a MacArrayConfig, not {cfg!r}")
        self.cfg = cfg
        self.a_shape = _shape(cfg.a_width, cfg.a_signed)
        self.b_shape = _shape(cfg.b_width, cfg.b_signed)
        self.acc_shape = _shape(cfg.acc_bits, cfg.acc_signed)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(self.a_shape, cfg.rows),
                "b": data.ArrayLayout(self.b_shape, cfg.cols),
                "last": 1,
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "acc": data.ArrayLayout(self.acc_shape, cfg.cols),
                "last": 1,
            }))),
        })

    @property
    def fill_latency(self):
        """Cycles from accepting a tile's last step to writing its first row into the output FIFO."""
        cfg = self.cfg
        return int(cfg.input_reg) + cfg.rows + cfg.cols - 1 + int(cfg.mult_reg)

    @property
    def latency(self):
        """Cycles from accepting a tile's last step to its first output row being valid."""
        return self.fill_latency + 2

    @property
    def fifo_depth(self):
        """Output FIFO depth: enough credits to run back-to-back tiles of ``K = rows`` at full rate."""
        return self.fill_latency + 3 * self.cfg.rows + 2

    @property
    def throughput(self):
        """Peak MACs per cycle."""
        return self.cfg.macs

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols
        mult_reg = int(cfg.mult_reg)

        m.submodules.fifo = fifo = SyncFIFOBuffered(width=cols * cfg.acc_bits + 1, depth=self.fifo_depth)
        result = data.View(self.o.payload.shape(), fifo.r_data)
        m.d.comb += [
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(result),
            fifo.r_en.eq(self.o.ready),
        ]

        # Acceptance: output credits and the minimum spacing of last steps.
        pending = Signal(range(self.fifo_depth + rows + 1))
        since_last = Signal(range(rows + 1), init=rows)
        after_last = Signal(init=1)
        accept = Signal()
        room = fifo.level + pending + rows <= self.fifo_depth
        m.d.comb += [
            self.i.ready.eq(room & ~(self.i.payload.last & (since_last < rows))),
            accept.eq(self.i.valid & self.i.ready),
        ]
        with m.If(accept):
            m.d.sync += after_last.eq(self.i.payload.last)
        with m.If(accept & self.i.payload.last):
            m.d.sync += since_last.eq(1)
        with m.Elif(since_last < rows):
            m.d.sync += since_last.eq(since_last + 1)
        m.d.sync += pending.eq(pending + Mux(accept & self.i.payload.last, rows, 0) - fifo.w_en)

        # The step entering the array: operands and flags, optionally registered.
        step_a = Signal.like(self.i.payload.a)
        step_b = Signal.like(self.i.payload.b)
        step_flags = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        flags_now = Cat(accept, after_last, self.i.payload.last)
        domain = m.d.sync if cfg.input_reg else m.d.comb
        domain += [
            step_a.eq(self.i.payload.a),
            step_b.eq(self.i.payload.b),
            step_flags.eq(flags_now),
        ]

        # Central delay line of step flags; entry d is the step that entered d cycles ago.
        line = [step_flags]
        for d in range(rows + cols + mult_reg + 2 * rows):
            delayed = Signal.like(step_flags, name=f"flags_d{d + 1}")
            m.d.sync += delayed.eq(line[-1])
            line.append(delayed)

        def delay(value, cycles, name):
            for n in range(cycles):
                delayed = Signal.like(value, name=f"{name}_d{n + 1}")
                m.d.sync += delayed.eq(value)
                value = delayed
            return value

        # Skewed operand streams. Physical row p computes logical row rows - 1 - p.
        a_left = [delay(step_a[rows - 1 - p], p, f"a_skew{p}") for p in range(rows)]
        b_top = [delay(step_b[c], c, f"b_skew{c}") for c in range(cols)]

        # Drain control of column 0, one cycle ahead of need; column c uses it c cycles later.
        # shifting[p]: drain register p takes the one above it; shifting[rows]: the bottom one is read.
        drain_ctl = Signal(rows + 1, name="drain_ctl_c0")
        tile_done_next = line[rows + mult_reg - 1].valid & line[rows + mult_reg - 1].last
        m.d.sync += drain_ctl.eq(Cat(0, Cat(tile_done_next | drain_ctl[p] for p in range(rows))))
        drain_ctls = [drain_ctl]
        for c in range(1, cols):
            delayed = Signal.like(drain_ctl, name=f"drain_ctl_c{c}")
            m.d.sync += delayed.eq(drain_ctls[-1])
            drain_ctls.append(delayed)

        drains = [[None] * cols for _ in range(rows)]
        b_in = list(b_top)
        for p in range(rows):
            a_here = a_left[p]
            for c in range(cols):
                b_here = b_in[c]
                product = Signal(signed(cfg.a_width + cfg.b_width) if cfg.acc_signed
                                 else unsigned(cfg.a_width + cfg.b_width), name=f"product_{p}_{c}")
                (m.d.sync if mult_reg else m.d.comb).__iadd__(product.eq(a_here * b_here))
                acc = Signal(self.acc_shape, name=f"acc_{p}_{c}")
                drain = Signal(self.acc_shape, name=f"drain_{p}_{c}")
                total = Signal(self.acc_shape, name=f"total_{p}_{c}")
                flags = line[p + c + mult_reg]
                m.d.comb += total.eq(Mux(flags.first, 0, acc) + product)
                with m.If(flags.valid):
                    m.d.sync += acc.eq(total)
                with m.If(flags.valid & flags.last):
                    m.d.sync += drain.eq(total)
                if p > 0:
                    with m.Elif(drain_ctls[c][p]):
                        m.d.sync += drain.eq(drains[p - 1][c])
                drains[p][c] = drain

                if c + 1 < cols:
                    a_next = Signal.like(a_here, name=f"a_{p}_{c + 1}")
                    m.d.sync += a_next.eq(a_here)
                    a_here = a_next
                if p + 1 < rows:
                    b_next = Signal.like(b_here, name=f"b_{p + 1}_{c}")
                    m.d.sync += b_next.eq(b_here)
                    b_in[c] = b_next

        # Deskew the bottom row and write complete rows into the FIFO.
        row_out = [delay(drains[rows - 1][c], cols - 1 - c, f"deskew{c}") for c in range(cols)]
        row_last = line[rows + cols - 1 + mult_reg + rows - 1]
        m.d.comb += [
            fifo.w_en.eq(drain_ctls[cols - 1][rows]),
            fifo.w_data.eq(Cat(*row_out, row_last.valid & row_last.last)),
        ]
        return m
