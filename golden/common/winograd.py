"""Winograd convolution F(2x2,3x3) and F(4x4,3x3) with tap-wise power-of-two quantization, integer-only.

Source: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016) for the minimal
filtering algorithms, and Andri et al., "Going Further With Winograd Convolutions: Tap-Wise Quantization
for Efficient Inference on 4x4 Tiles" (MICRO 2022) for the tap-wise scales.
For one output tile of ``m x m`` pixels (``m = tile``, 2 or 4) the ``n x n`` input tile (``n = m + 2``)
``d`` of every input channel ``c`` and the 3x3 kernel ``g`` give::

    Y = A^T [ sum_c (G g G^T) (.) (B^T d B) ] A

The three blocks (``wino_input``, ``wino_output``, ``wino_conv``) compute it in integers, in this order (every rounding named):

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
from dataclasses import dataclass
from fractions import Fraction

import torch

from .codes import code_range, require_integers

__all__ = [
    "TILES", "SCALES", "WinogradMatrices", "matrices", "input_transform", "input_transform_range",
    "output_transform", "output_transform_range", "weight_transform", "tap_scales", "round_shift",
    "synthetic_weights", "tuple_field", "check_tile_and_kernel", "round_ratio", "tap_coefficients",
    "DIRECT_MULTS_PER_OUTPUT",
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


def tap_coefficients(rows):
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
    return _two_sided_range(tap_coefficients(matrices(tile).BT), in_width)


def output_transform(tile, m):
    """``A^T m A`` of integer tiles ``m (..., n, n)`` (exact)."""
    at = _tensor(matrices(tile).AT)
    return at @ torch.as_tensor(m, dtype=torch.int64) @ at.T


def output_transform_range(tile, in_width):
    """Exact per-pixel ``(min, max)`` tensors ``(m, m)`` of ``A^T x A`` over signed ``in_width``-bit
    tiles ``x``."""
    return _two_sided_range(tap_coefficients(matrices(tile).AT), in_width)


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


def round_ratio(numerator, denominator):
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


def tuple_field(cfg, name, kind, length):
    """Check that field ``name`` of ``cfg`` is a tuple of ``length`` values of type ``kind``."""
    value = getattr(cfg, name)
    if not isinstance(value, tuple) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{name} must be a tuple of {'integers' if kind is int else 'numbers'}, not {value!r}")
    if len(value) != length:
        raise ValueError(f"{name} must hold {length} values, not {len(value)}")
    return value


def check_tile_and_kernel(cfg):
    _check_tile(cfg.tile)
    require_integers(cfg, ("kernel",))
    if cfg.kernel != 3:
        raise ValueError(f"Kernel must be 3 (3x3) for F({cfg.tile}x{cfg.tile},3x3), not {cfg.kernel}")
