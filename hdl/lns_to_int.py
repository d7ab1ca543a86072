"""LNS -> fixed-point converter: ``lanes`` words per beat.

Computes :func:`qarith.golden.lns_to_int.lns_to_int`. The exponent ``E = q * gamma + r`` splits into its
integer part ``q`` (a shift) and its ``b`` fraction bits ``r``, which select the constant
``T[r] = 2**(r / gamma)`` (``table_frac_bits`` fraction bits): from a ``gamma``-entry ROM
(``method="table"``, the contents are :attr:`LnsToIntConfig.table`), or, for Mitchell's ``2**f ~ 1 + f``,
the fraction bits themselves appended to the leading one (no table). A barrel shifter moves ``T[r]`` by
``q + out_frac_bits - table_frac_bits`` (clamped to the range that can change the result), rounds half
up, saturates and applies the sign.

Four register stages (ROM read with the clamped shift amount; shift; round half up and saturate; sign):
latency 4 cycles, one beat per cycle, and every stage holds while ``o.ready`` is low.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.lns_to_int import LnsToIntConfig
from .common.component import BlockComponent
from .common.lns import word_fields

__all__ = ["LnsToInt"]


class LnsToInt(BlockComponent):
    """Streaming LNS word -> signed fixed-point code.

    Parameters
    ----------
    cfg : LnsToIntConfig

    Members
    -------
    i : In(stream.Signature(ArrayLayout(width, lanes)))
    o : Out(stream.Signature(ArrayLayout(signed(out_width), lanes)))
    """

    config_class = LnsToIntConfig

    latency = 4
    throughput = 1  # beats per cycle
    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(unsigned(cfg.width), cfg.lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(cfg.out_width), cfg.lanes))),
        })

    @property
    def table_bytes(self):
        return self.cfg.table_bytes

    @property
    def shift_range(self):
        """``(low, high)``: the shift of ``T[r]`` after clamping; below ``low`` every result rounds to
        zero, above ``high`` every result saturates."""
        return -(self.cfg.table_bits + 1), self.cfg.out_width

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        frac = cfg.table_frac_bits
        bits = cfg.table_bits
        low, high = self.shift_range
        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]
        valid = Signal(self.latency - 1)
        with m.If(advance):
            m.d.sync += [valid.eq(Cat(self.i.valid, valid)), self.o.valid.eq(valid[-1])]
        if cfg.method == "table":
            m.submodules.table = table = Memory(shape=unsigned(bits), depth=cfg.gamma,
                                                init=cfg.table.tolist())
        for lane in range(cfg.lanes):
            word = self.i.payload[lane]
            sign, exp, zero = word_fields(cfg, word)
            q = exp >> cfg.frac_bits  # arithmetic: floor(E / gamma)
            # Stage 1: the constant T[r] and the clamped shift amount, kept as an offset from `low`.
            constant = Signal(unsigned(bits), name=f"constant{lane}")
            if cfg.method == "table":
                read = table.read_port()
                m.d.comb += [read.en.eq(advance), read.addr.eq(word[:cfg.frac_bits]), constant.eq(read.data)]
            else:
                mitchell = Signal(unsigned(frac + 1), name=f"mitchell{lane}")
                m.d.comb += mitchell.eq(Cat(Const(0, frac - cfg.frac_bits), word[:cfg.frac_bits], Const(1, 1)))
                with m.If(advance):
                    m.d.sync += constant.eq(mitchell)
            shift = Signal(signed(max(cfg.exp_width, 8) + 2), name=f"shift{lane}")
            m.d.comb += shift.eq(q + (cfg.out_frac_bits - frac))
            offset = Signal(range(high - low + 1), name=f"offset{lane}")
            sign_1 = Signal(name=f"sign{lane}")
            zero_1 = Signal(name=f"zero{lane}")
            with m.If(advance):
                m.d.sync += [
                    offset.eq(Mux(shift < low, 0, Mux(shift > high, high - low, shift - low))),
                    sign_1.eq(sign),
                    zero_1.eq(zero),
                ]
            # Stage 2: T << (shift - low), keeping the bits from the rounding bit up (weight 2**(low + 1)
            # and above: the bits below it cannot change a half-up rounding by -low).
            shifted = Signal(unsigned(bits + high + 1), name=f"shifted{lane}")
            # Stage 3: round half up and saturate. Stage 4: sign and zero.
            magnitude = Signal(unsigned(cfg.out_width - 1), name=f"magnitude{lane}")
            sign_2, zero_2, sign_3, zero_3 = (Signal(name=f"{n}{lane}") for n in ("sign2_", "zero2_", "sign3_", "zero3_"))
            rounded = (shifted + 1) >> 1
            with m.If(advance):
                m.d.sync += [
                    shifted.eq((constant << offset) >> (-low - 1)),
                    sign_2.eq(sign_1), zero_2.eq(zero_1),
                    magnitude.eq(Mux(rounded > cfg.out_max, cfg.out_max, rounded)),
                    sign_3.eq(sign_2), zero_3.eq(zero_2),
                    self.o.payload[lane].eq(Mux(zero_3, 0, Mux(sign_3, -magnitude, magnitude))),
                ]
        return m
