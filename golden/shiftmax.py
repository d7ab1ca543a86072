"""I-ViT ShiftMax: integer softmax from shifts and one integer division per row (Li & Gu, ICCV 2023;
reference code zkkli/I-ViT). ``ALGORITHMS.md`` section 4.

For a row of ``n`` integer scores ``x`` at scale ``S``::

    e_i   = shift_exp(x_i - max(x), x0, exp_shift, variant)      # qarith.golden.shift_exp
    s     = sum_i e_i
    f     = floor((2**31 - 1) / s)
    out_i = (e_i * f) >> (32 - out_width)                      # 0 .. 2**(out_width - 1) - 1

so ``out_i`` is the probability at scale ``2**-(out_width - 1)`` (the reference: ``output_bit = 8``,
shift 24, scale 2^-7). ``e_i <= s`` makes ``e_i f < 2**31``, so the output never reaches
``2**(out_width - 1)`` and the TVM variant's int8 cast never wraps.

Both reference variants are a config choice (``variant``): ``"pytorch"`` (``exp_shift`` 15 by default,
``x0 = floor(-1/S)``, ``r / 2`` kept exact) and ``"tvm"`` (``exp_shift`` 16, ``x0 = int(-1/S - 1)``,
``r >> 1``). The reference evaluates the division and the products in floating point (PyTorch float32,
where ``2**31 - 1`` rounds to ``2**31``); this model, and the hardware, use the exact integer values of
the same formulas. The reference also clamps the sum at ``2**31 - 1``; configurations whose sum could
reach that are rejected instead, so the clamp never acts.
"""

import math
from dataclasses import dataclass

import torch

from .shift_exp import VARIANTS, exp_max, shift_exp, x0_of

__all__ = ["ShiftmaxConfig", "shiftmax", "float_softmax", "INT31_MAX"]

INT31_MAX = (1 << 31) - 1
DEFAULT_SHIFT = {"pytorch": 15, "tvm": 16}


@dataclass(frozen=True)
class ShiftmaxConfig:
    """Configuration of the ``shiftmax`` block.

    Parameters
    ----------
    n : int
        Row length (1..4096).
    variant : str
        ``"pytorch"`` or ``"tvm"``: the reference implementation to match bit for bit.
    in_width : int
        Width of the signed input codes (2..16).
    scale : float
        Real value of one input step (positive); sets ``x0``, the code of -1.0.
    out_width : int
        Output code width (2..16); the output's scale is ``2**-(out_width - 1)``.
    exp_shift : int or None
        The reference's ``n`` (the exponential's fixed-point bits, 1..30); ``None`` picks the
        variant's value (15 for pytorch, 16 for tvm).
    """
    n: int = 64
    variant: str = "pytorch"
    in_width: int = 8
    scale: float = 0.0625
    out_width: int = 8
    exp_shift: int | None = None

    def __post_init__(self):
        for name in ("n", "in_width", "out_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if self.exp_shift is not None and (not isinstance(self.exp_shift, int) or isinstance(self.exp_shift, bool)):
            raise TypeError(f"exp_shift must be an integer or None, not {self.exp_shift!r}")
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool):
            raise TypeError(f"scale must be a number, not {self.scale!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"Variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        if not 1 <= self.n <= 4096:
            raise ValueError(f"Row length must be between 1 and 4096, not {self.n}")
        if not 2 <= self.in_width <= 16:
            raise ValueError(f"Input width must be between 2 and 16, not {self.in_width}")
        if not 2 <= self.out_width <= 16:
            raise ValueError(f"Output width must be between 2 and 16, not {self.out_width}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"Scale must be a positive finite number, not {self.scale!r}")
        if self.exp_shift is not None and not 1 <= self.exp_shift <= 30:
            raise ValueError(f"Exp shift must be between 1 and 30, not {self.exp_shift}")
        if self.e_max > INT31_MAX:
            raise ValueError(f"Scale {self.scale} gives x0 = {self.x0}, so e(0) = -x0 * 2**{self.shift} = "
                             f"{self.e_max} overflows 31 bits; use a coarser scale or a smaller exp_shift")
        if self.n * self.e_max > INT31_MAX:
            raise ValueError(f"Row length {self.n} can overflow the 31-bit sum at this scale: "
                             f"at most {INT31_MAX // self.e_max} elements of e(0) = {self.e_max}")

    @property
    def shift(self):
        """The exponential's fixed-point bits (the reference's ``n``)."""
        return DEFAULT_SHIFT[self.variant] if self.exp_shift is None else self.exp_shift

    @property
    def x0(self):
        return x0_of(self.scale, self.variant)

    @property
    def e_max(self):
        return exp_max(self.x0, self.shift)

    @property
    def sum_width(self):
        return (self.n * self.e_max).bit_length()

    @property
    def quotient_width(self):
        """Bits of ``f = floor((2**31 - 1) / s)``: ``s >= e(0)`` bounds it."""
        return (INT31_MAX // self.e_max).bit_length()

    @property
    def out_max(self):
        return (1 << (self.out_width - 1)) - 1


def shiftmax(cfg, x):
    """The block's function on rows of input codes (``(..., n)`` int64); returns output codes."""
    x = torch.as_tensor(x, dtype=torch.int64)
    if x.shape[-1] != cfg.n:
        raise ValueError(f"Rows must have {cfg.n} elements, not {x.shape[-1]}")
    e = shift_exp(x - x.amax(dim=-1, keepdim=True), cfg.x0, cfg.shift, cfg.variant)
    f = torch.div(INT31_MAX, e.sum(dim=-1, keepdim=True), rounding_mode="floor")
    return (e * f) >> (32 - cfg.out_width)


def float_softmax(cfg, x):
    """The float function approximated: ``torch.softmax(x * scale)`` (float64)."""
    return torch.softmax(torch.as_tensor(x, dtype=torch.float64) * cfg.scale, dim=-1)
