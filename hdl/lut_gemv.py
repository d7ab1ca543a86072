"""LUT-GEMM matrix-vector unit: tables of signed input sums, one table read and add per row per cycle.

Computes :func:`qarith.golden.lut_gemv.lut_gemv` (the equations, the weight layout and the table
symmetry are stated there). One input stream carries two kinds of beat (``kind``):

* ``ACTIVATIONS``: the ``mu`` input codes ``x`` of table group ``group``. The table builder writes that
  group's half table ``H[p] = T[p + 2**(mu-1)]`` into the table memory, one entry per cycle in Gray-code
  order (each entry is the previous one plus or minus ``2 x_j``: one adder, no read), starting from
  ``H[0] = x[mu-1] - sum_{j < mu-1} x[j]``. The input is not ready for the ``2**(mu-1)`` cycles this takes;
  a table is built once per input vector and shared by every row and bit-plane.
* ``WEIGHTS``: for ``lanes`` rows, one bit-plane and one table group: the rows' weight bytes ``byte``
  (bit ``j`` set = +1 for input ``mu group + j``), their alpha codes ``alpha``, ``scale_last`` on the
  last table group of a scale group (the alpha multiply happens then) and ``row_last`` on the rows'
  final beat (the sums leave then). Beats of one row go scale group by scale group, plane by plane
  inside it, table group by table group inside that; a ``row_last`` beat must have ``scale_last``.

A weight beat reads the tables as written by every activation beat before it. Per lane, four
registered stages, the whole pipeline stalling while ``o.ready`` is low (``i.ready`` is
``~o.valid | o.ready``, and low while a table is built):

1. ``read``: the byte's half-table address (the byte itself when bit ``mu - 1`` is set, else its
   complement, negated) on the lane's own read port of the table memory;
2. ``partial``: ``P += +-H[index]`` over the scale group's table groups (one add per row per cycle);
3. ``scale``: ``alpha * P`` once per row, plane and scale group (one multiplier per lane);
4. ``accumulate``: the row's sum over planes and scale groups, to the output on ``row_last``.

Latency 4 cycles from a ``row_last`` beat to its output; one weight beat per cycle, and ``mu`` inputs
per ``2**(mu-1) + 1`` cycles while tables are built (:meth:`LutGemv.gemv_cycles`). The table memory
holds ``max_k / mu`` half tables, ``2**(mu-1)`` entries of ``table_width`` bits each; Yosys gives each
lane's read port its own copy.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.lut_gemv import LutGemvConfig
from .common.component import BlockComponent

__all__ = ["LutGemv", "beat_layout", "ACTIVATIONS", "WEIGHTS"]

#: ``kind`` of an input beat carrying ``mu`` input codes for one table.
ACTIVATIONS = 0
#: ``kind`` of an input beat carrying ``lanes`` rows' weight bytes and alphas for one plane and table.
WEIGHTS = 1


def beat_layout(cfg):
    """One input beat (both kinds share it; the fields of the other kind are ignored)."""
    return data.StructLayout({
        "kind": 1,
        "group": unsigned(max(1, (cfg.groups - 1).bit_length())),
        "x": data.ArrayLayout(signed(cfg.x_width), cfg.mu),
        "byte": data.ArrayLayout(unsigned(cfg.mu), cfg.lanes),
        "alpha": data.ArrayLayout(signed(cfg.alpha_width), cfg.lanes),
        "scale_last": 1,
        "row_last": 1,
    })


class LutGemv(BlockComponent):
    """Streaming LUT-GEMM matrix-vector products.

    Parameters
    ----------
    cfg : LutGemvConfig

    Members
    -------
    i : In(stream.Signature(beat_layout(cfg)))
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), lanes)))
    """

    config_class = LutGemvConfig

    latency = 4
    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(beat_layout(cfg))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(cfg.acc_width), cfg.lanes))),
        })

    @property
    def throughput(self):
        """Table reads (row, plane, table-group terms) per cycle."""
        return self.cfg.lanes

    @property
    def build_cycles(self):
        """Cycles an activation beat occupies the input: its own and ``2**(mu-1)`` of table writes."""
        return self.cfg.half + 1

    @property
    def table_bytes(self):
        return self.cfg.table_bytes

    def gemv_cycles(self, rows, k):
        """Cycles from the first input beat of a ``rows x k`` product to its last output, with no idles
        or backpressure: tables, then ``ceil(rows / lanes) * planes * ceil(k / mu)`` weight beats, then
        the latency."""
        cfg = self.cfg
        groups = -(-k // cfg.mu)
        return groups * self.build_cycles + -(-rows // cfg.lanes) * cfg.planes * groups - 1 + self.latency

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        beat = self.i.payload
        advance, busy = Signal(), Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance & ~busy)]
        accept = self.i.valid & self.i.ready

        m.submodules.tables = tables = Memory(shape=signed(cfg.table_width), depth=cfg.table_entries, init=[])

        # Table builder: H[0] from the beat, then one Gray-code step per cycle.
        index_bits = cfg.mu - 1
        inputs = Signal(data.ArrayLayout(signed(cfg.x_width), cfg.mu))
        base = Signal.like(beat.group)
        count = Signal(range(cfg.half + 1))
        value = Signal(signed(cfg.table_width))
        gray = Signal(index_bits)
        following = Signal(index_bits + 1)
        m.d.comb += [gray.eq(count ^ (count >> 1)), following.eq((count + 1) ^ ((count + 1) >> 1))]
        step = Signal(signed(cfg.x_width + 2))
        for j in range(index_bits):
            twice = inputs[j] << 1
            with m.If((gray ^ following)[j]):   # exactly one bit flips per step
                m.d.comb += step.eq(Mux(following[j], twice, -twice))
        first = beat.x[cfg.mu - 1] - sum(beat.x[j] for j in range(index_bits))
        with m.If(accept & (beat.kind == ACTIVATIONS)):
            m.d.sync += [inputs.eq(beat.x), base.eq(beat.group), count.eq(0), value.eq(first), busy.eq(1)]
        with m.Elif(busy):
            m.d.sync += [value.eq(value + step), count.eq(count + 1)]
            with m.If(count == cfg.half - 1):
                m.d.sync += busy.eq(0)
        write = tables.write_port()
        m.d.comb += [write.addr.eq(Cat(gray, base)), write.data.eq(value), write.en.eq(busy)]

        compute = accept & (beat.kind == WEIGHTS)
        valid1, scale_last1, row_last1 = Signal(), Signal(), Signal()
        valid2, row_last2, valid3, row_last3 = Signal(), Signal(), Signal(), Signal()
        with m.If(advance):
            m.d.sync += [valid1.eq(compute), scale_last1.eq(beat.scale_last), row_last1.eq(beat.row_last),
                         valid2.eq(valid1 & scale_last1), row_last2.eq(row_last1),
                         valid3.eq(valid2), row_last3.eq(row_last2),
                         self.o.valid.eq(valid3 & row_last3)]

        for lane in range(cfg.lanes):
            # 1. read
            byte = beat.byte[lane]
            top = byte[cfg.mu - 1]
            index = Mux(top, byte, ~byte)[:index_bits]
            read = tables.read_port(domain="sync")
            negate1 = Signal(name=f"negate1_{lane}")
            alpha1 = Signal(signed(cfg.alpha_width), name=f"alpha1_{lane}")
            m.d.comb += [read.addr.eq(Cat(index, beat.group)), read.en.eq(advance)]
            with m.If(advance):
                m.d.sync += [negate1.eq(~top), alpha1.eq(beat.alpha[lane])]

            # 2. partial sum over the scale group's tables
            partial = Signal(signed(cfg.partial_width), name=f"partial{lane}")
            partial2 = Signal(signed(cfg.partial_width), name=f"partial2_{lane}")
            alpha2 = Signal(signed(cfg.alpha_width), name=f"alpha2_{lane}")
            term = Mux(negate1, -read.data, read.data)
            with m.If(advance):
                m.d.sync += [partial2.eq(partial + term), alpha2.eq(alpha1)]
                with m.If(valid1):
                    m.d.sync += partial.eq(Mux(scale_last1, 0, partial + term))

            # 3. one alpha multiply per row, plane and scale group
            product = Signal(signed(cfg.product_width), name=f"product{lane}")
            with m.If(advance):
                m.d.sync += product.eq(alpha2 * partial2)

            # 4. the row's sum, out on row_last
            acc = Signal(signed(cfg.acc_width), name=f"acc{lane}")
            total = acc + product
            with m.If(advance & valid3):
                m.d.sync += acc.eq(Mux(row_last3, 0, total))
                with m.If(row_last3):
                    m.d.sync += self.o.payload[lane].eq(total)
        return m
