"""Winograd convolution F(2x2,3x3) and F(4x4,3x3) with tap-wise power-of-two quantization, integer-only.

Source: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016) for the minimal
filtering algorithms, and Andri et al., "Going Further With Winograd Convolutions: Tap-Wise Quantization
for Efficient Inference on 4x4 Tiles" (MICRO 2022) for the tap-wise scales; ``ALGORITHMS.md`` section 8.
For one output tile of ``m x m`` pixels (``m = tile``, 2 or 4) the ``n x n`` input tile (``n = m + 2``)
``d`` of every input channel ``c`` and the 3x3 kernel ``g`` give::

    Y = A^T [ sum_c (G g G^T) (.) (B^T d B) ] A

The three blocks and this model compute it in integers, in this order (every rounding named):

1. ``V = B^T d B`` (``wino_input``): exact. ``B^T`` holds 0, +-1, +-2, +-4, +-5, so the hardware uses
   shifts and adds only. Per tap ``(i, j)`` the coefficients of ``V[i, j]`` are ``B^T[i, k] B^T[j, l]``;
   over all signed ``w``-bit tiles ``V[i, j]`` spans ``[-2**(w-1) P - (2**(w-1) - 1) N,
   (2**(w-1) - 1) P + 2**(w-1) N]`` with ``P``, ``N`` the sums of its positive and of its negated negative
   coefficients, both ends reached (:func:`input_transform_range`). The sum of the absolute
   coefficients is ``r_i r_j`` with ``r_i = sum_k |B^T[i, k]|``, so ``|V[i, j]| <= 2**(w-1) r_i r_j``:
   for int8, at most 512 on every F2 tap (exact range -512..510 at worst: 10-bit output), and
   ``128 r_i r_j`` with ``r = (10, 10, 10, 6, 6, 10)`` for F4, at most 12800 (exact range
   -12768..12750 at worst, tap (1, 1): 15-bit output, about 100x growth).
2. ``U = G g G^T`` offline, exact: ``G`` is held as :class:`fractions.Fraction` entries and applied as
   the integer matrix ``D G`` (``D`` = 2 for F2, 24 for F4, the common denominator), so ``U`` is the
   integer tensor ``(D G) g (D G)^T`` over ``D**2`` with no rounding.
3. Tap-wise power-of-two scales (:func:`tap_scales`): tap ``t`` gets exponent ``s_t``, the largest
   integer with ``max |U_t| * 2**s_t <= 2**(b-1) - 1`` over the calibration weights (the layer's own
   weights), ``b = weight_width``. So ``2**-s_t`` is the smallest power-of-two step at which the tap's
   largest weight fits ``b`` bits. ``scales="tap"`` takes the max over both channel axes,
   ``"tap_channel"`` over input channels only (one exponent per tap and output channel), ``"layer"`` one
   exponent for all taps (the plain single-scale scheme, for comparison). A tap whose weights are all zero
   takes the common exponent below. Quantized weights ``U_q = round(U * 2**s_t)``, rounding half away
   from zero, exact on the rationals, so ``|U_q| <= 2**(b-1) - 1``.
4. Winograd-domain products accumulated over input channels, exact: ``M_t = sum_c U_q[c, t] V[c, t]``.
5. Per-tap shift to the common exponent ``s_c = min_t s_t`` (per output channel):
   ``M'_t = (M_t + 2**(e_t - 1)) >> e_t`` with ``e_t = s_t - s_c >= 0`` (round half up; no rounding
   where ``e_t = 0``). Now every tap carries scale ``2**s_c``.
6. ``Y = A^T M' A`` (``wino_output``): exact, shifts and adds (``A^T`` holds 0, +-1, +-2, +-4, +-8).
   ``Y`` approximates ``2**s_c`` times the direct convolution's accumulator.
7. Requantization to int8 by TFLite's ``MultiplyByQuantizedMultiplier`` (:mod:`qarith.golden.requant`,
   the ``requant`` block), with the bias and multiplier of the direct layer carried to scale
   ``2**s_c``: ``bias_w = round(bias * 2**s_c)`` (half away from zero) and
   ``QuantizeMultiplier(M * 2**-s_c)``.

The references are the same layer as a direct integer convolution (:func:`direct_conv_int`, exact
``conv2d`` in float64 on the int8 codes, then the same requantization) and the float layer
(:func:`torch.nn.functional.conv2d`). :func:`winograd_error` measures both for tap-wise and
single-scale quantization.
"""

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache

