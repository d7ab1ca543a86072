"""OCTAV: the MSE-optimal clipping scalar by Newton-Raphson, and the statistics one pass over a tensor
gives it (the function of the ``octav_stats`` block).

Source: Sakr et al., "Optimal Clipping and Magnitude-aware Differentiation for Improved
Quantization-aware Training" (ICML 2022), section 3. With a clip ``s`` and ``B``-bit symmetric
quantization of ``[-s, s]``, the mean-square error is (their equation 2)

    J(s) = (4**-B / 3) s**2 P(|X| <= s) + E[(|X| - s)**2 ; |X| > s]

and the Newton-Raphson step on ``dJ/ds = 0`` is their recursion (equation 3)

    s' = E[|X| ; |X| > s] / ((4**-B / 3) P(|X| <= s) + P(|X| > s)).

For unsigned data (``[0, s]`` in ``2**B`` levels) the quantization term is ``4**-B / 12``. On a tensor of
``N`` integers the expectations are sums, and multiplying through by ``3 * 4**B`` (``12 * 4**B``) gives the
integer form computed here:

    s' = floor(k * S_out / (k * N_out + N_in)),   k = 3 * 4**B (signed) or 12 * 4**B (unsigned),

with ``S_out = sum of |x|`` and ``N_out = count`` over the **clipped side** ``|x| >= s`` and ``N_in =
count of |x| < s`` (zeros included). Rounding rules, named:

* the clipped side is ``|x| >= s``, not ``> s``: with ``>``, a constant tensor ``|x| = c`` oscillates
  between ``s = c`` (nothing clipped, ``s' = 0``) and ``s = 0`` (``s' = c``); with ``>=`` it stays at ``c``;
* the division is **floor** (the quotient of non-negative integers truncated), so the clip is an integer
  in the data's own units and the iteration runs on integers only;
* the host iterates from ``s = 1``, at most ``iterations`` times (10), stopping as soon as ``s' == s``.

The block streams a tensor once per iteration and returns ``(S_out, N_out, N_in)``; the one division per
iteration is the host's (:func:`octav_step`). A clip of 0 (an all-zero tensor) leaves the quantizer
without a scale: :func:`octav_clip` returns 0 and the caller guards the scale (as ``linear_int8``'s
calibration does, with a unit scale).
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import code_range, require_integers, width_for

__all__ = ["OctavStatsConfig", "octav_stats", "octav_step", "octav_clip", "octav_clip_float",
           "octav_density_clip", "mse"]

#: The host's iteration, as in the paper's reference use: from ``s = 1``, at most 10 steps.
START_CLIP = 1
ITERATIONS = 10


@dataclass(frozen=True)
class OctavStatsConfig:
    """Configuration of the ``octav_stats`` block.

    Parameters
    ----------
    in_width : int
        Input element width (2..32).
    in_signed : bool
        Two's-complement inputs (the symmetric quantizer, ``k = 3 * 4**B``) or unsigned (``k = 12 * 4**B``).
    max_n : int
        Longest tensor (1 .. 2**24): the sum and the counts are sized so that it never wraps.
    bits : int
        The quantizer's bits ``B`` (1..16), used by the host's step only.
    """
    in_width: int = 8
    in_signed: bool = True
    max_n: int = 4096
    bits: int = 4

    def __post_init__(self):
        require_integers(self, ("in_width", "max_n", "bits"))
        if not isinstance(self.in_signed, bool):
            raise TypeError(f"in_signed must be a bool, not {self.in_signed!r}")
        if not 2 <= self.in_width <= 32:
            raise ValueError(f"Input width must be between 2 and 32, not {self.in_width}")
        if not 1 <= self.max_n <= 1 << 24:
            raise ValueError(f"Longest tensor must be between 1 and 16777216 elements, not {self.max_n}")
        if not 1 <= self.bits <= 16:
            raise ValueError(f"Quantizer bits must be between 1 and 16, not {self.bits}")

    @property
    def in_min(self):
        return code_range(self.in_width, self.in_signed)[0]

    @property
    def in_max(self):
        return code_range(self.in_width, self.in_signed)[1]

    @property
    def max_magnitude(self):
        """Largest ``|x|``: ``2**(in_width - 1)`` signed, ``2**in_width - 1`` unsigned."""
        return max(-self.in_min, self.in_max)

    @property
    def clip_width(self):
        """Width of the clip port: every clip from 0 to ``max_magnitude + 1`` (nothing clipped)."""
        return width_for(0, self.max_magnitude + 1, is_signed=False)

    @property
    def sum_width(self):
        """Width of ``S_out``: ``max_n`` elements of ``max_magnitude``."""
        return width_for(0, self.max_n * self.max_magnitude, is_signed=False)

    @property
    def count_width(self):
        return width_for(0, self.max_n, is_signed=False)

    @property
    def k(self):
        """The integer form's factor: ``3 * 4**B`` for signed data, ``12 * 4**B`` for unsigned."""
        return (3 if self.in_signed else 12) << (2 * self.bits)


