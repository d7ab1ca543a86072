"""Golden model of the ``wino_conv`` block: an int8 3x3 convolution by Winograd tiles with tap-wise
power-of-two weight scales, then TFLite requantization.

The method, its integer steps and its roundings: :mod:`qarith.golden.common.winograd` (Lavin & Gray,
CVPR 2016; Andri et al., MICRO 2022).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from .common.codes import require_integers, width_for
from .common.winograd import (
    SCALES,
    check_tile_and_kernel,
    input_transform,
    input_transform_range,
    matrices,
    output_transform,
    round_ratio,
    round_shift,
    synthetic_weights,
    tap_coefficients,
    tap_scales,
    tuple_field,
    weight_transform,
)
from .requant import RequantConfig, quantize_multiplier, requantize
from .wino_input import WinoInputConfig

__all__ = ['WinoConvConfig', 'WinogradLayer', 'winograd_layer', 'wino_accumulate', 'wino_conv', 'direct_conv_int', 'direct_conv_tiles', 'feature_map_tiles', 'assemble_tiles', 'wino_conv2d', 'quantize_conv', 'seeded_conv', 'seeded_conv_config']


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
        check_tile_and_kernel(self)
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
        weights = tuple_field(self, "weights", int, self.out_channels * self.in_channels * 9)
        bias = tuple_field(self, "bias", int, self.out_channels)
        multiplier = tuple_field(self, "multiplier", (int, float), self.out_channels)
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
    weights = round_ratio(torch.bitwise_left_shift(numerators, s.clamp(min=0)),
                           torch.bitwise_left_shift(torch.full_like(s, denominator), (-s).clamp(min=0)))
    shifts = exponents - common.view(-1, 1, 1)
    bias = torch.tensor(cfg.bias, dtype=torch.int64)
    bias = torch.where(common >= 0, torch.bitwise_left_shift(bias, common.clamp(min=0)),
                       round_ratio(bias, torch.bitwise_left_shift(torch.ones_like(bias), (-common).clamp(min=0))))
    pairs = [quantize_multiplier(math.ldexp(m, -int(c))) for m, c in zip(cfg.multiplier, common)]
    low, high = input_transform_range(cfg.tile, cfg.in_width)
    v_bound = torch.maximum(-low, high)
    mac_bounds = (weights.abs() * v_bound).sum(dim=1)
    shifted_bounds = round_shift(mac_bounds, shifts)
    a = tap_coefficients(matrices(cfg.tile).AT).abs()                   # (m, m, n, n)
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