import torch

from .codes import code_range, require_integers, width_for
from .requant import RequantConfig, quantize_multiplier, requantize

__all__ = [
    "TILES", "SCALES", "WinogradMatrices", "matrices", "input_transform", "input_transform_range",
    "output_transform", "output_transform_range", "weight_transform", "tap_scales", "round_shift",
    "width_for", "WinoInputConfig", "WinoOutputConfig", "WinoConvConfig", "WinogradLayer", "winograd_layer",
    "wino_input", "wino_output", "wino_conv", "wino_accumulate", "direct_conv_int", "direct_conv_tiles",
    "feature_map_tiles", "assemble_tiles", "wino_conv2d", "quantize_conv", "winograd_error",
    "synthetic_weights", "seeded_conv", "seeded_conv_config", "DIRECT_MULTS_PER_OUTPUT",
]

#: Supported output tile sizes ``m`` (F(2x2,3x3) and F(4x4,3x3)).
TILES = (2, 4)
#: Tap-scale granularities (see step 3 of the module docstring).
SCALES = ("tap", "tap_channel", "layer")
#: Multiplications per output pixel of a direct 3x3 convolution, per input channel.
DIRECT_MULTS_PER_OUTPUT = 9

_F = Fraction
_MATRICES = {
    2: {
        "BT": ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        "G": ((_F(1), _F(0), _F(0)), (_F(1, 2), _F(1, 2), _F(1, 2)), (_F(1, 2), _F(-1, 2), _F(1, 2)),
              (_F(0), _F(0), _F(1))),
        "AT": ((1, 1, 1, 0), (0, 1, -1, -1)),
    },
    4: {
        "BT": ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0),
               (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1)),
        "G": ((_F(1, 4), _F(0), _F(0)), (_F(-1, 6), _F(-1, 6), _F(-1, 6)), (_F(-1, 6), _F(1, 6), _F(-1, 6)),
              (_F(1, 24), _F(1, 12), _F(1, 6)), (_F(1, 24), _F(-1, 12), _F(1, 6)), (_F(0), _F(0), _F(1))),
        "AT": ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1)),
    },
}


@dataclass(frozen=True)
class WinogradMatrices:
    """The transform matrices of F(m x m, 3 x 3) as nested tuples (``G`` of Fractions)."""
    tile: int
    BT: tuple
    G: tuple
    AT: tuple

    @property
    def n(self):
        """Input tile size ``m + 2``."""
        return self.tile + 2

    @property
    def denominator(self):
        """Least common denominator ``D`` of ``G``'s entries."""
        return math.lcm(*(entry.denominator for row in self.G for entry in row))

    @property
    def G_scaled(self):
        """``D G`` as integers."""
        return tuple(tuple(int(entry * self.denominator) for entry in row) for row in self.G)


def _check_tile(tile):
    if not isinstance(tile, int) or isinstance(tile, bool):
        raise TypeError(f"tile must be an integer, not {tile!r}")
    if tile not in TILES:
        raise ValueError(f"Tile must be 2 (F(2x2,3x3)) or 4 (F(4x4,3x3)), not {tile}")


def matrices(tile):
    """:class:`WinogradMatrices` for output tile ``tile`` (2 or 4)."""
    _check_tile(tile)
    return WinogradMatrices(tile, **_MATRICES[tile])


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.int64)


def _two_sided_range(coefficients, width):
    """Exact ``(min, max)`` of ``sum c_k x_k`` over signed ``width``-bit ``x_k`` (per entry of the
    coefficient tensor's leading dims, coefficients in the last two)."""
    low, high = code_range(width, True)
    positive = coefficients.clamp(min=0).sum(dim=(-2, -1))
    negative = (-coefficients).clamp(min=0).sum(dim=(-2, -1))
    return low * positive - high * negative, high * positive - low * negative


def _tap_coefficients(rows):
    """``C[i, j, k, l] = R[i, k] R[j, l]``: the coefficients of entry ``(i, j)`` of ``R X R^T``."""
    r = _tensor(rows)
    return torch.einsum("ik,jl->ijkl", r, r)


