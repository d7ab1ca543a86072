"""Drop-in ``nn.Module`` replacements for a model's layers, each one a qarith golden block (or a chain of
them) between a quantizer at its input and a dequantizer at its output.

Every module has ``from_float(module_or_None, calibration_inputs, ...)`` that calibrates every scale from
data (``calibration="max"`` or ``"percentile"``), a ``forward_codes(codes)`` that is pure integer
arithmetic on the block's input codes (int64 tensors) and a float ``forward(x)`` =
``dequantize(forward_codes(quantize(x)))``. ``input_quant`` / ``output_quant`` give the scale (and zero
point) of the codes at each end, so a caller can chain two modules on the same scale: the second's
quantizer then gives back the first's codes exactly (``round(q * S / S) == q`` in float64) and no
rescale sits between them (:func:`qarith.golden.common.integerize.integerize` does this).

The golden functions check one row length (a config fixes it, as the hardware does); the row modules
build and cache one config per row length they meet, up to the block's limit, and take any batch shape.

Exact fast paths
----------------
``IntLinear`` and ``IntConv2d`` (direct) sum int8 x int8 products in float64 (``torch.matmul`` /
``conv2d``): every operand and every partial sum is an integer of magnitude at most
``255 * 127 * K < 2**53`` for the row lengths allowed here (``K <= 65536``), so every addition is exact
whatever order the library sums in, and the float64 result converts back to the exact int64
accumulator. The tests check this equals the int64 golden paths (``QuantizedLinear.forward_int``,
``linear_int8_hw``, ``direct_conv_int``).
"""

import math

import torch
from torch import nn

from ..ilayernorm import ILayerNormConfig, ilayernorm
from ..int8_outlier_linear import Int8OutlierLinearConfig, quantize_rows, quantize_weights
from ..int8_outlier_linear import dequantize as outlier_dequantize
from ..linear_int8 import LinearInt8Config, QuantizedLinear
from ..log_softmax_int import IBERT_X0_LIMIT, LogSoftmaxIntConfig, log_softmax_int
from ..lut_unary import LutUnaryConfig, lut_unary
from ..octav_stats import octav_clip_float
from ..pwl import PwlConfig, pwl
from ..requant import RequantConfig, quantize_multiplier, requantize
from ..shiftgelu import ShiftGeluConfig, shiftgelu
from ..shiftmax import DEFAULT_SHIFT, ShiftmaxConfig, shiftmax
from ..softmax_lut import SoftmaxLutConfig, softmax_lut
from ..wino_conv import WinoConvConfig, wino_conv

__all__ = ["CALIBRATIONS", "clip_value", "symmetric_scale", "quantize_symmetric", "IntLinear", "IntLinearOutlier",
           "IntConv2d",
           "IntSoftmax", "IntGelu", "IntLayerNorm", "SOFTMAX_METHODS", "GELU_METHODS", "CONV_METHODS",
           "MAX_LINEAR_K", "requantize_fast"]

CALIBRATIONS = ("max", "percentile", "octav")
#: The MAC array's largest depth (``MacArrayConfig.max_k``); also keeps the float64 sums exact.
MAX_LINEAR_K = 65536
#: Scores at or below this are masks (Hugging Face adds ``finfo.min``); calibration ignores them.
MASK_THRESHOLD = -1e4


