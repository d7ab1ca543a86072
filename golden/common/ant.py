"""ANT's 4-bit number types: the grids, the code of every grid point, the decoder's fields, the
nearest-grid quantizer, the clipping-scale search and the per-tensor type selection.

Source: Guo et al., "ANT: Exploiting Adaptive Numerical Data Type for Low-bit Deep Neural Network
Quantization" (MICRO 2022): the ``flint`` type and its decoder, the adaptive
framework: one type per tensor, chosen by quantization MSE), and the authors' reference code
(ANT-Quantization: ``int_value``, ``pot_value``, ``flint_value`` for the grids, the CUDA quantizer's
nearest-point rule, ``search_mse`` and ``search_adaptive_numeric_type`` for the search).

Types (``kind`` x ``signed``; every type has 16 codes):

=========  ==========================================  =================================
kind       unsigned grid                               signed grid
=========  ==========================================  =================================
``int``    0..15                                       -8..7 (two's complement code)
``pot``    0, 2^0..2^14                                0, +-2^0..+-2^6 (sign + magnitude)
``flint``  0..7, 8, 10, 12, 14, 16, 24, 32, 64         sign + {0, 1, 2, 3, 4, 6, 8, 16}
=========  ==========================================  =================================

Codes. The unsigned ``pot`` and ``flint`` codes (and the magnitude codes of the signed ones) count the
grid points in ascending order, so codes are monotone in value. The ``flint`` decoder (the paper's
Fig. 5, written for ``n`` magnitude bits): a leading 0 gives the integer ``0M``; otherwise ``k`` further
ones, a 0 and mantissa bits ``M`` give ``int('1' + M) << (2k + 1)``; all ones give ``2^(2n - 2)``. The
signed types' code ``1000`` (minus zero) is unused by the quantizer and decodes to 0.

Decoded fields: ``value = (-1)^sign * mantissa << shift``, ``mantissa <= 15`` and ``shift <= 14``; the
integer types give ``shift = 0`` and the magnitude as mantissa (8 for int4's -8).

Scale: a real number is ``value * alpha / max(grid)``; ``alpha`` is searched over
``max|x| * i / 100`` for ``i = 75..149`` (the reference code's range for 4 bits), per output channel for
weights or per tensor, and the type with the least MSE wins. Choices the paper leaves open, named here:

* rounding to the nearest grid point with ties to the larger value (the reference CUDA kernel scans the
  grid in ascending order and keeps a point whose distance is ``<=`` the best so far);
* the reference kernel maps a value farther than 102400 from every grid point to 0; that cannot happen
  inside the searched clipping range, and here every value beyond the grid saturates to its end;
* the scale search keeps the first ``i`` of equal MSE (the reference's strict ``<``), and the type
  selection prefers int, then flint, then PoT on equal MSE.
"""

from dataclasses import dataclass
from functools import lru_cache

import torch

__all__ = ["BITS", "KINDS", "CODES", "grid", "code_values", "grid_max", "check_type", "decode_fields",
           "decode", "nearest_codes", "quantize", "dequantize", "search_scale", "select_type", "AntChoice",
           "ant_quantize", "ALPHA_STEPS", "MANTISSA_WIDTH", "SHIFT_WIDTH", "value_range",
           "max_shift"]

#: Code width of every ANT type here.
BITS = 4
#: Number kinds, in the order of the hardware's ``kind`` field (and of the type selection's tie rule:
#: int, flint, PoT is :data:`SELECTION_ORDER`).
KINDS = ("int", "pot", "flint")
SELECTION_ORDER = ("int", "flint", "pot")
#: Widths of the decoder's fields: mantissas are at most 15 (uint4), shifts at most 14 (unsigned PoT).
MANTISSA_WIDTH = 4
SHIFT_WIDTH = 4
#: Every 4-bit code.
CODES = tuple(range(1 << BITS))
#: The clipping-scale candidates ``alpha = max|x| * i / 100`` of the reference code for 4-bit types.
ALPHA_STEPS = tuple(range(75, 150))

# The grids as the reference code lists them (``int_value``, ``pot_value``, ``flint_value``), as
# ascending magnitudes: unsigned types use all 16 points, signed ones 8 magnitudes and a sign bit.
_UNSIGNED_GRIDS = {
    "int": tuple(range(16)),
    "pot": (0,) + tuple(1 << e for e in range(15)),
    "flint": (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 24, 32, 64),
}
_MAGNITUDE_GRIDS = {
    "pot": (0,) + tuple(1 << e for e in range(7)),
    "flint": (0, 1, 2, 3, 4, 6, 8, 16),
}


