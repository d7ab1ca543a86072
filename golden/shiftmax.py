"""I-ViT ShiftMax: integer softmax from shifts and one integer division per row (Li & Gu, ICCV 2023;
reference code zkkli/I-ViT), section 3.3 (Shiftmax).

For a row of ``n`` integer scores ``x`` at scale ``S``::

    e_i   = shift_exp(x_i - max(x), x0, exp_shift, variant)      # qarith.golden.common.shift_exp
    s     = sum_i e_i
    f     = floor((2**31 - 1) / s)
    out_i = (e_i * f) >> (32 - out_width)                      # 0 .. 2**(out_width - 1) - 1

so ``out_i`` is the probability at scale ``2**-(out_width - 1)`` (the reference: ``output_bit = 8``,
shift 24, scale 2^-7). ``e_i <= s`` makes ``e_i f < 2**31``, so the output never reaches
``2**(out_width - 1)`` and the TVM variant's int8 cast never wraps.

``variant="ibert"`` is I-BERT's integer softmax (Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021, section 3.4) on the
same hardware: ``e_i = ibert_exp(x_i - max) >> k`` (the polynomial exponential, ``exp_shift`` 30,
requantized to 16 bits by a right shift ``k`` that fits ``e(0)`` in 16 bits: the reference's 16-bit
``QuantAct`` has a calibrated scale instead, so this shift is qarith's fixed choice),
``f = floor(2**32 / s)`` and ``out_i = min((e_i f) >> (32 - out_width), 2**out_width - 1)``, the
probability at scale ``2**-out_width`` (a row whose whole sum is one element would give
``2**out_width``: it clamps).

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

from .common.codes import require_integers
from .common.shift_exp import IBERT_X0, VARIANTS, exp_max, ibert_constants, ibert_exp, shift_exp, x0_of
from .common.ragged import by_length, check_variable_length

__all__ = ["ShiftmaxConfig", "SOFTMAX_VARIANTS", "row_exponentials", "shiftmax", "float_softmax", "INT31_MAX"]

INT31_MAX = (1 << 31) - 1
SOFTMAX_VARIANTS = (*VARIANTS, "ibert")
DEFAULT_SHIFT = {"pytorch": 15, "tvm": 16, "ibert": 30}
#: At this scale or finer ``|x0| >= 2**30`` (I-ViT), so ``e(0) = -x0 * 2**n`` needs more than 31 bits even
#: for ``n = 1``; I-BERT's ``e(0) = floor(c' / S**2) << n`` more than 62. Such scales are refused before
#: ``x0`` is computed (``-1 / S`` overflows a float for subnormal scales).
MIN_SCALE = 2.0 ** -30
#: I-BERT's ``x0 = floor(-ln 2 / S)`` must be below -2 for its remainder ``r`` to have a range (the
#: limit :mod:`qarith.golden.log_softmax_int` applies as well).
IBERT_MAX_SCALE = -IBERT_X0 / 2
#: I-BERT requantizes its exponential to 16 bits before the sum.
IBERT_EXP_BITS = 16


@dataclass(frozen=True)
class ShiftmaxConfig:
    """Configuration of the ``shiftmax`` block.

    Parameters
    ----------
    n : int
        Row length (1..4096).
    variant : str
        ``"pytorch"`` or ``"tvm"``: the I-ViT reference implementation to match bit for bit;
        ``"ibert"``: I-BERT's polynomial exponential and softmax.
    in_width : int
        Width of the signed input codes (2..16).
    scale : float
        Real value of one input step (positive); sets ``x0``, the code of -1.0.
    out_width : int
        Output code width (2..16); the output's scale is ``2**-(out_width - 1)`` (I-ViT: codes of
        ``out_width - 1`` bits) or ``2**-out_width`` (``"ibert"``: codes of ``out_width`` bits).
    exp_shift : int or None
        The reference's ``n`` (the exponential's fixed-point bits, 1..30); ``None`` picks the
        variant's value (15 for pytorch, 16 for tvm, 30 for ibert).
    variable_length : bool
        Rows of any length ``1..n``, each ended by the input's ``last`` (payloads ``{"data", "last"}``
        in and out; :mod:`qarith.golden.common.ragged`); ``False``: every row has ``n`` elements.
    """
    n: int = 64
    variant: str = "pytorch"
    in_width: int = 8
    scale: float = 0.0625
    out_width: int = 8
    exp_shift: int | None = None
    variable_length: bool = False

    def __post_init__(self):
        check_variable_length(self)
        require_integers(self, ("n", "in_width", "out_width"))
        if self.exp_shift is not None and (not isinstance(self.exp_shift, int) or isinstance(self.exp_shift, bool)):
            raise TypeError(f"exp_shift must be an integer or None, not {self.exp_shift!r}")
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool):
            raise TypeError(f"scale must be a number, not {self.scale!r}")
        if self.variant not in SOFTMAX_VARIANTS:
            raise ValueError(f"Variant must be one of {', '.join(SOFTMAX_VARIANTS)}, not {self.variant!r}")
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
        if self.scale <= MIN_SCALE:
            raise ValueError(f"Scale {self.scale} is 2**-30 or finer, so e(0) would overflow "
                             f"{62 if self.variant == 'ibert' else 31} bits; use a coarser scale")
        if self.variant == "ibert" and self.scale >= IBERT_MAX_SCALE:
            raise ValueError(f"Scale {self.scale} makes x0 = floor(-ln 2 / scale) -2 or more, too coarse for "
                             f"I-BERT's exponential; use a scale below {IBERT_MAX_SCALE}")
        if self.variant != "ibert" and self.e_max > INT31_MAX:
            raise ValueError(f"Scale {self.scale} gives x0 = {self.x0}, so e(0) = -x0 * 2**{self.shift} = "
                             f"{self.e_max} overflows 31 bits; use a coarser scale or a smaller exp_shift")
        if self.variant == "ibert" and self.ibert_raw_max.bit_length() > 62:
            raise ValueError(f"Scale {self.scale} makes I-BERT's e(0) = {self.ibert_raw_max} wider than 62 bits; "
                             f"use a coarser scale or a smaller exp_shift")
        if self.n * self.e_max > self.numerator:
            bits = 32 if self.variant == "ibert" else 31
            raise ValueError(f"Row length {self.n} can overflow the {bits}-bit sum at this scale: "
                             f"at most {self.numerator // self.e_max} elements of e(0) = {self.e_max}")

    @property
    def shift(self):
        """The exponential's fixed-point bits (the reference's ``n``)."""
        return DEFAULT_SHIFT[self.variant] if self.exp_shift is None else self.exp_shift

    @property
    def x0(self):
        if self.variant == "ibert":
            return ibert_constants(self.scale)[0]
        return x0_of(self.scale, self.variant)

    @property
    def ibert_raw_max(self):
        """I-BERT's ``e(0) = c << exp_shift`` before the 16-bit requantization."""
        return ibert_constants(self.scale)[2] << self.shift

    @property
    def ibert_requant_shift(self):
        """The right shift that brings I-BERT's ``e(0)`` below ``2**16``."""
        return max(self.ibert_raw_max.bit_length() - IBERT_EXP_BITS, 0)

    @property
    def e_max(self):
        if self.variant == "ibert":
            return self.ibert_raw_max >> self.ibert_requant_shift
        return exp_max(self.x0, self.shift)

    @property
    def numerator(self):
        """The dividend of ``f``: ``2**31 - 1`` (I-ViT) or ``2**32`` (I-BERT)."""
        return 1 << 32 if self.variant == "ibert" else INT31_MAX

    @property
    def out_bits(self):
        """Width of the unsigned output code: ``out_width - 1`` (I-ViT, scale ``2**-(out_width - 1)``) or
        ``out_width`` (I-BERT, scale ``2**-out_width``)."""
        return self.out_width if self.variant == "ibert" else self.out_width - 1

    @property
    def sum_width(self):
        return (self.n * self.e_max).bit_length()

    @property
    def quotient_width(self):
        """Bits of ``f = floor((2**31 - 1) / s)``: ``s >= e(0)`` bounds it."""
        return (self.numerator // self.e_max).bit_length()

    @property
    def out_max(self):
        return (1 << self.out_bits) - 1


def row_exponentials(cfg, x):
    """``e_i`` of every element of rows ``x``: the variant's exponential of ``x_i - max(x)``."""
    d = x - x.amax(dim=-1, keepdim=True)
    if cfg.variant == "ibert":
        return ibert_exp(d, cfg.scale, cfg.shift) >> cfg.ibert_requant_shift
    return shift_exp(d, cfg.x0, cfg.shift, cfg.variant)


def shiftmax(cfg, x, lengths=None):
    """The block's function on rows of input codes (``(..., n)`` int64); returns output codes. With
    ``lengths``, each row is its first ``L`` elements alone (outputs beyond them 0;
    :func:`qarith.golden.common.ragged.by_length`)."""
    if lengths is not None:
        return by_length(lambda rows: _shiftmax_rows(cfg, rows), cfg.n, lengths, x)
    x = torch.as_tensor(x, dtype=torch.int64)
    if x.shape[-1] != cfg.n:
        raise ValueError(f"Rows must have {cfg.n} elements, not {x.shape[-1]}")
    return _shiftmax_rows(cfg, x)


def _shiftmax_rows(cfg, x):
    e = row_exponentials(cfg, x)
    f = torch.div(cfg.numerator, e.sum(dim=-1, keepdim=True), rounding_mode="floor")
    return ((e * f) >> (32 - cfg.out_width)).clamp(max=cfg.out_max)


def float_softmax(cfg, x):
    """The float function approximated: ``torch.softmax(x * scale)`` (float64)."""
    return torch.softmax(torch.as_tensor(x, dtype=torch.float64) * cfg.scale, dim=-1)
