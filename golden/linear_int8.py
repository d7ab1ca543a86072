"""int8 fully-connected layer: post-training quantization of ``torch.nn.Linear`` and its integer models.

Source: Jacob et al. (CVPR 2018) and TFLite's per-channel ``FullyConnected`` reference kernel
(the paper's section 2.2). Quantization rules, named:

* weights: per output channel, symmetric, ``S_w[o] = max|w[o, :]| / 127``, codes ``round(w / S_w)`` in
  [-127, 127] (round half to even, torch's ``round``), zero point 0;
* activations (input and output): per tensor, asymmetric int8 over the calibration range widened to
  include 0: ``S = (max - min) / 255``, ``Z = round(-128 - min / S)`` clamped to [-128, 127];
* ``calibration_method="octav"`` (the default is ``"max"``, the rules above) replaces each range by an
  MSE-optimal clip (Sakr et al., "Optimal Clipping and Magnitude-aware Differentiation for Improved
  Quantization-aware Training", ICML 2022, equation 3; :func:`qarith.golden.octav_stats.octav_clip_float`
  at B = 8): per output channel the weights' clip ``s`` gives ``S_w = s / 127``; an activation range
  becomes ``[max(min, -s), min(max, s)]`` with ``s`` the clip of the calibration values (the unsigned
  quantizer's clip when they are all non-negative). Values past the clip saturate at the extreme codes;
  a clip of 0 keeps the unit scale;
* bias: int32 at scale ``S_x * S_w[o]``;
* multiplier: ``M[o] = S_x * S_w[o] / S_y`` as TFLite ``QuantizeMultiplier`` (Q31 ``M0`` and shift).

Two integer models compute the same numbers:

* :meth:`QuantizedLinear.forward_int`: the TFLite reference formula,
  ``acc = sum_k w[o,k] * (x[k] + input_offset) + bias[o]``, then requantization;
* :func:`linear_int8_hw`: what the hardware computes, ``sum_k w[o,k] * x[k]`` on the MAC array plus a
  folded bias ``bias[o] + input_offset * sum_k w[o,k]`` (:meth:`QuantizedLinear.folded_bias`), then the
  ``requant`` block. Equal to the reference while no int32 sum overflows (tests check it).
"""

from dataclasses import dataclass

import torch
from torch import nn

from .mac_array import MacArrayConfig, mac_tiles
from .octav_stats import octav_clip_float
from .requant import RequantConfig, activation_range, quantize_multiplier, requantize

__all__ = ["LinearInt8Config", "QuantizedLinear", "quantize_linear", "linear_int8_hw", "float_error",
           "error_bound", "CALIBRATION_METHODS"]

#: How ``quantize_linear`` turns calibration data into ranges: the extremes, or OCTAV's MSE-optimal clip.
CALIBRATION_METHODS = ("max", "octav")
#: The bits OCTAV's clip is optimised for: the int8 codes.
OCTAV_BITS = 8


@dataclass(frozen=True)
class LinearInt8Config:
    """Configuration of the ``linear_int8`` block.

    Parameters
    ----------
    rows : int
        Batch rows per tile (the MAC array's rows).
    cols : int
        Output channels (the MAC array's columns, the requantizer's lanes).
    max_k : int
        Largest number of input features.
    input_reg, mult_reg : bool
        As in :class:`~qarith.golden.mac_array.MacArrayConfig`.
    """
    rows: int = 4
    cols: int = 4
    max_k: int = 64
    input_reg: bool = True
    mult_reg: bool = True

    def __post_init__(self):
        # The MAC array config validates the shared parameters and words the errors; int8 x int8
        # over its largest depth (65536) still fits the requantizer's 32-bit input.
        assert self.mac.acc_bits <= 32

    @property
    def mac(self):
        return MacArrayConfig(rows=self.rows, cols=self.cols, a_width=8, a_signed=True, b_width=8,
                              b_signed=True, max_k=self.max_k, input_reg=self.input_reg,
                              mult_reg=self.mult_reg)

    @property
    def requant(self):
        return RequantConfig(lanes=self.cols, acc_width=self.mac.acc_bits)


def _activation_params(values, calibration_method="max"):
    low = min(float(values.min()), 0.0)
    high = max(float(values.max()), 0.0)
    if calibration_method == "octav":
        clip = float(octav_clip_float(values.detach().reshape(-1), OCTAV_BITS, is_signed=low < 0))
        low, high = max(low, -clip), min(high, clip)
    scale = (high - low) / 255 if high > low else 1.0
    zero_point = int(max(-128, min(127, round(-128 - low / scale))))
    return scale, zero_point