def clip_value(values, calibration="max", percentile=99.99, bits=8):
    """The clip range ``c`` of ``|values|``: the maximum, the given percentile (of a sample of at most
    2**24 values, evenly strided, so it stays cheap on large calibration sets), or (``"octav"``) the
    clip that minimises the mean-square error of the drop-ins' symmetric ``bits``-bit codes (``2**(bits-1)
    - 1`` steps each side): OCTAV's Newton-Raphson recursion (Sakr et al., ICML 2022, equation 3;
    :func:`~qarith.golden.octav_stats.octav_clip_float`) on the same sample, started from the mean
    ``|x|`` (the step from ``s = 0``)."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f"Calibration must be one of {', '.join(CALIBRATIONS)}, not {calibration!r}")
    magnitude = values.detach().to(torch.float64).abs().flatten()
    if magnitude.numel() == 0:
        return 1.0
    if calibration == "max":
        clip = float(magnitude.max())
    else:
        sample = magnitude[::max(1, magnitude.numel() >> 24)]
        if calibration == "percentile":
            clip = float(torch.quantile(sample, percentile / 100))
        else:
            clip = min(float(octav_clip_float(sample.unsqueeze(0), bits, start=float(sample.mean()),
                                              levels=(1 << (bits - 1)) - 1)[0]), float(magnitude.max()))
    return clip if clip > 0 else 1.0


def symmetric_scale(values, bits, calibration="max", percentile=99.99):
    """Scale of symmetric ``bits``-bit codes covering the clip range: ``c / (2**(bits - 1) - 1)``."""
    return clip_value(values, calibration, percentile, bits) / ((1 << (bits - 1)) - 1)


def quantize_symmetric(x, scale, bits):
    """``clamp(round(x / scale))`` to ``bits``-bit signed codes (round half to even), int64."""
    high = (1 << (bits - 1)) - 1
    return torch.round(x.to(torch.float64) / scale).clamp(-high - 1, high).to(torch.int64)


def _asymmetric_params(values, calibration, percentile, bits=8):
    """Scale and zero point of ``bits``-bit signed codes over ``[min, max]`` widened to 0
    (``linear_int8``'s rule at 8 bits), or over the percentile range of each sign."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f"Calibration must be one of {', '.join(CALIBRATIONS)}, not {calibration!r}")
    values = values.detach().to(torch.float64).flatten()
    if calibration == "max":
        low, high = float(values.min()), float(values.max())
    elif calibration == "octav":
        # OCTAV's symmetric clip, cut to the data's own range on each side.
        clip = clip_value(values, calibration, percentile, bits)
        low, high = max(float(values.min()), -clip), min(float(values.max()), clip)
    else:
        sample = values[::max(1, values.numel() >> 24)]
        low = float(torch.quantile(sample, 1 - percentile / 100))
        high = float(torch.quantile(sample, percentile / 100))
    low, high = min(low, 0.0), max(high, 0.0)
    code_min, code_max = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    scale = (high - low) / (code_max - code_min) if high > low else 1.0
    return scale, int(max(code_min, min(code_max, round(code_min - low / scale))))


def _pow2_frac_bits(clip, bits, low=-16, high=16):
    """Largest ``f`` with ``clip * 2**f <= 2**(bits - 1) - 1`` (the finest power-of-two scale that holds
    the clip range), limited to ``[low, high]``."""
    frac = math.floor(math.log2(((1 << (bits - 1)) - 1) / clip))
    return max(low, min(high, frac))


def requantize_fast(acc, multiplier, shift, output_offset, out_min, out_max):
    """``requantize(RequantConfig(), acc, 0, multiplier, shift, output_offset, out_min, out_max)`` for
    accumulators already in int32 range and right shifts only (``shift <= 0``, every multiplier below
    1): the same gemmlowp roundings with fewer tensor passes (``SRDHM``'s truncating division as shifts,
    no wrap, which cannot act in this range). Tests check it against ``requantize``."""
    if bool((shift > 0).any()):
        return requantize(RequantConfig(out_width=16), acc, 0, multiplier, shift, output_offset, out_min, out_max)
    ab = acc * multiplier
    negative = ab < 0
    high = torch.where(negative, -((-ab + ((1 << 30) - 1)) >> 31), (ab + (1 << 30)) >> 31)
    right = -shift
    mask = (1 << right) - 1
    rounded = (high >> right) + ((high & mask) > (mask >> 1) + (high < 0)).to(torch.int64)
    return (rounded + output_offset).clamp(out_min, out_max)


# -- linear layers ------------------------------------------------------------------------------------

class IntLinear(nn.Module):
    """``nn.Linear`` in integers. At ``in_width = out_width = 8`` it is the ``linear_int8`` block: int8
    per-channel symmetric weights, int8 per-tensor asymmetric activations, int32 bias, TFLite
    requantization (Jacob et al., CVPR 2018, section 2.2; the rules of
    :func:`qarith.golden.linear_int8.quantize_linear`). Other widths are the same chain with a wider
    operand: ``mac_array`` with ``a_width = in_width`` (up to 16) and ``requant`` with
    ``out_width`` (up to 16), allowed while the accumulator plus bias fits the requantizer's 32 bits.

    ``forward_codes`` computes the TFLite reference ``sum_k w[o,k] (x[k] + input_offset) + bias[o]`` by an
    exact float64 matrix multiply (module docstring), then ``requantize``. Any leading batch shape.
    """

    def __init__(self, weight_q, bias_q, weight_scale, input_scale, input_zero_point, output_scale,
                 output_zero_point, in_width=8, out_width=8):
        super().__init__()
        self.in_features, self.out_features = weight_q.shape[1], weight_q.shape[0]
        self.in_width, self.out_width = in_width, out_width
        self.input_scale, self.input_zero_point = input_scale, input_zero_point
        self.output_scale, self.output_zero_point = output_scale, output_zero_point
        self.register_buffer("weight_q", weight_q)
        self.register_buffer("bias_q", bias_q)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("weight_f64", weight_q.to(torch.float64).T.contiguous())
        pairs = [quantize_multiplier(input_scale * float(s) / output_scale) for s in weight_scale]
        self.register_buffer("multiplier", torch.tensor([m for m, _ in pairs], dtype=torch.int64))
        self.register_buffer("shift", torch.tensor([s for _, s in pairs], dtype=torch.int64))
        self.code_min, self.code_max = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
        self.out_min, self.out_max = -(1 << (out_width - 1)), (1 << (out_width - 1)) - 1
        bound = self.in_features * 127 * (self.code_max - self.code_min) + int(bias_q.abs().max())
        if bound >= 1 << 31:
            raise ValueError(f"{self.in_features} inputs of {in_width} bits can reach an accumulator of {bound}, "
                             f"beyond the requantizer's 32 bits; use a narrower input")

    @classmethod
    def from_float(cls, linear, calibration_inputs, in_width=8, out_width=8, calibration="max",
                   percentile=99.99, input_quant=None):
        """Quantize ``linear`` with scales from ``calibration_inputs`` (any shape ``(..., in_features)``).
        ``input_quant=(scale, zero_point)`` fixes the input codes' scale (a chained predecessor's)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"Expected a torch.nn.Linear, not {linear!r}")
        if linear.in_features > MAX_LINEAR_K:
            raise ValueError(f"Input features must be at most {MAX_LINEAR_K}, not {linear.in_features}")
        with torch.no_grad():
            x = calibration_inputs.detach().reshape(-1, linear.in_features)
            weight = linear.weight.detach().to(torch.float64)
            weight_scale = weight.abs().amax(dim=1) / 127
            weight_scale = torch.where(weight_scale > 0, weight_scale, torch.ones_like(weight_scale))
            weight_q = torch.round(weight / weight_scale.unsqueeze(1)).clamp(-127, 127).to(torch.int64)
            input_scale, input_zp = input_quant or _asymmetric_params(x, calibration, percentile, in_width)
            reference = linear(x.to(linear.weight.dtype)).to(torch.float64)
            output_scale, output_zp = _asymmetric_params(reference, calibration, percentile, out_width)
            bias = linear.bias.detach().to(torch.float64) if linear.bias is not None \
                else torch.zeros(linear.out_features, dtype=torch.float64)
            bias_q = torch.round(bias / (input_scale * weight_scale)).clamp(-(1 << 31), (1 << 31) - 1)
        return cls(weight_q, bias_q.to(torch.int64), weight_scale, input_scale, input_zp, output_scale,
                   output_zp, in_width, out_width)

    @property
    def input_quant(self):
        return self.input_scale, self.input_zero_point

    @property
    def output_quant(self):
        return self.output_scale, self.output_zero_point

    def quantize(self, x):
        codes = torch.round(x.to(torch.float64) / self.input_scale) + self.input_zero_point
        return codes.clamp(self.code_min, self.code_max).to(torch.int64)

    def accumulate(self, x_q):
        """``sum_k w[o, k] (x[k] + input_offset)``, exact, int64 ``(..., out)``."""
        shifted = (x_q - self.input_zero_point).to(torch.float64)
        return torch.matmul(shifted, self.weight_f64).to(torch.int64)

    def forward_codes(self, x_q):
        """Output codes; the accumulator plus bias is below 2**31 (checked at construction), so
        :func:`requantize_fast` gives ``requantize``'s result."""
        return requantize_fast(self.accumulate(x_q) + self.bias_q, self.multiplier, self.shift,
                               self.output_zero_point, self.out_min, self.out_max)

    def dequantize(self, y_q):
        return (y_q - self.output_zero_point).to(torch.float64) * self.output_scale

    def forward(self, x):
        return self.dequantize(self.forward_codes(self.quantize(x))).to(x.dtype)

    def quantized_linear(self):
        """The same int8 layer as :class:`qarith.golden.linear_int8.QuantizedLinear` (8-bit widths only)."""
        if (self.in_width, self.out_width) != (8, 8):
            raise ValueError("Only an 8-bit layer is a linear_int8 QuantizedLinear")
        return QuantizedLinear(self.weight_q, self.bias_q, self.input_scale, self.input_zero_point,
                               self.weight_scale, self.output_scale, self.output_zero_point)

    def hw_config(self, rows=4):
        """The ``linear_int8`` config that runs this layer in one pass (one MAC array column per output,
        so at most 32 outputs; wider layers run as several column tiles)."""
        return LinearInt8Config(rows=rows, cols=self.out_features, max_k=max(2, self.in_features))


class IntLinearOutlier(nn.Module):
    """``nn.Linear`` as LLM.int8() (Dettmers et al., NeurIPS 2022, sections 3.1-3.2): the
    ``int8_outlier_linear`` block's integer path on every tile of ``rows`` activation rows. Activations
    become signed ``in_width``-bit fixed-point codes with ``frac_bits`` fraction bits (the most that hold
    the calibrated range); per tile the outlier columns (``|x| >= threshold`` in any of its rows) go to the
    side path at full input precision, the rest through vector-wise int8 (a scale per row, outliers
    excluded); weights are row-wise absmax int8 codes, the bias is added in float after the block's
    dequantization (as bitsandbytes adds it after ``int8_mm_dequant``).

    Exact and fast: ``C32 = X8 W8^T`` and ``S = x[:, O] W8[:, O]^T`` are float64 matrix products of
    integers below ``2**53`` (``127 * 127 * K`` and ``2**15 * 127 * K`` for ``K <= 65536``), combined in
    int64 as the block does (``acc = c C32 + 127 S``); a test checks ``acc`` against the block's golden
    model tile by tile. Rows are padded to whole tiles with zero rows, which have no outliers and quantize
    to 0. Any leading batch shape. The output is float (a dequantized block output): a float rescale."""

    def __init__(self, weight_q, weight_scale, bias, cfg):
        super().__init__()
        self.cfg = cfg
        self.in_features, self.out_features = weight_q.shape[1], weight_q.shape[0]
        self.register_buffer("weight_q", weight_q)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias", bias)
        self.register_buffer("weight_f64", weight_q.to(torch.float64).T.contiguous())

    @classmethod
    def from_float(cls, linear, calibration_inputs, in_width=16, threshold=6.0, rows=4, calibration="max",
                   percentile=99.99, input_quant=None):
        """``calibration_inputs`` (any shape ``(..., in_features)``) set ``frac_bits``: the most fraction
        bits whose codes still hold the clip range. ``input_quant`` is not used (the block takes
        fixed-point activations, not a chained predecessor's codes)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"Expected a torch.nn.Linear, not {linear!r}")
        if linear.in_features > MAX_LINEAR_K:
            raise ValueError(f"Input features must be at most {MAX_LINEAR_K}, not {linear.in_features}")
        with torch.no_grad():
            clip = max(clip_value(calibration_inputs.detach().reshape(-1, linear.in_features), calibration,
                                  percentile, in_width), 2.0 ** -24)
            frac_bits = max(0, min(24, math.floor(math.log2(((1 << (in_width - 1)) - 1) / clip))))
            weight_q, weight_scale = quantize_weights(linear.weight.detach())
            bias = linear.bias.detach().to(torch.float64) if linear.bias is not None \
                else torch.zeros(linear.out_features, dtype=torch.float64)
        cfg = Int8OutlierLinearConfig(rows=rows, cols=1, max_k=linear.in_features, in_width=in_width,
                                      frac_bits=frac_bits, threshold=threshold)
        return cls(weight_q, weight_scale, bias, cfg)

    def quantize(self, x):
        """Fixed-point activation codes ``clamp(round(x 2**frac_bits))``."""
        high = (1 << (self.cfg.in_width - 1)) - 1
        return torch.round(x.to(torch.float64) * (1 << self.cfg.frac_bits)).clamp(-high - 1, high).to(torch.int64)

    def accumulate(self, x_q):
        """The block's exact ``acc = c C32 + 127 S``, int64 ``(..., out)``, over tiles of ``rows`` rows."""
        shape = x_q.shape[:-1]
        flat = x_q.reshape(-1, self.in_features)
        pad = (-flat.shape[0]) % self.cfg.rows
        tiles = torch.cat([flat, flat.new_zeros(pad, self.in_features)]).reshape(-1, self.cfg.rows, self.in_features)
        x8, scale, columns = quantize_rows(tiles, self.cfg.threshold_code)
        c32 = torch.matmul(x8.to(torch.float64), self.weight_f64).to(torch.int64)
        side = torch.matmul(torch.where(columns.unsqueeze(1), tiles, 0).to(torch.float64),
                            self.weight_f64).to(torch.int64)
        acc = scale.unsqueeze(2) * c32 + 127 * side
        return acc.reshape(-1, self.out_features)[:flat.shape[0]].reshape(*shape, self.out_features)

    def forward(self, x):
        y = outlier_dequantize(self.cfg, self.accumulate(self.quantize(x)), self.weight_scale) + self.bias
        return y.to(x.dtype)


# -- convolutions -------------------------------------------------------------------------------------

CONV_METHODS = ("direct", "winograd2", "winograd4")


class IntConv2d(nn.Module):
    """``nn.Conv2d`` in int8: ``"direct"`` (MAC array + ``requant``; any kernel, stride, padding) or
    ``"winograd2"`` / ``"winograd4"``, the ``wino_conv`` block F(2x2, 3x3) / F(4x4, 3x3) with tap-wise
    power-of-two weight scales (Lavin & Gray, CVPR 2016; Andri et al., MICRO 2022), for 3x3, stride 1,
    padding 1 layers.

    Quantization as :func:`qarith.golden.wino_conv.quantize_conv`: symmetric per-tensor input (zero point 0,
    so zero padding is exact), per-channel symmetric weights, int32 bias, symmetric per-tensor output.
    Winograd: the output channels are split into groups of at most ``64 / m**2`` (one ``wino_conv`` config
    each, the requantizer's lanes); maps of any size are zero padded at the bottom and right to whole
    tiles and the outputs cropped (exact: the extra outputs are discarded, the kept ones see the same
    zeros as the padding). Any batch size.
    """

    def __init__(self, method, weight_q, bias_q, input_scale, weight_scale, output_scale, stride, padding,
                 act_min=-128, act_max=127):
        super().__init__()
        if method not in CONV_METHODS:
            raise ValueError(f"Method must be one of {', '.join(CONV_METHODS)}, not {method!r}")
        self.method, self.stride, self.padding = method, stride, padding
        self.input_scale, self.output_scale = input_scale, output_scale
        self.act_min, self.act_max = act_min, act_max
        self.register_buffer("weight_q", weight_q)
        self.register_buffer("bias_q", bias_q)
        self.register_buffer("weight_scale", weight_scale)
        pairs = [quantize_multiplier(input_scale * float(s) / output_scale) for s in weight_scale]
        self.register_buffer("multiplier", torch.tensor([m for m, _ in pairs], dtype=torch.int64))
        self.register_buffer("shift", torch.tensor([s for _, s in pairs], dtype=torch.int64))
        self.configs = []
        if method != "direct":
            tile = int(method[-1])
            group = 64 // (tile * tile)
            out_channels = weight_q.shape[0]
            for start in range(0, out_channels, group):
                part = slice(start, min(start + group, out_channels))
                self.configs.append((part, WinoConvConfig(
                    tile=tile, in_channels=weight_q.shape[1], out_channels=part.stop - part.start,
                    scales="tap", weights=tuple(weight_q[part].flatten().tolist()),
                    bias=tuple(bias_q[part].tolist()),
                    multiplier=tuple(input_scale * float(s) / output_scale for s in weight_scale[part]),
                    act_min=act_min, act_max=act_max)))

    @classmethod
    def from_float(cls, conv, calibration_inputs, method="direct", calibration="max", percentile=99.99,
                   input_quant=None):
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"Expected a torch.nn.Conv2d, not {conv!r}")
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
            raise ValueError("Only ungrouped, undilated, zero-padded convolutions are supported")
        if method != "direct" and (conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1)):
            raise ValueError(f"Winograd needs a 3x3 stride-1 padding-1 convolution, not {conv!r}")
        with torch.no_grad():
            weight = conv.weight.detach().to(torch.float64)
            weight_scale = weight.abs().amax(dim=(1, 2, 3)) / 127
            weight_scale = torch.where(weight_scale > 0, weight_scale, torch.ones_like(weight_scale))
            codes = torch.round(weight / weight_scale.view(-1, 1, 1, 1)).clamp(-127, 127).to(torch.int64)
            x = calibration_inputs.detach().to(torch.float64)
            input_scale = input_quant[0] if input_quant else symmetric_scale(x, 8, calibration, percentile)
            bias = conv.bias.detach().to(torch.float64) if conv.bias is not None \
                else torch.zeros(conv.out_channels, dtype=torch.float64)
            bias_q = torch.round(bias / (input_scale * weight_scale)).clamp(-(1 << 31), (1 << 31) - 1)
            reference = torch.nn.functional.conv2d(x, weight, bias, stride=conv.stride, padding=conv.padding)
            output_scale = symmetric_scale(reference, 8, calibration, percentile)
        return cls(method, codes, bias_q.to(torch.int64), input_scale, weight_scale, output_scale,
                   conv.stride, conv.padding)

    @property
    def input_quant(self):
        return self.input_scale, 0

    @property
    def output_quant(self):
        return self.output_scale, 0

    @property
    def weight(self):
        """The dequantized weights, float32: what code that reads the float module's ``weight`` sees
        (Hugging Face's ViT reads its dtype to cast the images)."""
        return (self.weight_q * self.weight_scale.view(-1, 1, 1, 1)).to(torch.float32)

    def quantize(self, x):
        return quantize_symmetric(x, self.input_scale, 8)

    def dequantize(self, y_q):
        return y_q.to(torch.float32) * self.output_scale

    def accumulate_direct(self, x_q):
        """Exact direct accumulators (no bias), int64 ``(N, C_out, H', W')``."""
        acc = torch.nn.functional.conv2d(x_q.to(torch.float64), self.weight_q.to(torch.float64),
                                         stride=self.stride, padding=self.padding)
        return acc.to(torch.int64)

    def _winograd(self, x_q):
        tile = self.configs[0][1].tile
        n = tile + 2
        batch, _, height, width = x_q.shape
        rows, cols = -(-height // tile), -(-width // tile)
        padded = torch.nn.functional.pad(x_q, (1, 1 + cols * tile - width, 1, 1 + rows * tile - height))
        tiles = padded.unfold(2, n, tile).unfold(3, n, tile)                 # (N, C, TY, TX, n, n)
        tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(batch * rows * cols, x_q.shape[1], n, n)
        outputs = []
        for _, cfg in self.configs:
            y = wino_conv(cfg, tiles).reshape(batch, rows, cols, cfg.out_channels, tile, tile)
            outputs.append(y.permute(0, 3, 1, 4, 2, 5).reshape(batch, cfg.out_channels, rows * tile, cols * tile))
        return torch.cat(outputs, dim=1)[:, :, :height, :width]

    def forward_codes(self, x_q):
        squeeze = x_q.dim() == 3
        x_q = x_q.unsqueeze(0) if squeeze else x_q
        if self.method == "direct":
            view = (1, -1, 1, 1)
            out = requantize(RequantConfig(), self.accumulate_direct(x_q), self.bias_q.view(view),
                             self.multiplier.view(view), self.shift.view(view), 0, self.act_min, self.act_max)
        else:
            out = self._winograd(x_q)
        return out.squeeze(0) if squeeze else out

    def forward(self, x):
        return self.dequantize(self.forward_codes(self.quantize(x))).to(x.dtype)


# -- softmax ------------------------------------------------------------------------------------------

SOFTMAX_METHODS = ("lut", "lut_log", "shiftmax", "ibert", "log")

#: I-BERT's i-exp shifts its polynomial right by ``floor(-x / x0)`` (``x0 = -ln 2``), 30 bits at most: a
#: score ``30 ln 2`` below the row's maximum has an exponential of exactly 0.
LOG_MASK_MARGIN = 30 * 0.6931


class IntSoftmax(nn.Module):
    """Softmax over the last dimension as ``softmax_lut`` (Vasyltsov & Chang, arXiv:2111.10770;
    ``"lut"`` reciprocal, ``"lut_log"`` log method), I-ViT's ShiftMax (Li & Gu, ICCV 2023, section 3.3;
    ``"shiftmax"``) or I-BERT's integer softmax (Kim et al., ICML 2021, section 3.4; ``"ibert"``), on
    symmetric ``in_width``-bit score codes, or FQ-ViT's Log-Int-Softmax (Lin et al., IJCAI 2022, section
    3.3; ``"log"``: ``log_softmax_int``, 4-bit log2 codes, the weight ``2**-code`` or 0, what ``attn_v``
    multiplies by shifting). Rows of any length up to 4096 (one cached config per length).
    Masked scores (at or below -1e4, as Hugging Face's additive masks) take the minimum code, which
    ``softmax_lut`` treats as masked and the exponentials send to 0.

    ``"log"`` needs a score step below ``ln 2 / 2`` (its i-exp's ``x0 = floor(-ln 2 / S)`` must be at
    least two steps); :meth:`from_float` widens the score codes, one bit at a time up to 16, until the
    calibrated range fits at such a step (the requantizer in front of the block then emits wider codes),
    then keeps that step and adds bits until the minimum code, which masked scores take, lies
    :data:`LOG_MASK_MARGIN` (``30 ln 2``) below the calibrated range: its exponential is exactly 0, so a
    masked score gets no weight and leaves the row sum unchanged."""

    def __init__(self, method, scale, in_width=8, out_width=8):
        super().__init__()
        if method not in SOFTMAX_METHODS:
            raise ValueError(f"Method must be one of {', '.join(SOFTMAX_METHODS)}, not {method!r}")
        self.method, self.scale, self.in_width, self.out_width = method, scale, in_width, out_width
        self._configs = {}
        self.config(1)                          # validates the scale and widths now

    @classmethod
    def from_float(cls, module, calibration_inputs, method="lut", in_width=8, out_width=8, calibration="max",
                   percentile=99.99):
        """``calibration_inputs``: float scores ``(..., n)``; masked entries are ignored."""
        scores = calibration_inputs.detach().to(torch.float64)
        kept = scores[scores > MASK_THRESHOLD]
        if method == "log":
            while in_width < 16 and symmetric_scale(kept, in_width, calibration, percentile) >= -IBERT_X0_LIMIT:
                in_width += 1
            scale, clip = symmetric_scale(kept, in_width, calibration, percentile), clip_value(kept, calibration, percentile,
                                                                                                in_width)
            while in_width < 16 and (1 << (in_width - 1)) * scale < clip + LOG_MASK_MARGIN:
                in_width += 1
            return cls(method, scale, in_width, out_width)
        return cls(method, symmetric_scale(kept, in_width, calibration, percentile), in_width, out_width)

    def config(self, n):
        if n not in self._configs:
            if self.method == "log":
                self._configs[n] = LogSoftmaxIntConfig(n=n, in_width=self.in_width, scale=self.scale)
            elif self.method.startswith("lut"):
                self._configs[n] = SoftmaxLutConfig(n=n, method="log" if self.method == "lut_log" else "recip",
                                                    in_width=self.in_width, scale=self.scale,
                                                    out_width=self.out_width)
            else:
                self._configs[n] = self._shiftmax_config(n)
        return self._configs[n]

    def _shiftmax_config(self, n):
        """The variant's ``exp_shift`` (15 I-ViT, 30 I-BERT), or the largest smaller one whose sum and
        ``e(0)`` fit (fine scales and long rows need fewer fixed-point bits)."""
        variant = "pytorch" if self.method == "shiftmax" else "ibert"
        first_error = None
        for exp_shift in (None, *range(DEFAULT_SHIFT[variant] - 1, 0, -1)):
            try:
                return ShiftmaxConfig(n=n, variant=variant, in_width=self.in_width, scale=self.scale,
                                      out_width=self.out_width, exp_shift=exp_shift)
            except ValueError as error:
                first_error = first_error or error
        raise first_error

    @property
    def output_step(self):
        """Real value of one output code."""
        return 2.0 ** -(self.out_width - (self.method == "shiftmax"))

    def quantize(self, scores):
        scores = scores.to(torch.float64).masked_fill(scores <= MASK_THRESHOLD, -math.inf)
        return quantize_symmetric(scores, self.scale, self.in_width)

    def forward_codes(self, codes):
        """Probability codes; for ``"log"`` the pair ``(log2 codes, zero flags)``."""
        cfg = self.config(codes.shape[-1])
        if self.method == "log":
            return log_softmax_int(cfg, codes)
        return softmax_lut(cfg, codes) if self.method.startswith("lut") else shiftmax(cfg, codes)

    def forward(self, scores):
        if self.method == "log":
            code, zero = self.forward_codes(self.quantize(scores))
            return torch.where(zero.bool(), 0.0, torch.pow(2.0, -code.to(torch.float64))).to(scores.dtype)
        return (self.forward_codes(self.quantize(scores)).to(torch.float64) * self.output_step).to(scores.dtype)


# -- GELU ---------------------------------------------------------------------------------------------

GELU_METHODS = ("shiftgelu", "igelu", "pwl", "lut")


class IntGelu(nn.Module):
    """GELU as I-ViT's ShiftGELU (``"shiftgelu"``; Li & Gu, ICCV 2023, section 3.4), I-BERT's i-GELU
    (``"igelu"``; Kim et al., ICML 2021, section 3.3), a fitted ``pwl`` table (``"pwl"``; NN-LUT, DAC 2022,
    or iRNN's fit) or a direct ``lut_unary`` table (``"lut"``), elementwise on any shape.

    ``shiftgelu``/``igelu`` take the calibrated scale as it is; ``pwl`` and ``lut`` take power-of-two
    scales only, so their input scale is the finest power of two that holds the clip range (up to twice
    the calibrated step) and their output the finest that holds ``GELU(clip)``.
    """

    def __init__(self, method, cfg, in_scale, out_scale):
        super().__init__()
        self.method, self.cfg, self.in_scale, self.out_scale = method, cfg, in_scale, out_scale

    @classmethod
    def from_float(cls, module, calibration_inputs, method="shiftgelu", in_width=8, out_width=16,
                   calibration="max", percentile=99.99, pwl_entries=16, pwl_method="nnlut"):
        if method not in GELU_METHODS:
            raise ValueError(f"Method must be one of {', '.join(GELU_METHODS)}, not {method!r}")
        clip = clip_value(calibration_inputs, calibration, percentile, in_width)
        if method in ("shiftgelu", "igelu"):
            scale = clip / ((1 << (in_width - 1)) - 1)
            cfg = ShiftGeluConfig(in_width=in_width, scale=scale, method="shift" if method == "shiftgelu" else "ibert")
            return cls(method, cfg, scale, cfg.out_scale)
        in_frac = _pow2_frac_bits(clip, in_width)
        out_frac = _pow2_frac_bits(max(clip, 0.5), out_width, high=24)
        if method == "pwl":
            cfg = PwlConfig(function="gelu", method=pwl_method, entries=pwl_entries, in_width=in_width,
                            in_frac_bits=in_frac, out_width=out_width, out_frac_bits=out_frac)
        else:
            cfg = LutUnaryConfig(function="gelu", in_width=in_width, in_frac_bits=in_frac, out_width=out_width,
                                 out_frac_bits=out_frac)
        return cls(method, cfg, 2.0 ** -in_frac, 2.0 ** -out_frac)

    @property
    def in_width(self):
        return self.cfg.in_width

    @property
    def input_quant(self):
        return self.in_scale, 0

    def quantize(self, x):
        return quantize_symmetric(x, self.in_scale, self.in_width)

    def forward_codes(self, codes):
        if self.method in ("shiftgelu", "igelu"):
            return shiftgelu(self.cfg, codes)
        return pwl(self.cfg, codes) if self.method == "pwl" else lut_unary(self.cfg, codes)

    def forward(self, x):
        return (self.forward_codes(self.quantize(x)).to(torch.float64) * self.out_scale).to(x.dtype)


# -- LayerNorm ----------------------------------------------------------------------------------------

class IntLayerNorm(nn.Module):
    """``nn.LayerNorm`` over the last dimension as the ``ilayernorm`` block (I-ViT's I-LayerNorm, Li & Gu,
    ICCV 2023; FQ-ViT's Power-of-Two Factors, Lin et al., IJCAI 2022, section 3.2, with ``ptf=True``).

    Every parameter a trained model has is accepted, with integer steps after the block (the block itself
    is unchanged and needs ``gamma > 0`` and ``|beta / gamma| < sqrt(C)``):

    * ``gamma_c < 0``: the block runs ``|gamma_c|`` with ``-beta_c`` and the code is negated
      (``gamma n + beta = -(|gamma| n - beta)``);
    * ``gamma_c = 0``: the output is the constant code ``round(beta_c / out_scale)``;
    * ``|beta_c / gamma_c| >= sqrt(C)`` (the block's bias would overflow): the block runs with
      ``beta_c = 0`` and ``round(beta_c / out_scale)`` is added to its code;

    each followed by the clamp to the output codes (saturating negation and add).

    Inputs: symmetric ``in_width``-bit codes at one scale (``ptf=False``) or, with PTF, at a base scale
    ``S`` with per-channel factors ``2**alpha_c`` (``alpha_c = ceil(log2(clip_c / (S q_max)))`` clamped to
    0..3, ``S = clip / (8 q_max)``), the block shifting each code left by ``alpha_c``.
    """

    block = "ilayernorm"

    def __init__(self, cfg, in_scale, alphas, sign, zero, constant, post_bias):
        super().__init__()
        self.cfg, self.in_scale = cfg, in_scale
        self.register_buffer("alphas", torch.tensor(alphas, dtype=torch.int64))
        self.register_buffer("sign", sign)
        self.register_buffer("zero", zero)
        self.register_buffer("constant", constant)
        self.register_buffer("post_bias", post_bias)

    @classmethod
    def from_float(cls, norm, calibration_inputs, in_width=12, out_width=16, ptf=True, calibration="max",
                   percentile=99.99):
        if not isinstance(norm, nn.LayerNorm) or len(norm.normalized_shape) != 1:
            raise TypeError(f"Expected a torch.nn.LayerNorm over the last dimension, not {norm!r}")
        channels = norm.normalized_shape[0]
        x = calibration_inputs.detach().to(torch.float64).reshape(-1, channels)
        q_max = (1 << (in_width - 1)) - 1
        if ptf:
            clips = torch.tensor([clip_value(x[:, c], calibration, percentile, in_width) for c in range(channels)]) \
                if calibration != "max" else x.abs().amax(dim=0).clamp(min=1e-30)
            base = float(clips.max()) / (8 * q_max)
            alphas = torch.ceil(torch.log2(clips / (base * q_max))).clamp(0, 3).to(torch.int64).tolist()
        else:
            base, alphas = clip_value(x, calibration, percentile, in_width) / q_max, [0] * channels
        gamma = norm.weight.detach().to(torch.float64) if norm.weight is not None else torch.ones(channels, dtype=torch.float64)
        beta = norm.bias.detach().to(torch.float64) if norm.bias is not None else torch.zeros(channels, dtype=torch.float64)
        reference = torch.nn.functional.layer_norm(x, (channels,), gamma, beta, norm.eps)
        out_scale = symmetric_scale(reference, out_width, calibration, percentile)
        out_max = (1 << (out_width - 1)) - 1
        sign = torch.where(gamma < 0, -1, 1).to(torch.int64)
        zero = gamma == 0
        beta_code = torch.round(beta / out_scale).clamp(-out_max - 1, out_max).to(torch.int64)
        unit = math.sqrt(channels) / 2 ** 30
        magnitude = torch.where(zero, torch.ones_like(gamma), gamma.abs())
        moved = zero | (torch.round(beta.abs() / (magnitude * unit)) >= 1 << 30)
        block_beta = torch.where(moved, torch.zeros_like(beta), sign * beta)
        cfg = ILayerNormConfig(channels=channels, in_width=in_width, ptf=tuple(alphas), gamma=tuple(magnitude.tolist()),
                               beta=tuple(block_beta.tolist()), out_scale=out_scale, out_width=out_width)
        no_code = torch.zeros_like(beta_code)
        return cls(cfg, base, alphas, sign, zero, torch.where(zero, beta_code, no_code),
                   torch.where(moved & ~zero, beta_code, no_code))

    @property
    def out_scale(self):
        return self.cfg.out_scale

    @property
    def input_quant(self):
        return self.in_scale, 0

    def quantize(self, x):
        """Codes ``round(x / (S 2**alpha_c))``, symmetric ``in_width`` bits."""
        steps = self.in_scale * torch.pow(2.0, self.alphas.to(torch.float64))
        return quantize_symmetric(x.to(torch.float64) / steps, 1.0, self.cfg.in_width)

    def forward_codes(self, codes):
        out = ilayernorm(self.cfg, codes) * self.sign + self.post_bias
        out = torch.where(self.zero, self.constant, out)
        return out.clamp(self.cfg.out_min, self.cfg.out_max)

    def forward(self, x):
        return (self.forward_codes(self.quantize(x)).to(torch.float64) * self.out_scale).to(x.dtype)
