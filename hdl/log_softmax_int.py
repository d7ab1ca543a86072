"""FQ-ViT Log-Int-Softmax in hardware: :func:`qarith.golden.log_softmax_int.log_softmax_int` on rows of
``n`` scores, one element per cycle, and no divider.

Built on :class:`qarith.hdl.rows.RowEngine`: the reduce pass runs I-BERT's i-exp
(:func:`qarith.hdl.shift_exp.ibert_exp_stages`) on ``x - max`` and sums; the output pass runs it again
and finds the log2 code without dividing: ``r = #{k >= 1 : round(s / e) >= T_k}`` with
``T_k = ceil(1.5 * 2**(k - 1))`` (the thresholds of FQ-ViT's rounded log2), and
``round(s / e) >= T_k`` (half to even) is ``u >= t_k`` with ``u = 2 s + e`` and ``t_k = 4 e``
(``k = 1``), ``u > 6 e`` (``k = 2``, odd ``T``), ``u >= 3 e << (k - 1)`` (``k >= 3``): one adder and
``2**bits`` comparisons against shifts of ``e`` and ``3 e``, then a count.

Latency ``n + 25`` cycles from a row's last element to its first code.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.log_softmax_int import LogSoftmaxIntConfig
from .common.component import BlockComponent
from .common.rows import RowEngine, banks_for, row_layout
from .common.shift_exp import IBERT_EXP_STAGES, ibert_exp_stages

__all__ = ["LogSoftmaxInt", "code_layout"]


def code_layout(bits):
    """One attention code: ``code`` (the weight is ``2**-code``) and ``zero`` (the weight is 0)."""
    return data.StructLayout({"code": unsigned(bits), "zero": 1})


class LogSoftmaxInt(BlockComponent):
    """Streaming Log-Int-Softmax over rows of ``cfg.n`` elements.

    Parameters
    ----------
    cfg : LogSoftmaxIntConfig

    Members
    -------
    i : In(stream.Signature(signed(in_width)))
    o : Out(stream.Signature(code_layout(bits)))
        With ``variable_length``, both payloads are ``{"data", "last"}``: rows of ``1 .. n`` elements
        ended by ``last`` in, ``last`` on each row's final output
        (:class:`qarith.hdl.common.rows.RowEngine`).
    """

    config_class = LogSoftmaxIntConfig

    throughput = 1  # elements per cycle, in steady state
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        i_shape, o_shape = signed(cfg.in_width), code_layout(cfg.bits)
        if cfg.variable_length:
            i_shape, o_shape = row_layout(i_shape), row_layout(o_shape)
        super().__init__({
            "i": In(stream.Signature(i_shape)),
            "o": Out(stream.Signature(o_shape)),
        })

    @property
    def reduce_tail(self):
        """Buffer word, its register, d, the exp stages, the sum, the parameter."""
        return 2 + 1 + IBERT_EXP_STAGES + 1 + 1

    @property
    def banks(self):
        return banks_for(self.cfg.n, self.reduce_tail)

    @property
    def latency(self):
        return self.row_latency(self.cfg.n)

    def row_latency(self, length):
        """Cycles from a row's last element to its first code, for a row of ``length`` elements with
        nothing else in flight."""
        # The output pass: buffer word, its register, d, the exp stages, u and 3e, the comparisons,
        # the count into the output register.
        return length + self.reduce_tail + 2 + 1 + IBERT_EXP_STAGES + 1 + 1 + 1

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows = RowEngine(m, cfg.n, signed(cfg.in_width), self.banks, self.i, cfg.variable_length)
        d_shape = signed(cfg.in_width + 1)

        def sync(target, value):
            m.d.sync += target.eq(value)

        valid, first, last, bank = rows.tags(1 + IBERT_EXP_STAGES)
        d = Signal(d_shape)
        sync(d, rows.x - rows.max)
        e = ibert_exp_stages(m, d, cfg.scale, 30, 0, sync, name="sum_exp")
        accumulator, added = Signal(cfg.sum_width), Signal(cfg.sum_width)
        m.d.comb += added.eq(Mux(first, 0, accumulator) + e)
        row_sum = rows.params(unsigned(cfg.sum_width), "row_sum")
        done = Signal()
        m.d.sync += done.eq(valid & last)
        done_bank, total = Signal(rows.bank_bits), Signal(cfg.sum_width)
        with m.If(valid):
            m.d.sync += accumulator.eq(added)
        m.d.sync += [done_bank.eq(bank), total.eq(added)]
        with m.If(done):
            m.d.sync += row_sum[done_bank].eq(total)
        m.d.comb += rows.publish.eq(done)

        depth = 2 + 1 + IBERT_EXP_STAGES + 1 + 1
        out = rows.output_pass(self.o, [row_sum], depth)
        out_d = Signal(d_shape)
        out.stalled((out_d, out.x - out.values[2][0]))
        out_e = ibert_exp_stages(m, out_d, cfg.scale, 30, 0, lambda a, b: out.stalled((a, b)), name="out_exp")
        k_e = 2 + 1 + IBERT_EXP_STAGES            # the stage at which out_e is valid
        width = cfg.compare_width + 1
        u, e1, e3 = Signal(width), Signal(width), Signal(width)
        out.stalled((u, 2 * out.values[k_e][1] + out_e), (e1, out_e), (e3, 3 * out_e))
        above = Signal(cfg.levels)
        checks = []
        for k in range(1, cfg.levels + 1):
            if k == 1:
                checks.append(u >= (e1 << 2))
            elif k == 2:
                checks.append(u > (e3 << 1))
            else:
                checks.append(u >= (e3 << (k - 1)))
        out.stalled((above, Cat(*checks)))
        count = Signal(range(cfg.levels + 1))
        m.d.comb += count.eq(sum(above[k] for k in range(cfg.levels)))
        result = out.data(self.o)
        out.stalled((self.o.valid, out.valid[depth]),
                    (result.code, Mux(count >= cfg.levels, cfg.levels - 1, count)),
                    (result.zero, count >= cfg.levels), *out.ends(self.o, depth))
        return m