def check_type(kind, signed):
    """Raise ``ValueError`` / ``TypeError`` unless ``(kind, signed)`` names an ANT type."""
    if kind not in KINDS:
        raise ValueError(f"ANT kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be a bool, not {signed!r}")


def code_values(kind, signed):
    """The value of every code, ``code -> value`` as an int64 tensor of 16 entries, from the grid lists
    (the table the decoder's fields must reproduce)."""
    check_type(kind, signed)
    if not signed:
        return torch.tensor(_UNSIGNED_GRIDS[kind], dtype=torch.int64)
    if kind == "int":
        return torch.tensor([c - 16 if c >= 8 else c for c in CODES], dtype=torch.int64)
    magnitude = torch.tensor(_MAGNITUDE_GRIDS[kind], dtype=torch.int64)
    return torch.cat([magnitude, -magnitude])


def value_range(signed, kinds=KINDS):
    """``(min, max)`` of the values of every type of ``kinds`` with signedness ``signed``."""
    values = torch.cat([code_values(kind, signed) for kind in kinds])
    return int(values.min()), int(values.max())


def max_shift(signed, kinds=KINDS):
    """The largest decoded shift of any code of the types of ``kinds`` with signedness ``signed``."""
    return max(int(decode_fields(kind, signed, torch.tensor(CODES))[2].max()) for kind in kinds)


def grid(kind, signed):
    """The distinct grid points of a type, ascending (int64)."""
    return torch.unique(code_values(kind, signed))


def grid_max(kind, signed):
    """The largest grid point: the value that ``alpha`` maps to."""
    return int(code_values(kind, signed).max())


def _codes(codes):
    codes = torch.as_tensor(codes, dtype=torch.int64)
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= 1 << BITS):
        raise ValueError(f"ANT codes must lie in [0, {(1 << BITS) - 1}]")
    return codes


def decode_fields(kind, signed, codes):
    """The decoder's ``(sign, mantissa, shift)`` of every code (int64 tensors shaped like ``codes``), from
    the code bits alone (the paper's decoder, not the grid table)."""
    check_type(kind, signed)
    codes = _codes(codes)
    bits = BITS - int(signed)
    if signed:
        sign = codes >> bits
        body = codes & ((1 << bits) - 1)
    else:
        sign = torch.zeros_like(codes)
        body = codes
    zero = torch.zeros_like(codes)
    if kind == "int":
        if signed:
            # Two's complement: the magnitude of a negative code is 16 - code (8 for -8).
            return sign, torch.where(sign == 1, (1 << BITS) - codes, codes), zero
        return sign, codes, zero
    if kind == "pot":
        return sign, (body != 0).long(), torch.where(body != 0, body - 1, zero)
    # flint: count the leading ones of the magnitude bits.
    ones = torch.zeros_like(codes)
    still = torch.ones_like(codes, dtype=torch.bool)
    for position in range(bits - 1, -1, -1):
        still &= ((body >> position) & 1) == 1
        ones += still.long()
    mantissa_bits = (bits - 1 - ones).clamp(min=0)
    mantissa = body & ((1 << mantissa_bits) - 1)
    mantissa = torch.where(ones == 0, body, mantissa | (1 << mantissa_bits))
    # k = ones - 1 further ones after the first: shift 2k + 1 = 2 * ones - 1.
    shift = torch.where(ones == 0, zero, 2 * ones - 1)
    all_ones = ones == bits
    mantissa = torch.where(all_ones, torch.ones_like(codes), mantissa)
    shift = torch.where(all_ones, torch.full_like(codes, 2 * bits - 2), shift)
    return sign, mantissa, shift


def decode(kind, signed, codes):
    """The integer value of every code: ``(-1)^sign * mantissa << shift`` (int64)."""
    sign, mantissa, shift = decode_fields(kind, signed, codes)
    return (1 - 2 * sign) * (mantissa << shift)


@lru_cache(maxsize=None)
def _nearest_tables(kind, signed):
    """The grid's midpoints and the first code of every grid point (so 0 is code 0, never minus zero),
    computed once per type; the callers never modify them."""
    points = grid(kind, signed)
    table = code_values(kind, signed)
    first_code = torch.tensor([int((table == p).nonzero()[0]) for p in points.tolist()], dtype=torch.int64)
    return (points[1:] + points[:-1]).double() / 2, first_code


def _interval(values, midpoints):
    """Index of the grid interval of every value: the number of midpoints at or below it, so a value on
    a midpoint goes to the larger point (the reference's ties)."""
    return (values.unsqueeze(-1) >= midpoints).sum(dim=-1)


