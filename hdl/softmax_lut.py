"""Streaming softmax from small lookup tables (Vasyltsov & Chang, arXiv 2111.10770).

Computes :func:`qarith.golden.softmax_lut.softmax_lut` on rows of ``n`` input codes that arrive one
element per cycle and leave one element per cycle. Every table (exp, reciprocal or logarithm, output
exp) is read from :mod:`qarith.golden.softmax_lut`, so the ROMs and the model cannot drift apart.

The row machinery (banked row buffer, row maximum, free-running reduce pass, stallable output pass)
is :class:`qarith.hdl.rows.RowEngine`; this block adds its arithmetic to the two passes:

``sum`` (reduce pass)
    ``e = E[max - x]``, accumulated; then the sum is normalised (leading-one position ``p``, mantissa
    ``j``) and ``R[j]`` (``"recip"``) or ``Lp[p] + Lm[j]`` (``"log"``) becomes the row's parameters;
``output``
    ``(E[d] * R >> (p + ...))`` with one multiplier and a barrel shifter, or ``O[(d << G) + L]`` with
    no multiplier.

Block RAM and ROM words are registered before any arithmetic uses them (ECP5 block RAM has a
clock-to-output of about 5.8 ns). With ``memory="ecp5"`` every ROM is instantiated DP16KD with its output
register (:func:`qarith.hdl.common.ecp5.dp16kd_rom`, read latency 2), and a masked score reads a zero
word from the ROM's upper half (its mask flag is the top address bit) instead of passing a
multiplexer behind the RAM; with ``multiplier="ecp5"`` the product is a MULT18X18D with its input and
output registers in place of the fabric's two (:func:`qarith.hdl.common.ecp5.mult18x18d`); the row
buffer is instantiated DP16KD with their output registers too (``RowEngine``'s ``buffer="ecp5"``), one
cycle more in each pass. In steady
state the block takes and gives one element per cycle; the
input stops only when every buffer bank is taken, so backpressure loses nothing.

``latency`` is the number of cycles from accepting a row's last element to the row's first output
(with nothing else in flight): ``n`` cycles of the sum stage plus the pipeline depths (``memory="ecp5"``:
one more for each ROM on the way and for each pass's read of the row buffer, and for ``"log"`` a
register for the logarithm word). Throughput is
one element per cycle.
"""

import math

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.softmax_lut import SoftmaxLutConfig, exp_table, log_tables, out_table, recip_table
from .common.component import BlockComponent
from .common.ecp5 import DP16KD_DEPTHS, DP16KD_MODEL, MULT18X18D_MODEL, dp16kd_rom, mult18x18d
from .common.rows import BUFFER_READ_EXTRA, RowEngine, RowSchedule, banks_for, row_layout

__all__ = ["SoftmaxLut"]

#: Cycles from the sum stage's last read to its parameters being visible to the output stage: buffer
#: word, its register, exp index, exp word, its register and the accumulator, row sum, clamped sum,
#: leading one, mantissa, table word, parameters written.
SUM_TAIL = 11

#: The sum tail's extra cycles with ``memory="ecp5"``: the exp ROM's and the reciprocal / logarithm
#: ROM's output registers, and for ``"log"`` the logarithm word registered before ``Lp[p] + Lm[j]``
#: (the row buffer's output register is :data:`~qarith.hdl.common.rows.BUFFER_READ_EXTRA`).
ECP5_SUM_TAIL_EXTRA = {"recip": 2, "log": 3}


def _rom(table, shape):
    return Memory(shape=shape, depth=len(table), init=[int(v) for v in table])


def _masked_rom(table, index_bits):
    """The contents of an ``memory="ecp5"`` ROM read at ``Cat(index, masked)``: ``table`` (zero-filled
    to ``2**index_bits`` entries), then as many zeros for masked scores."""
    return [int(v) for v in table] + [0] * ((2 << index_bits) - len(table))


