"""Dynamic fixed-point quantizer: per-tensor shared exponent, aligned significands, stochastic rounding
from an LFSR.

Computes :func:`qarith.golden.dfp_quant.dfp_quant` (the format, the rounding and the LFSR are stated
there).

**Two passes, no buffer** (our choice; a buffer of the tensor would cost a memory of ``max_n`` words and
halve the throughput the same way): the host streams each tensor twice, one word per beat, each pass's
final word marked by ``last``. The first pass only finds the shared exponent ``E`` (a running maximum of
the effective exponents, a leading-one detect on the exponent field being a comparison); the second pass
is quantized with it and gives one code per word, with ``E`` and ``last``. The second pass must repeat
the first (the host has the tensor); otherwise the codes are unspecified. ``reseed`` on a beat loads the
LFSR with the configured seed (a host's restart; the test benches set it on each case's first beat).

Two stages, the whole pipeline stalling while ``o.ready`` is low (``i.ready`` is ``~o.valid |
o.ready``):

1. ``decode``: sign, significand (hidden 1 unless subnormal), the shift ``r = E - e' + man_width + 2 - b``
   clamped to ``man_width + 1 + k``, registered; the first pass's running maximum and ``E`` update here;
2. ``round``: ``(m << k) >> r`` (a barrel shifter), plus ``k`` random bits (the LFSR unrolled ``k`` steps,
   advanced once per quantized word), ``>> k``, saturation, sign, into the output register.

Latency 2 cycles from a second-pass word to its code; one word per cycle in either pass, so a tensor of
``n`` words takes ``2 n`` input beats.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.dfp_quant import DfpQuantConfig
from .common.component import BlockComponent

__all__ = ["DfpQuant", "beat_layout", "code_layout"]


def beat_layout(cfg):
    """One input beat: a word, the pass's ``last`` flag and ``reseed``."""
    return data.StructLayout({"x": unsigned(cfg.width), "last": 1, "reseed": 1})


def code_layout(cfg):
    """One output beat: the code, the shared exponent and ``last``."""
    return data.StructLayout({"q": signed(cfg.bits), "exp": unsigned(cfg.exp_width), "last": 1})


class DfpQuant(BlockComponent):
    """Streaming dynamic fixed-point quantization, two passes per tensor.

    Parameters
    ----------
    cfg : DfpQuantConfig

    Members
    -------
    i : In(stream.Signature(beat_layout(cfg)))
    o : Out(stream.Signature(code_layout(cfg)))
    """

    config_class = DfpQuantConfig

    latency = 2
    throughput = 1  # input words per cycle (each tensor is streamed twice)
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(beat_layout(cfg))),
            "o": Out(stream.Signature(code_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        k = cfg.rand_bits
        advance = Signal()
        accept = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance),
                     accept.eq(self.i.valid & advance)]

        # 1. decode; the first pass's running maximum
        word = self.i.payload.x
        exponent = word[cfg.man_width:cfg.man_width + cfg.exp_width]
        effective = Signal(unsigned(cfg.exp_width))
        m.d.comb += effective.eq(Mux(exponent == 0, 1, exponent))
        quantize = Signal()                          # 0: first pass (scan), 1: second pass
        running = Signal(unsigned(cfg.exp_width))
        shared = Signal(unsigned(cfg.exp_width))
        largest = Mux(effective > running, effective, running)
        with m.If(accept):
            with m.If(~quantize):
                m.d.sync += running.eq(Mux(self.i.payload.last, 0, largest))
                with m.If(self.i.payload.last):
                    m.d.sync += [shared.eq(largest), quantize.eq(1)]
            with m.Elif(self.i.payload.last):
                m.d.sync += quantize.eq(0)

        distance = Signal(signed(cfg.exp_width + 2))
        m.d.comb += distance.eq(shared - effective + cfg.base_shift)
        shift = Signal(range(cfg.max_shift + 1))
        m.d.comb += shift.eq(Mux(distance < 0, 0, Mux(distance > cfg.max_shift, cfg.max_shift, distance)))
        valid1, last1, sign1 = Signal(), Signal(), Signal()
        significand1 = Signal(unsigned(cfg.man_width + 1))
        shift1 = Signal.like(shift)
        exp1 = Signal(unsigned(cfg.exp_width))
        with m.If(advance):
            m.d.sync += [valid1.eq(self.i.valid & quantize), last1.eq(self.i.payload.last),
                         sign1.eq(word[-1]), significand1.eq(Cat(word[:cfg.man_width], exponent != 0)),
                         shift1.eq(shift), exp1.eq(shared)]

        # 2. round: k LFSR steps unrolled, their output bits are R (first bit least significant)
        lfsr = Signal(unsigned(cfg.lfsr_width), init=cfg.seed)
        state, bits = lfsr, []
        for step in range(k):
            bits.append(state[0])
            following = Signal(unsigned(cfg.lfsr_width), name=f"lfsr_step{step + 1}")
            m.d.comb += following.eq(Mux(state[0], (state >> 1) ^ cfg.mask, state >> 1))
            state = following
        draw = Cat(*bits)
        rounding = draw if cfg.rounding == "stochastic" else 1 << (k - 1)
        scaled = Signal(unsigned(cfg.man_width + 1 + k))
        total = Signal(unsigned(cfg.man_width + 2 + k))
        m.d.comb += [scaled.eq((significand1 << k) >> shift1), total.eq(scaled + rounding)]
        magnitude = total[k:]
        saturated = Signal(unsigned(cfg.bits - 1))
        m.d.comb += saturated.eq(Mux(magnitude > cfg.code_max, cfg.code_max, magnitude))
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(valid1), self.o.payload.q.eq(Mux(sign1, -saturated, saturated)),
                         self.o.payload.exp.eq(exp1), self.o.payload.last.eq(last1)]
            with m.If(valid1):
                m.d.sync += lfsr.eq(state)
        with m.If(accept & self.i.payload.reseed):
            m.d.sync += lfsr.eq(cfg.seed)
        return m
