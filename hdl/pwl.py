"""Piecewise-linear function unit: comparators, one table read, one multiply-add, round, clamp.

Computes :func:`qarith.golden.pwl.pwl` (NN-LUT, Yu et al., DAC 2022; iRNN, Sari et al., 2022). The
breakpoints, slopes and intercepts are :func:`qarith.golden.pwl.pwl_tables`, so the Verilog and the golden
model read one table. Formats and rounding are those of :mod:`qarith.golden.pwl`.

Pipeline, one register stage per line, every register enabled by ``~o.valid | o.ready`` (a stalled
output holds the whole pipeline, so backpressure loses and duplicates nothing):

1. range reduction (reciprocal and rsqrt only): leading-one detector on the unsigned input, normalising
   left shift, mantissa doubling for an odd rsqrt exponent -> table code ``v``, exponent shift ``e``,
   zero flag;
2. segment search: ``entries - 1`` parallel comparators ``v >= breakpoint`` form a thermometer code; its
   1-to-0 edge (one-hot) is OR-encoded into the segment index;
3. table read: (slope, intercept) from a ROM indexed by the segment (synchronous read port);
4. multiply-add ``acc = slope * v + intercept``;
5. (reciprocal and rsqrt only) arithmetic shift right by the variable ``S + e - 1``;
6. round half up at ``2**-(S + e)`` (add one to ``acc >> (S + e - 1)``, shift by one; the first shift is
   the constant ``S - 1`` for the direct functions) and clamp to the output range.

Latency 4 cycles for the direct functions, 6 for the range-reduced ones; one element per cycle.
"""

from functools import reduce
from operator import or_

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.pwl import PwlConfig, pwl_tables
from .common.component import BlockComponent

__all__ = ["Pwl"]