class SoftmaxLut(RowSchedule, BlockComponent):
    """Streaming LUT softmax over rows of ``cfg.n`` elements.

    Parameters
    ----------
    cfg : SoftmaxLutConfig

    Members
    -------
    i : In(stream.Signature(signed(in_width)))
        Score codes, row after row, ``n`` beats per row (``variable_length``: payload
        ``{"data", "last"}``, rows of ``1 .. n`` beats ended by ``last``,
        :class:`qarith.hdl.common.rows.RowEngine`).
    o : Out(stream.Signature(unsigned(out_width)))
        Probability codes (step ``2**-out_width``), in input order (``variable_length``:
        ``{"data", "last"}``, ``last`` on each row's final code).
    """

    config_class = SoftmaxLutConfig

    throughput = 1  # elements per cycle, in steady state

    def __init__(self, cfg):
        self.cfg = cfg
        i_shape, o_shape = signed(cfg.in_width), unsigned(cfg.out_width)
        if cfg.variable_length:
            i_shape, o_shape = row_layout(i_shape), row_layout(o_shape)
        super().__init__({
            "i": In(stream.Signature(i_shape)),
            "o": Out(stream.Signature(o_shape)),
        })

    @property
    def sim_sources(self):
        """Simulation models the emitted Verilog needs (the ``ecp5`` ROMs' DP16KD and multiplier's
        MULT18X18D)."""
        return ([DP16KD_MODEL] if self.cfg.memory == "ecp5" else []) + \
            ([MULT18X18D_MODEL] if self.cfg.multiplier == "ecp5" else [])

    @property
    def buffer(self):
        """The row buffer's kind (:class:`~qarith.hdl.common.rows.RowEngine`'s ``buffer``): ``"ecp5"``
        with ``memory="ecp5"``, else ``"inferred"``."""
        return "ecp5" if self.cfg.memory == "ecp5" else "inferred"

    @property
    def sum_tail(self):
        """Cycles from the sum stage's last read to its parameters being visible to the output stage
        (:data:`SUM_TAIL`, plus :data:`ECP5_SUM_TAIL_EXTRA` and the buffer's extra read cycle with
        ``memory="ecp5"``)."""
        extra = ECP5_SUM_TAIL_EXTRA[self.cfg.method] if self.cfg.memory == "ecp5" else 0
        return SUM_TAIL + extra + BUFFER_READ_EXTRA[self.buffer]

    @property
    def reduce_tail(self):
        """The row's tail for :func:`~qarith.hdl.common.rows.banks_for`: the sum tail and the cycle
        after it."""
        return self.sum_tail + 1

    @property
    def banks(self):
        """Row-buffer banks: enough for one row in each stage plus the sum stage's tail."""
        return banks_for(self.cfg.n, self.reduce_tail)

    @property
    def latency(self):
        return self.row_latency(self.cfg.n)

    @property
    def output_gap(self):
        """Cycles from the reduce pass's last read of a row to the output pass's first read of it, with
        the output pass free: the sum tail."""
        return self.sum_tail

    def row_latency(self, length):
        """Cycles from a row's last element to its first output, for a row of ``length`` elements
        with nothing else in flight."""
        # length reads (the first in the cycle after the last element), the sum tail (the parameters
        # are visible to the output stage in the cycle after it), then the output pipeline: buffer
        # word (ecp5: the buffer's output register), its register, ROM index, ROM word (ecp5: its output
        # register), [its register, product, shift,] output register.
        return (length + self.sum_tail + (8 if self.cfg.method == "recip" else 5) + self._rom_delay
                + BUFFER_READ_EXTRA[self.buffer])

    @property
    def _rom_delay(self):
        """The ROMs' read latency beyond one cycle: the DP16KD output register of ``memory="ecp5"``."""
        return 1 if self.cfg.memory == "ecp5" else 0

    @property
    def exp_padded(self):
        """Whether the exp ROM holds an entry for every ``d`` of ``in_width`` bits (the table's last entry
        repeated): when that is at most 1024 entries (``in_width`` up to 10; at 8-bit words two iCE40 block
        RAMs per read port, a fraction of one DP16KD). Synthesis then puts it in block RAM, one copy per read
        port, where the shorter table had been partly logic (iCE40 ``n64_recip_o12``: 5 block RAMs instead
        of 3, 947 logic cells instead of 1265). With a limit of 256 entries ``n256_recip_s10`` kept the
        clamp of the index, a subtraction then a compare, and that was its iCE40 path (19.5-20.7 ns). With
        ``memory="ecp5"``, whenever the padded ROM and its masked half
        fit one DP16KD's depth (``in_width`` up to 13): the ROM is whole DP16KD either way, and the clamp
        had been the sum pass's ECP5 path of ``n256_recip_s10`` (``s2_x`` through the subtraction and
        the compare into the ROM's address)."""
        limit = DP16KD_DEPTHS[1] // 2 if self.cfg.memory == "ecp5" else 1024
        return len(exp_table(self.cfg)) < (1 << self.cfg.in_width) <= limit

    @property
    def table_bytes(self):
        """The tables' bytes as built: :attr:`SoftmaxLutConfig.table_bytes` plus the padded exp entries
        (not counting the zero words that ``memory="ecp5"`` ROMs read for masked scores)."""
        exp, width, _ = self.cfg.tables()["exp"]
        extra = (1 << self.cfg.in_width) - len(exp) if self.exp_padded else 0
        return self.cfg.table_bytes - math.ceil(len(exp) * width / 8) + math.ceil((len(exp) + extra) * width / 8)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        x_shape = signed(cfg.in_width)
        min_code = -(1 << (cfg.in_width - 1))
        d_shape = unsigned(cfg.in_width)
        rows = RowEngine(m, cfg.n, x_shape, self.banks, self.i, cfg.variable_length, buffer=self.buffer)

        exp = exp_table(cfg)
        exp_shape = unsigned(int(exp.max()).bit_length())
        padded = self.exp_padded
        if padded:
            # Every d = max - x (in_width bits) has its own entry, the last one repeated past the table:
            # the index needs no clamp (a subtraction then a compare, the iCE40 path of n64_recip_o12).
            exp = list(exp.tolist()) + [int(exp[-1])] * ((1 << cfg.in_width) - len(exp))
        ecp5 = cfg.memory == "ecp5"
        if not ecp5:
            m.submodules.exp_rom = exp_rom = _rom(exp, exp_shape)
            exp_sum_read = exp_rom.read_port(transparent_for=())

        def delayed(values, stages, name):
            """``values`` through ``stages`` free-running registers (the sum pass)."""
            for stage in range(stages):
                later = [Signal.like(value, name=f"{name}{stage}_{value.name}") for value in values]
                m.d.sync += [a.eq(b) for a, b in zip(later, values)]
                values = later
            return values

        # -- sum pass: a free-running pipeline from the row engine's stage s2 ------------------------
        def tags(stage):
            return [Signal(name=f"s{stage}_valid"), Signal(name=f"s{stage}_first"), Signal(name=f"s{stage}_last"),
                    Signal(rows.bank_bits, name=f"s{stage}_bank")]

        def follow(later, earlier):
            m.d.sync += [a.eq(b) for a, b in zip(later, earlier)]

        # s2: d = max - x, clamped: the exp ROM's index (s3); s4: e on the ROM's data, registered (s5).
        # memory="ecp5": the ROM word leaves its output register at s5 and is registered at s6, and every
        # later stage is one further along than its name says.
        s2 = [rows.valid, rows.first, rows.last, rows.bank]
        s2_d = Signal(d_shape)
        m.d.comb += s2_d.eq(rows.max - rows.x)
        s3, s3_masked, s3_index = tags(3), Signal(), Signal(range(len(exp)))
        follow(s3, s2)
        m.d.sync += [s3_masked.eq(cfg.mask_min & (rows.x == min_code)),
                     s3_index.eq(s2_d if padded else Mux(s2_d >= len(exp) - 1, len(exp) - 1, s2_d))]
        if ecp5:
            exp_sum_word = Signal(exp_shape)
            dp16kd_rom(m, "exp_sum_rom", _masked_rom(exp, len(s3_index)), exp_shape.width,
                       Cat(s3_index, s3_masked), exp_sum_word)
            acc = delayed(s3, 3, "r")
            acc_e = Signal(exp_shape, name="s6_e")
            m.d.sync += acc_e.eq(exp_sum_word)
        else:
            m.d.comb += exp_sum_read.addr.eq(s3_index)
            s4, s4_masked = tags(4), Signal()
            follow(s4, s3)
            m.d.sync += s4_masked.eq(s3_masked)
            s5, s5_e = tags(5), Signal(exp_shape)
            follow(s5, s4)
            m.d.sync += s5_e.eq(Mux(s4_masked, 0, exp_sum_read.data))
            acc, acc_e = s5, s5_e
        # s5: accumulate; s6: the finished row sum (below 2**p_min only when every score is masked)
        accumulator = Signal(cfg.sum_width)
        added = Signal(cfg.sum_width)
        m.d.comb += added.eq(Mux(acc[1], 0, accumulator) + acc_e)
        sum_done = Signal(cfg.sum_width)
        s6_valid, s6_bank = Signal(), Signal(rows.bank_bits)
        m.d.sync += [s6_valid.eq(acc[0] & acc[2]), s6_bank.eq(acc[3])]
        with m.If(acc[0]):
            m.d.sync += accumulator.eq(added)
            with m.If(acc[2]):
                m.d.sync += sum_done.eq(added)
        # s7: the clamped sum and its leading-one position p
        total = Signal(cfg.sum_width)
        s7_valid, s7_bank = Signal(), Signal(rows.bank_bits)
        m.d.sync += [s7_valid.eq(s6_valid), s7_bank.eq(s6_bank),
                     total.eq(Mux(sum_done < (1 << cfg.p_min), 1 << cfg.p_min, sum_done))]
        lead = Signal(range(cfg.p_max + 1))
        with m.Switch(total):                         # the first matching case wins: highest one first
            for bit in reversed(range(cfg.p_min, cfg.p_max + 1)):
                with m.Case("-" * (cfg.sum_width - 1 - bit) + "1" + "-" * bit):
                    m.d.comb += lead.eq(bit)
        # s8: p registered; s9: the norm_bits bits after the leading one
        r = cfg.norm_bits
        s8_valid, s8_bank, s8_p, s8_total = Signal(), Signal(rows.bank_bits), Signal(range(cfg.p_max + 1)), Signal(cfg.sum_width)
        m.d.sync += [s8_valid.eq(s7_valid), s8_bank.eq(s7_bank), s8_p.eq(lead), s8_total.eq(total)]
        s9_valid, s9_bank, s9_p, s9_mantissa = Signal(), Signal(rows.bank_bits), Signal(range(cfg.p_max + 1)), Signal(r)
        m.d.sync += [s9_valid.eq(s8_valid), s9_bank.eq(s8_bank), s9_p.eq(s8_p),
                     s9_mantissa.eq((Cat(Const(0, r), s8_total) >> s8_p)[:r])]
        # s9: the mantissa addresses the reciprocal / logarithm ROM; s10: the row's parameters are written
        # (memory="ecp5": the ROM word leaves its output register at s11, where the reciprocal is written;
        # the logarithm word is registered at s12 and the parameter written there).
        s10_valid, s10_bank, s10_p = Signal(), Signal(rows.bank_bits), Signal(range(cfg.p_max + 1))
        m.d.sync += [s10_valid.eq(s9_valid), s10_bank.eq(s9_bank), s10_p.eq(s9_p)]
        if cfg.method == "recip":
            recip = recip_table(cfg)
            recip_shape = unsigned(int(recip.max()).bit_length())
            if ecp5:
                recip_word = Signal(recip_shape)
                dp16kd_rom(m, "recip_rom", recip.tolist(), recip_shape.width, s9_mantissa, recip_word)
                param_valid, param_bank, param_p = delayed([s10_valid, s10_bank, s10_p], 1, "r")
            else:
                m.submodules.recip_rom = recip_rom = _rom(recip, recip_shape)
                recip_read = recip_rom.read_port(transparent_for=())
                m.d.comb += recip_read.addr.eq(s9_mantissa)
                recip_word, param_valid, param_bank, param_p = recip_read.data, s10_valid, s10_bank, s10_p
            # Row parameters: R[j] and the right shift minus one, t - 1 = p + recip_width - out_width - 1.
            shift_shape = unsigned((cfg.p_max + cfg.recip_width - cfg.out_width - 1).bit_length())
            row_recip = rows.params(recip_shape, "row_recip")
            row_shift = rows.params(shift_shape, "row_shift")
            with m.If(param_valid):
                m.d.sync += [row_recip[param_bank].eq(recip_word),
                             row_shift[param_bank].eq(param_p + (cfg.recip_width - cfg.out_width - 1))]
        else:
            lp, lm = log_tables(cfg)
            lm_shape = signed(max(int(v).bit_length() for v in lm.tolist()) + 1)
            if ecp5:
                log_word = Signal(lm_shape)
                dp16kd_rom(m, "log_rom", [int(v) & ((1 << lm_shape.width) - 1) for v in lm.tolist()],
                           lm_shape.width, s9_mantissa, log_word)
                s12_lm = Signal(lm_shape)
                m.d.sync += s12_lm.eq(log_word)
            else:
                m.submodules.log_rom = log_rom = _rom(lm, lm_shape)
                log_read = log_rom.read_port(transparent_for=())
                m.d.comb += log_read.addr.eq(s9_mantissa)
            lp_values = Array(Const(int(v), signed(max(abs(int(v)) for v in lp.tolist()).bit_length() + 1))
                              for v in lp.tolist())
            log_shape = unsigned(max(cfg.log_max, 1).bit_length())
            row_log = rows.params(log_shape, "row_log")
            low, high = int(lp.min()) + int(lm.min()), int(lp.max()) + int(lm.max())
            # Lp[p] is selected a stage early, beside the Lm ROM's read, so that s10 is one add and a
            # sign test (the iCE40 critical path had been the Lp multiplexer, the add and the clamp).
            s10_lp = Signal(lp_values[0].shape())
            m.d.sync += s10_lp.eq(lp_values[s9_p - cfg.p_min])
            log_sum = Signal(signed(max(abs(low), abs(high)).bit_length() + 2))
            if ecp5:
                param_valid, param_bank, param_lp = delayed([s10_valid, s10_bank, s10_lp], 2, "r")
                m.d.comb += log_sum.eq(param_lp + s12_lm)
            else:
                param_valid, param_bank = s10_valid, s10_bank
                m.d.comb += log_sum.eq(s10_lp + log_read.data)
            with m.If(param_valid):
                m.d.sync += row_log[param_bank].eq(Mux(log_sum < 0, 0, log_sum))
        m.d.comb += rows.publish.eq(param_valid)

        # -- output pass: stalls as a whole while o.ready is low ---------------------------------------
        # c1: the buffer word; c2: registered (out.x), d = max - x, clamped to the ROM index (c3);
        # c4: the ROM word (memory="ecp5": c5, from the ROM's output register, masked scores reading 0).
        word_stage = 4 + self._rom_delay
        params = [row_recip, row_shift] if cfg.method == "recip" else [row_log]
        out = rows.output_pass(self.o, params, depth=(7 if cfg.method == "recip" else 4) + self._rom_delay)
        stalled, stages = out.stalled, out.values
        c3_masked, c4_masked = Signal(), Signal()
        if ecp5:
            stalled((c3_masked, cfg.mask_min & (out.x == min_code)))
        else:
            stalled((c3_masked, cfg.mask_min & (out.x == min_code)), (c4_masked, c3_masked))
        if cfg.method == "recip":
            if not ecp5:
                exp_out_read = exp_rom.read_port(transparent_for=())
            c2_d = Signal(d_shape)
            m.d.comb += c2_d.eq(stages[2][0] - out.x)
            c3_index = Signal(range(len(exp)))
            stalled((c3_index, c2_d if padded else Mux(c2_d >= len(exp) - 1, len(exp) - 1, c2_d)))
            if ecp5:
                exp_out_word = Signal(exp_shape)
                dp16kd_rom(m, "exp_out_rom", _masked_rom(exp, len(c3_index)), exp_shape.width,
                           Cat(c3_index, c3_masked), exp_out_word, en=out.advance)
            else:
                m.d.comb += [exp_out_read.addr.eq(c3_index), exp_out_read.en.eq(out.advance)]
                exp_out_word = Mux(c4_masked, 0, exp_out_read.data)
            # c5: E[d] registered (masked scores read 0); c6: the product E[d] * R; c7: shifted right by
            # t - 1; output: rounded (+1 >> 1), clamped. multiplier="ecp5": the MULT18X18D's input
            # registers stand for c5's and its output register for c6's.
            product = Signal(exp_shape.width + recip_shape.width)
            if cfg.multiplier == "ecp5":
                mult18x18d(m, "product_dsp", exp_out_word, stages[word_stage][1], product, signed=(False, False),
                           ce=out.advance)
            else:
                c5_e = Signal(exp_shape, name=f"c{word_stage + 1}_e")
                stalled((c5_e, exp_out_word))
                stalled((product, c5_e * stages[word_stage + 1][1]))
            halved = Signal(len(product))
            stalled((halved, product >> stages[word_stage + 2][2]))
            # round(halved / 2) > out_max exactly when halved >= 2 out_max + 1: the saturation test is a
            # compare with a constant beside an (out_width + 1)-bit rounding add, not after a full-width one.
            saturated = Signal()
            m.d.comb += saturated.eq(halved >= 2 * cfg.out_max + 1)
            rounded = Signal(cfg.out_width + 1)
            m.d.comb += rounded.eq((halved[:cfg.out_width + 1] + 1) >> 1)
            stalled((self.o.valid, out.valid[word_stage + 3]),
                    (out.data(self.o), Mux(saturated, cfg.out_max, rounded)), *out.ends(self.o, word_stage + 3))
        else:
            table = out_table(cfg)
            if not ecp5:
                m.submodules.out_rom = out_rom = _rom(table, unsigned(cfg.out_width))
                out_rom_read = out_rom.read_port(transparent_for=())
            # k = ((max - x) << G) + L, clamped to the table. The row's part, (max << G) + L, and the same
            # less the clamp threshold are added a stage early (c1 -> c2, from the carried maximum and
            # L), so that c2 is two subtractions of x << G side by side and a multiplexer, not a
            # subtraction, an add and a compare in a row (the ECP5 and iCE40 critical path).
            top = len(table) - 1
            wide = signed(cfg.in_width + cfg.log_frac_bits + log_shape.width + 2)
            row_k, row_over = Signal(wide), Signal(wide)
            stalled((row_k, (stages[1][0] << cfg.log_frac_bits) + stages[1][1]),
                    (row_over, (stages[1][0] << cfg.log_frac_bits) + stages[1][1] - top))
            k, over = Signal(wide), Signal(wide)
            m.d.comb += [k.eq(row_k - (out.x << cfg.log_frac_bits)),
                         over.eq(row_over - (out.x << cfg.log_frac_bits))]
            c3_index = Signal(range(len(table)))
            stalled((c3_index, Mux(over >= 0, top, k)))
            if ecp5:
                out_word = Signal(cfg.out_width)
                dp16kd_rom(m, "out_rom", _masked_rom(table, len(c3_index)), cfg.out_width,
                           Cat(c3_index, c3_masked), out_word, en=out.advance)
            else:
                m.d.comb += [out_rom_read.addr.eq(c3_index), out_rom_read.en.eq(out.advance)]
                out_word = Mux(c4_masked, 0, out_rom_read.data)
            stalled((self.o.valid, out.valid[word_stage]), (out.data(self.o), out_word),
                    *out.ends(self.o, word_stage))
        return m
