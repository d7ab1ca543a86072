"""Integer LayerNorm after I-ViT's I-LayerNorm (Li & Gu, ICCV 2023; reference code zkkli/I-ViT), with
FQ-ViT's Power-of-Two Factor input mode (Lin et al., IJCAI 2022, section 3.2).

For a row of ``C`` integer codes ``x_c`` (one token's channels)::

    x'_c  = x_c << alpha_c                      # PTF: per-channel factor 2**alpha_c, alpha_c in 0..3
    mu    = round(sum x'_c / C)                 # half to even, as the reference's torch.round
    var   = sum (x'_c - mu)**2                  # (the hardware: s2 - 2 mu s1 + C mu**2 from one pass)
    std   = max(isqrt(var), 1)                  # floor(sqrt(var)), exact for every var
    f     = floor((2**31 - 1) / std)
    z_c   = ((x'_c - mu) * f) >> 1              # the normalised value at scale sqrt(C) / 2**30
    out_c = requantize(z_c, bias_c, M0_c, shift_c)   # TFLite rounding (qarith.golden.requant), int8

The square root: the reference iterates Newton's ``k = floor((k + floor(var / k)) / 2)`` exactly ten
times from ``k = 2**16``, which has not converged for small variances (``var = 100`` gives 64, not 10;
``var = 10**4`` gives 108, not 100; :func:`reference_sqrt`). qarith uses the exact ``isqrt`` (Newton to
convergence in this model, :func:`isqrt`; digit-by-digit in the hardware, one stage per root bit); a
row of equal codes has ``var = 0`` and takes ``std = 1`` (its normalised values are all 0).
``|x'_c - mu| <= std`` bounds ``|z_c| <= 2**30``, so with ``|bias_c| < 2**30`` the requantizer's
32-bit ``z + bias`` never wraps.

The affine part folds into the requantization, per channel: the real output is
``gamma_c * n_c + beta_c`` with ``n_c = z_c sqrt(C) / 2**30``, so ``M_c = gamma_c sqrt(C) / 2**30 /
out_scale`` (as ``M0_c, shift_c`` by TFLite's ``QuantizeMultiplier``) and
``bias_c = round(beta_c / (gamma_c sqrt(C) / 2**30))`` (the reference's ``bias_int``, rounded instead of
floored); ``gamma_c`` must be positive (fold a sign into the next layer).

Variable-length rows (``variable_length``, :func:`ilayernorm` with ``lengths``): a row of ``L <= C``
elements is channels ``0 .. L - 1`` (their PTF factors and affine weights). Its mean is
``round(s1 / L)`` (half to even, exact for every ``L``, a power of two or not) and its variance the sum
over its ``L`` elements; ``isqrt`` and the division ``(2**31 - 1) / std`` are exact for every variance,
so nothing there depends on ``L`` being special. What does depend on ``L`` is I-ViT's output scale
``sqrt(C) / 2**30``, folded into the per-channel multipliers above: a row of ``L`` has ``sqrt(L) /
2**30``. Rather than ``C`` multipliers per channel (one per length), qarith rescales ``z`` to the
``C``-channel scale, ``z' = (z * R_L + 2**(K - 1)) >> K`` with ``R_L = round(sqrt(L / C) * 2**K)``,
``K = 24`` (:func:`length_rescale`; ``R_C = 2**K``, so a full row is unchanged), then requantizes with
the per-channel constants as before. This rescale is qarith's, not the paper's (I-ViT fixes ``C``).
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import code_range, require_integers
from .common.ragged import by_length, check_variable_length
from .requant import MULTIPLIERS, RequantConfig, quantize_multiplier, requantize

__all__ = ["ILayerNormConfig", "activation_rows", "isqrt", "reference_sqrt", "mean_round", "layernorm_params", "ilayernorm",
           "float_layernorm", "length_rescale", "INT31_MAX", "RESCALE_BITS"]

INT31_MAX = (1 << 31) - 1
#: ``K``, the fraction bits of a variable-length row's rescale factor ``R_L`` (:func:`length_rescale`).
RESCALE_BITS = 24


def _check_tuple(value, name, kind):
    if value is None:
        return
    if not isinstance(value, tuple):
        raise TypeError(f"{name} must be a tuple or None, not {value!r}")
    for item in value:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise TypeError(f"{name} entries must be {'integers' if kind is int else 'numbers'}, not {item!r}")


@dataclass(frozen=True)
class ILayerNormConfig:
    """Configuration of the ``ilayernorm`` block.

    Parameters
    ----------
    channels : int
        ``C``, the row length (1..4096).
    in_width : int
        Width of the signed input codes (2..16; 16 for a wide residual stream, as I-BERT keeps it wide).
    ptf : tuple of int or None
        FQ-ViT Power-of-Two Factors ``alpha_c`` (0..3), one per channel; ``None``: all 0.
    gamma, beta : tuple of float or None
        The LayerNorm's affine weights (``None``: ones and zeros); ``gamma`` must be positive.
    out_scale : float
        Real value of one output step.
    out_width : int
        Width of the signed output codes (2..16).
    variable_length : bool
        Rows of any length ``1..C``, each ended by the input's ``last`` (payloads ``{"data", "last"}``
        in and out; see the module docstring); ``False``: every row has ``C`` elements.
    multiplier : str
        The output requantizer's partial-product multipliers (:data:`qarith.golden.requant.MULTIPLIERS`:
        ``"fabric"`` or ``"ecp5"``, MULT18X18D instances with their registers); the function is
        the same.
    """
    channels: int = 64
    in_width: int = 8
    ptf: tuple | None = None
    gamma: tuple | None = None
    beta: tuple | None = None
    out_scale: float = 1 / 32
    out_width: int = 8
    variable_length: bool = False
    multiplier: str = "fabric"

    def __post_init__(self):
        require_integers(self, ("channels", "in_width", "out_width"))
        if self.multiplier not in MULTIPLIERS:
            raise ValueError(f"Multiplier must be one of {', '.join(MULTIPLIERS)}, not {self.multiplier!r}")
        check_variable_length(self)
        if not isinstance(self.out_scale, (int, float)) or isinstance(self.out_scale, bool):
            raise TypeError(f"out_scale must be a number, not {self.out_scale!r}")
        _check_tuple(self.ptf, "ptf", int)
        _check_tuple(self.gamma, "gamma", (int, float))
        _check_tuple(self.beta, "beta", (int, float))
        if not 1 <= self.channels <= 4096:
            raise ValueError(f"Channel count must be between 1 and 4096, not {self.channels}")
        if not 2 <= self.in_width <= 16:
            raise ValueError(f"Input width must be between 2 and 16, not {self.in_width}")
        if not 2 <= self.out_width <= 16:
            raise ValueError(f"Output width must be between 2 and 16, not {self.out_width}")
        if not (math.isfinite(self.out_scale) and self.out_scale > 0):
            raise ValueError(f"Output scale must be a positive finite number, not {self.out_scale!r}")
        for name in ("ptf", "gamma", "beta"):
            value = getattr(self, name)
            if value is not None and len(value) != self.channels:
                raise ValueError(f"{name} must have one entry per channel ({self.channels}), not {len(value)}")
        if self.ptf is not None and not all(0 <= a <= 3 for a in self.ptf):
            raise ValueError(f"PTF factors must be between 0 and 3, not {sorted(set(self.ptf))}")
        if self.gamma is not None and not all(math.isfinite(g) and g > 0 for g in self.gamma):
            raise ValueError("gamma must be positive and finite in every channel (fold a sign into the next layer)")
        if self.beta is not None and not all(math.isfinite(b) for b in self.beta):
            raise ValueError("beta must be finite in every channel")
        layernorm_params(self)          # the multipliers must be representable

    @property
    def n(self):
        """The row length (``channels``), as the other row blocks name it."""
        return self.channels

    @property
    def alphas(self):
        return self.ptf if self.ptf is not None else (0,) * self.channels

    @property
    def x_max(self):
        """Largest ``|x'|``."""
        return (1 << (self.in_width - 1)) << max(self.alphas)

    @property
    def s1_width(self):
        """Signed width of ``s1`` (and of ``mu``'s range)."""
        return (self.channels * self.x_max).bit_length() + 1

    @property
    def var_width(self):
        """Unsigned width of ``var`` (at most ``C x_max**2``)."""
        return (self.channels * self.x_max * self.x_max).bit_length()

    @property
    def root_width(self):
        return (self.var_width + 1) // 2

    @property
    def quotient_width(self):
        return INT31_MAX.bit_length()

    @property
    def out_min(self):
        return code_range(self.out_width, True)[0]

    @property
    def out_max(self):
        return code_range(self.out_width, True)[1]

    @property
    def codes(self):
        low, high = code_range(self.in_width, True)
        return torch.arange(low, high + 1, dtype=torch.int64)


