"""LNS-Madam dot-product unit: ``lanes`` LNS products per cycle, ``gamma`` partial sums, ``gamma``
constant multiplies per output.

Computes :func:`qarith.golden.lns_dot.lns_dot` (the equations and rounding rules are stated there).

Input: one beat per ``lanes`` element pairs, ``a`` and ``b`` (LNS word bit patterns) and ``last`` on a
vector's final beat (a vector of K elements is ``ceil(K / lanes)`` beats, padded with zero words).
Output: one signed ``out_width``-bit code per vector.

Six stages, all registered, the whole pipeline stalling while ``o.ready`` is low (``i.ready`` is
``~o.valid | o.ready``):

1. ``decode``: per lane the exponent sum ``e`` (one bit wider than an exponent, no saturation), the sign
   XOR, the remainder ``r`` (the low ``b`` bits of ``e``), the shift ``q + acc_frac_bits`` (``q = e >> b``)
   and whether the term is kept (both words nonzero, shift not negative);
2. ``increment``: per remainder, the sum of the lanes' terms ``+-(1 << shift)`` whose ``r`` matches (a
   decoder and a mask per lane, no multiplier);
3. ``accumulate``: ``P[r] += increment[r]``; on a vector's last beat the final ``P[r]`` goes to a drain
   register and ``P[r]`` restarts from zero, so vectors follow each other without a bubble;
4. ``scale``: ``P[r] * T[r]``, each a constant multiply written as shifts and adds (the canonical
   signed-digit form of ``T[r]``): ``gamma`` multiplies per output, none per element;
5. ``sum`` of the ``gamma`` products;
6. ``round`` half up and saturate into the output register.

Latency 6 cycles from a vector's last beat to its output; one beat (``lanes`` products) per cycle, for
any vector length (a one-beat vector included).

With ``accumulate="linear"`` stages 2 on are replaced: each lane converts its product to the linear
domain on its own (``T[r]`` from a ``gamma``-entry table, shifted left by ``q + acc_frac_bits``:
LNS-Madam's quotient-shift and remainder-table conversion, done per product instead of per partial
sum), the sign is applied, an adder tree sums the lanes (one level per stage) and one accumulator holds
``S``; the same integer ``S`` as the partial sums give, at a latency of ``5 + ceil(log2(lanes))``.
For a few lanes this is far smaller: ``lanes`` shifters instead of ``gamma`` full-width partial sums,
their per-remainder adders and ``gamma`` constant multipliers.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.lns_dot import LnsDotConfig
from .common.component import BlockComponent
from .common.lns import word_fields

__all__ = ["LnsDot", "beat_layout", "signed_digits"]


def beat_layout(cfg):
    """One input beat: ``lanes`` words of each operand and the vector's ``last`` flag."""
    word = unsigned(cfg.width)
    return data.StructLayout({"a": data.ArrayLayout(word, cfg.lanes), "b": data.ArrayLayout(word, cfg.lanes),
                              "last": 1})


def signed_digits(constant):
    """The non-adjacent form of a positive integer: ``(position, +-1)`` pairs whose sum of
    ``digit << position`` is ``constant``, with no two nonzero digits adjacent (fewest adders)."""
    digits, position = [], 0
    while constant:
        if constant & 1:
            digit = 2 - (constant & 3)
            digits.append((position, digit))
            constant -= digit
        constant >>= 1
        position += 1
    return digits


def constant_multiply(value, constant):
    """``value * constant`` for a positive constant, as shifted adds and subtracts of ``value``."""
    total = 0
    for position, digit in signed_digits(constant):
        total = total + (value << position) if digit > 0 else total - (value << position)
    return total


