"""I-ViT's shift-based integer exponential (Li & Gu, ICCV 2023; reference code zkkli/I-ViT), shared by
``shiftmax`` and ``shiftgelu``: Li & Gu, "I-ViT: Integer-only Quantization for Efficient Vision
Transformer Inference" (ICCV 2023), section 3.3 (Shiftmax).

For an integer ``x <= 0`` at scale ``S`` (the value is ``x * S``), ``exp(x S)`` is
``2**(x S log2 e)``: the ``log2 e`` factor is ``1 + 1/2 - 1/16 = 1.4375`` applied with shifts, the
power of two splits into an integer part (a shift) and a fraction approximated linearly
(``2**f ~ 1 + f/2`` on ``f`` in (-1, 0]):

```
t  = x + (x >> 1) - (x >> 4)
t  = max(t, n * x0)                 # x0 = the integer code of -1.0
q  = floor(t / x0);  r = t - x0 q   # r in (x0, 0]
e  = floor((r / 2 - x0) * 2**(n - q))
```

Two variants of the reference differ in ``x0`` and in the rounding of ``r / 2`` (``variant``):

``"pytorch"`` (the PyTorch model)
    ``x0 = floor(-1 / S)``; ``e = ((r - 2 x0) << (n - q)) >> 1``, the exact integer value of
    ``floor((r/2 - x0) * 2**(n - q))`` (for ``q = n`` the halving floors).
``"tvm"`` (the TVM deployment)
    ``x0 = int(-1 / S - 1)`` (C truncation toward zero); ``e = ((r >> 1) - x0) << (n - q)``.

``e(0) = -x0 * 2**n`` in both (``r = q = 0``), the largest value; ``e`` is always positive.

:func:`ibert_exp` is I-BERT's polynomial exponential, the ``"ibert"`` variant of ``shiftmax``.
"""

import math

import torch

__all__ = ["VARIANTS", "x0_of", "exp_max", "shift_exp", "IBERT_COEF", "IBERT_X0", "ibert_constants", "ibert_exp"]

VARIANTS = ("pytorch", "tvm")


def x0_of(scale, variant):
    """The integer code of -1.0 for ``variant``."""
    if variant == "pytorch":
        return math.floor(-1.0 / scale)
    return int(-1.0 / scale - 1.0)          # int() truncates toward zero, like the C cast


def exp_max(x0, n):
    """``e(0) = -x0 * 2**n``: the largest value of :func:`shift_exp`."""
    return -x0 << n


def shift_exp(x, x0, n, variant):
    """``e`` for integer ``x <= 0`` (int64 tensor of any shape)."""
    x = torch.as_tensor(x, dtype=torch.int64)
    t = x + (x >> 1) - (x >> 4)
    t = torch.maximum(t, torch.full_like(t, n * x0))
    q = torch.div(t, x0, rounding_mode="floor")
    r = t - x0 * q
    if variant == "pytorch":
        return ((r - 2 * x0) << (n - q)) >> 1
    return ((r >> 1) - x0) << (n - q)


# -- I-BERT's polynomial exponential (Kim et al., ICML 2021, section 3.4) ------------------

#: ``exp(r) ~ a (r + b)**2 + c`` on ``r`` in (-ln 2, 0]: I-BERT's coefficients, evaluated as
#: ``r (r + B) + C`` with ``B = b'/S`` and ``C = c'/S**2`` (``b' = 0.96963238 / 0.35815147``,
#: ``c' = 1 / 0.35815147``) at scale ``a S**2``.
IBERT_COEF = (0.35815147, 0.96963238 / 0.35815147, 1.0 / 0.35815147)
IBERT_X0 = -0.6931


def ibert_constants(scale):
    """``(x0, b, c)``: the integer codes of ``-ln 2``, ``b'`` and ``c'`` at ``scale`` (floors, as the
    reference)."""
    return (math.floor(IBERT_X0 / scale), math.floor(IBERT_COEF[1] / scale),
            math.floor(IBERT_COEF[2] / scale ** 2))


def ibert_exp(x, scale, n=30):
    """I-BERT's ``i-exp`` for integer ``x <= 0`` at ``scale``: ``x`` clamped at ``n x0``,
    ``q = floor(x / x0)``, ``r = x - q x0``, ``z = r (r + b) + c``, ``e = z << (n - q)``."""
    x0, b, c = ibert_constants(scale)
    x = torch.as_tensor(x, dtype=torch.int64)
    t = torch.maximum(x, torch.full_like(x, n * x0))
    q = torch.div(t, x0, rounding_mode="floor")
    r = t - x0 * q
    z = r * (r + b) + c
    return (z << (n - q)).clamp(min=0)
