"""LNS -> fixed-point converter: ``lanes`` words per beat.

Computes :func:`qarith.golden.lns.lns_to_int`. The exponent ``E = q * gamma + r`` splits into its
integer part ``q`` (a shift) and its ``b`` fraction bits ``r``, which select the constant
``T[r] = 2**(r / gamma)`` (``table_frac_bits`` fraction bits): from a ``gamma``-entry ROM
(``method="table"``, the contents are :attr:`LnsToIntConfig.table`), or, for Mitchell's ``2**f ~ 1 + f``,
the fraction bits themselves appended to the leading one (no table). A barrel shifter moves ``T[r]`` by
``q + out_frac_bits - table_frac_bits`` (clamped to the range that can change the result), rounds half
up, saturates and applies the sign.

Two register stages (ROM read with the shift amount; shift, round, saturate and sign): latency 2 cycles,
one beat per cycle, and both stages hold while ``o.ready`` is low.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.lns import LnsToIntConfig
from .lns_mul import word_fields

__all__ = ["LnsToInt"]


class LnsToInt(wiring.Component):
    """Streaming LNS word -> signed fixed-point code.

    Parameters
    ----------
    cfg : LnsToIntConfig

    Members
    -------
    i : In(stream.Signature(ArrayLayout(width, lanes)))
    o : Out(stream.Signature(ArrayLayout(signed(out_width), lanes)))
    """

    latency = 2
    throughput = 1  # beats per cycle
    sim_sources = []

    def __init__(self, cfg):
        if not isinstance(cfg, LnsToIntConfig):
            self._MustUse__silence = True  # never constructed, so never to be elaborated
            raise TypeError(f"Configuration must be a LnsToIntConfig, not {cfg!r}")
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
        return -(self.cfg.table_frac_bits + 2), self.cfg.out_width

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        frac = cfg.table_frac_bits
        low, high = self.shift_range
        advance = Signal()
        valid = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += [valid.eq(self.i.valid), self.o.valid.eq(valid)]
        if cfg.method == "table":
            m.submodules.table = table = Memory(shape=unsigned(frac + 1), depth=cfg.gamma,
                                                init=cfg.table.tolist())
        for lane in range(cfg.lanes):
            word = self.i.payload[lane]
            sign, exp, zero = word_fields(cfg, word)
            q = exp >> cfg.frac_bits  # arithmetic: floor(E / gamma)
            # Stage 1: the constant T[r] and the clamped shift amount, kept as an offset from `low`.
            constant = Signal(unsigned(frac + 1), name=f"constant{lane}")
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
            # Stage 2: T << (shift - low) then a rounding right shift by -low, saturate, sign.
            shifted = Signal(unsigned(frac + 1 + high - low), name=f"shifted{lane}")
            m.d.comb += shifted.eq(constant << offset)
            rounded = (shifted + (1 << (-low - 1))) >> -low
            magnitude = Mux(rounded > cfg.out_max, cfg.out_max, rounded)
            value = Mux(zero_1, 0, Mux(sign_1, -magnitude, magnitude))
            with m.If(advance):
                m.d.sync += self.o.payload[lane].eq(value)
        return m
