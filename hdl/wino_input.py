"""Winograd input-tile transform ``V = B^T d B``, one tile per beat, shifts and adds only.

Computes :func:`qarith.golden.wino_input.wino_input` (F(2x2,3x3): 4x4 tiles; F(4x4,3x3): 6x6 tiles). The
coefficients of ``B^T`` are 0, +-1, +-2, +-4 and +-5, so each entry is a sum of shifted inputs
(``5 x = (x << 2) + x``) and no multiplier is built (``multipliers`` counts them in the netlist: 0).
Two register stages (``B^T d``, then ``(B^T d) B``), every intermediate sized from its exact range, the
output as wide as the exact growth (:attr:`qarith.golden.wino_input.WinoInputConfig.exact_width`) unless
configured wider. Latency 2 cycles, one tile per cycle; the pipeline stalls as a whole while ``o.ready``
is low, so backpressure never loses or duplicates a tile. Source: Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks" (CVPR 2016), section 4.
"""

from amaranth.hdl import Module, signed
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from ..golden.common.winograd import matrices
from ..golden.wino_input import WinoInputConfig
from .common.component import BlockComponent
from .common.winograd import count_multipliers, tile_layout, transform_unit

__all__ = ["WinoInput"]


class WinoInput(BlockComponent):
    """Streaming ``B^T d B``.

    Parameters
    ----------
    cfg : WinoInputConfig

    Members
    -------
    i : In(stream.Signature(ArrayLayout(ArrayLayout(signed(in_width), n), n)))
        One input tile per beat, ``payload[i][j]`` = row ``i``, column ``j``.
    o : Out(stream.Signature(ArrayLayout(ArrayLayout(signed(out_width), n), n)))
        The transformed tile, tap ``(i, j)`` at ``payload[i][j]``.
    """

    config_class = WinoInputConfig

    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(tile_layout(signed(cfg.in_width), cfg.n))),
            "o": Out(stream.Signature(tile_layout(signed(cfg.out_width), cfg.n))),
        })

    @property
    def latency(self):
        """Cycles from accepting a tile to its transform being valid."""
        return 2

    @property
    def throughput(self):
        """Tiles per cycle."""
        return 1

    @property
    def multipliers(self):
        """``$mul`` cells in the generated netlist (none: shifts and adds)."""
        return count_multipliers(WinoInput(self.cfg))

    def elaborate(self, platform):
        m = Module()
        transform_unit(m, self, matrices(self.cfg.tile).BT, self.cfg.in_width, "bt")
        return m
