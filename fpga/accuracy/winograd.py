"""Accuracy of Winograd convolution with tap-wise quantization against the direct integer and the float
layer, and the multipliers per output pixel of each ``wino_conv`` netlist."""

from dataclasses import replace

import torch

from ...golden.common.winograd import DIRECT_MULTS_PER_OUTPUT
from ...golden.wino_conv import (
    assemble_tiles,
    direct_conv_int,
    feature_map_tiles,
    quantize_conv,
    seeded_conv,
    wino_accumulate,
    wino_conv2d,
    winograd_layer,
)
from ...hdl.common.component import interface
from ...hdl.wino_conv import WinoConv

__all__ = ["winograd_error", "WINOGRAD_CASES", "winograd_accuracy", "winograd_markdown"]


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


WINOGRAD_CASES = ((4, 8), (2, 8), (4, 10))


def winograd_accuracy(configs, cases=WINOGRAD_CASES):
    """``{"errors": [...], "mults": [...]}``: :func:`winograd_error` for each
    ``(tile, weight_width)`` of ``cases`` (16 -> 4 channels, eight Gaussian 16 x 16 maps), and each
    of the named ``wino_conv`` ``configs``' multipliers counted in its netlist per output pixel, against a direct
    3x3 convolution's 9."""
    errors = []
    for tile, weight_width in cases:
        for row, figures in winograd_error(tile=tile, weight_width=weight_width).items():
            if row == "direct int8" and (tile, weight_width) != cases[0]:
                continue
            errors.append({"tile": tile, "weight_width": weight_width, "row": row, **figures})
    mults = []
    for name, cfg in configs.items():
        component = interface(WinoConv, cfg)
        mults.append({"config": name, "tile": cfg.tile, "multipliers": component.multipliers,
                      "outputs_per_tile": cfg.out_channels * cfg.tile ** 2,
                      "mults_per_output": component.mults_per_output,
                      "fewer_than_direct": DIRECT_MULTS_PER_OUTPUT / component.mults_per_output})
    return {"errors": errors, "mults": mults}


def winograd_markdown(result):
    lines = ["## Winograd accuracy (int8 3x3 layer, 16 -> 4 channels, Gaussian 16 x 16 maps; output LSB)", "",
             "| tile | weight bits | row | vs direct int8 max / mean | outputs differing | vs float max / mean | "
             "accumulator rel. RMS |", "|---:|---:|---|---:|---:|---:|---:|"]
    for r in result["errors"]:
        rms = r.get("acc_rel_rms_error", "")
        lines.append(f"| F{r['tile']} | {r['weight_width']} | {r['row']} | {r['vs_direct_int_max_lsb']} / "
                     f"{r['vs_direct_int_mean_lsb']:.3g} | {r['vs_direct_int_mismatch']:.1%} | "
                     f"{r['vs_float_max_lsb']:.3g} / {r['vs_float_mean_lsb']:.3g} | {rms} |")
    lines += ["", "Multiplications per output pixel (per input channel), counted in the generated netlist:", "",
              "| config | tile | multipliers | outputs per tile | mults / output | fewer than direct (9) |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in result["mults"]:
        lines.append(f"| {r['config']} | F{r['tile']} | {r['multipliers']} | {r['outputs_per_tile']} | "
                     f"{r['mults_per_output']:.3g} | {r['fewer_than_direct']:.3g}x |")
    return "\n".join(lines) + "\n"
