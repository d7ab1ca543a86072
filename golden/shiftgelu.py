"""I-ViT ShiftGELU: ``GELU(x) ~ x * sigmoid(1.702 x)`` with the sigmoid from the shift-based exponential
(Li & Gu, ICCV 2023; reference code zkkli/I-ViT, ``IntGELU``), section 3.4 (ShiftGELU).

For an integer input ``x`` at scale ``S``::

    y     = x                                        # factor="scale": 1.702 folded into the exp's scale
          | x + (x >> 1) + (x >> 3) + (x >> 4)       # factor="shift": 1.6875 x with shifts, at scale S
    m     = max(y, 0)
    e1    = shift_exp(y - m, x0, n);  e2 = shift_exp(-m, x0, n)      # exp(y - m), exp(-m); pytorch rule
    f     = floor((2**31 - 1) / (e1 + e2))
    sig   = (e1 * f) >> (32 - sig_width)             # sigmoid(1.702 x S) at scale 2**-(sig_width - 1)
    out   = x * sig                                  # GELU(x S) at scale S * 2**-(sig_width - 1)

with ``x0 = floor(-1 / (1.702 S))`` (``"scale"``, as the reference) or ``floor(-1 / S)`` (``"shift"``),
and ``n = exp_shift`` (23 in the reference). ``sigmoid(z) = e^(z - m) / (e^(z - m) + e^(-m))`` holds
for any ``m``; the reference takes ``m`` as the maximum of the row (so one element's GELU depends on
the others in its row); qarith takes ``m = max(y, 0)`` per element, which keeps both exponents
``<= 0`` and makes the unit elementwise. That choice is the one place this model departs from the
reference. ``e1 + e2 <= 2 e(0)`` must fit 31 bits; the division and products are exact integers
(the reference evaluates them in float32).

``method="ibert"`` is I-BERT's i-GELU (Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021, section 3.3) instead::

    sf  = S / 1.4142;  b = floor(-1.769 / sf);  c = floor((1 / -0.2888) / sf**2)
    y   = sign(x) ((min(|x|, -b) + b)**2 + c) >> erf_shift          # erf(x / sqrt 2) at scale s_erf
    s_erf = -0.2888 sf**2 2**erf_shift;  h = floor(1 / s_erf)
    out = -(x (y + h))                                                # GELU at scale |s_erf| S / 2

(the reference's scale ``s_erf S / 2`` is negative; the block negates the code so its scale is
positive). The reference shifts ``y`` right by 14 to fit 32-bit inputs; on int8 inputs that leaves
``y`` one bit and ruins the result (measured 65 against GELU at scale 1/16), so ``erf_shift`` is a
parameter, 0 by default (measured 0.024).
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import require_integers
from .common.shift_exp import exp_max, shift_exp, x0_of
from .shiftmax import INT31_MAX

__all__ = ["ShiftGeluConfig", "FACTORS", "METHODS", "shiftgelu", "ibert_gelu_constants", "gelu_reference"]

FACTORS = ("scale", "shift")
METHODS = ("shift", "ibert")
SIGMOID_FACTOR = 1.702
#: I-BERT's i-GELU: erf(u) ~ sign(u) (a (min(|u|, -b) + b)**2 + 1) with u = x / 1.4142 (the reference's
#: rounded sqrt(2)); c = 1 / a as the reference stores it.
IBERT_ERF = (-0.2888, -1.769, 1 / -0.2888)
IBERT_SQRT2 = 1.4142
#: I-BERT's ``b = floor(-1.769 / (S / 1.4142))`` is -1 from this scale on.
IBERT_MAX_SCALE = -IBERT_ERF[1] * IBERT_SQRT2


@dataclass(frozen=True)
class ShiftGeluConfig:
    """Configuration of the ``shiftgelu`` block.

    Parameters
    ----------
    in_width : int
        Width of the signed input codes (2..16).
    scale : float
        Real value of one input step (positive).
    factor : str
        How ``1.702 x`` is formed: ``"scale"`` (folded into the exponential's scale, as the reference)
        or ``"shift"`` (``x + x/2 + x/8 + x/16 = 1.6875 x`` with shifts).
    exp_shift : int
        The exponential's fixed-point bits (the reference's ``n``), 1..30. The reference's 23 leaves
        ``f = floor((2**31 - 1) / (e1 + e2))`` only 4-5 bits, so the sigmoid is coarse (measured: up to
        0.19 max error against GELU with ``factor="scale"``, 0.50 with ``"shift"``, on int8 inputs at
        scale 1/16); the default 15 (ShiftMax's value) gives ``f`` 12-13 bits and both factors land
        near the 8-bit sigmoid's own resolution (0.062).
    sig_width : int
        Bits of the sigmoid code (2..16; 8 in the reference, scale ``2**-(sig_width - 1)``).
    method : str
        ``"shift"`` (I-ViT ShiftGELU) or ``"ibert"`` (I-BERT i-GELU; ``factor``, ``exp_shift`` and
        ``sig_width`` do not apply).
    erf_shift : int
        ``"ibert"`` only: the right shift of the erf polynomial (0..14; the reference's 14 suits 32-bit
        inputs).
    """
    in_width: int = 8
    scale: float = 0.0625
    factor: str = "scale"
    exp_shift: int = 15
    sig_width: int = 8
    method: str = "shift"
    erf_shift: int = 0

    def __post_init__(self):
        require_integers(self, ("in_width", "exp_shift", "sig_width", "erf_shift"))
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool):
            raise TypeError(f"scale must be a number, not {self.scale!r}")
        if self.method not in METHODS:
            raise ValueError(f"Method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if not 0 <= self.erf_shift <= 14:
            raise ValueError(f"Erf shift must be between 0 and 14, not {self.erf_shift}")
        if self.factor not in FACTORS:
            raise ValueError(f"Factor must be one of {', '.join(FACTORS)}, not {self.factor!r}")
        if not 2 <= self.in_width <= 16:
            raise ValueError(f"Input width must be between 2 and 16, not {self.in_width}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"Scale must be a positive finite number, not {self.scale!r}")
        if not 1 <= self.exp_shift <= 30:
            raise ValueError(f"Exp shift must be between 1 and 30, not {self.exp_shift}")
        if not 2 <= self.sig_width <= 16:
            raise ValueError(f"Sigmoid width must be between 2 and 16, not {self.sig_width}")
        if self.method == "ibert" and self.scale >= IBERT_MAX_SCALE:
            # b = floor(b' / sf) = -1 from sf = S / 1.4142 >= -b' on: the polynomial's clip at the first
            # code (and sf**2 overflows a float for huge scales).
            raise ValueError(f"Scale {self.scale} makes I-BERT's b = floor(-1.769 / (scale / 1.4142)) -1; "
                             f"use a scale below {IBERT_MAX_SCALE}")
        if self.exp_scale <= 2.0 ** -29:
            # |x0| >= 2**29: e1 + e2 reaches 2 * 2**29 * 2**exp_shift, past 31 bits for every exp_shift
            # (and -1 / scale overflows a float for subnormal scales).
            raise ValueError(f"Scale {self.scale} gives the exponential a scale of 2**-29 or finer, so e1 + e2 "
                             f"would overflow 31 bits; use a coarser scale")
        if 2 * self.e_max > INT31_MAX:
            raise ValueError(f"Scale {self.scale} gives x0 = {self.x0}, so e1 + e2 can reach 2 * {self.e_max}, "
                             f"beyond 31 bits; use a coarser scale or a smaller exp_shift")

    @property
    def exp_scale(self):
        """The scale the exponential sees: ``1.702 S`` (``"scale"``) or ``S`` (``"shift"``)."""
        return self.scale * SIGMOID_FACTOR if self.factor == "scale" else self.scale

    @property
    def x0(self):
        return x0_of(self.exp_scale, "pytorch")

    @property
    def e_max(self):
        return exp_max(self.x0, self.exp_shift)

    @property
    def quotient_width(self):
        """Bits of ``f``: ``e1 + e2 > e(0)`` bounds it."""
        return (INT31_MAX // self.e_max).bit_length()

    @property
    def out_width(self):
        """Signed output width: ``x`` times a sigmoid code below ``2**(sig_width - 1)`` (I-ViT), or times
        ``y + h`` (I-BERT)."""
        if self.method == "ibert":
            _, _, _, h, _ = ibert_gelu_constants(self)
            largest = (1 << (self.in_width - 1)) * (2 * abs(h) + 2)
            return largest.bit_length() + 1
        return self.in_width + self.sig_width - 1

    @property
    def out_scale(self):
        if self.method == "ibert":
            return abs(ibert_gelu_constants(self)[4]) * self.scale / 2
        return self.scale * 2.0 ** -(self.sig_width - 1)

    @property
    def codes(self):
        """Every input code, ascending."""
        return torch.arange(-(1 << (self.in_width - 1)), 1 << (self.in_width - 1), dtype=torch.int64)


def ibert_gelu_constants(cfg):
    """``(b, c, erf_shift, h, s_erf)`` of I-BERT's i-GELU at the config's scale."""
    a, b_real, c_real = IBERT_ERF
    sf = cfg.scale / IBERT_SQRT2
    b, c = math.floor(b_real / sf), math.floor(c_real / sf ** 2)
    s_erf = sf ** 2 * a * 2 ** cfg.erf_shift
    return b, c, cfg.erf_shift, math.floor(1.0 / s_erf), s_erf


def shiftgelu(cfg, x):
    """The block's function on integer input codes (any shape); returns output codes."""
    x = torch.as_tensor(x, dtype=torch.int64)
    if cfg.method == "ibert":
        b, c, k, h, _ = ibert_gelu_constants(cfg)
        clipped = torch.minimum(x.abs(), torch.full_like(x, -b))
        y = (torch.sign(x) * ((clipped + b) ** 2 + c)) >> k
        return -(x * (y + h))
    y = x if cfg.factor == "scale" else x + (x >> 1) + (x >> 3) + (x >> 4)
    m = y.clamp(min=0)
    e1 = shift_exp(y - m, cfg.x0, cfg.exp_shift, "pytorch")
    e2 = shift_exp(-m, cfg.x0, cfg.exp_shift, "pytorch")
    f = torch.div(INT31_MAX, e1 + e2, rounding_mode="floor")
    return x * ((e1 * f) >> (32 - cfg.sig_width))


def gelu_reference(cfg, x):
    """``GELU(x S)`` (exact, erf form) in float64 for integer codes ``x``."""
    return torch.nn.functional.gelu(torch.as_tensor(x, dtype=torch.float64) * cfg.scale)