def _check_tensor(cfg, x):
    x = torch.as_tensor(x)
    if x.dtype.is_floating_point or x.dtype == torch.bool:
        raise TypeError(f"OCTAV statistics take an integer tensor, not {x.dtype}")
    x = x.to(torch.int64)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError("OCTAV statistics need a tensor of at least one element")
    if x.shape[-1] > cfg.max_n:
        raise ValueError(f"Tensor of {x.shape[-1]} elements is longer than max_n = {cfg.max_n}")
    if bool((x < cfg.in_min).any()) or bool((x > cfg.in_max).any()):
        raise ValueError(f"Elements must be {cfg.in_width}-bit {'signed' if cfg.in_signed else 'unsigned'} "
                         f"codes, between {cfg.in_min} and {cfg.in_max}")
    return x


def octav_stats(cfg, x, clip):
    """One pass of the block over tensors ``x`` (integers; the last dimension is one tensor, earlier
    dimensions are a batch) at integer ``clip`` (a scalar or one per tensor): ``(S_out, N_out, N_in)``,
    each of the batch's shape."""
    x = _check_tensor(cfg, x)
    clip = torch.as_tensor(clip, dtype=torch.int64)
    if bool((clip < 0).any()):
        raise ValueError("Clip must be a non-negative integer")
    magnitude = x.abs()
    clipped = magnitude >= clip.unsqueeze(-1) if clip.ndim else magnitude >= clip
    sum_out = torch.where(clipped, magnitude, 0).sum(dim=-1)
    n_out = clipped.sum(dim=-1)
    return sum_out, n_out, x.shape[-1] - n_out


def octav_step(cfg, sum_out, n_out, n_in):
    """The host's Newton step from one pass's statistics: ``floor(k S_out / (k N_out + N_in))``."""
    sum_out, n_out, n_in = (torch.as_tensor(t, dtype=torch.int64) for t in (sum_out, n_out, n_in))
    # Python integers: k * S_out reaches 2**(2 B + 4 + sum_width), past int64 for wide configs.
    return torch.tensor([cfg.k * s // (cfg.k * o + i) for s, o, i in
                         zip(sum_out.reshape(-1).tolist(), n_out.reshape(-1).tolist(),
                             n_in.reshape(-1).tolist())], dtype=torch.int64).reshape(sum_out.shape)


def octav_clip(cfg, x, start=START_CLIP, iterations=ITERATIONS):
    """The host's iteration over passes of :func:`octav_stats`: the clip of each tensor of ``x`` and the
    number of passes it took (the last one confirms ``s' == s``, or the budget ran out)."""
    clip = torch.full(torch.as_tensor(x).shape[:-1], start, dtype=torch.int64)
    passes = 0
    for passes in range(1, iterations + 1):
        following = octav_step(cfg, *octav_stats(cfg, x, clip))
        if torch.equal(following, clip):
            break
        clip = following
    return clip, passes


def octav_clip_float(x, bits, is_signed=True, start=1.0, iterations=30, levels=None):
    """The float recursion on a float tensor's last dimension (the reference the integer form
    approximates, and the calibration of ``linear_int8(calibration_method="octav")``).

    ``levels``: quantization steps per side of zero, ``s / step`` (``None``: the paper's ``2**(B-1)``
    signed, ``2**B`` unsigned). The noise term of equation 2 is ``step**2 / 12 = s**2 / (12 levels**2)``,
    which is the paper's ``4**-B s**2 / 3`` at ``2**(B-1)`` levels; a quantizer with ``2**(B-1) - 1`` levels
    (symmetric codes, no ``-2**(B-1)``) passes its own count."""
    magnitude = torch.as_tensor(x, dtype=torch.float64).abs()
    factor = 4.0 ** -bits / (3 if is_signed else 12) if levels is None else 1.0 / (12 * levels * levels)
    clip = torch.full(magnitude.shape[:-1], float(start), dtype=torch.float64)
    for _ in range(iterations):
        clipped = magnitude >= clip.unsqueeze(-1)
        following = torch.where(clipped, magnitude, 0).sum(-1) / (factor * (~clipped).sum(-1) + clipped.sum(-1))
        if torch.equal(following, clip):
            break
        clip = following
    return clip


def octav_density_clip(distribution, bits, iterations=200):
    """The recursion on a unit distribution's exact moments: ``"gaussian"`` (N(0, 1)) or ``"laplace"``
    (scale 1), symmetric quantizer. The values the paper's figure 1 shows (to four digits)."""
    def step(s):
        if distribution == "gaussian":
            tail = math.erfc(s / math.sqrt(2))
            moment = 2 * math.exp(-s * s / 2) / math.sqrt(2 * math.pi)
        elif distribution == "laplace":
            tail = math.exp(-s)
            moment = (s + 1) * math.exp(-s)
        else:
            raise ValueError(f"Distribution must be 'gaussian' or 'laplace', not {distribution!r}")
        return moment / (4.0 ** -bits / 3 * (1 - tail) + tail)
    s = 1.0
    for _ in range(iterations):
        s = step(s)
    return s


def mse(x, clip, bits, is_signed=True):
    """Mean-square error of ``B``-bit uniform quantization of float ``x`` clipped at ``clip`` (round to
    nearest on ``2**B`` levels over ``[-clip, clip]``, or ``[0, clip]`` unsigned), to check that the clip
    found minimises it."""
    x = torch.as_tensor(x, dtype=torch.float64)
    levels = (1 << (bits - 1)) if is_signed else (1 << bits)
    step = clip / levels
    q = torch.round(x / step).clamp(-levels if is_signed else 0, levels) * step
    return float(((q - x) ** 2).mean())