def activation_rows(cfg, rows, seed=0, outliers=4):
    """``rows`` x ``C`` input codes like a transformer's LayerNorm inputs: Gaussian channels (std 16 codes,
    ``16 * 2**(in_width - 8)`` above 8 bits) with ``outliers`` channels 6x larger (the inter-channel
    variation FQ-ViT's PTF is for), clamped."""
    gen = torch.Generator().manual_seed(seed)
    scale = torch.full((cfg.channels,), 16.0 * 2 ** max(0, cfg.in_width - 8), dtype=torch.float64)
    scale[torch.randperm(cfg.channels, generator=gen)[:outliers]] *= 6
    low, high = code_range(cfg.in_width, True)
    real = torch.randn(rows, cfg.channels, generator=gen, dtype=torch.float64) * scale
    return torch.round(real).clamp(low, high).to(torch.int64)


def layernorm_params(cfg):
    """Per-channel ``(bias, multiplier, shift)`` lists of the requantization (see the module docstring)."""
    gamma = cfg.gamma if cfg.gamma is not None else (1.0,) * cfg.channels
    beta = cfg.beta if cfg.beta is not None else (0.0,) * cfg.channels
    unit = math.sqrt(cfg.channels) / 2 ** 30
    bias, multiplier, shift = [], [], []
    for g, b in zip(gamma, beta):
        try:
            m0, s = quantize_multiplier(g * unit / cfg.out_scale)
        except ValueError:
            raise ValueError(f"gamma {g} with output scale {cfg.out_scale} needs a multiplier beyond the "
                             f"requantizer's range") from None
        ratio = b / (g * unit)
        value = round(ratio) if math.isfinite(ratio) else math.inf
        if abs(value) >= 1 << 30:
            raise ValueError(f"beta {b} over gamma {g} needs a bias of {value}; z + bias must fit 32 bits "
                             f"with |z| up to 2**30, so |bias| must stay below 2**30 at this channel count")
        bias.append(value)
        multiplier.append(m0)
        shift.append(s)
    return bias, multiplier, shift


