"""int8 fully-connected layer engine: :class:`~qarith.hdl.mac_array.MacArray` feeding
:class:`~qarith.hdl.requant.Requant`.

Computes :func:`qarith.golden.linear_int8.linear_int8_hw`. Input beats carry, per reduction step ``k``,
``rows`` activation codes (one per batch row) and ``cols`` weight codes (one per output channel); output
beats are rows of ``cols`` int8 codes, ``rows`` beats per tile, in batch order. Per-channel folded bias,
Q31 multiplier and shift and per-tensor output zero point and clamp bounds are quasi-static ports
(change them only between tiles). Latency: the MAC array's plus the requantizer's 6 cycles.
"""

from amaranth.hdl import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from ..golden.linear_int8 import LinearInt8Config
from .common.component import BlockComponent
from .mac_array import MacArray
from .requant import SHIFT_WIDTH, Requant

__all__ = ["LinearInt8"]


class LinearInt8(BlockComponent):
    """Streaming int8 linear layer tile engine.

    Parameters
    ----------
    cfg : LinearInt8Config

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(signed(8), rows), "b": ArrayLayout(signed(8), cols), "last": 1})))
    o : Out(stream.Signature(ArrayLayout(signed(8), cols)))
    bias, multiplier : In(ArrayLayout(signed(32), cols))
    shift : In(ArrayLayout(signed(6), cols))
    output_offset : In(signed(9))
    act_min, act_max : In(signed(8))
    """

    config_class = LinearInt8Config

    def __init__(self, cfg):
        self.cfg = cfg
        self.mac = MacArray(cfg.mac)
        self.requant = Requant(cfg.requant)
        super().__init__({
            "i": self.mac.signature.members["i"],
            "o": self.requant.signature.members["o"],
            "bias": In(data.ArrayLayout(signed(32), cfg.cols)),
            "multiplier": In(data.ArrayLayout(signed(32), cfg.cols)),
            "shift": In(data.ArrayLayout(signed(SHIFT_WIDTH), cfg.cols)),
            "output_offset": In(signed(9)),
            "act_min": In(signed(8)),
            "act_max": In(signed(8)),
        })

    @property
    def latency(self):
        """Cycles from accepting a tile's last step to its first output row being valid."""
        return self.mac.latency + self.requant.latency

    @property
    def throughput(self):
        """Peak MACs per cycle."""
        return self.mac.throughput

    @property
    def sim_sources(self):
        return self.mac.sim_sources

    @property
    def fifo_depth(self):
        return self.mac.fifo_depth

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self.mac
        m.submodules.requant = requant = self.requant
        wiring.connect(m, wiring.flipped(self.i), mac.i)
        wiring.connect(m, requant.o, wiring.flipped(self.o))
        m.d.comb += [
            requant.i.valid.eq(mac.o.valid),
            mac.o.ready.eq(requant.i.ready),
            requant.output_offset.eq(self.output_offset),
            requant.act_min.eq(self.act_min),
            requant.act_max.eq(self.act_max),
        ]
        for lane in range(self.cfg.cols):
            m.d.comb += [
                requant.i.payload[lane].acc.eq(mac.o.payload.acc[lane]),
                requant.i.payload[lane].bias.eq(self.bias[lane]),
                requant.i.payload[lane].multiplier.eq(self.multiplier[lane]),
                requant.i.payload[lane].shift.eq(self.shift[lane]),
            ]
        return m
