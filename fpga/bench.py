"""Benchmark (not a test): cocotb simulation speed per simulator and MAC-array utilisation.

* Simulation speed: each block's first named config runs its full cocotb bench (every case, in the
  stream modes of ``QARITH_MODES``, by default ``plain`` and ``both``); speed is input beats accepted per second of simulation wall time, from the times
  cocotb writes into its results file (the build is done first and not counted).
* Accuracy: ``linear_int8``'s integer-vs-float error on calibrated layers of several sizes; the table
  blocks' error against their float functions (:mod:`qarith.fpga.accuracy`).
* Utilisation: a long stream of back-to-back tiles through ``mac_array`` in ``amaranth.sim`` with an
  always-ready consumer; utilisation is useful MACs / (rows * cols * cycles from the first accepted
  step to the last output row), for several reduction depths K.

``make bench`` writes ``build/report/bench.json``; ``make report`` puts it into ``report.md``.
"""

import json
import time
from pathlib import Path
from xml.etree import ElementTree

import torch

from ..golden.mac_array import MacArrayConfig
from ..hdl.mac_array import MacArray
from ..sim.common.bench import run_amaranth, slow_modes
from ..sim.common.runner import SIMULATORS, run_cocotb
from ..sim.mac_array import random_tiles, tile_vectors
from .accuracy.ant import ant_accuracy, ant_markdown
from .accuracy.dfp import dfp_accuracy, dfp_markdown
from .accuracy.elbert import elbert_accuracy, elbert_markdown
from .accuracy.encoder import encoder_cycles, encoder_markdown
from .accuracy.llm_int8 import llm_int8_accuracy, llm_int8_markdown
from .accuracy.lns import lns_add_accuracy, lns_add_markdown, lns_errors, lns_markdown, lns_plot, lns_summary
from .accuracy.lut_gemv import gemv_cycles_table, lut_gemv_accuracy, lut_gemv_markdown
from .accuracy.octav import octav_accuracy, octav_markdown
from .accuracy.pwl import pwl_accuracy, pwl_markdown, pwl_plot
from .accuracy.rows import shift_accuracy, shift_markdown, softmax_accuracy, softmax_markdown
from .accuracy.varlen import varlen_cycles, varlen_markdown
from .accuracy.winograd import winograd_accuracy, winograd_markdown
from .report import write_markdown

__all__ = ["run_benchmark", "simulation_speed", "utilisation"]


def simulation_speed(block, config_name, simulator):
    """Input beats per second of ``block``'s cocotb bench (a registry entry: its ``generator``, ``bench``
    and ``configs``) for its config ``config_name`` on ``simulator``."""
    cfg = block.configs[config_name]
    beats = sum(len(case.beats) for case in block.bench.vectors(cfg)) * len(slow_modes())
    results = run_cocotb(block.generator, block.bench, cfg, simulator, f"{block.name}__{config_name}")
    seconds = sum(float(case.get("time", 0)) for case in ElementTree.parse(results).iter("testcase"))
    return {"block": block.name, "config": config_name, "simulator": simulator, "beats": beats,
            "seconds": round(seconds, 3), "beats_per_second": round(beats / seconds, 1)}


def utilisation(config_name, cfg, depths, tiles=24, seed=0):
    """MAC utilisation of ``mac_array`` config ``cfg`` (named ``config_name``) at each reduction depth."""
    if not isinstance(cfg, MacArrayConfig):
        raise TypeError(f"Configuration must be a MacArrayConfig, not {cfg!r}")
    rows = []
    for depth in depths:
        gen = torch.Generator().manual_seed(seed)
        case = tile_vectors(cfg, f"k{depth}", random_tiles(cfg, gen, tiles, [depth]))
        result = run_amaranth(MacArray(cfg), case)
        cycles = result.out_cycles[-1] - result.in_cycles[0] + 1
        macs = tiles * depth * cfg.macs
        rows.append({"config": config_name, "k": depth, "tiles": tiles, "cycles": cycles,
                     "macs_per_cycle": round(macs / cycles, 2),
                     "utilisation": round(macs / (cfg.macs * cycles), 3)})
    return rows


