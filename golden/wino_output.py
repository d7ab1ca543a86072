"""Golden model of the ``wino_output`` block: the Winograd output transform ``A^T M A`` and its rounding shift.

The method, its integer steps and its roundings: :mod:`qarith.golden.common.winograd` (Lavin & Gray,
CVPR 2016; Andri et al., MICRO 2022).
"""

from dataclasses import dataclass

from .common.codes import require_integers, width_for
from .common.winograd import check_tile_and_kernel, output_transform, output_transform_range, round_shift

__all__ = ['WinoOutputConfig', 'wino_output']


@dataclass(frozen=True)
class WinoOutputConfig:
    """Configuration of the ``wino_output`` block: ``Y = round_shift(A^T M A, shift)`` of one tile per beat.

    Parameters
    ----------
    tile : int
        Output tile size ``m`` (2 or 4); the input tile is ``(m + 2) x (m + 2)``.
    kernel : int
        Kernel size; only 3 is supported.
    in_width : int
        Signed width of the Winograd-domain values (2..32).
    shift : int
        Final right shift (0..24), rounding half up (:func:`round_shift`).
    out_width : int or None
        Signed output width; ``None`` picks :attr:`exact_width`. Narrower widths are rejected, wider ones
        sign-extend (at most 48).
    """
    tile: int = 2
    kernel: int = 3
    in_width: int = 16
    shift: int = 0
    out_width: int | None = None

    def __post_init__(self):
        check_tile_and_kernel(self)
        require_integers(self, ("in_width", "shift"))
        if not 2 <= self.in_width <= 32:
            raise ValueError(f"Input width must be between 2 and 32, not {self.in_width}")
        if not 0 <= self.shift <= 24:
            raise ValueError(f"Shift must be between 0 and 24, not {self.shift}")
        if self.out_width is None:
            object.__setattr__(self, "out_width", self.exact_width)
        require_integers(self, ("out_width",))
        if not self.exact_width <= self.out_width <= 48:
            raise ValueError(f"Output width must be between {self.exact_width} (the exact growth of "
                             f"F({self.tile}x{self.tile},3x3)'s A^T M A for {self.in_width}-bit values, "
                             f"shifted by {self.shift}) and 48, not {self.out_width}")

    @property
    def n(self):
        return self.tile + 2

    @property
    def transform_range(self):
        """Exact ``(min, max)`` over all outputs before the shift."""
        low, high = output_transform_range(self.tile, self.in_width)
        return int(low.min()), int(high.max())

    @property
    def exact_width(self):
        low, high = self.transform_range
        return width_for(int(round_shift(low, self.shift)), int(round_shift(high, self.shift)))


def wino_output(cfg, tiles):
    """The ``wino_output`` block: ``round_shift(A^T M A, shift)`` of int tiles ``(..., n, n)``."""
    return round_shift(output_transform(cfg.tile, tiles), cfg.shift)
