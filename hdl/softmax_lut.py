"""Streaming softmax from small lookup tables (Vasyltsov & Chang, arXiv 2111.10770).

Computes :func:`qarith.golden.softmax_lut.softmax_lut` on rows of ``n`` input codes that arrive one
element per cycle and leave one element per cycle. Every table (exp, reciprocal or logarithm, output
exp) is read from :mod:`qarith.golden.softmax_lut`, so the ROMs and the model cannot drift apart.

A row passes three stages, each holding one row at a time, so three rows are in flight:

``ingest``
    writes the row into a bank of the row buffer and keeps its running maximum;
``sum``
    reads the row back, looks up ``e = E[max - x]`` and accumulates the sum; then normalises the sum
    (leading-one position ``p`` and mantissa ``j``) and reads ``R[j]`` (``"recip"``) or
    ``Lp[p] + Lm[j]`` (``"log"``) into the row's parameters;
``output``
    reads the row a second time and computes each probability: ``(E[d] * R >> (p + ...))`` with one
    multiplier and a barrel shifter, or ``O[(d << G) + L]`` with no multiplier.

The buffer has ``banks`` banks of ``2**ceil(log2 n)`` words (one write port, two read ports); a bank is
freed when the output stage has read the row's last element, so a new row streams in while earlier
rows are summed and drained and, in steady state, the block takes and gives one element per cycle.
The ingest and sum stages never wait for the output; the output stage stalls as a whole while
``o.ready`` is low, and the input then stops once every bank is taken, so backpressure loses nothing.

``latency`` is the number of cycles from accepting a row's last element to the row's first output
(with nothing else in flight): ``n`` cycles of the sum stage plus the pipeline depths. Throughput is
one element per cycle.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.softmax_lut import SoftmaxLutConfig, exp_table, log_tables, out_table, recip_table

__all__ = ["SoftmaxLut"]

#: Cycles from the sum stage's last read to its parameters being visible to the output stage: buffer
#: word, exp word and accumulate, normalise, table word, parameters written.
SUM_TAIL = 5


def _rom(table, shape):
    return Memory(shape=shape, depth=len(table), init=[int(v) for v in table])


class SoftmaxLut(wiring.Component):
    """Streaming LUT softmax over rows of ``cfg.n`` elements.

    Parameters
    ----------
    cfg : SoftmaxLutConfig

    Members
    -------
    i : In(stream.Signature(signed(in_width)))
        Score codes, row after row, ``n`` beats per row.
    o : Out(stream.Signature(unsigned(out_width)))
        Probability codes (step ``2**-out_width``), in input order.
    """

    throughput = 1  # elements per cycle, in steady state
    sim_sources = []

    def __init__(self, cfg):
        if not isinstance(cfg, SoftmaxLutConfig):
            self._MustUse__silence = True  # never constructed, so never to be elaborated
            raise TypeError(f"Configuration must be a SoftmaxLutConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(signed(cfg.in_width))),
            "o": Out(stream.Signature(unsigned(cfg.out_width))),
        })

    @property
    def banks(self):
        """Row-buffer banks: enough for one row in each stage plus the sum stage's tail."""
        banks = 4
        while (banks - 3) * self.cfg.n < SUM_TAIL + 1:
            banks *= 2
        return banks

    @property
    def latency(self):
        # n reads (the first in the cycle after the last element), the sum tail (the parameters are
        # visible to the output stage in the cycle after it), then the output pipeline: buffer word,
        # ROM index, ROM word, [product,] output register.
        return self.cfg.n + SUM_TAIL + (5 if self.cfg.method == "recip" else 4)

    @property
    def table_bytes(self):
        return self.cfg.table_bytes

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        banks = self.banks
        bank_bits = banks.bit_length() - 1
        index_bits = (cfg.n - 1).bit_length()
        count_shape = unsigned(bank_bits + 1)          # row counters, modulo 2 * banks
        x_shape = signed(cfg.in_width)
        min_code = -(1 << (cfg.in_width - 1))
        d_shape = unsigned(cfg.in_width)

        m.submodules.buffer = buffer = Memory(shape=x_shape, depth=banks << index_bits, init=[])
        write = buffer.write_port()
        sum_read = buffer.read_port(transparent_for=())
        out_read = buffer.read_port(transparent_for=())

        exp = exp_table(cfg)
        exp_shape = unsigned(int(exp.max()).bit_length())
        m.submodules.exp_rom = exp_rom = _rom(exp, exp_shape)
        exp_sum_read = exp_rom.read_port(transparent_for=())

        rows_in = Signal(count_shape)         # rows completely written
        rows_summed = Signal(count_shape)     # rows whose sum-stage reads were issued
        rows_ready = Signal(count_shape)      # rows whose parameters are published
        rows_out = Signal(count_shape)        # rows whose output-stage reads were issued (banks freed)
        row_max = Array(Signal(x_shape, name=f"row_max_{b}") for b in range(banks))

        # -- ingest ----------------------------------------------------------------------------------
        in_index = Signal(range(cfg.n))
        running_max = Signal(x_shape)
        new_max = Signal(x_shape)
        full = Signal()
        m.d.comb += [
            full.eq((rows_in - rows_out)[:bank_bits + 1] == banks),
            self.i.ready.eq(~full),
            new_max.eq(Mux((in_index == 0) | (self.i.payload > running_max), self.i.payload, running_max)),
            write.addr.eq(Cat(in_index, rows_in[:bank_bits])),
            write.data.eq(self.i.payload),
            write.en.eq(self.i.valid & self.i.ready),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += running_max.eq(new_max)
            with m.If(in_index == cfg.n - 1):
                m.d.sync += [in_index.eq(0), rows_in.eq(rows_in + 1), row_max[rows_in[:bank_bits]].eq(new_max)]
            with m.Else():
                m.d.sync += in_index.eq(in_index + 1)

        # -- sum stage: free-running pipeline -----------------------------------------------------
        sum_index = Signal(range(cfg.n))
        issue = Signal()
        m.d.comb += [
            issue.eq(rows_summed != rows_in),
            sum_read.addr.eq(Cat(sum_index, rows_summed[:bank_bits])),
        ]
        with m.If(issue):
            with m.If(sum_index == cfg.n - 1):
                m.d.sync += [sum_index.eq(0), rows_summed.eq(rows_summed + 1)]
            with m.Else():
                m.d.sync += sum_index.eq(sum_index + 1)

        def flags(suffix):
            return (Signal(name=f"valid_{suffix}"), Signal(name=f"first_{suffix}"), Signal(name=f"last_{suffix}"),
                    Signal(bank_bits, name=f"bank_{suffix}"))

        # s1: the buffer word is on sum_read.data
        v1, f1, l1, b1 = flags("s1")
        m.d.sync += [v1.eq(issue), f1.eq(sum_index == 0), l1.eq(sum_index == cfg.n - 1),
                     b1.eq(rows_summed[:bank_bits])]
        # s2: e on the exp ROM's data (its address was d = max - x, clamped); accumulate
        v2, f2, l2, b2 = flags("s2")
        d1 = Signal(d_shape)
        masked2 = Signal()
        m.d.comb += [
            d1.eq(row_max[b1] - sum_read.data),
            exp_sum_read.addr.eq(Mux(d1 >= len(exp) - 1, len(exp) - 1, d1)),
        ]
        m.d.sync += [v2.eq(v1), f2.eq(f1), l2.eq(l1), b2.eq(b1),
                     masked2.eq(cfg.mask_min & (sum_read.data == min_code))]
        accumulator = Signal(cfg.sum_width)
        e2 = Signal(exp_shape)
        added = Signal(cfg.sum_width)
        m.d.comb += [
            e2.eq(Mux(masked2, 0, exp_sum_read.data)),
            added.eq(Mux(f2, 0, accumulator) + e2),
        ]
        # s3: the finished row sum; normalise it: leading-one position p and the norm_bits bits after it
        total = Signal(cfg.sum_width)
        v3 = Signal()
        b3 = Signal(bank_bits)
        m.d.sync += [v3.eq(v2 & l2), b3.eq(b2)]
        with m.If(v2):
            m.d.sync += accumulator.eq(added)
            with m.If(l2):
                m.d.sync += total.eq(added)
        r = cfg.norm_bits
        clamped = Signal(cfg.sum_width)
        lead = Signal(range(cfg.p_max + 1))
        m.d.comb += clamped.eq(Mux(total < (1 << cfg.p_min), 1 << cfg.p_min, total))
        with m.Switch(clamped):                       # the first matching case wins: highest one first
            for bit in reversed(range(cfg.p_min, cfg.p_max + 1)):
                with m.Case("-" * (cfg.sum_width - 1 - bit) + "1" + "-" * bit):
                    m.d.comb += lead.eq(bit)
        mantissa = Signal(r)
        m.d.comb += mantissa.eq((Cat(Const(0, r), clamped) >> lead)[:r])
        # s4: the table word(s) of the mantissa; the row's parameters are written
        v4 = Signal()
        b4 = Signal(bank_bits)
        p4 = Signal(range(cfg.p_max + 1))
        m.d.sync += [v4.eq(v3), b4.eq(b3), p4.eq(lead)]
        if cfg.method == "recip":
            recip = recip_table(cfg)
            recip_shape = unsigned(int(recip.max()).bit_length())
            m.submodules.recip_rom = recip_rom = _rom(recip, recip_shape)
            recip_read = recip_rom.read_port(transparent_for=())
            m.d.comb += recip_read.addr.eq(mantissa)
            # Row parameters: R[j] and the right shift minus one, t - 1 = p + recip_width - out_width - 1.
            shift_shape = unsigned((cfg.p_max + cfg.recip_width - cfg.out_width - 1).bit_length())
            row_recip = Array(Signal(recip_shape, name=f"row_recip_{b}") for b in range(banks))
            row_shift = Array(Signal(shift_shape, name=f"row_shift_{b}") for b in range(banks))
            with m.If(v4):
                m.d.sync += [row_recip[b4].eq(recip_read.data),
                             row_shift[b4].eq(p4 + (cfg.recip_width - cfg.out_width - 1))]
        else:
            lp, lm = log_tables(cfg)
            lm_shape = signed(max(int(v).bit_length() for v in lm.tolist()) + 1)
            m.submodules.log_rom = log_rom = _rom(lm, lm_shape)
            log_read = log_rom.read_port(transparent_for=())
            m.d.comb += log_read.addr.eq(mantissa)
            lp_values = Array(Const(int(v), signed(max(abs(int(v)) for v in lp.tolist()).bit_length() + 1))
                              for v in lp.tolist())
            log_shape = unsigned(max(cfg.log_max, 1).bit_length())
            row_log = Array(Signal(log_shape, name=f"row_log_{b}") for b in range(banks))
            low, high = int(lp.min()) + int(lm.min()), int(lp.max()) + int(lm.max())
            log_sum = Signal(signed(max(abs(low), abs(high)).bit_length() + 2))
            m.d.comb += log_sum.eq(lp_values[p4 - cfg.p_min] + log_read.data)
            with m.If(v4):
                m.d.sync += row_log[b4].eq(Mux(log_sum < 0, 0, log_sum))
        with m.If(v4):
            m.d.sync += rows_ready.eq(rows_ready + 1)

        # -- output stage: a pipeline that stalls as a whole while o.ready is low -------------------
        advance = Signal()
        out_index = Signal(range(cfg.n))
        out_issue = Signal()
        bank_out = rows_out[:bank_bits]
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            out_issue.eq(advance & (rows_out != rows_ready)),
            out_read.addr.eq(Cat(out_index, bank_out)),
            out_read.en.eq(advance),
        ]
        with m.If(out_issue):
            with m.If(out_index == cfg.n - 1):
                m.d.sync += [out_index.eq(0), rows_out.eq(rows_out + 1)]
            with m.Else():
                m.d.sync += out_index.eq(out_index + 1)

        # c1: the buffer word is on out_read.data; the row's parameters travel with each element
        # (the bank may be refilled, and its parameters replaced, before the element leaves).
        c1_valid = Signal()
        c1_max = Signal(x_shape)
        with m.If(advance):
            m.d.sync += [c1_valid.eq(out_issue), c1_max.eq(row_max[bank_out])]
        c1_d = Signal(d_shape)
        m.d.comb += c1_d.eq(c1_max - out_read.data)
        c2_valid, c2_masked = Signal(), Signal()
        with m.If(advance):
            m.d.sync += [c2_valid.eq(c1_valid), c2_masked.eq(cfg.mask_min & (out_read.data == min_code))]
        c3_valid, c3_masked = Signal(), Signal()
        with m.If(advance):
            m.d.sync += [c3_valid.eq(c2_valid), c3_masked.eq(c2_masked)]

        if cfg.method == "recip":
            c1_recip, c2_recip, c3_recip = (Signal(recip_shape, name=f"c{k}_recip") for k in (1, 2, 3))
            c1_shift, c2_shift, c3_shift, c4_shift = (Signal(shift_shape, name=f"c{k}_shift") for k in (1, 2, 3, 4))
            exp_out_read = exp_rom.read_port(transparent_for=())
            m.d.comb += exp_out_read.en.eq(advance)
            with m.If(advance):
                m.d.sync += [c1_recip.eq(row_recip[bank_out]), c1_shift.eq(row_shift[bank_out]),
                             c2_recip.eq(c1_recip), c2_shift.eq(c1_shift),
                             c3_recip.eq(c2_recip), c3_shift.eq(c2_shift)]
            # c2: exp index registered; c3: e on the ROM's data; c4: product; output: rounded shift.
            exp_index = Signal(range(len(exp)))
            with m.If(advance):
                m.d.sync += exp_index.eq(Mux(c1_d >= len(exp) - 1, len(exp) - 1, c1_d))
            m.d.comb += exp_out_read.addr.eq(exp_index)
            product = Signal(exp_shape.width + recip_shape.width)
            c4_valid, c4_masked = Signal(), Signal()
            with m.If(advance):
                m.d.sync += [c4_valid.eq(c3_valid), c4_masked.eq(c3_masked), c4_shift.eq(c3_shift),
                             product.eq(exp_out_read.data * c3_recip)]
            halved = Signal(len(product))
            rounded = Signal(len(product))
            m.d.comb += [
                halved.eq(product >> c4_shift),
                rounded.eq((halved + 1) >> 1),
            ]
            with m.If(advance):
                m.d.sync += [
                    self.o.valid.eq(c4_valid),
                    self.o.payload.eq(Mux(c4_masked, 0, Mux(rounded > cfg.out_max, cfg.out_max, rounded))),
                ]
        else:
            out = out_table(cfg)
            m.submodules.out_rom = out_rom = _rom(out, unsigned(cfg.out_width))
            out_rom_read = out_rom.read_port(transparent_for=())
            m.d.comb += out_rom_read.en.eq(advance)
            c1_log = Signal(log_shape)
            out_index_reg = Signal(range(len(out)))
            k = Signal(cfg.in_width + cfg.log_frac_bits + log_shape.width + 1)
            m.d.comb += k.eq((c1_d << cfg.log_frac_bits) + c1_log)
            with m.If(advance):
                m.d.sync += [c1_log.eq(row_log[bank_out]),
                             out_index_reg.eq(Mux(k >= len(out) - 1, len(out) - 1, k))]
            m.d.comb += out_rom_read.addr.eq(out_index_reg)
            with m.If(advance):
                m.d.sync += [self.o.valid.eq(c3_valid),
                             self.o.payload.eq(Mux(c3_masked, 0, out_rom_read.data))]
        return m