def accuracy(seed=0):
    """Float error of ``linear_int8`` (dequantized integer output vs ``torch.nn.Linear``) on the
    calibration inputs, in output quantization steps (LSB), with the share of outputs inside the
    rounding bound of :func:`qarith.golden.linear_int8.error_bound`."""
    from ..golden.linear_int8 import LinearInt8Config, error_bound, float_error
    from ..sim.linear_int8 import calibrated_layer
    rows = []
    for activation in ("none", "relu6"):
        for depth in (16, 64, 256, 1024):
            linear, calibration, qlinear = calibrated_layer(LinearInt8Config(cols=16, max_k=1024), depth, seed,
                                                            activation)
            with torch.no_grad():
                reference = linear(calibration)
                if activation == "relu6":
                    reference = reference.clamp(0, 6)
                inside = ((qlinear(calibration) - reference).abs()
                          <= error_bound(qlinear, linear, calibration)).double().mean().item()
            error = float_error(qlinear, linear, calibration)
            rows.append({"activation": activation, "in_features": depth, "out_features": 16,
                         "max_lsb": round(error["max_lsb"], 3), "mean_lsb": round(error["mean_lsb"], 3),
                         "within_bound": inside})
    return rows


def run_benchmark(output, blocks):
    """Run the benchmark over ``blocks`` (the registry's mapping of names to entries) into ``output``."""
    from rich.console import Console
    console = Console()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    speed = []
    for block in blocks.values():
        config_name = next(iter(block.configs))
        for simulator in SIMULATORS:
            console.log(f"simulation speed: {block.name} {config_name} on {simulator}")
            speed.append(simulation_speed(block, config_name, simulator))
    util = []
    for config_name in ("int8_4x4", "int8_8x8"):
        cfg = blocks["mac_array"].configs[config_name]
        console.log(f"utilisation: mac_array {config_name}")
        util += utilisation(config_name, cfg, sorted({1, cfg.rows // 2 or 1, cfg.rows, 4 * cfg.rows, 64}))
    console.log("accuracy: linear_int8 against torch.nn.Linear")
    linear = accuracy()
    console.log("accuracy: softmax_lut against torch.softmax, and the hls4ml peer")
    result = {"command": "make bench", "date": time.strftime("%Y-%m-%d"),
              "simulation_speed": speed, "mac_array_utilisation": util, "linear_int8_accuracy": linear,
              "softmax_lut_accuracy": softmax_accuracy(blocks["softmax_lut"].configs),
              "shift_accuracy": shift_accuracy({name: block.configs for name, block in blocks.items()})}
    console.log("accuracy: pwl fitters (every input code) and the plot")
    result["pwl_accuracy"] = pwl_accuracy(blocks["pwl"].configs)
    pwl_plot(result["pwl_accuracy"]["sweep"], output / "pwl_error.png")
    console.log("accuracy: 8-bit LNS against int8 (mul, add, dot) and the plot")
    errors = lns_errors()
    result["lns_accuracy"] = lns_summary(errors)
    lns_plot(errors, output / "lns_error.png")
    console.log("accuracy: lns_add over every pair of words")
    result["lns_add_accuracy"] = lns_add_accuracy(blocks["lns_add"].configs)
    console.log("accuracy: Winograd tap-wise / single-scale against direct and float convolution")
    result["winograd_accuracy"] = winograd_accuracy(blocks["wino_conv"].configs)
    console.log("accuracy: lut_gemv BCQ against RTN weights on a digits MLP, cycles against linear_int8")
    result["lut_gemv"] = {"accuracy": lut_gemv_accuracy(),
                          "cycles": gemv_cycles_table(blocks["lut_gemv"].configs, blocks["linear_int8"].configs)}
    console.log("accuracy: OCTAV clips against the paper's, linear_int8 calibrated by max and by OCTAV")
    result["octav_accuracy"] = octav_accuracy()
    console.log("accuracy: early_exit's integer rule against ELBERT's float rule")
    result["elbert_accuracy"] = elbert_accuracy()
    console.log("accuracy: dfp_quant stochastic rounding bias and error by code width")
    result["dfp_accuracy"] = dfp_accuracy()
    console.log("accuracy: ANT 4-bit types against int4 / PoT4 / flint4 (MSE, digits MLP)")
    result["ant_accuracy"] = ant_accuracy()
    console.log("accuracy: LLM.int8() with and without outlier decomposition (planted, digits, MiniLM)")
    result["llm_int8_accuracy"] = llm_int8_accuracy()
    console.log("cycles: row blocks' variable-length rows against row length")
    result["varlen_cycles"] = varlen_cycles(blocks)
    console.log("cycles: encoder layer against sequence length (its cycle formula)")
    result["encoder_cycles"] = encoder_cycles()
    (output / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (output / "bench.md").write_text(bench_markdown(result))
    write_markdown(output)
    console.print(bench_markdown(result))
    return result


def bench_markdown(result):
    lines = ["## Simulation speed (cocotb, input beats per second)", "",
             "| block | config | simulator | beats | seconds | beats/s |", "|---|---|---|---:|---:|---:|"]
    for r in result["simulation_speed"]:
        lines.append(f"| {r['block']} | {r['config']} | {r['simulator']} | {r['beats']} | {r['seconds']} | "
                     f"{r['beats_per_second']} |")
    lines += ["", "## MAC-array utilisation (back-to-back tiles, always-ready consumer)", "",
              "| config | K | tiles | cycles | MACs/cycle | utilisation |", "|---|---:|---:|---:|---:|---:|"]
    for r in result["mac_array_utilisation"]:
        lines.append(f"| {r['config']} | {r['k']} | {r['tiles']} | {r['cycles']} | {r['macs_per_cycle']} | "
                     f"{r['utilisation']} |")
    lines += ["", "## linear_int8 accuracy (256 calibration rows, error in output LSB)", "",
              "| activation | in x out | max LSB | mean LSB | inside rounding bound |", "|---|---|---:|---:|---:|"]
    for r in result["linear_int8_accuracy"]:
        lines.append(f"| {r['activation']} | {r['in_features']} x {r['out_features']} | {r['max_lsb']} | "
                     f"{r['mean_lsb']} | {r['within_bound']:.0%} |")
    text = "\n".join(lines) + "\n"
    if "softmax_lut_accuracy" in result:
        text += "\n" + softmax_markdown(result["softmax_lut_accuracy"])
    if "shift_accuracy" in result:
        text += "\n" + shift_markdown(result["shift_accuracy"])
    if "pwl_accuracy" in result:
        text += "\n" + pwl_markdown(result["pwl_accuracy"])
    if "lns_accuracy" in result:
        text += "\n" + lns_markdown(result["lns_accuracy"])
    if "lns_add_accuracy" in result:
        text += "\n" + lns_add_markdown(result["lns_add_accuracy"])
    if "winograd_accuracy" in result:
        text += "\n" + winograd_markdown(result["winograd_accuracy"])
    if "lut_gemv" in result:
        text += "\n" + lut_gemv_markdown(result["lut_gemv"])
    if "octav_accuracy" in result:
        text += "\n" + octav_markdown(result["octav_accuracy"])
    if "elbert_accuracy" in result:
        text += "\n" + elbert_markdown(result["elbert_accuracy"])
    if "dfp_accuracy" in result:
        text += "\n" + dfp_markdown(result["dfp_accuracy"])
    if "varlen_cycles" in result:
        text += "\n" + varlen_markdown(result["varlen_cycles"])
    if "encoder_cycles" in result:
        text += "\n" + encoder_markdown(result["encoder_cycles"])
    if "ant_accuracy" in result:
        text += "\n" + ant_markdown(result["ant_accuracy"])
    if "llm_int8_accuracy" in result:
        text += "\n" + llm_int8_markdown(result["llm_int8_accuracy"])
    return text
