"""I-ViT ShiftMax in hardware: :func:`qarith.golden.shiftmax.shiftmax` on rows of ``n`` scores, one
element per cycle in and out.

Built on :class:`qarith.hdl.rows.RowEngine` (banked row buffer and row maximum):

``reduce`` pass
    ``e_i`` through the four-stage shift-exp pipeline (:func:`qarith.hdl.shift_exp.shift_exp_stages`:
    shifts, comparisons with the constants ``k x0``, a barrel shift; no multiplier), summed; the
    row's ``f = floor((2**31 - 1) / s)`` from a pipelined non-restoring divider with two stages per
    quotient bit (:func:`split_divide_stages`, ``2 quotient_width`` stages: ``s >= e(0)`` bounds the
    quotient, 12 bits for the default config), so the divider accepts a new row every cycle and never
    limits the throughput;
``output`` pass
    ``e_i`` again through the same pipeline, then ``(e_i * f) >> (32 - out_width)``: one product, its
    partial products registered before their sum (:func:`qarith.hdl.common.arith.product_stages`).

``variant="ibert"`` swaps in I-BERT's polynomial exponential
(:func:`qarith.hdl.shift_exp.ibert_exp_stages`, eight stages and one more multiplier) and the dividend
``2**32``; the rest is the same hardware.

The input is registered once ahead of the row engine. Latency from a row's last element to its first
output: ``n + 2 quotient_width + 20`` cycles (``+ 28`` for ``"ibert"``). One element per cycle in steady
state; backpressure stalls the output pass and, once every bank is taken, the input.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from ..golden.shiftmax import ShiftmaxConfig
from .common.arith import PRODUCT_STAGES, product_stages, split_divide_stages
from .common.component import BlockComponent
from .common.rows import RowEngine, RowSchedule, banks_for, row_layout
from .common.shift_exp import IBERT_EXP_STAGES, SHIFT_EXP_STAGES, ibert_exp_stages, shift_exp_stages

__all__ = ["Shiftmax"]


class Shiftmax(RowSchedule, BlockComponent):
    """Streaming ShiftMax over rows of ``cfg.n`` elements.

    Parameters
    ----------
    cfg : ShiftmaxConfig

    Members
    -------
    i : In(stream.Signature(signed(in_width)))
        Score codes, row after row.
    o : Out(stream.Signature(unsigned(out_bits)))
        Probability codes at scale ``2**-out_bits`` (``out_width - 1`` bits, or ``out_width`` for I-BERT).
        With ``variable_length``, both payloads are ``{"data", "last"}``: rows of ``1 .. n`` elements
        ended by ``last`` in, ``last`` on each row's final output
        (:class:`qarith.hdl.common.rows.RowEngine`).
    """

    config_class = ShiftmaxConfig

    throughput = 1  # elements per cycle, in steady state
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        i_shape, o_shape = signed(cfg.in_width), unsigned(cfg.out_bits)
        if cfg.variable_length:
            i_shape, o_shape = row_layout(i_shape), row_layout(o_shape)
        super().__init__({
            "i": In(stream.Signature(i_shape)),
            "o": Out(stream.Signature(o_shape)),
        })

    @property
    def exp_stages(self):
        return IBERT_EXP_STAGES if self.cfg.variant == "ibert" else SHIFT_EXP_STAGES

    @property
    def reduce_tail(self):
        """Cycles from the reduce pass's last read to the row's ``f`` being visible to the output pass:
        buffer word, its register, d, the exp stages, the accumulator, the divider, the parameter."""
        return 2 + 1 + self.exp_stages + 1 + 2 * self.cfg.quotient_width + 1

    @property
    def banks(self):
        return banks_for(self.cfg.n, self.reduce_tail)

    @property
    def latency(self):
        return self.row_latency(self.cfg.n)

    @property
    def output_gap(self):
        """Cycles from the reduce pass's last read of a row to the output pass's first read of it, with
        the output pass free: the reduce tail."""
        return self.reduce_tail

    def row_latency(self, length):
        """Cycles from a row's last element to its first output, for a row of ``length`` elements
        with nothing else in flight."""
        # the input register, length reads (the first in the cycle after the last element is in the
        # buffer), the reduce tail, then the output pass (it reads in the cycle the parameters are
        # visible): buffer word, its register, d, the exp stages, the product (partial products, their
        # sum), the output register.
        return 1 + length + self.reduce_tail + 2 + 1 + self.exp_stages + PRODUCT_STAGES + 1

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        # The input registered ahead of the row engine (payload and valid; ready passes through, so one
        # element a cycle still goes in): the source's logic and the ingest's comparison with the running
        # maximum are a cycle apart (together, with the pin wrapper as the source, they were the iCE40
        # critical path of n197_pytorch).
        staged = stream.Signature(self.i.payload.shape()).create()
        m.d.comb += self.i.ready.eq(~staged.valid | staged.ready)
        with m.If(self.i.ready):
            m.d.sync += [staged.valid.eq(self.i.valid), staged.payload.eq(self.i.payload)]
        rows = RowEngine(m, cfg.n, signed(cfg.in_width), self.banks, staged, cfg.variable_length)
        d_shape = signed(cfg.in_width + 1)

        def sync(target, value):
            m.d.sync += target.eq(value)

        # -- reduce pass: d = x - max; e; the row sum; f = floor((2**31 - 1) / sum) ----------------
        valid, _, last, bank = rows.tags(1 + self.exp_stages)
        d = Signal(d_shape)
        sync(d, rows.x - rows.max)
        def exponential(d, register, name):
            if cfg.variant == "ibert":
                return ibert_exp_stages(m, d, cfg.scale, cfg.shift, cfg.ibert_requant_shift, register, name=name)
            return shift_exp_stages(m, d, cfg.x0, cfg.shift, cfg.variant, register, name=name)

        e = exponential(d, sync, "sum_exp")
        # The accumulator is cleared by the row's last element rather than masked at its first: the
        # clear is the register's synchronous reset, off the sum's carry chain (a multiplexer in front of
        # the chain was the iCE40 critical path once the divider was split).
        accumulator, added = Signal(cfg.sum_width), Signal(cfg.sum_width)
        m.d.comb += added.eq(accumulator + e)
        total, total_valid, total_bank = Signal(cfg.sum_width), Signal(), Signal(rows.bank_bits)
        m.d.sync += [total_valid.eq(valid & last), total_bank.eq(bank)]
        with m.If(valid):
            m.d.sync += accumulator.eq(added)
            with m.If(last):
                m.d.sync += [total.eq(added), accumulator.eq(0)]
        factor, stages = split_divide_stages(m, cfg.numerator, total, cfg.quotient_width, sync, name="div")
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
        exp_depth = 2 + 1 + self.exp_stages
        depth = exp_depth + PRODUCT_STAGES
        out = rows.output_pass(self.o, [row_factor], depth)
        out_d = Signal(d_shape)
        out.stalled((out_d, out.x - out.values[2][0]))
        out_e = exponential(out_d, lambda a, b: out.stalled((a, b)), "out_exp")
        # e is wider than a DSP's port: split it, so that f's 9 to 17 bits meet one DSP per part.
        product, _ = product_stages(out.values[exp_depth][1], out_e, lambda a, b: out.stalled((a, b)), "product")
        shifted = product >> (32 - cfg.out_width)
        out.stalled((self.o.valid, out.valid[depth]),
                    (out.data(self.o), Mux(shifted > cfg.out_max, cfg.out_max, shifted)), *out.ends(self.o, depth))
        return m