def isqrt(n):
    """``floor(sqrt(n))`` of a non-negative int64 tensor: Newton from ``2**ceil(bits/2)`` until the iterate
    stops decreasing (I-BERT's i-sqrt), vectorised."""
    zero = torch.as_tensor(n, dtype=torch.int64) == 0
    n = torch.as_tensor(n, dtype=torch.int64).clamp(min=1)
    bits = torch.zeros_like(n)
    for b in range(63):
        bits = torch.where(n >> b != 0, torch.full_like(n, b + 1), bits)
    k = torch.ones_like(n) << ((bits + 1) >> 1)
    while True:
        nxt = (k + torch.div(n, k, rounding_mode="floor")) >> 1
        done = nxt >= k
        if bool(done.all()):
            return torch.where(zero, torch.zeros_like(n), k)
        k = torch.where(done, k, nxt)


def reference_sqrt(var, iterations=10):
    """The reference's square root: exactly ``iterations`` Newton steps from ``2**16``."""
    k = torch.full_like(torch.as_tensor(var, dtype=torch.int64), 1 << 16)
    for _ in range(iterations):
        k = (k + torch.div(var, k, rounding_mode="floor")) >> 1
    return k


def mean_round(s1, channels):
    """``round(s1 / C)``, half to even."""
    q = torch.div(s1, channels, rounding_mode="floor")
    r = s1 - q * channels
    up = (2 * r > channels) | ((2 * r == channels) & (q % 2 == 1))
    return q + up.to(torch.int64)


def length_rescale(cfg):
    """``R_L = round(sqrt(L / C) * 2**K)`` for ``L = 1 .. C`` (a list; ``K`` is :data:`RESCALE_BITS`)."""
    return [round(math.sqrt(length / cfg.channels) * (1 << RESCALE_BITS)) for length in range(1, cfg.channels + 1)]


def ilayernorm(cfg, x, lengths=None):
    """The block's function on rows of input codes (``(..., C)`` int64); returns output codes. With
    ``lengths``, row ``r`` is its first ``L`` channels alone (outputs beyond them 0; see the module
    docstring)."""
    if lengths is not None:
        return by_length(lambda rows: _layernorm_rows(cfg, rows), cfg.channels, lengths, x)
    x = torch.as_tensor(x, dtype=torch.int64)
    if x.shape[-1] != cfg.channels:
        raise ValueError(f"Rows must have {cfg.channels} elements, not {x.shape[-1]}")
    return _layernorm_rows(cfg, x)


def _layernorm_rows(cfg, x):
    """Rows of ``L <= C`` channels (``L = C``: the fixed-length function)."""
    length = x.shape[-1]
    xp = x << torch.tensor(cfg.alphas[:length], dtype=torch.int64)
    mu = mean_round(xp.sum(dim=-1, keepdim=True), length)
    var = ((xp - mu) ** 2).sum(dim=-1, keepdim=True)          # the reference's definition
    std = isqrt(var).clamp(min=1)
    f = torch.div(INT31_MAX, std, rounding_mode="floor")
    z = ((xp - mu) * f) >> 1
    if length < cfg.channels:
        z = (z * length_rescale(cfg)[length - 1] + (1 << (RESCALE_BITS - 1))) >> RESCALE_BITS
    bias, multiplier, shift = (torch.tensor(v[:length], dtype=torch.int64) for v in layernorm_params(cfg))
    rq = RequantConfig(lanes=1, acc_width=32, out_width=cfg.out_width, out_signed=True)
    return requantize(rq, z, bias, multiplier, shift, 0, cfg.out_min, cfg.out_max)


def float_layernorm(cfg, x):
    """``torch.nn.functional.layer_norm`` of the real inputs ``x'`` (the PTF factors applied), with
    ``gamma``, ``beta`` and the default ``eps``, in float64."""
    xp = torch.as_tensor(x, dtype=torch.float64) * torch.tensor([2.0 ** a for a in cfg.alphas], dtype=torch.float64)
    gamma = torch.tensor(cfg.gamma if cfg.gamma is not None else (1.0,) * cfg.channels, dtype=torch.float64)
    beta = torch.tensor(cfg.beta if cfg.beta is not None else (0.0,) * cfg.channels, dtype=torch.float64)
    return torch.nn.functional.layer_norm(xp, (cfg.channels,), gamma, beta)
