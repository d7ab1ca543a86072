"""Per-channel requantization unit (TFLite ``MultiplyByQuantizedMultiplier`` + offset + clamp).

Computes, for each lane of a beat, exactly :func:`qarith.golden.requant.requantize`:
bias add, Q31 multiply with signed shift (TFLite double or single rounding), output zero point and clamp.
Per-channel parameters (``bias``, ``multiplier``, ``shift``) travel with each lane's accumulator so one
unit serves any channel order; per-tensor ``output_offset``, ``act_min``, ``act_max`` are quasi-static
input ports.

Ten pipeline stages (bias add; left shift; four 16x16 partial products, one DSP multiplier each; middle
sum; full product; high word and saturation; right shift and remainder; rounding; output offset; clamp);
latency 10 cycles, one beat per cycle. With ``multiplier="ecp5"`` the partial products are MULT18X18D
instances whose input registers are stage 2 and output registers stage 3 (the same latency); with
``"ecp5_reg"`` the left shift is registered in fabric first and the DSPs' registers are stages 3 and 4,
so no shifter sits on the wires into the DSPs, and (double rounding) the rounding right shift takes two
stages, whole bytes then the rest: latency 12 (11 with single rounding, whose one-stage shift is
unchanged). The
pipeline stalls as a whole while ``o.ready`` is low, so backpressure never loses or duplicates a beat.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.requant import INT32_MAX, INT32_MIN, RequantConfig
from .common.component import BlockComponent
from .common.ecp5 import MULT18X18D_MODEL, mult18x18d

__all__ = ["Requant", "requant_lane_layout"]

SHIFT_WIDTH = 6


def requant_lane_layout(acc_width):
    """Payload of one input lane: the accumulator and its channel's parameters."""
    return data.StructLayout({
        "acc": signed(acc_width),
        "bias": signed(32),
        "multiplier": signed(32),
        "shift": signed(SHIFT_WIDTH),
    })