class Pwl(BlockComponent):
    """Streaming ``f(x)`` by a piecewise-linear table.

    Parameters
    ----------
    cfg : PwlConfig

    Members
    -------
    i : In(stream.Signature(in_shape))
    o : Out(stream.Signature(out_shape))
    """

    config_class = PwlConfig

    throughput = 1  # elements per cycle
    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        in_shape = signed(cfg.in_width) if cfg.in_signed else unsigned(cfg.in_width)
        out_shape = signed(cfg.out_width) if cfg.out_signed else unsigned(cfg.out_width)
        super().__init__({
            "i": In(stream.Signature(in_shape)),
            "o": Out(stream.Signature(out_shape)),
        })

    @property
    def latency(self):
        """Cycles from an accepted input to its output being valid (no stalls)."""
        return 6 if self.cfg.range_reduced else 4

    @property
    def table_bytes(self):
        """Bytes of breakpoint, slope and intercept storage."""
        return pwl_tables(self.cfg).table_bytes

    def _reduce(self, m, q):
        """Range reduction of the unsigned input ``q``: (table code, exponent shift, zero) signals,
        combinational."""
        cfg = self.cfg
        top = cfg.in_width - 1
        position = Signal(range(cfg.in_width))
        for bit in range(cfg.in_width):
            with m.If(q[bit]):  # the last assignment wins: the highest set bit
                m.d.comb += position.eq(bit)
        leading_zeros = Signal(range(cfg.in_width))
        normalised = Signal(cfg.in_width)
        m.d.comb += [leading_zeros.eq(top - position), normalised.eq(q << leading_zeros)]
        width, _ = cfg.table_code_shape
        code = Signal(width)
        exponent = Signal(range(cfg.in_width))
        if cfg.function == "reciprocal":
            m.d.comb += [code.eq(normalised[:top]), exponent.eq(position)]
        else:
            # An odd exponent p - in_frac_bits doubles the mantissa, into [2, 4).
            odd = (position + (cfg.in_frac_bits & 1))[0]
            m.d.comb += [
                code.eq(Mux(odd, normalised << 1, normalised) - (1 << top)),
                exponent.eq((position + (cfg.in_frac_bits & 1)) >> 1),
            ]
        return code, exponent, q == 0

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        tables = pwl_tables(cfg)
        width, is_signed = cfg.table_code_shape
        code_shape = signed(width) if is_signed else unsigned(width)
        exponent_shape = unsigned(max(1, (cfg.in_width - 1).bit_length()))
        entries = cfg.entries

        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        # Stage 1 (range-reduced functions only): table code, exponent, zero flag.
        if cfg.range_reduced:
            code, exponent, zero = self._reduce(m, self.i.payload)
            reduced_valid = Signal()
            reduced_code = Signal(code_shape)
            reduced_exponent = Signal(exponent_shape)
            reduced_zero = Signal()
            with m.If(advance):
                m.d.sync += [reduced_valid.eq(self.i.valid), reduced_code.eq(code),
                             reduced_exponent.eq(exponent), reduced_zero.eq(zero)]
            search_in = (reduced_valid, reduced_code, reduced_exponent, reduced_zero)
        else:
            search_in = (self.i.valid, self.i.payload, Const(0, exponent_shape), Const(0, 1))

        # Stage 2: thermometer code of the comparators -> segment index.
        valid, code, exponent, zero = search_in
        above = [Const(1, 1), *(code >= breakpoint for breakpoint in tables.breakpoints), Const(0, 1)]
        segment_index = reduce(or_, [Mux(above[k] & ~above[k + 1], k, 0) for k in range(entries)])
        search_valid = Signal()
        segment = Signal(range(entries))
        search_code = Signal(code_shape)
        search_exponent = Signal(exponent_shape)
        search_zero = Signal()
        with m.If(advance):
            m.d.sync += [search_valid.eq(valid), segment.eq(segment_index), search_code.eq(code),
                         search_exponent.eq(exponent), search_zero.eq(zero)]

        # Stage 3: (slope, intercept) from the ROM; the read port's data register is the stage register.
        layout = data.StructLayout({"slope": signed(tables.slope_width),
                                    "intercept": signed(tables.intercept_width)})
        m.submodules.table = table = Memory(
            shape=layout, depth=entries,
            init=[{"slope": s, "intercept": c} for s, c in zip(tables.slopes, tables.intercepts)])
        read = table.read_port()
        m.d.comb += [read.en.eq(advance), read.addr.eq(segment)]
        read_valid = Signal()
        read_code = Signal(code_shape)
        read_exponent = Signal(exponent_shape)
        read_zero = Signal()
        with m.If(advance):
            m.d.sync += [read_valid.eq(search_valid), read_code.eq(search_code),
                         read_exponent.eq(search_exponent), read_zero.eq(search_zero)]

        # Stage 4: one multiply-add.
        product = read.data.slope * read_code + read.data.intercept
        acc = Signal(product.shape())
        mac_valid = Signal()
        mac_exponent = Signal(exponent_shape)
        mac_zero = Signal()
        with m.If(advance):
            m.d.sync += [mac_valid.eq(read_valid), acc.eq(product), mac_exponent.eq(read_exponent),
                         mac_zero.eq(read_zero)]

        # Stage 5 (range-reduced functions only): the exponent's variable shift, a stage of its own (on
        # iCE40 the shift, the increment and the clamp in one cycle were the longest path).
        shift = cfg.coef_frac_bits - 1
        if cfg.range_reduced:
            halved = Signal(signed(len(acc)))
            last_valid, last_zero = Signal(), Signal()
            with m.If(advance):
                m.d.sync += [halved.eq(acc >> (mac_exponent + shift)), last_valid.eq(mac_valid),
                             last_zero.eq(mac_zero)]
        else:
            halved, last_valid, last_zero = acc >> shift, mac_valid, mac_zero

        # Last stage: round half up at 2**-(S + e), clamp; x = 0 of a range-reduced function gives out_max.
        rounded = Signal(signed(len(halved) + 1))
        m.d.comb += rounded.eq((halved + 1) >> 1)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(last_valid)
            with m.If(last_zero | (rounded > cfg.out_max)):
                m.d.sync += self.o.payload.eq(cfg.out_max)
            with m.Elif(rounded < cfg.out_min):
                m.d.sync += self.o.payload.eq(cfg.out_min)
            with m.Else():
                m.d.sync += self.o.payload.eq(rounded)
        return m