def nearest_codes(kind, signed, values):
    """Code of the grid point nearest to every element of ``values`` (in grid units), ties to the larger
    point; values beyond the grid saturate to its end. Minus zero is never produced."""
    midpoints, first_code = _nearest_tables(kind, signed)
    values = torch.as_tensor(values, dtype=torch.float64)
    if torch.isnan(values).any():
        raise ValueError("Cannot quantize NaN")
    return first_code[_interval(values, midpoints)]


def _scale_shape(x, alpha):
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    if alpha.dim() == 1 and x.dim() > 1:
        alpha = alpha.reshape(-1, *([1] * (x.dim() - 1)))
    if bool((alpha <= 0).any()) or not bool(torch.isfinite(alpha).all()):
        raise ValueError("Scale alpha must be positive and finite")
    return alpha


def quantize(kind, signed, x, alpha):
    """Codes of ``x`` with scale ``alpha`` (a number, or one per output channel along dim 0)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    alpha = _scale_shape(x, alpha)
    return nearest_codes(kind, signed, x * grid_max(kind, signed) / alpha)


def dequantize(kind, signed, codes, alpha):
    """Real values of ``codes``: ``value * alpha / max(grid)``."""
    values = decode(kind, signed, codes).double()
    return values * _scale_shape(values, alpha) / grid_max(kind, signed)


def search_scale(kind, signed, x, per_channel=False):
    """The MSE-best clipping scale of ``x`` for one type: ``(alpha, mse)``.

    ``alpha`` is searched over ``max|x| * i / 100``, ``i`` in :data:`ALPHA_STEPS`; with ``per_channel``
    each output channel (dim 0) has its own ``max|x|`` and its own best ``i``, and ``mse`` is the sum over
    channels of each channel's mean squared error (the reference code's score); otherwise both are for
    the whole tensor. On equal MSE the smallest ``i`` wins."""
    x = torch.as_tensor(x, dtype=torch.float64)
    rows = x.reshape(x.shape[0], -1) if per_channel else x.reshape(1, -1)
    top = rows.abs().amax(dim=1)
    if bool((top == 0).any()):
        raise ValueError("Cannot search a scale for an all-zero tensor or channel")
    best_mse = torch.full_like(top, torch.inf)
    best_alpha = top.clone()
    midpoints, first_code = _nearest_tables(kind, signed)
    points = grid(kind, signed).double()
    peak = grid_max(kind, signed)
    for step in ALPHA_STEPS:
        alpha = top * (step / 100)
        # quantize() then dequantize(), through the grid points directly (the same arithmetic).
        index = _interval(rows * peak / alpha.unsqueeze(1), midpoints)
        error = points[index] * alpha.unsqueeze(1) / peak - rows
        mse = error.square().mean(dim=1)
        better = mse < best_mse
        best_mse = torch.where(better, mse, best_mse)
        best_alpha = torch.where(better, alpha, best_alpha)
    if per_channel:
        return best_alpha, float(best_mse.sum())
    return float(best_alpha[0]), float(best_mse[0])


@dataclass(frozen=True)
class AntChoice:
    """The outcome of :func:`select_type`: the chosen type, its scale and every candidate's MSE."""
    kind: str
    signed: bool
    alpha: object
    mse: float
    candidates: dict


def select_type(x, signed=None, per_channel=False, kinds=SELECTION_ORDER):
    """ANT's per-tensor type selection: the kind of least MSE after each kind's scale search
    (:func:`search_scale`), ties going to the earlier of ``kinds`` (int, flint, PoT).

    ``signed`` defaults to ``x.min() < 0`` (the reference code's rule for activations; weights are
    signed in practice)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if signed is None:
        signed = bool(x.min() < 0)
    for kind in kinds:
        check_type(kind, signed)
    results = {kind: search_scale(kind, signed, x, per_channel) for kind in kinds}
    best = min(kinds, key=lambda kind: (results[kind][1], kinds.index(kind)))
    return AntChoice(best, signed, results[best][0], results[best][1],
                     {kind: mse for kind, (_, mse) in results.items()})


def ant_quantize(x, signed=None, per_channel=False, kinds=SELECTION_ORDER):
    """Quantize ``x`` to the ANT type that :func:`select_type` picks: ``(codes, choice)``; the
    dequantized tensor is ``dequantize(choice.kind, choice.signed, codes, choice.alpha)``."""
    choice = select_type(x, signed, per_channel, kinds)
    x = torch.as_tensor(x, dtype=torch.float64)
    return quantize(choice.kind, choice.signed, x, choice.alpha), choice
