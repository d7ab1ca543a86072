"""Test bench of the ``linear_int8`` block: a calibrated float layer quantized by the golden model."""

import cocotb
import torch
from torch import nn

from ..golden.linear_int8 import linear_int8_hw, quantize_linear
from ..hdl.linear_int8 import LinearInt8
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "layer_vectors", "calibrated_layer"]


def calibrated_layer(cfg, depth, seed, activation="none"):
    """A seeded float ``nn.Linear(depth, cols)``, Gaussian calibration inputs, and its quantization."""
    torch.manual_seed(seed)
    linear = nn.Linear(depth, cfg.cols)
    calibration = torch.randn(256, depth) * 1.5 + 0.25
    return linear, calibration, quantize_linear(linear, calibration, activation)


def layer_vectors(cfg, name, qlinear, x_codes):
    """Vectors for int8 input codes ``x_codes (T * rows, K)`` through quantized layer ``qlinear``."""
    tiles = x_codes.reshape(-1, cfg.rows, x_codes.shape[1])
    static = {
        "bias": qlinear.folded_bias().tolist(), "multiplier": qlinear.multiplier.tolist(),
        "shift": qlinear.shift.tolist(), "output_offset": qlinear.output_zero_point,
        "act_min": qlinear.act_min, "act_max": qlinear.act_max,
    }
    out = linear_int8_hw(cfg, tiles, qlinear.weight, qlinear.folded_bias(), qlinear.multiplier,
                         qlinear.shift, qlinear.output_zero_point, qlinear.act_min, qlinear.act_max)
    beats, expected, origin = [], [], []
    depth = tiles.shape[2]
    for t, tile in enumerate(tiles):
        first = len(beats)
        for k in range(depth):
            beats.append({"a": tile[:, k].tolist(), "b": qlinear.weight[:, k].tolist(),
                          "last": int(k == depth - 1)})
        for r in range(cfg.rows):
            expected.append(out[t, r].tolist())
            origin.append(list(range(first, len(beats))))
    return Vectors(name, beats, expected, static, origin)


def vectors(cfg, seed=1):
    """Named cases: calibrated layers (no activation and ReLU6) on in-distribution inputs, and
    full-depth extreme codes."""
    cases = []
    depth = min(cfg.max_k, 48)
    for activation in ("none", "relu6"):
        _, calibration, qlinear = calibrated_layer(cfg, depth, seed, activation)
        x = calibration[: 4 * cfg.rows]
        cases.append(layer_vectors(cfg, f"calibrated_{activation}", qlinear, qlinear.quantize_input(x)))
    _, _, qlinear = calibrated_layer(cfg, cfg.max_k, seed + 1)
    qlinear.weight[:] = torch.where(torch.arange(cfg.cols).unsqueeze(1) % 2 == 0, 127, -127)
    extremes = torch.stack([torch.full((cfg.max_k,), -128), torch.full((cfg.max_k,), 127)])
    codes = extremes.repeat(cfg.rows, 1)[: 2 * cfg.rows]
    cases.append(layer_vectors(cfg, "extreme_codes_max_k", qlinear, codes))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, LinearInt8, vectors, mode)