def input_transform(tile, d):
    """``B^T d B`` of integer tiles ``d (..., n, n)`` (exact, int64 matrix products)."""
    bt = _tensor(matrices(tile).BT)
    return bt @ torch.as_tensor(d, dtype=torch.int64) @ bt.T


def input_transform_range(tile, in_width=8):
    """Exact per-tap ``(min, max)`` tensors ``(n, n)`` of ``B^T d B`` over all signed ``in_width``-bit
    tiles (both ends are reached, by the tile of extreme codes with the coefficients' signs)."""
    return _two_sided_range(_tap_coefficients(matrices(tile).BT), in_width)


def output_transform(tile, m):
    """``A^T m A`` of integer tiles ``m (..., n, n)`` (exact)."""
    at = _tensor(matrices(tile).AT)
    return at @ torch.as_tensor(m, dtype=torch.int64) @ at.T


def output_transform_range(tile, in_width):
    """Exact per-pixel ``(min, max)`` tensors ``(m, m)`` of ``A^T x A`` over signed ``in_width``-bit
    tiles ``x``."""
    return _two_sided_range(_tap_coefficients(matrices(tile).AT), in_width)


def round_shift(x, shift):
    """``(x + 2**(shift - 1)) >> shift``: division by ``2**shift`` rounding half up (floor shift, so
    ties go toward plus infinity); ``x`` unchanged where ``shift`` is 0. Broadcasts."""
    x = torch.as_tensor(x, dtype=torch.int64)
    shift = torch.as_tensor(shift, dtype=torch.int64)
    half = torch.bitwise_left_shift(torch.ones_like(shift), shift) >> 1
    return (x + half) >> shift


def weight_transform(tile, g):
    """``G g G^T`` of kernels ``g (..., 3, 3)``, exactly, as ``(numerators, D**2)``: int64 numerators
    ``(D G) g (D G)^T`` over the common denominator ``D**2`` (4 for F2, 576 for F4)."""
    mats = matrices(tile)
    gs = _tensor(mats.G_scaled)
    return gs @ torch.as_tensor(g, dtype=torch.int64) @ gs.T, mats.denominator ** 2


def _largest_fitting_exponent(numerator, denominator, limit):
    """Largest integer ``s`` with ``numerator / denominator * 2**s <= limit`` (``numerator > 0``)."""
    bound = limit * denominator

    def fits(s):
        return (numerator << s) <= bound if s >= 0 else numerator <= (bound << -s)

    s = bound.bit_length() - numerator.bit_length()
    while not fits(s):
        s -= 1
    while fits(s + 1):
        s += 1
    return s


def _round_ratio(numerator, denominator):
    """``numerator / denominator`` rounded half away from zero (int64 tensors, positive denominator)."""
    magnitude = (2 * numerator.abs() + denominator) // (2 * denominator)
    return torch.where(numerator < 0, -magnitude, magnitude)


def tap_scales(tile, g, weight_width=8, scales="tap"):
    """Tap exponents ``s (C_out, n, n)`` of kernels ``g (C_out, C_in, 3, 3)`` (step 3 of the module
    docstring) and the common exponent ``s_c (C_out,)``."""
    if scales not in SCALES:
        raise ValueError(f"Scales must be one of {', '.join(SCALES)}, not {scales!r}")
    numerators, denominator = weight_transform(tile, g)
    limit = (1 << (weight_width - 1)) - 1
    peak = numerators.abs().amax(dim=1)                                   # (C_out, n, n)
    if scales == "tap":
        peak = peak.amax(dim=0, keepdim=True).expand_as(peak)
    elif scales == "layer":
        peak = peak.amax(dim=(0, 1, 2), keepdim=True).expand_as(peak)
    exponents = torch.zeros_like(peak)
    common = torch.zeros(peak.shape[0], dtype=torch.int64)
    for o in range(peak.shape[0]):
        nonzero = [(i, j) for i in range(peak.shape[1]) for j in range(peak.shape[2]) if peak[o, i, j] > 0]
        for i, j in nonzero:
            exponents[o, i, j] = _largest_fitting_exponent(int(peak[o, i, j]), denominator, limit)
        if nonzero:
            common[o] = min(int(exponents[o, i, j]) for i, j in nonzero)
        exponents[o][peak[o] == 0] = common[o]
    return exponents, common


