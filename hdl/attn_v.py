"""Attention times V with shifts instead of multiplies (FQ-ViT's Log-Int-Softmax payoff):
:func:`qarith.golden.attn_v.attn_v`.

Each input beat is one term: a log2 attention code (``code``, ``zero``, as ``log_softmax_int`` emits
them) and a value ``v``. The term is ``v >> code`` (``rounding="floor"``) or
``v << (2**bits - 1 - code)`` (``"exact"``), or 0 when ``zero``: a barrel shifter, no multiplier. Every
``n`` terms give one output beat, their sum (with ``variable_length``, every row of ``1 .. n`` terms
ended by ``last``; a longer row is cut after each ``n``-th term). Two stages (the term, the sum); latency 2 cycles from a
row's last term to its sum; one term per cycle; the pipeline stalls as a whole while ``o.ready`` is low.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.attn_v import AttnVConfig
from .common.component import BlockComponent

__all__ = ["AttnV", "term_layout"]


def term_layout(cfg):
    """One input beat: the attention code and its ``V`` (and, with ``variable_length``, ``last`` on a
    row's final term)."""
    fields = {"code": unsigned(cfg.bits), "zero": 1, "v": signed(cfg.v_width)}
    if cfg.variable_length:
        fields["last"] = 1
    return data.StructLayout(fields)


class AttnV(BlockComponent):
    """Streaming shift-and-add attention times ``V``, one output per ``cfg.n`` terms.

    Parameters
    ----------
    cfg : AttnVConfig

    Members
    -------
    i : In(stream.Signature(term_layout(cfg)))
    o : Out(stream.Signature(signed(out_width)))
    """

    config_class = AttnVConfig

    latency = 2

    def row_latency(self, length):
        """Cycles from a row's last term to its sum: 2 for every length."""
        return self.latency
    throughput = 1  # terms per cycle
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(term_layout(cfg))),
            "o": Out(stream.Signature(signed(cfg.out_width))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        beat = self.i.payload
        index = Signal(range(cfg.n))
        if cfg.variable_length:
            # A row ends at its term with last, or at its n-th term (a longer row is cut there).
            row_end = Signal()
            m.d.comb += row_end.eq(beat.last | (index == cfg.n - 1))
        else:
            row_end = index == cfg.n - 1
        with m.If(self.i.valid & advance):
            m.d.sync += index.eq(Mux(row_end, 0, index + 1))
        if cfg.rounding == "floor":
            shifted = beat.v >> beat.code
        else:
            amount = Signal(unsigned(cfg.bits))
            m.d.comb += amount.eq(cfg.levels - 1 - beat.code)
            shifted = beat.v << amount
        term = Signal(signed(cfg.out_width))
        valid1, first1, last1 = Signal(), Signal(), Signal()
        accumulator = Signal(signed(cfg.out_width))
        with m.If(advance):
            m.d.sync += [
                term.eq(Mux(beat.zero, 0, shifted)),
                valid1.eq(self.i.valid),
                first1.eq(index == 0),
                last1.eq(row_end),
            ]
            total = Mux(first1, 0, accumulator) + term
            with m.If(valid1):
                m.d.sync += accumulator.eq(total)
            m.d.sync += [self.o.valid.eq(valid1 & last1), self.o.payload.eq(total)]
        return m
