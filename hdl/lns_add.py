"""Pure LNS adder/subtracter with Gaussian logarithms: :func:`qarith.golden.lns_add.lns_add`, ``lanes``
operand pairs per beat.

One ROM holds both tables (:func:`qarith.golden.lns_add.lns_add_rom`, built from the golden model's
:func:`~qarith.golden.lns_add.gaussian_table`, so the ROM and the model share their entries); each lane
has its own synchronous read port. Per lane, a pipeline that stalls as a whole while ``o.ready`` is low:

1. fields: ``b``'s sign flipped by ``sub``, the larger exponent and its sign, ``d = |A - B|``, the
   cancellation flag (opposite signs, ``d = 0``) and the zero-operand result (the other operand,
   canonical), registered;
2. the ROM address from ``d`` and the sign relation (``sb`` or ``db`` section, direct ``db`` region,
   clamp at each table's zero entry); the ROM word (``point``, ``delta``) is read;
3. ``V = point * 2**k + delta * r`` (the interpolation, one small multiplier per lane), registered; this
   stage exists only when ``interp_bits > 0``;
4. ``F = (V + 2**(t + k - 1)) >> (t + k)``, ``E = A + F``, saturation above ``emax``, flush below
   ``emin``, the zero cases: the output word, registered.

Latency 4 cycles (3 without interpolation), one beat per cycle. Each stage's registers for all lanes
are one signal. ``table_bytes`` counts the ROM's contents once; each lane reads its own copy (one
read port each), which the synthesis tool maps to block RAM or logic.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.lns_add import LnsAddConfig, lns_add_rom
from .common.component import BlockComponent
from .common.lns import word_fields

__all__ = ["LnsAdd", "lns_add_layout"]


def lns_add_layout(width, lanes):
    """Input payload: ``lanes`` words ``a``, ``lanes`` words ``b`` and each lane's operation ``sub``
    (1: ``a - b``). Arrays of fields rather than an array of records: a beat packs four times faster in
    the cocotb bench, and the hardware is the same."""
    return data.StructLayout({"a": data.ArrayLayout(unsigned(width), lanes),
                              "b": data.ArrayLayout(unsigned(width), lanes),
                              "sub": data.ArrayLayout(unsigned(1), lanes)})


class LnsAdd(BlockComponent):
    """Streaming LNS ``a + b`` / ``a - b``, ``cfg.lanes`` pairs per beat.

    Parameters
    ----------
    cfg : LnsAddConfig

    Members
    -------
    i : In(stream.Signature(lns_add_layout(width, lanes)))
    o : Out(stream.Signature(ArrayLayout(unsigned(width), lanes)))
        The result words.
    """

    config_class = LnsAddConfig

    throughput = 1  # beats per cycle
    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(lns_add_layout(cfg.width, cfg.lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(unsigned(cfg.width), cfg.lanes))),
        })

    @property
    def latency(self):
        return 4 if self.cfg.interp_bits else 3

    @property
    def table_bytes(self):
        return self.cfg.table_bytes

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rom = lns_add_rom(cfg)
        k, e = cfg.interp_bits, cfg.exp_width

        advance = Signal()
        valid = Signal(self.latency)
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
        ]

        def stalled(target, value):
            with m.If(advance):
                m.d.sync += target.eq(value)

        stalled(valid, Cat(self.i.valid, valid[:-1]))

        # One register per stage holds every lane's record: a few processes in the Verilog rather than one
        # per field and lane (a quarter less Verilator build time at 32 lanes). ``zero``: exact
        # cancellation; ``pass``: a zero operand, the result is ``pass_word``.
        carried = {"big_exp": signed(e), "big_sign": 1, "zero": 1, "pass": 1, "pass_word": unsigned(cfg.width)}
        value_shape = signed(rom.point_bits + k + 1)

        def stage(name, extra):
            return Signal(data.ArrayLayout(data.StructLayout({**carried, **extra}), cfg.lanes), name=name)

        fields = stage("fields", {"opposite": 1, "d": unsigned(e)})
        read = stage("read", {"r": unsigned(k)} if k else {})
        interp = stage("interp", {"v": value_shape}) if k else None

        for lane in range(cfg.lanes):
            # One ROM copy per lane: Yosys 0.70's ECP5 memory mapping crashes on one ROM with 16 read ports.
            m.submodules[f"table{lane}"] = table = Memory(shape=unsigned(rom.word_bits), depth=len(rom.words),
                                                          init=rom.words)
            port = table.read_port()
            a, b = self.i.payload.a[lane], self.i.payload.b[lane]

            # Stage 1: fields, the larger operand, the distance and the special results.
            sign_a, exp_a, zero_a = word_fields(cfg, a)
            raw_sign_b, exp_b, zero_b = word_fields(cfg, b)
            sign_b, a_larger, opposite = (Signal(name=f"{label}{lane}")
                                          for label in ("sign_b", "a_larger", "opposite"))
            m.d.comb += [sign_b.eq(raw_sign_b ^ self.i.payload.sub[lane]), a_larger.eq(exp_a >= exp_b),
                         opposite.eq(sign_a != sign_b)]
            b_word = Mux(zero_b, cfg.zero_word, Cat(b[:e], sign_b))
            s1 = fields[lane]
            stalled(s1.big_exp, Mux(a_larger, exp_a, exp_b))
            stalled(s1.big_sign, Mux(a_larger, sign_a, sign_b))
            stalled(s1.opposite, opposite)
            stalled(s1.d, Mux(a_larger, exp_a - exp_b, exp_b - exp_a))
            stalled(s1.zero, opposite & (exp_a == exp_b))
            stalled(s1["pass"], zero_a | zero_b)
            stalled(s1.pass_word, Mux(zero_a, b_word, a))

            # Stage 2: the ROM address; the word is read at the end of the stage.
            segment = s1.d >> k
            sb_address = self._clamped(segment, cfg.sb_end)
            db_points = rom.db_base + cfg.db_direct - (cfg.db_direct >> k) + self._clamped(segment, cfg.db_end)
            if cfg.db_direct <= cfg.d_max:
                db_address = Mux(s1.d < cfg.db_direct, rom.db_base + s1.d, db_points)
            else:
                db_address = rom.db_base + s1.d
            m.d.comb += [port.en.eq(advance), port.addr.eq(Mux(s1.opposite, db_address, sb_address))]
            s2 = read[lane]
            for field in carried:
                stalled(s2[field], s1[field])
            point = port.data[:rom.point_bits].as_signed()

            # Stage 3 (interpolation only): V = point * 2**k + delta * r, exact.
            if k:
                stalled(s2.r, s1.d[:k])
                s3 = interp[lane]
                for field in carried:
                    stalled(s3[field], s2[field])
                stalled(s3.v, (point << k) + port.data[rom.point_bits:].as_signed() * s2.r)
                last, value = s3, s3.v
            else:
                last, value = s2, point

            # Stage 4: one rounding to the word, the exponent, saturation, flush to zero, the zero cases.
            offset = ((value + (1 << (cfg.shift - 1))) >> cfg.shift) if cfg.shift else value
            total = Signal(signed(max(e, value_shape.width) + 2), name=f"exp{lane}")
            m.d.comb += total.eq(last.big_exp + offset)
            clamped = Mux(total > cfg.emax, cfg.emax, total)[:e]
            result = Mux(last["pass"], last.pass_word,
                         Mux(last.zero | (total < cfg.emin), cfg.zero_word, Cat(clamped, last.big_sign)))
            stalled(self.o.payload[lane], result)
        return m

    def _clamped(self, segment, end):
        """``min(segment, end)``; no comparator when ``end`` is past every reachable segment."""
        if end > self.cfg.q_max:
            return segment
        return Mux(segment >= end, end, segment)
