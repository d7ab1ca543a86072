"""LLM.int8(): vector-wise int8 matrix multiplication with mixed-precision outlier decomposition.

Source: Dettmers, Lewis, Belkada and Zettlemoyer, "LLM.int8(): 8-bit Matrix Multiplication for
Transformers at Scale" (NeurIPS 2022): section 3.1, vector-wise quantization (each inner product
denormalized by the outer product of the row scales of ``X`` and the column scales of ``W``,
``C ~ C_i32 / (c_x (x) c_w)``), and section 3.2, the mixed-precision decomposition
(``C ~ sum over h in O of X^h W^h + S * sum over h not in O of X8^h W8^h``: the outlier feature
dimensions ``O`` in 16 bits, the rest in int8); and the official implementation (bitsandbytes:
``int8_vectorwise_quant`` / ``kInt8VectorQuant``, ``int8_mixed_scaled_mm``, ``int8_mm_dequant``), which
fixes the details the paper leaves open (the threshold test, which elements set the row scale, the
side path's weights).

For activations ``X (s, h)``, weights ``W (o, h)`` and a threshold ``tau`` (6.0 by default):

* outliers are the elements with ``|X[i, j]| >= tau``; the outlier columns ``O`` are every column that
  holds an outlier in any row;
* the row scale ``c_x[i]`` is the largest ``|X[i, j]|`` among the row's elements with ``|X[i, j]| < tau``
  (outliers do not count; sub-threshold elements of outlier columns do);
* ``X8 = rint(127 X / c_x)``, round half to even, with the outliers set to 0 and then every outlier
  column set to 0 (a row with ``c_x = 0`` quantizes to 0);
* ``W8 = rint(127 W / c_w)`` with ``c_w[o]`` the row absmax of ``W`` (no threshold), half to even;
* ``out = (X8 W8^T) c_x c_w^T / 127^2 + X[:, O] W_side[:, O]^T``, where the side path's weights are
  the dequantized int8 ones, ``W8 c_w / 127`` (the official code's choice, ``variant="bnb"``), or the
  unquantized ``W`` (the paper's equation 4, ``variant="paper"``).

The integer form the hardware computes (:func:`int8_outlier_linear`). Activations arrive as signed
``in_width``-bit fixed-point codes ``x`` with ``frac_bits`` fraction bits (``X = x 2**-frac_bits``), the
weights as their int8 codes ``W8`` (one scale ``c_w[o]`` per output, applied by the consumer), the
threshold as the code ``t = ceil(tau 2**frac_bits)`` (so ``|x| >= t`` exactly when ``|X| >= tau``). With
``c[i]`` the row scale as a code::

    X8[i, j] = rint(127 |x[i, j]| / c[i]) * sign(x[i, j])       exact rational, half to even
    C32      = X8 W8^T                                           the int8 mac_array
    S        = x[:, O] W8[:, O]^T                                the side path: int16 x int8, exact
    acc      = c * C32 + 127 S                                   (c per row)
    out      = acc * c_w / (127^2 2**frac_bits)                  (dequantize)

The side path's weights are bitsandbytes' dequantized int8 ones, so both paths read the same weight
codes and the side path's only rounding is the weights' (its activations keep every input bit). Nothing
in ``acc`` is rounded: it is exact in int64 and in the hardware's ``out_bits``.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from .common.codes import code_range, require_integers, width_for
from .mac_array import MacArrayConfig, mac_tiles

__all__ = ["Int8OutlierLinearConfig", "VARIANTS", "round_half_even_ratio", "quantize_rows",
           "vector_quantize", "quantize_weights", "llm_int8_matmul", "tile_parts", "int8_outlier_linear",
           "dequantize"]

#: Side-path weights: bitsandbytes' dequantized int8 codes, or the paper's unquantized weights.
VARIANTS = ("bnb", "paper")
#: The int8 code bound of both operands (``rint(127 v / absmax)``).
Q = 127


@dataclass(frozen=True)
class Int8OutlierLinearConfig:
    """Configuration of the ``int8_outlier_linear`` block.

    Parameters
    ----------
    rows : int
        Activation rows per tile (the MAC arrays' rows); the outlier columns are taken over these rows.
    cols : int
        Output channels (the MAC arrays' columns).
    max_k : int
        Largest reduction depth (input features) of a tile.
    in_width : int
        Width of the signed activation codes (2..16; the side path's operand).
    frac_bits : int
        Fraction bits of the activation codes: ``X = x 2**-frac_bits``.
    threshold : float
        The outlier threshold ``tau`` in activation units; 0.0 turns the decomposition off (every element
        is in the int8 path), as bitsandbytes' ``threshold=0.0``.
    input_reg, mult_reg : bool
        As in :class:`~qarith.golden.mac_array.MacArrayConfig`, for both arrays.
    """
    rows: int = 4
    cols: int = 4
    max_k: int = 16
    in_width: int = 16
    frac_bits: int = 8
    threshold: float = 6.0
    input_reg: bool = True
    mult_reg: bool = True

    def __post_init__(self):
        require_integers(self, ("rows", "cols", "max_k", "in_width", "frac_bits"))
        if not 2 <= self.in_width <= 16:
            raise ValueError(f"Activation width in_width must be between 2 and 16, not {self.in_width}")
        if not 0 <= self.frac_bits <= 24:
            raise ValueError(f"Fraction bits frac_bits must be between 0 and 24, not {self.frac_bits}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)):
            raise TypeError(f"threshold must be a number, not {self.threshold!r}")
        if not math.isfinite(self.threshold) or self.threshold < 0:
            raise ValueError(f"Threshold must be finite and at least 0 (0 turns it off), not {self.threshold!r}")
        # Both arrays' configs validate the shape, depth and register flags and word the errors.
        _ = (self.int8_mac, self.side_mac)

    @property
    def int8_mac(self):
        """The int8 path's array: int8 x int8 codes."""
        return MacArrayConfig(rows=self.rows, cols=self.cols, a_width=8, b_width=8, max_k=self.max_k,
                              input_reg=self.input_reg, mult_reg=self.mult_reg)

    @property
    def side_mac(self):
        """The side path's array: activation codes (``in_width`` bits) x int8 weight codes."""
        return MacArrayConfig(rows=self.rows, cols=self.cols, a_width=self.in_width, b_width=8,
                              max_k=self.max_k, input_reg=self.input_reg, mult_reg=self.mult_reg)

    @property
    def code_limit(self):
        """The largest activation magnitude code, ``2**(in_width - 1)`` (of the code ``-2**(in_width - 1)``)."""
        return 1 << (self.in_width - 1)

    @property
    def threshold_code(self):
        """``ceil(tau 2**frac_bits)``, capped at ``code_limit + 1`` (no code reaches it: no outliers)."""
        if self.threshold == 0:
            return self.code_limit + 1
        return min(math.ceil(Fraction(self.threshold) * (1 << self.frac_bits)), self.code_limit + 1)

    @property
    def scale_max(self):
        """The largest row scale code ``c``: below the threshold and at most ``code_limit``."""
        return min(self.threshold_code - 1, self.code_limit)

    @property
    def scale_bits(self):
        """Width of the unsigned row scale code."""
        return max(1, self.scale_max.bit_length())

    @property
    def out_bits(self):
        """Width of the signed output ``acc = c C32 + 127 S``, exact for every input (at most 48 bits:
        ``2 * 2**15 * 127 * 128 * 65536`` bounds it)."""
        w_lo, _ = code_range(8, True)
        x_lo, _ = code_range(self.in_width, True)
        bound = self.scale_max * Q * -w_lo * self.max_k + Q * -x_lo * -w_lo * self.max_k
        return width_for(-bound, bound, True)


def round_half_even_ratio(numerator, denominator):
    """``rint(numerator / denominator)``, half to even, exact, for non-negative int64 tensors and a
    positive ``denominator``."""
    quotient = numerator // denominator
    twice_remainder = 2 * (numerator - quotient * denominator)
    up = (twice_remainder > denominator) | ((twice_remainder == denominator) & (quotient % 2 == 1))
    return quotient + up.to(torch.int64)


def quantize_rows(x, threshold_code):
    """The vector-wise quantizer on integer activation codes ``x (..., s, h)``: returns the int8 codes
    ``X8`` (outliers and outlier columns zeroed), the row scale codes ``c (..., s)`` and the outlier
    column mask ``(..., h)``; the outlier columns are taken over the ``s`` rows."""
    x = torch.as_tensor(x, dtype=torch.int64)
    magnitude = x.abs()
    outlier = magnitude >= threshold_code
    columns = outlier.any(dim=-2)
    scale = torch.where(outlier, 0, magnitude).amax(dim=-1)
    safe = scale.clamp(min=1).unsqueeze(-1)
    codes = round_half_even_ratio(Q * magnitude, safe) * x.sign()
    keep = ~outlier & ~columns.unsqueeze(-2) & (scale.unsqueeze(-1) > 0)
    return torch.where(keep, codes, 0), scale, columns


def vector_quantize(x, threshold=6.0):
    """bitsandbytes' vector-wise activation quantizer on float ``x (s, h)`` (float64 inside; threshold
    0: none): ``(X8, c_x, outlier_columns)``."""
    x = torch.as_tensor(x, dtype=torch.float64)
    magnitude = x.abs()
    outlier = magnitude >= threshold if threshold > 0 else torch.zeros_like(x, dtype=torch.bool)
    columns = outlier.any(dim=0)
    scale = torch.where(outlier, 0.0, magnitude).amax(dim=1)
    codes = torch.round(x * Q / torch.where(scale > 0, scale, 1.0).unsqueeze(1))
    keep = ~outlier & ~columns.unsqueeze(0) & (scale.unsqueeze(1) > 0)
    return torch.where(keep, codes, 0.0).to(torch.int64), scale, columns


def quantize_weights(w):
    """Row-wise absmax int8 weights ``W8 = rint(127 W / c_w)`` (half to even) and ``c_w``; a zero row
    gets codes 0."""
    w = torch.as_tensor(w, dtype=torch.float64)
    scale = w.abs().amax(dim=1)
    codes = torch.round(w * Q / torch.where(scale > 0, scale, 1.0).unsqueeze(1))
    return codes.to(torch.int64), scale


def llm_int8_matmul(x, w, threshold=6.0, variant="bnb"):
    """The float LLM.int8() product of ``x (s, h)`` and ``w (o, h)``: ``x w^T`` through the vector-wise
    int8 path with the outlier columns (``|x| >= threshold`` in any row; 0: no decomposition) on
    the side path, whose weights are ``variant``'s (:data:`VARIANTS`). float64 throughout (bitsandbytes
    rounds the products to fp16; the float64 result isolates the quantization error)."""
    if variant not in VARIANTS:
        raise ValueError(f"Variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    x = torch.as_tensor(x, dtype=torch.float64)
    w = torch.as_tensor(w, dtype=torch.float64)
    x8, x_scale, columns = vector_quantize(x, threshold)
    w8, w_scale = quantize_weights(w)
    # Exact in float64: int8 products summed over fewer than 2**38 terms stay below 2**53.
    c32 = x8.to(torch.float64) @ w8.to(torch.float64).T
    out = c32 * x_scale.unsqueeze(1) * w_scale.unsqueeze(0) / (Q * Q)
    side_w = w8 * w_scale.unsqueeze(1) / Q if variant == "bnb" else w
    return out + x[:, columns] @ side_w[:, columns].T


def _check_codes(name, tensor, width):
    low, high = code_range(width, True)
    if tensor.numel() and (int(tensor.min()) < low or int(tensor.max()) > high):
        raise ValueError(f"{name} codes must lie in [{low}, {high}] for a {width}-bit signed operand")


def tile_parts(cfg, x_tiles, weight):
    """The block's intermediate values for tiles ``x_tiles (T, rows, K)`` of activation codes and int8
    weight codes ``weight (cols, K)``: a dict of ``x8``, ``scale`` (T, rows), ``columns`` (T, K), the
    int8 product ``c32`` and the side product ``side`` (T, rows, cols), and ``acc``."""
    x_tiles = torch.as_tensor(x_tiles, dtype=torch.int64)
    weight = torch.as_tensor(weight, dtype=torch.int64)
    if x_tiles.dim() != 3 or weight.dim() != 2 or x_tiles.shape[1] != cfg.rows \
            or weight.shape != (cfg.cols, x_tiles.shape[2]):
        raise ValueError(f"Expected activations of shape (T, {cfg.rows}, K) and weights of shape "
                         f"({cfg.cols}, K), not {tuple(x_tiles.shape)} and {tuple(weight.shape)}")
    _check_codes("Activation", x_tiles, cfg.in_width)
    _check_codes("Weight", weight, 8)
    x8, scale, columns = quantize_rows(x_tiles, cfg.threshold_code)
    b = weight.T.unsqueeze(0).expand(x_tiles.shape[0], -1, -1)
    c32 = mac_tiles(cfg.int8_mac, x8, b)
    side = mac_tiles(cfg.side_mac, torch.where(columns.unsqueeze(1), x_tiles, 0), b)
    acc = scale.unsqueeze(2) * c32 + Q * side
    return {"x8": x8, "scale": scale, "columns": columns, "c32": c32, "side": side, "acc": acc}


def int8_outlier_linear(cfg, x_tiles, weight):
    """The ``int8_outlier_linear`` block: ``acc = c C32 + 127 S`` ``(T, rows, cols)`` for activation
    code tiles ``x_tiles (T, rows, K)`` and int8 weight codes ``weight (cols, K)``."""
    return tile_parts(cfg, x_tiles, weight)["acc"]


def dequantize(cfg, acc, weight_scale):
    """The real output of ``acc`` for the weights' row absmax ``weight_scale (cols,)``:
    ``acc c_w / (127^2 2**frac_bits)`` (float64)."""
    weight_scale = torch.as_tensor(weight_scale, dtype=torch.float64)
    return torch.as_tensor(acc, dtype=torch.float64) * weight_scale / (Q * Q * (1 << cfg.frac_bits))
