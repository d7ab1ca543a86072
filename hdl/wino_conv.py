"""Winograd convolution tile engine: input transform, tap-wise MAC over input channels, output transform,
TFLite requantization.

Computes :func:`qarith.golden.wino_conv.wino_conv` for one int8 3x3 layer. Input beats are one
``n x n`` input tile of one input channel (``n = m + 2``) with ``last`` on the tile's final channel;
each tile gives one output beat, the ``m x m`` int8 output tile of every output channel. The engine:

1. ``V = B^T d B`` (two register stages, shifts and adds; :mod:`qarith.hdl.winograd`);
2. one multiplier per tap per output channel: ``U_q[o, c, t] * V[t]`` (registered product, the DSP's
   output register), the weights ``U_q`` of channel ``c`` read from a ROM addressed by the beat's
   channel count (one ROM word holds every lane's and tap's weight for one input channel);
3. accumulation over the tile's channels, then the per-tap rounding shift ``(M + 2**(e-1)) >> e`` to the
   common scale (constant shifts: wiring and one adder);
4. ``Y = A^T M' A`` (two register stages, shifts and adds);
5. :class:`~qarith.hdl.requant.Requant` (a submodule, one lane per output pixel and channel).

The weights are constants baked into the generator: :func:`~qarith.golden.wino_conv.winograd_layer`
derives the quantized transformed weights, tap shifts, scaled bias and Q31 multipliers from the
config's int8 layer, and the ROM, the shifts and the requantizer's per-channel parameters are those same
tensors, so model and RTL cannot drift apart. A tile of fewer channels (``last`` early) accumulates the
channels it has, as if the rest were zero; the channel count restarts after every ``last``.

Throughput one input beat per cycle, so a tile takes ``in_channels`` cycles; ``throughput`` counts it as
direct-convolution MACs per cycle (``out_channels * m * m * 9``) while ``multipliers`` counts the
multipliers the netlist holds (``out_channels * n * n``), so ``mults_per_output`` is 4 for F(2x2,3x3)
and 2.25 for F(4x4,3x3) against a direct convolution's 9 (2.25x and 4x fewer). Latency from a tile's
last beat to its output: 7 cycles to the requantizer plus its 10. The front pipeline stalls as a whole
while the requantizer cannot accept, which stalls while ``o.ready`` is low, so backpressure loses
nothing. Sources: Lavin & Gray (CVPR 2016); Andri et al., "Going Further With Winograd
Convolutions: Tap-Wise Quantization for Efficient Inference on 4x4 Tiles" (MICRO 2022).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.common.codes import code_range
from ..golden.common.winograd import DIRECT_MULTS_PER_OUTPUT, matrices
from ..golden.wino_conv import WinoConvConfig, winograd_layer
from .common.component import BlockComponent
from .common.winograd import count_multipliers, tile_layout, transform_stages
from .requant import Requant

__all__ = ["WinoConv", "wino_conv_input_layout"]

#: Register stages before the requantizer: input transform 2, product 1, accumulate 1, tap shift 1,
#: output transform 2.
FRONT_STAGES = 7


def wino_conv_input_layout(cfg):
    """Input beat: one channel's ``n x n`` tile and ``last`` on the tile's final channel."""
    return data.StructLayout({"tile": tile_layout(signed(cfg.in_width), cfg.n), "last": 1})


class WinoConv(BlockComponent):
    """Streaming Winograd 3x3 convolution, one output tile of every output channel per input tile.

    Parameters
    ----------
    cfg : WinoConvConfig

    Members
    -------
    i : In(stream.Signature(StructLayout({"tile": ArrayLayout(ArrayLayout(signed(in_width), n), n), "last": 1})))
    o : Out(stream.Signature(ArrayLayout(ArrayLayout(ArrayLayout(signed(8), m), m), out_channels)))
        ``payload[o][i][j]``: output channel ``o``, pixel row ``i``, column ``j``.
    """

    config_class = WinoConvConfig

    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        self.requant = Requant(cfg.requant)
        super().__init__({
            "i": In(stream.Signature(wino_conv_input_layout(cfg))),
            "o": Out(stream.Signature(data.ArrayLayout(tile_layout(signed(8), cfg.tile), cfg.out_channels))),
        })

    @property
    def latency(self):
        """Cycles from accepting a tile's last beat to its output tile being valid."""
        return FRONT_STAGES + self.requant.latency

    @property
    def throughput(self):
        """Direct-convolution MACs per cycle (one input-channel tile per cycle)."""
        return self.cfg.out_channels * self.cfg.tile ** 2 * DIRECT_MULTS_PER_OUTPUT

    @property
    def multipliers(self):
        """``$mul`` cells of the convolution datapath in the generated netlist (the requantizer's, which
        a direct convolution needs as well, are not counted)."""
        return count_multipliers(WinoConv(self.cfg), module="top")

    @property
    def mults_per_output(self):
        """Multiplications per output pixel per input channel: :attr:`multipliers` over the output pixels
        of one beat (a direct 3x3 convolution needs 9)."""
        return self.multipliers / (self.cfg.out_channels * self.cfg.tile ** 2)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        layer = winograd_layer(cfg)
        n, lanes = cfg.n, cfg.out_channels
        m.submodules.requant = requant = self.requant

        valid = Signal(FRONT_STAGES)
        front_valid = valid[-1]
        advance = Signal()
        m.d.comb += [
            advance.eq(~front_valid | requant.i.ready),
            self.i.ready.eq(advance),
            requant.i.valid.eq(front_valid),
        ]

        def register(target, value):
            m.d.sync += target.eq(value)

        # The ROM word of input channel c: every lane's and tap's weight.
        rom = Memory(shape=data.ArrayLayout(tile_layout(signed(cfg.weight_width), n), lanes),
                     depth=cfg.in_channels, init=[layer.weights[:, c].tolist() for c in range(cfg.in_channels)])
        m.submodules.weights = rom
        weights = rom.read_port()

        channel = Signal(range(cfg.in_channels))
        channel_1 = Signal.like(channel)
        last = Signal(3)                     # the beat's last flag, one bit per stage up to the product
        start = Signal(init=1)               # the next product is a tile's first

        with m.If(advance):
            # Everything moves together; only the accumulators and the channel count look at validity.
            m.d.sync += valid.eq(Cat(self.i.valid, valid[:2], valid[2] & last[2], valid[3:-1]))
            m.d.sync += last.eq(Cat(self.i.payload.last, last[:-1]))
            with m.If(self.i.valid):
                m.d.sync += channel.eq(Mux(self.i.payload.last | (channel == cfg.in_channels - 1), 0,
                                           channel + 1))
            m.d.sync += channel_1.eq(channel)

            # Stages 1-2: input transform. The ROM is read during stage 2, so its word arrives with V.
            in_range = code_range(cfg.in_width, True)
            values = [[self.i.payload.tile[i][j] for j in range(n)] for i in range(n)]
            taps, tap_ranges = transform_stages(matrices(cfg.tile).BT, values, [[in_range] * n] * n, register,
                                                "bt")
            v_bounds = [[max(-low, high) for low, high in row] for row in tap_ranges]

            # Stage 3: one multiplier per tap and lane. Stage 4: accumulate. Stage 5: tap shift.
            shifted = []
            with m.If(valid[2]):
                m.d.sync += start.eq(last[2])
            for o in range(lanes):
                lane = []
                for i in range(n):
                    row = []
                    for j in range(n):
                        weight_peak = int(layer.weights[o, :, i, j].abs().max())
                        product_bound = weight_peak * v_bounds[i][j]
                        acc_bound = int(layer.mac_bounds[o, i, j])
                        shift = int(layer.shifts[o, i, j])
                        product = Signal(range(-product_bound, product_bound + 1), name=f"product_{o}_{i}_{j}")
                        acc = Signal(range(-acc_bound, acc_bound + 1), name=f"acc_{o}_{i}_{j}")
                        bound = int(layer.shifted_bounds[o, i, j])
                        tap = Signal(range(-bound, bound + 1), name=f"tap_{o}_{i}_{j}")
                        register(product, weights.data[o][i][j] * taps[i][j])
                        with m.If(valid[2]):
                            m.d.sync += acc.eq(Mux(start, 0, acc) + product)
                        register(tap, (acc + ((1 << shift) >> 1)) >> shift)
                        row.append((tap, (-bound, bound)))
                    lane.append(row)
                shifted.append(lane)

            # Stages 6-7: output transform of every lane.
            pixels = []
            for o in range(lanes):
                values = [[tap for tap, _ in row] for row in shifted[o]]
                ranges = [[bounds for _, bounds in row] for row in shifted[o]]
                pixels.append(transform_stages(matrices(cfg.tile).AT, values, ranges, register, f"at{o}")[0])

        m.d.comb += [weights.en.eq(advance), weights.addr.eq(channel_1)]

        for o in range(lanes):
            for i in range(cfg.tile):
                for j in range(cfg.tile):
                    lane = requant.i.payload[(o * cfg.tile + i) * cfg.tile + j]
                    m.d.comb += [
                        lane.acc.eq(pixels[o][i][j]),
                        lane.bias.eq(int(layer.bias[o])),
                        lane.multiplier.eq(int(layer.multiplier[o])),
                        lane.shift.eq(int(layer.shift[o])),
                    ]
        m.d.comb += [
            requant.output_offset.eq(cfg.output_offset),
            requant.act_min.eq(cfg.act_min),
            requant.act_max.eq(cfg.act_max),
            self.o.valid.eq(requant.o.valid),
            requant.o.ready.eq(self.o.ready),
            self.o.payload.as_value().eq(requant.o.payload.as_value()),
        ]
        return m
