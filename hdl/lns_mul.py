"""LNS multiplier: ``lanes`` products per beat, no multiplier.

Computes :func:`qarith.golden.lns_mul.lns_mul` on the word of :mod:`qarith.golden.common.lns`: the exponents add
(one carry-chain adder per lane), the signs XOR, a zero operand (reserved exponent code, either sign)
gives the canonical zero, and the sum saturates above ``emax`` and flushes to zero below ``emin``.
One register stage: latency 1 cycle, one beat per cycle; the register holds while ``o.ready`` is low.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.lns_mul import LnsMulConfig
from .common.component import BlockComponent
from .common.lns import word_fields

__all__ = ["LnsMul"]


class LnsMul(BlockComponent):
    """Streaming LNS product of word vectors ``a`` and ``b``.

    Parameters
    ----------
    cfg : LnsMulConfig

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(width, lanes), "b": ArrayLayout(width, lanes)})))
    o : Out(stream.Signature(ArrayLayout(width, lanes)))
    """

    config_class = LnsMulConfig

    latency = 1
    throughput = 1  # beats per cycle
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        words = data.ArrayLayout(unsigned(cfg.width), cfg.lanes)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"a": words, "b": words}))),
            "o": Out(stream.Signature(words)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        for lane in range(cfg.lanes):
            sign_a, exp_a, zero_a = word_fields(cfg, self.i.payload.a[lane])
            sign_b, exp_b, zero_b = word_fields(cfg, self.i.payload.b[lane])
            total = Signal(signed(cfg.exp_width + 1), name=f"sum{lane}")
            m.d.comb += total.eq(exp_a + exp_b)
            zero = zero_a | zero_b | (total < cfg.emin)
            exp = Mux(total > cfg.emax, cfg.emax, total)[:cfg.exp_width]
            word = Mux(zero, cfg.zero_word, Cat(exp, sign_a ^ sign_b))
            with m.If(advance):
                m.d.sync += self.o.payload[lane].eq(word)
        return m