def synthetic_weights(in_channels, out_channels, seed=0):
    """Seeded int8 kernel codes, uniform in [-127, 127], as a flat tuple (the default layer)."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(-127, 128, (out_channels * in_channels * 9,), generator=generator)
    return tuple(codes.tolist())


def _tuple_field(cfg, name, kind, length):
    value = getattr(cfg, name)
    if isinstance(value, list):
        value = tuple(value)                                              # a JSON round trip makes lists
    if not isinstance(value, tuple) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{name} must be a tuple of {'integers' if kind is int else 'numbers'}, not {value!r}")
    if len(value) != length:
        raise ValueError(f"{name} must hold {length} values, not {len(value)}")
    object.__setattr__(cfg, name, value)
    return value


def _check_common(cfg):
    _check_tile(cfg.tile)
    require_integers(cfg, ("kernel",))
    if cfg.kernel != 3:
        raise ValueError(f"Kernel must be 3 (3x3) for F({cfg.tile}x{cfg.tile},3x3), not {cfg.kernel}")


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
        _check_common(self)
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
        _check_common(self)
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


@dataclass(frozen=True)
class WinoConvConfig:
    """Configuration of the ``wino_conv`` block: one int8 3x3 convolution layer (stride 1), computed the
    Winograd way with tap-wise quantized weights.

    The layer is given in TFLite form, as for a direct convolution: int8 kernel codes, int32 bias at the
    accumulator's scale, and per output channel the real multiplier ``S_x S_w / S_y``. The Winograd
    constants (quantized transformed weights, tap shifts, scaled bias, Q31 multipliers) are derived from it
    by :func:`winograd_layer`, and the generator bakes them in.

    Parameters
    ----------
    tile : int
        Output tile size ``m``: 2 or 4.
    kernel : int
        Kernel size; only 3 is supported.
    in_channels : int
        Input channels ``C_in`` accumulated per output tile (1..1024).
    out_channels : int
        Output channels, computed side by side (``out_channels * m * m`` requantizer lanes, at most 64).
    in_width : int
        Signed activation code width (2..8).
    weight_width : int
        Signed width of the quantized Winograd-domain weights (2..16).
    scales : str
        ``"tap"``, ``"tap_channel"`` or ``"layer"`` (step 3 of the module docstring).
    weights : tuple of int or None
        Kernel codes ``g[o, c, ky, kx]`` flattened row-major, in [-128, 127]. ``None``:
        :func:`synthetic_weights` with seed 0.
    bias : tuple of int or None
        int32 bias per output channel at the direct accumulator's scale (``None``: zeros).
    multiplier : tuple of float or None
        Real requantization multiplier ``S_x S_w[o] / S_y`` per output channel (``None``:
        ``2**-9 / sqrt(in_channels)``, which puts about four standard deviations of a uniform random
        layer's accumulator at full scale).
    output_offset : int
        Output zero point (-128..127).
    act_min, act_max : int
        Output clamp bounds (int8).
    """
    tile: int = 2
    kernel: int = 3
    in_channels: int = 2
    out_channels: int = 2
    in_width: int = 8
    weight_width: int = 8
    scales: str = "tap"
    weights: tuple | None = None
    bias: tuple | None = None
    multiplier: tuple | None = None
    output_offset: int = 0
    act_min: int = -128
    act_max: int = 127

    def __post_init__(self):
        _check_common(self)
        require_integers(self, ("in_channels", "out_channels", "in_width", "weight_width", "output_offset",
                                "act_min", "act_max"))
        if not 1 <= self.in_channels <= 1024:
            raise ValueError(f"Input channels must be between 1 and 1024, not {self.in_channels}")
        lanes = 64 // (self.tile * self.tile)
        if not 1 <= self.out_channels <= lanes:
            raise ValueError(f"Output channels must be between 1 and {lanes} for F({self.tile}x{self.tile},3x3) "
                             f"(the requantizer's 64 lanes), not {self.out_channels}")
        if not 2 <= self.in_width <= 8:
            raise ValueError(f"Input width must be between 2 and 8, not {self.in_width}")
        if not 2 <= self.weight_width <= 16:
            raise ValueError(f"Weight width must be between 2 and 16, not {self.weight_width}")
        if self.scales not in SCALES:
            raise ValueError(f"Scales must be one of {', '.join(SCALES)}, not {self.scales!r}")
        if self.weights is None:
            object.__setattr__(self, "weights", synthetic_weights(self.in_channels, self.out_channels))
        if self.bias is None:
            object.__setattr__(self, "bias", (0,) * self.out_channels)
        if self.multiplier is None:
            object.__setattr__(self, "multiplier", (2.0 ** -9 / math.sqrt(self.in_channels),) * self.out_channels)
        weights = _tuple_field(self, "weights", int, self.out_channels * self.in_channels * 9)
        bias = _tuple_field(self, "bias", int, self.out_channels)
        multiplier = _tuple_field(self, "multiplier", (int, float), self.out_channels)
        if not all(-128 <= w <= 127 for w in weights):
            raise ValueError(f"Weights must be int8 codes in [-128, 127], not {min(weights)}..{max(weights)}")
        if not all(-(1 << 31) <= b < (1 << 31) for b in bias):
            raise ValueError(f"Bias must be int32, not {min(bias)}..{max(bias)}")
        if not all(0 < v < math.inf for v in multiplier):
            raise ValueError(f"Multipliers must be positive and finite, not {multiplier!r}")
        if not -128 <= self.output_offset <= 127:
            raise ValueError(f"Output offset must be between -128 and 127, not {self.output_offset}")
        if not -128 <= self.act_min <= self.act_max <= 127:
            raise ValueError(f"Clamp bounds must satisfy -128 <= act_min <= act_max <= 127, not "
                             f"{self.act_min} and {self.act_max}")
        layer = winograd_layer(self)
        if layer.acc_width > 32:
            raise ValueError(f"A^T M A needs {layer.acc_width} bits for this layer (bound "
                             f"{layer.acc_bound}), more than the requantizer's 32-bit input")
        largest_bias = int(layer.bias.abs().max())
        if layer.acc_bound + largest_bias > (1 << 31) - 1:
            raise ValueError(f"Bias scaled to the Winograd domain (up to {largest_bias}) plus the accumulator "
                             f"bound {layer.acc_bound} exceeds int32")

    @property
    def n(self):
        return self.tile + 2

    @property
    def kernels(self):
        """The kernel codes as an int64 tensor ``(C_out, C_in, 3, 3)``."""
        return torch.tensor(self.weights, dtype=torch.int64).reshape(self.out_channels, self.in_channels, 3, 3)

    @property
    def input(self):
        """The :class:`WinoInputConfig` of the engine's input transform."""
        return WinoInputConfig(tile=self.tile, in_width=self.in_width)

    @property
    def requant(self):
        return RequantConfig(lanes=self.out_channels * self.tile * self.tile, acc_width=winograd_layer(self).acc_width)


@dataclass(frozen=True, eq=False)
class WinogradLayer:
    """The Winograd-domain constants of a :class:`WinoConvConfig` (from :func:`winograd_layer`).

    Attributes
    ----------
    weights : torch.Tensor
        ``U_q (C_out, C_in, n, n)``, quantized transformed weights.
    exponents : torch.Tensor
        ``s (C_out, n, n)``, tap exponents.
    common : torch.Tensor
        ``s_c (C_out,)``, common exponents.
    shifts : torch.Tensor
        ``e = s - s_c (C_out, n, n)``, the per-tap right shifts.
    bias, multiplier, shift : torch.Tensor
        Requantization parameters per output channel at scale ``2**s_c``.
    mac_bounds : torch.Tensor
        ``(C_out, n, n)`` bound on ``|M_t|`` over all input tiles.
    shifted_bounds : torch.Tensor
        ``(C_out, n, n)`` bound on ``|M'_t|``.
    acc_bound : int
        Bound on ``|Y|``; ``acc_width`` its signed width.
    """
    weights: torch.Tensor
    exponents: torch.Tensor
    common: torch.Tensor
    shifts: torch.Tensor
    bias: torch.Tensor
    multiplier: torch.Tensor
    shift: torch.Tensor
    mac_bounds: torch.Tensor
    shifted_bounds: torch.Tensor
    acc_bound: int
    acc_width: int


def _derive_layer(cfg):
    kernels = cfg.kernels
    exponents, common = tap_scales(cfg.tile, kernels, cfg.weight_width, cfg.scales)
    numerators, denominator = weight_transform(cfg.tile, kernels)
    s = exponents.unsqueeze(1)
    weights = _round_ratio(torch.bitwise_left_shift(numerators, s.clamp(min=0)),
                           torch.bitwise_left_shift(torch.full_like(s, denominator), (-s).clamp(min=0)))
    shifts = exponents - common.view(-1, 1, 1)
    bias = torch.tensor(cfg.bias, dtype=torch.int64)
    bias = torch.where(common >= 0, torch.bitwise_left_shift(bias, common.clamp(min=0)),
                       _round_ratio(bias, torch.bitwise_left_shift(torch.ones_like(bias), (-common).clamp(min=0))))
    pairs = [quantize_multiplier(math.ldexp(m, -int(c))) for m, c in zip(cfg.multiplier, common)]
    low, high = input_transform_range(cfg.tile, cfg.in_width)
    v_bound = torch.maximum(-low, high)
    mac_bounds = (weights.abs() * v_bound).sum(dim=1)
    shifted_bounds = round_shift(mac_bounds, shifts)
    a = _tap_coefficients(matrices(cfg.tile).AT).abs()                   # (m, m, n, n)
    acc_bound = int(torch.einsum("ijkl,okl->oij", a, shifted_bounds).max())
    return WinogradLayer(
        weights=weights, exponents=exponents, common=common, shifts=shifts, bias=bias,
        multiplier=torch.tensor([m for m, _ in pairs], dtype=torch.int64),
        shift=torch.tensor([sh for _, sh in pairs], dtype=torch.int64),
        mac_bounds=mac_bounds, shifted_bounds=shifted_bounds, acc_bound=acc_bound,
        acc_width=max(2, width_for(-acc_bound, acc_bound)))  # all-zero weights: the narrowest requant input


@lru_cache(maxsize=64)
def winograd_layer(cfg):
    """The :class:`WinogradLayer` constants of ``cfg`` (derived once per config and cached)."""
    return _derive_layer(cfg)


def wino_input(cfg, tiles):
    """The ``wino_input`` block: ``B^T d B`` of int tiles ``(..., n, n)``."""
    return input_transform(cfg.tile, tiles)


def wino_output(cfg, tiles):
    """The ``wino_output`` block: ``round_shift(A^T M A, shift)`` of int tiles ``(..., n, n)``."""
    return round_shift(output_transform(cfg.tile, tiles), cfg.shift)


def wino_accumulate(cfg, tiles, layer=None):
    """Steps 1-6: ``Y (T, C_out, m, m)`` at scale ``2**s_c`` for input tiles ``(T, C_in, n, n)``."""
    layer = layer or winograd_layer(cfg)
    v = input_transform(cfg.tile, tiles)                                 # (T, C_in, n, n)
    products = torch.einsum("ocij,tcij->toij", layer.weights, v)         # exact in int64
    return output_transform(cfg.tile, round_shift(products, layer.shifts))


def wino_conv(cfg, tiles, layer=None):
    """The ``wino_conv`` block: int8 output tiles ``(T, C_out, m, m)`` for int tiles ``(T, C_in, n, n)``."""
    layer = layer or winograd_layer(cfg)
    y = wino_accumulate(cfg, tiles, layer)
    view = (1, -1, 1, 1)
    return requantize(cfg.requant, y, layer.bias.view(view), layer.multiplier.view(view),
                      layer.shift.view(view), cfg.output_offset, cfg.act_min, cfg.act_max)


def feature_map_tiles(cfg, x, padding=1):
    """Overlapping ``n x n`` input tiles ``(T, C_in, n, n)`` of feature map ``x (C_in, H, W)``, zero
    padded by ``padding``, at stride ``m``, output tiles in row-major order. The output
    ``(H + 2 padding - 2) x (W + ...)`` must be a whole number of tiles."""
    x = torch.as_tensor(x, dtype=torch.int64)
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    height, width = padded.shape[1] - 2, padded.shape[2] - 2
    if height % cfg.tile or width % cfg.tile:
        raise ValueError(f"Output size {height}x{width} is not a whole number of {cfg.tile}x{cfg.tile} tiles")
    tiles = padded.unfold(1, cfg.n, cfg.tile).unfold(2, cfg.n, cfg.tile)  # (C, TY, TX, n, n)
    return tiles.permute(1, 2, 0, 3, 4).reshape(-1, x.shape[0], cfg.n, cfg.n)


def assemble_tiles(cfg, y, height, width):
    """Output tiles ``(T, C_out, m, m)`` in row-major tile order as a map ``(C_out, height, width)``."""
    m = cfg.tile
    grid = y.reshape(height // m, width // m, y.shape[1], m, m)
    return grid.permute(2, 0, 3, 1, 4).reshape(y.shape[1], height, width)


def wino_conv2d(cfg, x, padding=1):
    """The block over a whole feature map ``x (C_in, H, W)`` of int codes: int8 ``(C_out, H', W')``."""
    tiles = feature_map_tiles(cfg, x, padding)
    height, width = x.shape[1] + 2 * padding - 2, x.shape[2] + 2 * padding - 2
    return assemble_tiles(cfg, wino_conv(cfg, tiles), height, width)


def _direct_accumulator(kernels, x, padding):
    acc = torch.nn.functional.conv2d(torch.as_tensor(x, dtype=torch.float64), kernels.to(torch.float64),
                                     padding=padding)
    return acc.round().to(torch.int64)                                   # exact: every value < 2**53


def direct_conv_int(cfg, x, padding=1):
    """Reference: the same int8 layer as a direct convolution, ``x (N, C_in, H, W)`` or ``(C_in, H, W)``
    int codes: exact accumulator plus bias, then the same TFLite requantization at the direct scale.
    Returns ``(int8 outputs, accumulators without bias)``."""
    x = torch.as_tensor(x, dtype=torch.int64)
    acc = _direct_accumulator(cfg.kernels, x, padding)
    pairs = [quantize_multiplier(m) for m in cfg.multiplier]
    view = (-1, 1, 1)
    out = requantize(RequantConfig(), acc, torch.tensor(cfg.bias).view(view),
                     torch.tensor([m for m, _ in pairs]).view(view), torch.tensor([s for _, s in pairs]).view(view),
                     cfg.output_offset, cfg.act_min, cfg.act_max)
    return out, acc


def direct_conv_tiles(cfg, tiles):
    """Exact direct accumulators ``(T, C_out, m, m)`` of input tiles ``(T, C_in, n, n)`` (no padding)."""
    return _direct_accumulator(cfg.kernels, tiles, 0)


def quantize_conv(conv, calibration, tile=4, scales="tap", weight_width=8):
    """Post-training int8 quantization of a float 3x3 ``torch.nn.Conv2d`` (stride 1, padding 1) for the
    ``wino_conv`` block. Returns ``(config, input_scale, output_scale)``.

    Rules: input activations per-tensor symmetric, ``S_x = max|x| / 127`` over ``calibration``
    ``(N, C_in, H, W)`` (zero point 0, so zero padding is exact); weights per output channel symmetric,
    ``S_w[o] = max|w[o]| / 127``, codes ``round(w / S_w)`` (half to even); bias ``round(b / (S_x S_w))``;
    output per-tensor symmetric from the float layer's calibration outputs, ``S_y = max|y| / 127``.
    """
    if not isinstance(conv, torch.nn.Conv2d) or conv.kernel_size != (3, 3) or conv.stride != (1, 1):
        raise TypeError(f"Expected a 3x3 stride-1 torch.nn.Conv2d, not {conv!r}")
    with torch.no_grad():
        weight = conv.weight.detach().to(torch.float64)
        weight_scale = weight.abs().amax(dim=(1, 2, 3)) / 127
        weight_scale = torch.where(weight_scale > 0, weight_scale, torch.ones_like(weight_scale))
        codes = torch.round(weight / weight_scale.view(-1, 1, 1, 1)).clamp(-127, 127).to(torch.int64)
        calibration = calibration.to(torch.float64)
        input_scale = float(calibration.abs().max()) / 127
        bias = conv.bias.detach().to(torch.float64) if conv.bias is not None \
            else torch.zeros(conv.out_channels, dtype=torch.float64)
        bias_q = torch.round(bias / (input_scale * weight_scale)).to(torch.int64)
        reference = torch.nn.functional.conv2d(calibration, weight, bias, padding=1)
        output_scale = float(reference.abs().max()) / 127
    cfg = WinoConvConfig(tile=tile, in_channels=conv.in_channels, out_channels=conv.out_channels,
                         weight_width=weight_width, scales=scales, weights=tuple(codes.flatten().tolist()),
                         bias=tuple(bias_q.tolist()),
                         multiplier=tuple(input_scale * float(s) / output_scale for s in weight_scale))
    return cfg, input_scale, output_scale


def seeded_conv(in_channels, out_channels, seed=0):
    """A float64 ``nn.Conv2d(in_channels, out_channels, 3, padding=1)`` with PyTorch's default
    initialisation under ``seed`` (the global random state is left as it was)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Conv2d(in_channels, out_channels, 3, padding=1).to(torch.float64)


def seeded_conv_config(tile, in_channels, out_channels, seed=0, scales="tap", size=8, batch=4):
    """:func:`quantize_conv` of :func:`seeded_conv` calibrated on ``batch`` standard Gaussian feature
    maps of ``size x size`` (the registry's named ``wino_conv`` configs)."""
    generator = torch.Generator().manual_seed(seed)
    calibration = torch.randn(batch, in_channels, size, size, generator=generator, dtype=torch.float64)
    return quantize_conv(seeded_conv(in_channels, out_channels, seed), calibration, tile, scales)[0]


def _figures(out, reference_int, float_lsb, acc=None, acc_direct=None):
    diff_int = (out - reference_int).abs()
    diff_float = (out.to(torch.float64) - float_lsb).abs()
    figures = {
        "vs_direct_int_max_lsb": int(diff_int.max()),
        "vs_direct_int_mean_lsb": round(float(diff_int.to(torch.float64).mean()), 4),
        "vs_direct_int_mismatch": round(float((diff_int != 0).to(torch.float64).mean()), 4),
        "vs_float_max_lsb": round(float(diff_float.max()), 3),
        "vs_float_mean_lsb": round(float(diff_float.mean()), 4),
    }
    if acc is not None:
        error = acc - acc_direct.to(torch.float64)
        figures["acc_rel_rms_error"] = float(f"{float(error.norm() / acc_direct.to(torch.float64).norm()):.3g}")
    return figures


def winograd_error(tile=4, in_channels=16, out_channels=4, size=16, batch=8, seed=0, weight_width=8):
    """Error of integer Winograd convolution against the direct integer layer and the float layer.

    A seeded float ``nn.Conv2d(in_channels, out_channels, 3, padding=1)`` (PyTorch's default
    initialisation, bias included) is quantized by :func:`quantize_conv` on ``batch`` Gaussian feature
    maps of ``size x size``, which are also the test inputs. Rows: direct int8 (the reference integer
    layer), Winograd with tap-wise scales, per-tap-and-channel scales, and one scale for all taps (plain
    int8 Winograd). Figures are in output LSB (``S_y``): max / mean absolute difference from the direct
    integer layer's int8 outputs, the fraction of outputs that differ, max / mean absolute error against the
    float layer, and the relative RMS error of the accumulator before requantization (``2**-s_c Y`` vs the
    direct accumulator). ``weight_width`` is the Winograd-domain weight width. White Gaussian inputs are
    a hard case for F(4x4,3x3): its high-frequency taps, which ``B^T`` amplifies most, are as large as the
    low-frequency ones. Returns ``{row name: {figure: value}}``.
    """
    generator = torch.Generator().manual_seed(seed)
    conv = seeded_conv(in_channels, out_channels, seed)
    x = torch.randn(batch, in_channels, size, size, generator=generator, dtype=torch.float64)
    rows = {}
    base, input_scale, output_scale = quantize_conv(conv, x, tile=tile, weight_width=weight_width)
    with torch.no_grad():
        float_lsb = conv(x) / output_scale
    x_q = torch.round(x / input_scale).clamp(-128, 127).to(torch.int64)
    direct, acc_direct = direct_conv_int(base, x_q)
    rows["direct int8"] = _figures(direct, direct, float_lsb)
    for scales, name in (("tap", "tap-wise"), ("tap_channel", "tap-and-channel"), ("layer", "single-scale")):
        cfg = replace(base, scales=scales)
        layer = winograd_layer(cfg)
        tiles = torch.cat([feature_map_tiles(cfg, image) for image in x_q])
        height = width = size
        y = wino_accumulate(cfg, tiles, layer)
        acc = torch.stack([assemble_tiles(cfg, part, height, width)
                           for part in y.split(y.shape[0] // batch)]).to(torch.float64)
        acc = acc * torch.pow(2.0, -layer.common.to(torch.float64)).view(-1, 1, 1)
        out = torch.stack([wino_conv2d(cfg, image) for image in x_q])
        rows[f"F{tile} {name}"] = _figures(out, direct, float_lsb, acc, acc_direct)
    return rows