class Requant(BlockComponent):
    """Streaming requantizer, ``cfg.lanes`` elements per beat.

    Parameters
    ----------
    cfg : RequantConfig

    Members
    -------
    i : In(stream.Signature(ArrayLayout(requant_lane_layout(acc_width), lanes)))
    o : Out(stream.Signature(ArrayLayout(out_shape, lanes)))
    output_offset : In(signed(out_width + 1))
    act_min, act_max : In(out_shape)
    """

    config_class = RequantConfig

    throughput = 1  # beats per cycle

    @property
    def latency(self):
        # ecp5_reg: the left shift's register, and (double rounding) the rounding right shift's second
        # stage.
        if self.cfg.multiplier != "ecp5_reg":
            return 10
        return 11 if self.cfg.rounding == "single" else 12

    @property
    def sim_sources(self):
        """Simulation models the emitted Verilog needs (the ``ecp5`` multipliers' MULT18X18D)."""
        return [MULT18X18D_MODEL] if self.cfg.multiplier in ("ecp5", "ecp5_reg") else []

    def __init__(self, cfg):
        self.cfg = cfg
        out_shape = signed(cfg.out_width) if cfg.out_signed else unsigned(cfg.out_width)
        self.out_shape = out_shape
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(requant_lane_layout(cfg.acc_width), cfg.lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(out_shape, cfg.lanes))),
            "output_offset": In(signed(cfg.out_width + 1)),
            "act_min": In(out_shape),
            "act_max": In(out_shape),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        single = cfg.rounding == "single"
        ecp5 = cfg.multiplier in ("ecp5", "ecp5_reg")

        valid = Signal(self.latency)
        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
        ]
        with m.If(advance):
            m.d.sync += valid.eq(Cat(self.i.valid, valid[:-1]))

        for lane in range(cfg.lanes):
            inp = self.i.payload[lane]
            # Stage 1: int32 bias add (wraps), split the signed shift.
            biased = Signal(signed(32))
            multiplier1 = Signal(signed(32))
            left = Signal(range(32))
            right = Signal(range(64))
            # Stage 2: int32 left shift (wraps).
            shifted = Signal(signed(32))
            multiplier2 = Signal(signed(32))
            right2 = Signal.like(right)
            # Stage 3: four 17x17 partial products (one DSP multiplier each); stage 4: the two middle
            # ones summed; stage 5: the full product, low and high partial products side by side
            # plus the middle sum.
            low_low = Signal(32)
            high_high = Signal(signed(32))
            low_high = Signal(signed(33))
            high_low = Signal(signed(33))
            middle = Signal(signed(34))
            low_low4 = Signal.like(low_low)
            high_high4 = Signal.like(high_high)
            product = Signal(signed(64))
            right3, right4a, right4b = (Signal.like(right) for _ in range(3))
            both_min3, both_min4, both_min5 = Signal(), Signal(), Signal()
            # Stage 6: doubled high word (double rounding) or rounded product (single rounding).
            high = Signal(signed(65) if single else signed(33))
            right4 = Signal.like(right)
            # Stages 7 and 8: rounding right shift.
            scaled = Signal(signed(32))
            # Stage 9: output offset; stage 10: clamp.
            out = Signal(self.out_shape)

            if ecp5:
                # The DSPs' input registers are stage 2 and their output registers stage 3: the shifter
                # feeds the DSPs directly, and the products leave them from a register.
                shift_next = Signal(signed(32))
                both_min2 = Signal()
                m.d.comb += shift_next.eq((biased << left)[:32])
                # The DSPs' operands and the shift beside them: stage 1's (``ecp5``), or registered a
                # stage later (``ecp5_reg``).
                dsp_x, dsp_m, dsp_right = shift_next, multiplier1, right
                if cfg.multiplier == "ecp5_reg":
                    dsp_x, dsp_m = Signal(signed(32), name="shifted_reg"), Signal(signed(32), name="multiplier_reg")
                    dsp_right = Signal.like(right, name="right_reg")
                    with m.If(advance):
                        m.d.sync += [dsp_x.eq(shift_next), dsp_m.eq(multiplier1), dsp_right.eq(right)]
                x_high, x_low = dsp_x[16:].as_signed(), dsp_x[:16]
                m_high, m_low = dsp_m[16:].as_signed(), dsp_m[:16]
                for name, a, b, partial in (("ll", x_low, m_low, low_low), ("hh", x_high, m_high, high_high),
                                            ("lh", x_low, m_high, low_high), ("hl", x_high, m_low, high_low)):
                    # 18-bit signed operands hold the 16-bit halves, sign- or zero-extended.
                    mult18x18d(m, f"lane{lane}_{name}", a, b, partial, ce=advance)

            with m.If(advance):
                m.d.sync += [
                    biased.eq((inp.acc + inp.bias)[:32]),
                    multiplier1.eq(inp.multiplier),
                ]
                if single:
                    clamped = Mux(inp.shift > 30, 30, Mux(inp.shift < -31, -31, inp.shift))
                    m.d.sync += [left.eq(0), right.eq(31 - clamped)]
                else:
                    m.d.sync += [
                        left.eq(Mux(inp.shift >= 0, inp.shift, 0)),
                        right.eq(Mux(inp.shift < 0, -inp.shift, 0)),
                    ]

                if ecp5:
                    m.d.sync += [
                        right2.eq(dsp_right),
                        both_min2.eq((dsp_x == INT32_MIN) & (dsp_m == INT32_MIN)),
                        both_min3.eq(both_min2),
                        right3.eq(right2),
                    ]
                else:
                    m.d.sync += [
                        shifted.eq((biased << left)[:32]),
                        multiplier2.eq(multiplier1),
                        right2.eq(right),
                    ]
                    x_high, x_low = shifted[16:].as_signed(), shifted[:16]
                    m_high, m_low = multiplier2[16:].as_signed(), multiplier2[:16]
                    m.d.sync += [
                        low_low.eq(x_low * m_low),
                        high_high.eq(x_high * m_high),
                        low_high.eq(x_low * m_high),
                        high_low.eq(x_high * m_low),
                        both_min3.eq((shifted == INT32_MIN) & (multiplier2 == INT32_MIN)),
                        right3.eq(right2),
                    ]
                m.d.sync += [
                    middle.eq(low_high + high_low),
                    low_low4.eq(low_low),
                    high_high4.eq(high_high),
                    both_min4.eq(both_min3),
                    right4a.eq(right3),
                ]
                # The rounding constants' bit position, right - 1, and whether right is 0: formed here,
                # so that stage 6 only decodes a register.
                below = Signal.like(right)
                right_zero = Signal()
                m.d.sync += [
                    product.eq(Cat(low_low4, high_high4).as_signed() + (middle << 16)),
                    both_min5.eq(both_min4),
                    right4b.eq(right4a),
                    below.eq(right4a - 1),
                    right_zero.eq(right4a == 0),
                ]

                if single:
                    round_bit = (Const(1, unsigned(64)) << below)[:64]
                    m.d.sync += high.eq(product + round_bit)
                else:
                    # gemmlowp adds 2**30 (or 1 - 2**30 to a negative product) and divides by 2**31
                    # truncating toward zero. For a negative product the sum stays negative, and
                    # truncating it equals flooring it after adding 2**31 - 1; both cases come to
                    # floor((product + 2**30) / 2**31), one adder and a free shift.
                    truncated = (product + (1 << 30)) >> 31
                    m.d.sync += high.eq(Mux(both_min5, INT32_MAX, truncated))
                m.d.sync += right4.eq(right4b)

                if single:
                    # Stage 7 shifts (the rounding constant went in at stage 6); stage 8 passes it on.
                    quotient = Signal(signed(33))
                    m.d.sync += [quotient.eq((high >> right4)[:33]), scaled.eq(quotient[:32])]
                else:
                    # RoundingDivideByPOT rounds half away from zero: (x >> e) + (remainder > threshold)
                    # equals (x + 2**(e-1) - [x < 0]) >> e for e >= 1. Stage 7 adds, stage 8 shifts.
                    # The two rounding constants are formed at stage 6, beside the high word.
                    half = Signal(33)
                    half_less_one = Signal(33)
                    one_hot = (Const(1, unsigned(33)) << below)[:33]
                    ones_below = ~(Const((1 << 33) - 1, unsigned(33)) << below)[:33]
                    m.d.sync += [
                        half.eq(Mux(right_zero, 0, one_hot)),
                        half_less_one.eq(Mux(right_zero, 0, ones_below)),
                    ]
                    rounded = Signal(signed(35))
                    right5 = Signal.like(right)
                    m.d.sync += [
                        rounded.eq(high + Mux(high < 0, half_less_one, half)),
                        right5.eq(right4),
                    ]
                    if cfg.multiplier == "ecp5_reg":
                        # The shift in two stages, by whole bytes and then by the rest (floor shifts
                        # compose): each a three-level multiplexer, not one of six.
                        coarse = Signal(signed(35))
                        right6 = Signal(3)
                        m.d.sync += [coarse.eq(rounded >> Cat(Const(0, 3), right5[3:])), right6.eq(right5[:3])]
                        m.d.sync += scaled.eq((coarse >> right6)[:32])
                    else:
                        m.d.sync += scaled.eq((rounded >> right5)[:32])

                with_offset = Signal(signed(32))
                m.d.sync += with_offset.eq((scaled + self.output_offset)[:32])
                with m.If(with_offset < self.act_min):
                    m.d.sync += out.eq(self.act_min)
                with m.Elif(with_offset > self.act_max):
                    m.d.sync += out.eq(self.act_max)
                with m.Else():
                    m.d.sync += out.eq(with_offset)

            m.d.comb += self.o.payload[lane].eq(out)

        return m