class LnsDot(BlockComponent):
    """Streaming LNS-Madam dot products.

    Parameters
    ----------
    cfg : LnsDotConfig

    Members
    -------
    i : In(stream.Signature(beat_layout(cfg)))
    o : Out(stream.Signature(signed(out_width)))
    """

    config_class = LnsDotConfig

    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(beat_layout(cfg))),
            "o": Out(stream.Signature(signed(cfg.out_width))),
        })

    @property
    def latency(self):
        """Cycles from a vector's last beat to its output: 6, or with ``accumulate="linear"`` 5 plus
        the adder tree's ``ceil(log2(lanes))`` levels."""
        if self.cfg.accumulate == "linear":
            return 5 + (self.cfg.lanes - 1).bit_length()
        return 6

    @property
    def throughput(self):
        """Products per cycle."""
        return self.cfg.lanes

    @property
    def macs(self):
        """LNS multiply-accumulates per cycle (for area-per-MAC comparisons)."""
        return self.cfg.macs

    @property
    def table_bytes(self):
        return self.cfg.table_bytes

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        gamma, b = cfg.gamma, cfg.frac_bits
        exp_bits = cfg.exp_width
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        def stage(*pairs):
            with m.If(advance):
                m.d.sync += [target.eq(value) for target, value in pairs]

        # 1. decode
        beat = self.i.payload
        valid1, last1 = Signal(), Signal()
        stage((valid1, self.i.valid), (last1, beat.last))
        lanes = []
        for lane in range(cfg.lanes):
            word_a, word_b = beat.a[lane], beat.b[lane]
            sign_a, exp_a, zero_a = word_fields(cfg, word_a)
            sign_b, exp_b, zero_b = word_fields(cfg, word_b)
            zero = zero_a | zero_b
            e = Signal(signed(exp_bits + 1), name=f"e{lane}")
            shift = Signal(range(cfg.q_min + cfg.acc_frac_bits, cfg.q_max(0) + cfg.acc_frac_bits + 1),
                           name=f"shift_signed{lane}")
            m.d.comb += [e.eq(exp_a + exp_b),
                         shift.eq((e >> b) + cfg.acc_frac_bits)]
            keep = Signal(name=f"keep{lane}")
            sign = Signal(name=f"sign{lane}")
            amount = Signal(unsigned(cfg.shift_width), name=f"shift{lane}")
            remainder = Signal(unsigned(b), name=f"r{lane}")
            stage((keep, ~zero & (shift >= 0)), (sign, sign_a ^ sign_b),
                  (amount, shift[:cfg.shift_width]), (remainder, e[:b]))
            lanes.append((keep, sign, amount, remainder))

        if cfg.accumulate == "linear":
            self._linear(m, stage, advance, lanes, valid1, last1)
            return m

        # 2. increment: the terms of each remainder in this beat
        valid2, last2 = Signal(), Signal()
        stage((valid2, valid1), (last2, last1))
        terms = []
        for lane, (keep, sign, amount, remainder) in enumerate(lanes):
            magnitude = Signal(unsigned(cfg.q_max(0) + cfg.acc_frac_bits + 1), name=f"magnitude{lane}")
            m.d.comb += magnitude.eq(1 << amount)
            terms.append((keep, remainder, Mux(sign, -magnitude, magnitude)))
        increments = []
        for r in range(gamma):
            increment = Signal(signed(cfg.inc_widths[r]), name=f"inc{r}")
            selected = [Mux(keep & (remainder == r) if b else keep, term, 0) for keep, remainder, term in terms]
            stage((increment, sum(selected)))
            increments.append(increment)

        # 3. accumulate, and drain on a vector's last beat
        valid3 = Signal()
        stage((valid3, valid2 & last2))
        drains = []
        for r in range(gamma):
            partial = Signal(signed(cfg.acc_widths[r]), name=f"partial{r}")
            drain = Signal(signed(cfg.acc_widths[r]), name=f"drain{r}")
            total = partial + increments[r]
            with m.If(advance & valid2):
                m.d.sync += partial.eq(Mux(last2, 0, total))
            with m.If(advance & valid2 & last2):
                m.d.sync += drain.eq(total)
            drains.append(drain)

        # 4. scale: one constant multiply per remainder
        valid4 = Signal()
        stage((valid4, valid3))
        products = []
        for r, (drain, constant) in enumerate(zip(drains, cfg.table)):
            product = Signal(signed(cfg.acc_widths[r] + constant.bit_length()), name=f"scaled{r}")
            stage((product, constant_multiply(drain, constant)))
            products.append(product)

        # 5. sum
        valid5 = Signal()
        total = Signal(signed(cfg.sum_width))
        stage((valid5, valid4), (total, sum(products)))

        # 6. round half up, saturate
        stage((self.o.valid, valid5), (self.o.payload, self._round(total)))
        return m

    def _round(self, total, half_added=False):
        """The output code of a sum ``S`` (of ``S`` plus half an output step if ``half_added``):
        rounded half up, saturated."""
        cfg = self.cfg
        if cfg.out_shift > 0:
            rounded = (total if half_added else total + (1 << (cfg.out_shift - 1))) >> cfg.out_shift
        else:
            rounded = total << -cfg.out_shift
        return Mux(rounded > cfg.out_max, cfg.out_max, Mux(rounded < cfg.out_min, cfg.out_min, rounded))

    def _linear(self, m, stage, advance, lanes, valid, last):
        """Stages 2 on of ``accumulate="linear"``: per lane ``+-(T[r] << (q + F))``, an adder tree over
        the lanes (one level per stage), one accumulator of ``sum_width + 1`` bits (``S`` plus the
        rounding half), round."""
        cfg = self.cfg
        magnitude_width = cfg.term_product_bound.bit_length()

        # 2. convert: the remainder picks its constant, the shift places it.
        valid2, last2 = Signal(), Signal()
        stage((valid2, valid), (last2, last))
        constant_width = max(cfg.table).bit_length()
        table = Cat(Const(constant, constant_width) for constant in cfg.table)
        converted = []
        for lane, (keep, sign, amount, remainder) in enumerate(lanes):
            constant = table.word_select(remainder, constant_width) if cfg.frac_bits else table
            magnitude = Signal(unsigned(magnitude_width), name=f"converted{lane}")
            negative = Signal(name=f"negative{lane}")
            stage((magnitude, Mux(keep, constant << amount, 0)), (negative, sign))
            converted.append((magnitude, negative))

        # 3. sign
        valid3, last3 = Signal(), Signal()
        stage((valid3, valid2), (last3, last2))
        values = []
        for lane, (magnitude, negative) in enumerate(converted):
            value = Signal(signed(magnitude_width + 1), name=f"term{lane}")
            stage((value, Mux(negative, -magnitude, magnitude)))
            values.append(value)

        # 4. adder tree, pairs per stage
        level = 0
        while len(values) > 1:
            level += 1
            valid_next, last_next = Signal(name=f"valid_sum{level}"), Signal(name=f"last_sum{level}")
            stage((valid_next, valid3), (last_next, last3))
            valid3, last3 = valid_next, last_next
            pairs = []
            for n in range(0, len(values), 2):
                pair = values[n:n + 2]
                value = Signal(signed(len(pair[0]) + 1), name=f"sum{level}_{n // 2}")
                stage((value, sum(pair)))
                pairs.append(value)
            values = pairs

        # 5. accumulate; on a vector's last beat the sum goes to the drain register. The accumulator
        # starts from half an output step, so the drain holds S + 1/2 and rounding is a plain shift
        # (the rounding adder would otherwise sit in series with the saturation compares).
        half = 1 << (cfg.out_shift - 1) if cfg.out_shift > 0 else 0
        valid_drain = Signal()
        stage((valid_drain, valid3 & last3))
        partial = Signal(signed(cfg.sum_width + 1), name="partial", init=half)
        drain = Signal(signed(cfg.sum_width + 1), name="drain")
        total = partial + values[0]
        with m.If(advance & valid3):
            m.d.sync += partial.eq(Mux(last3, half, total))
        with m.If(advance & valid3 & last3):
            m.d.sync += drain.eq(total)

        # 6. round half up (the shift), saturate
        stage((self.o.valid, valid_drain), (self.o.payload, self._round(drain, half_added=True)))
