"""A-priori intervals of I-ViT's shift exponential (:func:`qarith.golden.common.shift_exp.shift_exp`, the
``"pytorch"`` variant), derived from its roundings, for the float-error bounds of ``shiftgelu`` and
``shiftmax``.

For an integer ``d <= 0``, ``u = -x0`` and ``n`` fixed-point bits, the model computes
``t = d + (d >> 1) - (d >> 4)``, clamps it at ``-n u``, splits ``t / x0 = q + f`` (``q`` an integer,
``0 <= f < 1``) and returns ``e = ((r - 2 x0) << (n - q)) >> 1`` with ``r = -u f``, so exactly

    e / e(0) = 2**-q (1 - f / 2) - delta / e(0),   e(0) = u 2**n,   0 <= delta <= 1/2 (only at q = n).

With ``T = q + f = -t / u``: ``e / e(0) = 2**-T rho(f) - delta / e(0)``, where ``rho(f) = 2**f (1 - f/2)``
lies in ``[1, RHO_MAX]`` (its maximum at ``f = 2 - 1/ln 2``). The two floors in ``t`` put it in
``[1.4375 d - 1/2, 1.4375 d + 15/16]`` (and ``t <= 0``); ``t`` does not decrease with ``d``, so an
interval of ``d`` maps to an interval of ``e`` through its ends.
"""

import math

import torch

__all__ = ["RHO_MAX", "shift_exp_interval"]

#: ``max 2**f (1 - f/2)`` over ``[0, 1)``: the linear ``2**-f ~ 1 - f/2``'s largest relative excess.
RHO_MAX = 2 ** (2 - 1 / math.log(2)) * (1 - (2 - 1 / math.log(2)) / 2)


def shift_exp_interval(d_low, d_high, x0, n):
    """``(low, high)`` float64 tensors bounding ``e(d) / e(0)`` for every integer ``d`` in
    ``[d_low, d_high]`` (tensors of reals, ``d_high <= 0``), elementwise."""
    u = -x0
    d_low = torch.as_tensor(d_low, dtype=torch.float64)
    d_high = torch.as_tensor(d_high, dtype=torch.float64)
    t_low = (1.4375 * d_low - 0.5).clamp(min=-n * u)
    t_high = (1.4375 * d_high + 15 / 16).clamp(min=-n * u, max=0)
    e0 = u * 2.0 ** n
    return torch.exp2(t_low / u) - 1 / (2 * e0), torch.exp2(t_high / u) * RHO_MAX
