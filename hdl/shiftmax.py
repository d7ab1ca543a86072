"""I-ViT ShiftMax in hardware: :func:`qarith.golden.shiftmax.shiftmax` on rows of ``n`` scores, one
element per cycle in and out.

Built on :class:`qarith.hdl.rows.RowEngine` (banked row buffer and row maximum):

``reduce`` pass
    ``e_i`` through the four-stage shift-exp pipeline (:func:`qarith.hdl.shift_exp.shift_exp_stages`:
    shifts, comparisons with the constants ``k x0``, a barrel shift; no multiplier), summed; the
    row's ``f = floor((2**31 - 1) / s)`` from a pipelined restoring divider with one stage per quotient
    bit (``quotient_width`` stages: ``s >= e(0)`` bounds the quotient, 12 bits for the default
    config), so the divider accepts a new row every cycle and never limits the throughput;
``output`` pass
    ``e_i`` again through the same pipeline, then ``(e_i * f) >> (32 - out_width)``: one multiplier.

Latency from a row's last element to its first output: ``n + quotient_width + 18`` cycles. One element
per cycle in steady state; backpressure stalls the output pass and, once every bank is taken, the input.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.shiftmax import INT31_MAX, ShiftmaxConfig
from .rows import RowEngine, banks_for
from .arith import divide_stages
from .shift_exp import SHIFT_EXP_STAGES, shift_exp_stages

__all__ = ["Shiftmax"]


class Shiftmax(wiring.Component):
    """Streaming ShiftMax over rows of ``cfg.n`` elements.

    Parameters
    ----------
    cfg : ShiftmaxConfig

    Members
    -------
    i : In(stream.Signature(signed(in_width)))
        Score codes, row after row.
    o : Out(stream.Signature(unsigned(out_width - 1)))
        Probability codes at scale ``2**-(out_width - 1)``.
    """

    throughput = 1  # elements per cycle, in steady state
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        if not isinstance(cfg, ShiftmaxConfig):
            self._MustUse__silence = True  # never constructed, so never to be elaborated
            raise TypeError(f"Configuration must be a ShiftmaxConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(signed(cfg.in_width))),
            "o": Out(stream.Signature(unsigned(cfg.out_width - 1))),
        })

    @property
    def reduce_tail(self):
        """Cycles from the reduce pass's last read to the row's ``f`` being visible to the output pass:
        buffer word, its register, d, the exp stages, the accumulator, the divider, the parameter."""
        return 2 + 1 + SHIFT_EXP_STAGES + 1 + self.cfg.quotient_width + 1

    @property
    def banks(self):
        return banks_for(self.cfg.n, self.reduce_tail)

    @property
    def latency(self):
        # n reads (the first in the cycle after the last element), the reduce tail, then the output
        # pass (it reads in the cycle the parameters are visible): buffer word, its register, d, the
        # exp stages, the product, the output register.
        return self.cfg.n + self.reduce_tail + 2 + 1 + SHIFT_EXP_STAGES + 1 + 1

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows = RowEngine(m, cfg.n, signed(cfg.in_width), self.banks, self.i)
        d_shape = signed(cfg.in_width + 1)

        def sync(target, value):
            m.d.sync += target.eq(value)

        # -- reduce pass: d = x - max; e; the row sum; f = floor((2**31 - 1) / sum) ----------------
        tags = [rows.valid, rows.first, rows.last, rows.bank]
        delays = 1 + SHIFT_EXP_STAGES
        for stage in range(delays):
            later = [Signal.like(t, name=f"r{stage}_{t.name}") for t in tags]
            m.d.sync += [a.eq(b) for a, b in zip(later, tags)]
            tags = later
        valid, first, last, bank = tags
        d = Signal(d_shape)
        sync(d, rows.x - rows.max)
        e = shift_exp_stages(m, d, cfg.x0, cfg.shift, cfg.variant, sync, name="sum_exp")
        accumulator, added = Signal(cfg.sum_width), Signal(cfg.sum_width)
        m.d.comb += added.eq(Mux(first, 0, accumulator) + e)
        total, total_valid, total_bank = Signal(cfg.sum_width), Signal(), Signal(rows.bank_bits)
        m.d.sync += [total_valid.eq(valid & last), total_bank.eq(bank)]
        with m.If(valid):
            m.d.sync += accumulator.eq(added)
            with m.If(last):
                m.d.sync += total.eq(added)
        factor, stages = divide_stages(m, INT31_MAX, total, cfg.quotient_width, sync, name="div")
        done, done_bank = total_valid, total_bank
        for stage in range(stages):
            later_valid, later_bank = Signal(name=f"div_valid{stage}"), Signal(rows.bank_bits, name=f"div_bank{stage}")
            m.d.sync += [later_valid.eq(done), later_bank.eq(done_bank)]
            done, done_bank = later_valid, later_bank
        row_factor = rows.params(unsigned(cfg.quotient_width), "row_factor")
        with m.If(done):
            m.d.sync += row_factor[done_bank].eq(factor)
        m.d.comb += rows.publish.eq(done)

        # -- output pass: e again, times f, shifted --------------------------------------------------
        depth = 2 + 1 + SHIFT_EXP_STAGES + 1
        out = rows.output_pass(self.o, [row_factor], depth)
        out_d = Signal(d_shape)
        out.stalled((out_d, out.x - out.values[2][0]))
        out_e = shift_exp_stages(m, out_d, cfg.x0, cfg.shift, cfg.variant, lambda a, b: out.stalled((a, b)),
                                 name="out_exp")
        product = Signal(len(out_e) + cfg.quotient_width)
        out.stalled((product, out_e * out.values[depth - 1][1]))
        out.stalled((self.o.valid, out.valid[depth]), (self.o.payload, product >> (32 - cfg.out_width)))
        return m