class QuantizedLinear(nn.Module):
    """An int8 ``nn.Linear`` replacement: float in, float out, integer arithmetic inside."""

    def __init__(self, weight, bias, input_scale, input_zero_point, weight_scale, output_scale,
                 output_zero_point, activation="none"):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.register_buffer("weight_scale", weight_scale)
        self.input_scale, self.input_zero_point = input_scale, input_zero_point
        self.output_scale, self.output_zero_point = output_scale, output_zero_point
        self.activation = activation
        pairs = [quantize_multiplier(input_scale * float(s) / output_scale) for s in weight_scale]
        self.register_buffer("multiplier", torch.tensor([m for m, _ in pairs], dtype=torch.int64))
        self.register_buffer("shift", torch.tensor([s for _, s in pairs], dtype=torch.int64))
        self.act_min, self.act_max = activation_range(activation, output_scale, output_zero_point)

    @property
    def input_offset(self):
        return -self.input_zero_point

    def quantize_input(self, x):
        codes = torch.round(x / self.input_scale) + self.input_zero_point
        return codes.clamp(-128, 127).to(torch.int64)

    def folded_bias(self):
        return self.bias + self.input_offset * self.weight.sum(dim=1)

    def forward_int(self, x_q):
        """TFLite reference: int8 codes ``(N, in)`` to int8 codes ``(N, out)``."""
        acc = ((x_q.unsqueeze(1) + self.input_offset) * self.weight.unsqueeze(0)).sum(dim=2) + self.bias
        return requantize(RequantConfig(), acc, 0, self.multiplier, self.shift,
                          self.output_zero_point, self.act_min, self.act_max)

    def forward(self, x):
        y_q = self.forward_int(self.quantize_input(x))
        return (y_q - self.output_zero_point).to(torch.float32) * self.output_scale


def quantize_linear(linear, calibration, activation="none", calibration_method="max"):
    """Post-training quantization of ``linear`` from ``calibration`` inputs ``(N, in_features)``, its
    ranges by ``calibration_method`` (one of :data:`CALIBRATION_METHODS`)."""
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"Expected a torch.nn.Linear, not {linear!r}")
    if calibration_method not in CALIBRATION_METHODS:
        raise ValueError(f"Calibration method must be 'max' or 'octav', not {calibration_method!r}")
    with torch.no_grad():
        weight = linear.weight.detach().to(torch.float64)
        if calibration_method == "octav":
            weight_scale = octav_clip_float(weight, OCTAV_BITS) / 127
        else:
            weight_scale = weight.abs().amax(dim=1) / 127
        weight_scale = torch.where(weight_scale > 0, weight_scale, torch.ones_like(weight_scale))
        weight_q = torch.round(weight / weight_scale.unsqueeze(1)).clamp(-127, 127).to(torch.int64)
        input_scale, input_zp = _activation_params(calibration, calibration_method)
        reference = linear(calibration)
        if activation == "relu":
            reference = torch.relu(reference)
        elif activation == "relu6":
            reference = reference.clamp(0, 6)
        output_scale, output_zp = _activation_params(reference, calibration_method)
        bias = linear.bias.detach().to(torch.float64) if linear.bias is not None \
            else torch.zeros(linear.out_features, dtype=torch.float64)
        bias_q = torch.round(bias / (input_scale * weight_scale)).clamp(-(1 << 31), (1 << 31) - 1)
    return QuantizedLinear(weight_q, bias_q.to(torch.int64), input_scale, input_zp,
                           weight_scale.to(torch.float64), output_scale, output_zp, activation)


def linear_int8_hw(cfg, x_tiles, weight, folded_bias, multiplier, shift, output_offset, act_min, act_max):
    """The ``linear_int8`` block: ``x_tiles (T, rows, K)`` int8 codes, ``weight (cols, K)`` int8 codes,
    per-channel ``folded_bias``/``multiplier``/``shift`` of length ``cols``; returns ``(T, rows, cols)``."""
    x_tiles = torch.as_tensor(x_tiles, dtype=torch.int64)
    weight = torch.as_tensor(weight, dtype=torch.int64)
    acc = mac_tiles(cfg.mac, x_tiles, weight.T.unsqueeze(0).expand(x_tiles.shape[0], -1, -1))
    return requantize(cfg.requant, acc, folded_bias, multiplier, shift, output_offset, act_min, act_max)


def float_error(qlinear, linear, x):
    """Integer-vs-float error of a quantized layer on inputs ``x``: max and mean absolute error, both
    also in units of the output scale."""
    with torch.no_grad():
        reference = linear(x)
        if qlinear.activation == "relu":
            reference = torch.relu(reference)
        elif qlinear.activation == "relu6":
            reference = reference.clamp(0, 6)
        error = (qlinear(x) - reference).abs()
    return {
        "max_abs": float(error.max()), "mean_abs": float(error.mean()),
        "max_lsb": float(error.max()) / qlinear.output_scale,
        "mean_lsb": float(error.mean()) / qlinear.output_scale,
    }


def error_bound(qlinear, linear, x):
    """Worst-case absolute error per output for inputs ``x`` inside the calibration range, from the
    rounding steps alone: input codes (``S_x / 2`` each), weight codes (``S_w / 2`` each), their
    product, the bias code (``S_x S_w / 2``) and requantization (one output step, double rounding)."""
    with torch.no_grad():
        weight = linear.weight.detach().to(torch.float64).abs()
        x_abs = x.to(torch.float64).abs()
        half_x, half_w = qlinear.input_scale / 2, (qlinear.weight_scale / 2).unsqueeze(0)
        per_term = weight.sum(dim=1).unsqueeze(0) * half_x + x_abs.sum(dim=1, keepdim=True) * half_w \
            + linear.in_features * half_x * half_w
        return per_term + 2 * half_x * half_w + qlinear.output_scale
