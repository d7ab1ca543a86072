"""Winograd output-tile transform ``Y = A^T M A`` with a final rounding shift, one tile per beat.

Computes :func:`qarith.golden.wino_output.wino_output`: the ``(m + 2) x (m + 2)`` Winograd-domain tile
``M`` becomes the ``m x m`` output tile, then ``(Y + 2**(shift - 1)) >> shift`` (round half up; no stage
when ``shift`` is 0). The coefficients of ``A^T`` are 0, +-1, +-2, +-4 and +-8: shifts and adds, no
multiplier (``multipliers`` counts them in the netlist: 0). Two register stages for the transform
(``A^T M``, then ``(A^T M) A``) and one for the shift; latency 2 cycles (3 with a shift), one tile per
cycle, stalling as a whole under backpressure. Source: Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks" (CVPR 2016), section 4.
"""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from ..golden.common.winograd import matrices
from ..golden.wino_output import WinoOutputConfig
from .common.component import BlockComponent
from .common.winograd import count_multipliers, tile_layout, transform_unit

__all__ = ["WinoOutput"]


class WinoOutput(BlockComponent):
    """Streaming ``round_shift(A^T M A, shift)``.

    Parameters
    ----------
    cfg : WinoOutputConfig

    Members
    -------
    i : In(stream.Signature(ArrayLayout(ArrayLayout(signed(in_width), m + 2), m + 2)))
        One Winograd-domain tile per beat, tap ``(i, j)`` at ``payload[i][j]``.
    o : Out(stream.Signature(ArrayLayout(ArrayLayout(signed(out_width), m), m)))
        The output tile, pixel ``(i, j)`` at ``payload[i][j]``.
    """

    config_class = WinoOutputConfig

    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(tile_layout(signed(cfg.in_width), cfg.n))),
            "o": Out(stream.Signature(tile_layout(signed(cfg.out_width), cfg.tile))),
        })

    @property
    def latency(self):
        """Cycles from accepting a tile to its output tile being valid."""
        return 2 + (self.cfg.shift > 0)

    @property
    def throughput(self):
        """Tiles per cycle."""
        return 1

    @property
    def multipliers(self):
        """``$mul`` cells in the generated netlist (none: shifts and adds)."""
        return count_multipliers(WinoOutput(self.cfg))

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg

        def round_shift(pixels, register):
            rounded = [[Signal(signed(cfg.out_width), name=f"rounded_{i}_{j}") for j in range(cfg.tile)]
                       for i in range(cfg.tile)]
            for i in range(cfg.tile):
                for j in range(cfg.tile):
                    register(rounded[i][j], (pixels[i][j] + (1 << (cfg.shift - 1))) >> cfg.shift)
            return rounded

        transform_unit(m, self, matrices(cfg.tile).AT, cfg.in_width, "at", round_shift if cfg.shift else None)
        return m
