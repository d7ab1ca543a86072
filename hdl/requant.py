"""Per-channel requantization unit (TFLite ``MultiplyByQuantizedMultiplier`` + offset + clamp).

Computes, for each lane of a beat, exactly :func:`qarith.golden.requant.requantize`:
bias add, Q31 multiply with signed shift (TFLite double or single rounding), output zero point and clamp.
Per-channel parameters (``bias``, ``multiplier``, ``shift``) travel with each lane's accumulator so one
unit serves any channel order; per-tensor ``output_offset``, ``act_min``, ``act_max`` are quasi-static
input ports.

Six pipeline stages (bias add, left shift, 32x32 multiply, high word and saturation, rounding right shift,
offset and clamp); latency 6 cycles, one beat per cycle. The pipeline stalls as a whole while ``o.ready``
is low, so backpressure never loses or duplicates a beat.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.requant import INT32_MAX, INT32_MIN, RequantConfig

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


class Requant(wiring.Component):
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

    latency = 6
    throughput = 1  # beats per cycle
    sim_sources = []

    def __init__(self, cfg):
        if not isinstance(cfg, RequantConfig):
            self._MustUse__silence = True  # never constructed, so never to be elaborated
            raise TypeError(f"Configuration must be a RequantConfig, not {cfg!r}")
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
            both_min = Signal()
            # Stage 3: full product.
            product = Signal(signed(64))
            right3 = Signal.like(right)
            both_min3 = Signal()
            # Stage 4: doubled high word (double rounding) or rounded product (single rounding).
            high = Signal(signed(65) if single else signed(33))
            right4 = Signal.like(right)
            # Stage 5: rounding right shift.
            scaled = Signal(signed(32))
            # Stage 6: output offset and clamp.
            out = Signal(self.out_shape)

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

                m.d.sync += [
                    shifted.eq((biased << left)[:32]),
                    multiplier2.eq(multiplier1),
                    right2.eq(right),
                ]
                m.d.sync += [
                    product.eq(shifted * multiplier2),
                    both_min3.eq((shifted == INT32_MIN) & (multiplier2 == INT32_MIN)),
                    right3.eq(right2),
                ]

                if single:
                    round_bit = (Const(1, unsigned(64)) << (right3 - 1).as_unsigned())[:64]
                    m.d.sync += high.eq(product + round_bit)
                else:
                    nudged = Signal(signed(65))
                    m.d.comb += nudged.eq(product + Mux(product >= 0, 1 << 30, 1 - (1 << 30)))
                    # C division by 2**31 truncates toward zero: floor, plus one for a negative
                    # value with a non-zero remainder.
                    truncated = (nudged >> 31) + ((nudged < 0) & (nudged[:31] != 0))
                    m.d.sync += high.eq(Mux(both_min3, INT32_MAX, truncated))
                m.d.sync += right4.eq(right3)

                if single:
                    m.d.sync += scaled.eq((high >> right4)[:32])
                else:
                    mask = Signal(33)
                    remainder = Signal(33)
                    m.d.comb += [
                        mask.eq((Const(1, unsigned(33)) << right4)[:33] - 1),
                        remainder.eq(high & mask),
                    ]
                    threshold = (mask >> 1) + (high < 0)
                    m.d.sync += scaled.eq(((high >> right4) + (remainder > threshold))[:32])

                with_offset = Signal(signed(32))
                m.d.comb += with_offset.eq((scaled + self.output_offset)[:32])
                with m.If(with_offset < self.act_min):
                    m.d.sync += out.eq(self.act_min)
                with m.Elif(with_offset > self.act_max):
                    m.d.sync += out.eq(self.act_max)
                with m.Else():
                    m.d.sync += out.eq(with_offset)

            m.d.comb += self.o.payload[lane].eq(out)

        return m
