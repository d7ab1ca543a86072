"""FQ-ViT Log-Int-Softmax in hardware: :func:`qarith.golden.log_softmax_int.log_softmax_int` on rows of
``n`` scores, one element per cycle, and no divider.

Built on :class:`qarith.hdl.rows.RowEngine`: the reduce pass runs I-BERT's i-exp
(:func:`qarith.hdl.shift_exp.ibert_exp_stages`) on ``x - max`` and sums; the output pass runs it again
and finds the log2 code without dividing: ``r = #{k >= 1 : round(s / e) >= T_k}`` with
``T_k = ceil(1.5 * 2**(k - 1))`` (the thresholds of FQ-ViT's rounded log2), and
``round(s / e) >= T_k`` (half to even) is ``u >= t_k`` with ``u = 2 s + e`` and ``t_k = 4 e``
(``k = 1``), ``u > 6 e`` (``k = 2``, odd ``T``), ``u >= 3 e << (k - 1)`` (``k >= 3``): one adder and
``2**bits`` comparisons against shifts of ``e`` and ``3 e``, then a count.

Latency ``n + 30`` cycles from a row's last element to its first code (:attr:`LogSoftmaxInt.latency`).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.log_softmax_int import LogSoftmaxIntConfig
from .common.arith import delay, thermometer_count
from .common.component import BlockComponent
from .common.rows import RowEngine, banks_for, row_layout
from .common.shift_exp import IBERT_EXP_STAGES, ibert_exp_stages

__all__ = ["LogSoftmaxInt", "code_layout"]

#: Bits per chunk of the threshold comparisons (one carry chain each). 8, not 16: Yosys built a 16-bit
#: chunk's equality test as a chain of six LUTs, the iCE40 path of ``n16_b3_s10`` (21.1 ns).
COMPARE_CHUNK = 8


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
        """Buffer word, its register, d, the exp stages, the sum's two halves, the parameter."""
        return 2 + 1 + IBERT_EXP_STAGES + 1 + 1 + 1

    @property
    def banks(self):
        return banks_for(self.cfg.n, self.reduce_tail)

    @property
    def latency(self):
        return self.row_latency(self.cfg.n)

    def row_latency(self, length):
        """Cycles from a row's last element to its first code, for a row of ``length`` elements with
        nothing else in flight."""
        return length + self.reduce_tail + self.output_depth

    @property
    def output_depth(self):
        """Output-pass stages: buffer word, its register, d, the exp stages, u and 3e (two), the chunk
        comparisons, their combination, the count into the output register."""
        return 2 + 1 + IBERT_EXP_STAGES + 2 + 1 + 1 + 1

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
        # The accumulator in two halves, the high half a cycle behind the low one with the low half's
        # carry registered between them (one 46-bit carry chain was the iCE40 critical path, 27.2 ns).
        low_bits = cfg.sum_width // 2
        low, low_added = Signal(low_bits), Signal(low_bits + 1)
        high, high_added = Signal(cfg.sum_width - low_bits), Signal(cfg.sum_width - low_bits)
        m.d.comb += low_added.eq(Mux(first, 0, low) + e[:low_bits])
        valid2, first2, last2, bank2 = Signal(), Signal(), Signal(), Signal(rows.bank_bits)
        carry, e_high = Signal(), Signal(len(high))
        m.d.sync += [valid2.eq(valid), first2.eq(first), last2.eq(last), bank2.eq(bank),
                     carry.eq(valid & low_added[low_bits]), e_high.eq(e[low_bits:])]
        m.d.comb += high_added.eq(Mux(first2, 0, high) + e_high + carry)
        with m.If(valid):
            m.d.sync += low.eq(low_added[:low_bits])
        with m.If(valid2):
            m.d.sync += high.eq(high_added)
        row_sum = rows.params(unsigned(cfg.sum_width), "row_sum")
        done = Signal()
        m.d.sync += done.eq(valid2 & last2)
        done_bank, total = Signal(rows.bank_bits), Signal(cfg.sum_width)
        m.d.sync += [done_bank.eq(bank2), total.eq(Cat(low, high_added))]
        with m.If(done):
            m.d.sync += row_sum[done_bank].eq(total)
        m.d.comb += rows.publish.eq(done)

        depth = self.output_depth - 1       # the output register is o's own
        out = rows.output_pass(self.o, [row_sum], depth)
        out_d = Signal(d_shape)
        out.stalled((out_d, out.x - out.values[2][0]))

        def register(target, value):
            out.stalled((target, value))

        out_e = ibert_exp_stages(m, out_d, cfg.scale, 30, 0, register, name="out_exp")
        k_e = 2 + 1 + IBERT_EXP_STAGES            # the stage at which out_e is valid
        width = cfg.compare_width + 1

        def split_add(a, b, name):
            """``a + b`` two stages on: the low halves in the first, the high halves and the low half's
            carry in the second (one carry chain of up to 57 bits was the iCE40 critical path)."""
            half = (width + 1) // 2
            low, a_high, b_high = Signal(half + 1, name=f"{name}_low"), Signal(width - half), Signal(width - half)
            out.stalled((low, a[:half] + b[:half]), (a_high, a[half:]), (b_high, b[half:]))
            total = Signal(width, name=name)
            out.stalled((total, Cat(low[:half], a_high + b_high + low[half])))
            return total

        # 3 e as e + 2 e: written as a product, Yosys maps it to a 42-bit multiplier (an ECP5 DSP and a
        # carry chain behind it: the critical path, 10.1 ns).
        u = split_add(out.values[k_e][1] << 1, out_e, "u")
        e3 = split_add(out_e << 1, out_e, "e3")
        e1 = delay(out_e, 2, register, "e1")
        # u = 2 s + e < (2 n + 1) e_max has u_width bits; a threshold m e (m = 4, 6, 3 << (k - 1)) with
        # bits above them is larger than u. Whether it has is a compare of e with a constant, taken
        # beside u and registered along, so only u_width bits are compared. Each comparison is split
        # into chunks of COMPARE_CHUNK bits: one stage compares the chunks (greater, equal), the next
        # combines them (one carry chain of 57 bits, and the zero tests of the thresholds' high bits,
        # were the iCE40 critical path).
        u_width = ((2 * cfg.n + 1) * cfg.e_max).bit_length()
        multiples = [(4, False), (6, True)] + [(3 << (k - 1), False) for k in range(3, cfg.levels + 1)]
        # e <= C is itself compared in chunks over two stages (as one stage, Yosys shared one chain of
        # LUTs across the constants, which are nested halves: the iCE40 critical path, 24.7-26.5 ns).
        fits_parts = []
        for k, (multiple, _) in enumerate(multiples):
            limit = ((1 << u_width) - 1) // multiple
            if limit >= (1 << len(out_e)) - 1:
                fits_parts.append(None)
                continue
            pairs = []
            for low in range(0, len(out_e), COMPARE_CHUNK):
                high = min(low + COMPARE_CHUNK, len(out_e))
                part = (limit >> low) & ((1 << (high - low)) - 1) if high < len(out_e) else limit >> low
                below, equal = Signal(name=f"fits{k}_lt{low}"), Signal(name=f"fits{k}_eq{low}")
                # the lowest chunk holds when <=, a higher one when <, or == with the chunks below holding
                out.stalled((below, out_e[low:high] <= part if low == 0 else out_e[low:high] < part),
                            (equal, out_e[low:high] == part))
                pairs.append((below, equal))
            fits_parts.append(pairs)
        fits = Signal(cfg.levels)
        fit_bits = []
        for pairs in fits_parts:
            if pairs is None:
                fit_bits.append(1)
                continue
            holds = pairs[0][0]
            for below, equal in pairs[1:]:
                holds = below | (equal & holds)
            fit_bits.append(holds)
        out.stalled((fits, Cat(*fit_bits)))
        fits3 = delay(fits, 1, register, "fits")
        # u >= b << s is (u >> s) >= b, and u > b << s is (u >> s) > b or equal with u's low s bits not
        # all zero: compared on b's own bits, so that no two comparisons share a zero test of u's low
        # bits (Yosys chained those across the thresholds).
        thresholds = [(e1, 2), (e3, 1)] + [(e3, k - 1) for k in range(3, cfg.levels + 1)]
        chunks = []
        for k, ((base, shift), (_, strict)) in enumerate(zip(thresholds, multiples)):
            a, b = u[shift:u_width], base[:u_width - shift]
            pairs = []
            for low in range(0, len(a), COMPARE_CHUNK):
                greater, equal = Signal(name=f"above{k}_gt{low}"), Signal(name=f"above{k}_eq{low}")
                high = min(low + COMPARE_CHUNK, len(a))
                out.stalled((greater, a[low:high] > b[low:high]), (equal, a[low:high] == b[low:high]))
                pairs.append((greater, equal))
            rest = Signal(name=f"above{k}_rest")
            out.stalled((rest, u[:shift].any() if strict else 1))
            chunks.append((pairs, rest))
        checks = []
        for k, (pairs, holds) in enumerate(chunks):
            for greater, equal in pairs:              # u >= t (u > t) over the chunks so far, lowest first
                holds = greater | (equal & holds)
            checks.append(fits3[k] & holds)
        above = Signal(cfg.levels)
        out.stalled((above, Cat(*checks)))
        # round(s / e) >= T_k for k = 1 .. r (T_k increases): a thermometer code.
        count = Signal(range(cfg.levels + 1))
        m.d.comb += count.eq(thermometer_count(above))
        result = out.data(self.o)
        out.stalled((self.o.valid, out.valid[depth]),
                    (result.code, Mux(above[-1], cfg.levels - 1, count)),
                    (result.zero, above[-1]), *out.ends(self.o, depth))
        return m
