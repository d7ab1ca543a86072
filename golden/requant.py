"""Per-channel requantization, bit-exact with TFLite's reference kernels.

Source: Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference" (CVPR 2018), and the gemmlowp / TFLite reference functions it describes
(``SaturatingRoundingDoublingHighMul``, ``RoundingDivideByPOT``, ``MultiplyByQuantizedMultiplier``,
``QuantizeMultiplier``); the paper's equations 5-6 (the fixed-point multiplier ``M = 2**-n M0``).

For one output element with accumulator ``acc`` and per-channel ``bias``, ``multiplier`` (``M0``, Q31) and
``shift``, and per-tensor ``output_offset`` and clamp bounds ``act_min``/``act_max``::

    x = wrap32(acc + bias)
    x = RDBPOT(SRDHM(wrap32(x * 2**max(shift, 0)), M0), max(-shift, 0))     # "double rounding"
    y = clamp(wrap32(x + output_offset), act_min, act_max)

Rounding choices, named:

* ``SRDHM`` rounds half away from zero on the doubled high word (nudge ``2**30`` or ``1 - 2**30``, then C
  division, which truncates toward zero) and saturates only ``INT32_MIN * INT32_MIN`` to ``INT32_MAX``.
* ``RDBPOT`` rounds half away from zero.
* The int32 additions and the left shift are two's complement with wrap-around (what the reference's
  int32 arithmetic does on every target we know of; C leaves it undefined). The hardware wraps the same way.
* ``shift`` is any 6-bit signed value (-32..31); right shifts by 32 are defined by the same formula.
* ``rounding="single"`` selects TFLite's ``TFLITE_SINGLE_ROUNDING`` variant:
  ``(x * M0 + 2**(30 - shift)) >> (31 - shift)`` (one round-half-up step, no left-shift wrap), with
  ``shift`` clamped to the reference's domain -31..30 and the result wrapped to int32.
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import OutputCodes

__all__ = ["RequantConfig", "MULTIPLIERS", "INT32_MIN", "INT32_MAX", "wrap32", "srdhm", "rdbpot",
           "multiply_by_quantized_multiplier", "quantize_multiplier", "activation_range", "requantize"]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

ACTIVATIONS = ("none", "relu", "relu6")
ROUNDINGS = ("double", "single")
#: How the hardware builds the Q31 multiply's four 16x16 partial products: ``"fabric"`` (``a * b``, left
#: to synthesis), ``"ecp5"`` (MULT18X18D instances with their own input and output registers, fed by the
#: left shift) or ``"ecp5_reg"`` (the same, with the left shift registered in fabric ahead of them: one
#: cycle more, and only a register's wire in front of the DSPs).
MULTIPLIERS = ("fabric", "ecp5", "ecp5_reg")


@dataclass(frozen=True)
class RequantConfig(OutputCodes):
    """Configuration of the ``requant`` block.

    Parameters
    ----------
    lanes : int
        Elements per stream beat (1..64).
    acc_width : int
        Width of the signed accumulator input (2..32).
    out_width : int
        Width of the output code (2..16).
    out_signed : bool
        Signed (int8-style) or unsigned (uint8-style) output codes.
    rounding : str
        ``"double"`` (TFLite default) or ``"single"`` (``TFLITE_SINGLE_ROUNDING``).
    multiplier : str
        The hardware's partial-product multipliers (:data:`MULTIPLIERS`); the function is the same.
    """
    lanes: int = 1
    acc_width: int = 32
    out_width: int = 8
    out_signed: bool = True
    rounding: str = "double"
    multiplier: str = "fabric"

    def __post_init__(self):
        for name in ("lanes", "acc_width", "out_width"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be an integer, not {getattr(self, name)!r}")
        if not isinstance(self.out_signed, bool):
            raise TypeError(f"out_signed must be a bool, not {self.out_signed!r}")
        if not 1 <= self.lanes <= 64:
            raise ValueError(f"Lane count must be between 1 and 64, not {self.lanes}")
        if not 2 <= self.acc_width <= 32:
            raise ValueError(f"Accumulator width must be between 2 and 32, not {self.acc_width}")
        if not 2 <= self.out_width <= 16:
            raise ValueError(f"Output width must be between 2 and 16, not {self.out_width}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"Rounding must be one of {', '.join(ROUNDINGS)}, not {self.rounding!r}")
        if self.multiplier not in MULTIPLIERS:
            raise ValueError(f"Multiplier must be one of {', '.join(MULTIPLIERS)}, not {self.multiplier!r}")


def wrap32(x):
    """Two's complement wrap of an int64 tensor to int32 range (kept as int64)."""
    return ((x + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)


def srdhm(a, b):
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values held in int64 tensors."""
    ab = a * b
    nudge = torch.where(ab >= 0, torch.tensor(1 << 30), torch.tensor(1 - (1 << 30)))
    high = torch.div(ab + nudge, 1 << 31, rounding_mode="trunc")
    return torch.where((a == INT32_MIN) & (b == INT32_MIN), torch.tensor(INT32_MAX), high)


def rdbpot(x, exponent):
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded half away from zero."""
    mask = torch.bitwise_left_shift(torch.ones_like(exponent), exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).to(torch.int64)
    return (x >> exponent) + (remainder > threshold).to(torch.int64)


def multiply_by_quantized_multiplier(x, multiplier, shift, rounding="double"):
    """TFLite ``MultiplyByQuantizedMultiplier(x, M0, shift)`` on int64 tensors of int32 values."""
    x, multiplier, shift = torch.broadcast_tensors(*(torch.as_tensor(t, dtype=torch.int64)
                                                     for t in (x, multiplier, shift)))
    if rounding == "single":
        total_shift = 31 - shift.clamp(-31, 30)
        rounded = x * multiplier + torch.bitwise_left_shift(torch.ones_like(shift), total_shift - 1)
        return wrap32(rounded >> total_shift)
    left = shift.clamp(min=0)
    right = (-shift).clamp(min=0)
    return rdbpot(srdhm(wrap32(torch.bitwise_left_shift(x, left)), multiplier), right)


def quantize_multiplier(real_multiplier):
    """TFLite ``QuantizeMultiplier``: a positive real number as ``(M0, shift)`` with ``M0`` in Q31.

    ``M0 = round(q * 2**31)`` with ``frexp(M) = (q, shift)``; round half away from zero, as
    ``TfLiteRound``. Multipliers below ``2**-31`` become ``(0, 0)``, as in the reference.
    """
    if not real_multiplier > 0 or math.isinf(real_multiplier):
        raise ValueError(f"Real multiplier must be positive and finite, not {real_multiplier!r}")
    q, shift = math.frexp(real_multiplier)
    m0 = int(math.floor(q * (1 << 31) + 0.5))
    if m0 == 1 << 31:
        m0 //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 31:
        raise ValueError(f"Real multiplier {real_multiplier!r} is too large for a 6-bit shift")
    return m0, shift


def activation_range(activation, scale, zero_point, out_min=-128, out_max=127):
    """Clamp bounds of a fused activation, as TFLite's ``CalculateActivationRangeQuantized``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"Activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    if activation == "none":
        return out_min, out_max
    low = max(out_min, zero_point)
    if activation == "relu":
        return low, out_max
    return low, min(out_max, zero_point + round(6.0 / scale))


def requantize(cfg, acc, bias, multiplier, shift, output_offset, act_min, act_max):
    """The ``requant`` block's function on int64 tensors (broadcast over lanes and beats)."""
    acc, bias, multiplier, shift = (torch.as_tensor(t, dtype=torch.int64)
                                    for t in (acc, bias, multiplier, shift))
    x = wrap32(acc + bias)
    x = multiply_by_quantized_multiplier(x, multiplier, shift, cfg.rounding)
    x = wrap32(x + output_offset)
    return x.clamp(min=act_min, max=act_max)
