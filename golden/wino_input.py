"""Golden model of the ``wino_input`` block: the Winograd input transform ``V = B^T d B``, exact.

The method, its integer steps and its roundings: :mod:`qarith.golden.common.winograd` (Lavin & Gray,
CVPR 2016; Andri et al., MICRO 2022).
"""

from dataclasses import dataclass

from .common.codes import require_integers, width_for
from .common.winograd import check_tile_and_kernel, input_transform, input_transform_range

__all__ = ['WinoInputConfig', 'wino_input']


@dataclass(frozen=True)
class WinoInputConfig:
    """Configuration of the ``wino_input`` block: ``V = B^T d B`` of one tile per beat.

    Parameters
    ----------
    tile : int
        Output tile size ``m``: 2 (F(2x2,3x3), 4x4 input tiles) or 4 (F(4x4,3x3), 6x6 input tiles).
    kernel : int
        Kernel size; only 3 is supported.
    in_width : int
        Signed input code width (2..16).
    out_width : int or None
        Signed output width; ``None`` picks :attr:`exact_width`, the exact growth. Narrower widths are
        rejected, wider ones sign-extend (at most 32).
    """
    tile: int = 2
    kernel: int = 3
    in_width: int = 8
    out_width: int | None = None

    def __post_init__(self):
        check_tile_and_kernel(self)
        require_integers(self, ("in_width",))
        if not 2 <= self.in_width <= 16:
            raise ValueError(f"Input width must be between 2 and 16, not {self.in_width}")
        if self.out_width is None:
            object.__setattr__(self, "out_width", self.exact_width)
        require_integers(self, ("out_width",))
        if not self.exact_width <= self.out_width <= 32:
            raise ValueError(f"Output width must be between {self.exact_width} (the exact growth of "
                             f"F({self.tile}x{self.tile},3x3)'s B^T d B for {self.in_width}-bit codes) "
                             f"and 32, not {self.out_width}")

    @property
    def n(self):
        return self.tile + 2

    @property
    def exact_width(self):
        low, high = input_transform_range(self.tile, self.in_width)
        return width_for(int(low.min()), int(high.max()))


def wino_input(cfg, tiles):
    """The ``wino_input`` block: ``B^T d B`` of int tiles ``(..., n, n)``."""
    return input_transform(cfg.tile, tiles)
