"""Accuracy of the row and unary blocks: ``softmax_lut`` against torch.softmax and the emulated hls4ml
softmax, the I-ViT / I-BERT kernels, FQ-ViT's Log-Int-Softmax and ``attn_v``."""

import dataclasses

import torch

from ...golden.common.scores import KINDS, score_rows
from ...golden.softmax_lut import HLS4ML_TABLE_BYTES, accuracy, float_softmax, hls4ml_softmax, softmax_lut

__all__ = ["SOFTMAX_KINDS", "SOFTMAX_LENGTHS", "softmax_accuracy", "softmax_summary", "softmax_markdown",
           "shift_accuracy", "row_summary", "shift_markdown"]

SOFTMAX_KINDS = KINDS
SOFTMAX_LENGTHS = (16, 64, 256)
PEER = "hls4ml"


def softmax_accuracy(configs, rows=1000, seed=0):
    """One record per (config, n, distribution) of the named ``softmax_lut`` ``configs`` and one for the
    peer on the same input codes."""
    records = []
    for name, base in configs.items():
        for n in SOFTMAX_LENGTHS:
            cfg = dataclasses.replace(base, n=n)
            for kind in SOFTMAX_KINDS:
                x, keep = score_rows(cfg, kind, rows, n, seed=seed)
                reference = float_softmax(cfg, x, keep)
                ours = softmax_lut(cfg, x).to(torch.float64) * 2.0 ** -cfg.out_width
                common = {"n": n, "distribution": kind, "rows": rows}
                records.append({"config": name, "table_bytes": cfg.table_bytes, **common,
                                **accuracy(reference, ours, 2.0 ** -cfg.out_width)})
                records.append({"config": name, "peer": PEER, "table_bytes": HLS4ML_TABLE_BYTES, **common,
                                **accuracy(reference, hls4ml_softmax(cfg, x), 2.0 ** -10)})
    return records


def softmax_summary(records):
    """Per config (and the peer on that config's inputs): table bytes at the longest row, worst max error, mean of the mean errors and
    KL divergences, total argmax flips and rows, over every length and distribution."""
    groups = {}
    for r in records:
        groups.setdefault((r["config"], r.get("peer", "qarith")), []).append(r)
    summary = []
    for (config, who), group in groups.items():
        summary.append({
            "config": config, "implementation": who, "table_bytes": max(r["table_bytes"] for r in group),
            "max_abs": max(r["max_abs"] for r in group),
            "mean_abs": sum(r["mean_abs"] for r in group) / len(group),
            "kl": sum(r["kl"] for r in group) / len(group),
            "argmax_flips": sum(r["argmax_flips"] for r in group),
            "rows": sum(r["rows"] for r in group),
            "top_kept": min(r["top_kept"] for r in group),
        })
    return summary


def softmax_markdown(records):
    lines = ["## softmax_lut accuracy against torch.softmax, beside hls4ml's default softmax", "",
             f"Rows of {', '.join(map(str, SOFTMAX_LENGTHS))} elements, {records[0]['rows']} rows per "
             f"distribution ({', '.join(SOFTMAX_KINDS)}); masked scores count as -inf in the reference. "
             "hls4ml: `softmax_stable` with default types, 1024-entry exp and inverse tables of 18-bit words, "
             "on the same input codes. Flips: rows whose output argmax (first index among equal outputs) is "
             "not a largest float probability; top kept: share of rows where a largest float probability "
             "also has the largest output.", "",
             "Summary over every length and the unmasked distributions (table bytes at n = 256):", "",
             "| config | implementation | table bytes | max abs error | mean abs error | mean KL | argmax flips | "
             "top kept |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for s in softmax_summary([r for r in records if r["distribution"] != "masked"]):
        lines.append(f"| {s['config']} | {s['implementation']} | {s['table_bytes']} | {s['max_abs']:.4f} | "
                     f"{s['mean_abs']:.5f} | {s['kl']:.5f} | {s['argmax_flips']} / {s['rows']} | "
                     f"{s['top_kept']:.3f} |")
    lines += ["", "### Per length and distribution", "",
              "| config | n | distribution | ours max / mean / KL / flips | hls4ml max / mean / KL / flips |",
              "|---|---:|---|---|---|"]
    ours = [r for r in records if "peer" not in r]
    peers = [r for r in records if "peer" in r]
    for a, h in zip(ours, peers):
        lines.append(f"| {a['config']} | {a['n']} | {a['distribution']} | "
                     f"{a['max_abs']:.4f} / {a['mean_abs']:.5f} / {a['kl']:.5f} / {a['argmax_flips']} | "
                     f"{h['max_abs']:.4f} / {h['mean_abs']:.5f} / {h['kl']:.5f} / {h['argmax_flips']} |")
    return "\n".join(lines) + "\n"


def shift_accuracy(configs, rows=1000, seed=0):
    """For the named ``configs`` (``{block: {name: config}}``): ``{"shiftmax": [...], "shiftgelu": [...], "ilayernorm": [...]}``: error records of the I-ViT
    blocks' configs (``ilayernorm`` against ``layer_norm`` on transformer-like rows, in output steps,
    the reference clamped to the output range)."""
    from ...golden.shiftgelu import gelu_reference, shiftgelu
    from ...golden.shiftmax import shiftmax
    softmax_records = []
    for name, cfg in configs["shiftmax"].items():
        for kind in SOFTMAX_KINDS:
            x, keep = score_rows(cfg, kind, rows, cfg.n, seed=seed)
            reference = torch.softmax((x.to(torch.float64) * cfg.scale).masked_fill(~keep, -torch.inf), dim=-1)
            lsb = 2.0 ** -cfg.out_bits
            softmax_records.append({"config": name, "n": cfg.n, "distribution": kind, "rows": rows,
                                    **accuracy(reference, shiftmax(cfg, x).to(torch.float64) * lsb, lsb)})
    gelu_records = []
    from ...golden.shiftgelu import ShiftGeluConfig
    references = {"reference_shift_n23 (not registered)": ShiftGeluConfig(factor="shift", exp_shift=23),
                  "reference_ibert_erf14 (not registered)": ShiftGeluConfig(method="ibert", erf_shift=14)}
    for name, cfg in [*configs["shiftgelu"].items(), *references.items()]:
        codes = cfg.codes
        out = shiftgelu(cfg, codes).to(torch.float64) * cfg.out_scale
        error = (out - gelu_reference(cfg, codes)).abs()
        gelu_records.append({"config": name, "method": cfg.method,
                             "factor": cfg.factor if cfg.method == "shift" else f"erf_shift {cfg.erf_shift}",
                             "exp_shift": cfg.exp_shift if cfg.method == "shift" else "-",
                             "scale": cfg.scale, "codes": len(codes), "max_abs": float(error.max()),
                             "mean_abs": float(error.mean()), "max_steps": float(error.max() / cfg.scale)})
    from ...golden.ilayernorm import activation_rows, float_layernorm, ilayernorm
    norm_records = []
    for name, cfg in configs["ilayernorm"].items():
        x = activation_rows(cfg, rows, seed=seed)
        reference = (float_layernorm(cfg, x) / cfg.out_scale).clamp(cfg.out_min, cfg.out_max)
        error = (ilayernorm(cfg, x).to(torch.float64) - reference).abs()
        norm_records.append({"config": name, "channels": cfg.channels, "rows": rows,
                             "max_steps": float(error.max()), "mean_steps": float(error.mean())})
    from ...golden.attn_v import attn_v
    from ...golden.log_softmax_int import LogSoftmaxIntConfig, log_softmax_int
    lis_records = []
    for name, cfg in configs["log_softmax_int"].items():
        for kind in SOFTMAX_KINDS:
            x, keep = score_rows(cfg, kind, rows, cfg.n, seed=seed)
            reference = torch.softmax((x.to(torch.float64) * cfg.scale).masked_fill(~keep, -torch.inf), dim=-1)
            code, zero = log_softmax_int(cfg, x)
            weight = torch.where(zero.bool(), 0.0, 2.0 ** -code.to(torch.float64))
            lis_records.append({"config": name, "n": cfg.n, "distribution": kind, "rows": rows,
                                **accuracy(reference, weight, 2.0 ** -(cfg.levels - 1)),
                                "zero_share": float(zero.to(torch.float64).mean())})
    attn_records = []
    for name, cfg in configs["attn_v"].items():
        gen = torch.Generator().manual_seed(seed)
        lis = LogSoftmaxIntConfig(n=cfg.n, bits=cfg.bits)
        x, _ = score_rows(lis, "gauss2", rows, cfg.n, seed=seed)
        code, zero = log_softmax_int(lis, x)
        low, high = -(1 << (cfg.v_width - 1)), (1 << (cfg.v_width - 1)) - 1
        v = torch.randint(low, high + 1, (rows, cfg.n), generator=gen)
        exact = (torch.where(zero.bool(), 0.0, 2.0 ** -code.to(torch.float64)) * v).sum(dim=-1)
        scale = 2.0 ** -(cfg.levels - 1) if cfg.rounding == "exact" else 1.0
        out = attn_v(cfg, code, zero, v).to(torch.float64) * scale
        float_out = (torch.softmax(x.to(torch.float64) * lis.scale, dim=-1) * v).sum(dim=-1)
        attn_records.append({"config": name, "rounding": cfg.rounding, "rows": rows,
                             "max_vs_codes": float((out - exact).abs().max()),
                             "max_vs_float": float((out - float_out).abs().max()),
                             "mean_vs_float": float((out - float_out).abs().mean())})
    return {"shiftmax": softmax_records, "shiftgelu": gelu_records, "ilayernorm": norm_records,
            "log_softmax_int": lis_records, "attn_v": attn_records}


def row_summary(records):
    """Per config, over its unmasked distributions: worst max error, mean of the mean errors, total
    argmax flips and rows."""
    groups = {}
    for r in records:
        if r["distribution"] != "masked":
            groups.setdefault(r["config"], []).append(r)
    return [{"config": config, "max_abs": max(r["max_abs"] for r in group),
             "mean_abs": sum(r["mean_abs"] for r in group) / len(group),
             "argmax_flips": sum(r["argmax_flips"] for r in group), "rows": sum(r["rows"] for r in group)}
            for config, group in groups.items()]


def shift_markdown(result):
    summary = ["## I-ViT / I-BERT / FQ-ViT softmaxes, summary over the unmasked distributions", "",
               "| config | max abs error | mean abs error | argmax flips |", "|---|---:|---:|---:|"]
    for name in ("shiftmax", "log_softmax_int"):
        for r in row_summary(result.get(name, [])):
            label = r["config"] if name == "shiftmax" else f"log_softmax_int {r['config']}"
            summary.append(f"| {label} | {r['max_abs']:.4f} | {r['mean_abs']:.5f} | {r['argmax_flips']} / {r['rows']} |")
    lines = summary + ["", "## shiftmax accuracy against torch.softmax", "",
             "Rows of the config's length, 1000 per distribution; masked scores count as -inf in the reference "
             "(ShiftMax has no masking convention, so those rows show what a mask at the minimum code costs).", "",
             "| config | n | distribution | max abs error | mean abs error | mean KL | argmax flips |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in result["shiftmax"]:
        lines.append(f"| {r['config']} | {r['n']} | {r['distribution']} | {r['max_abs']:.4f} | {r['mean_abs']:.5f} | "
                     f"{r['kl']:.5f} | {r['argmax_flips']} / {r['rows']} |")
    lines += ["", "## shiftgelu accuracy against GELU (every input code)", "",
              "| config | method | factor | exp_shift | input scale | max abs error | mean abs error | max error (input steps) |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in result["shiftgelu"]:
        lines.append(f"| {r['config']} | {r['method']} | {r['factor']} | {r['exp_shift']} | {r['scale']:g} | {r['max_abs']:.4f} | "
                     f"{r['mean_abs']:.4f} | {r['max_steps']:.2f} |")
    lines += ["", "## ilayernorm accuracy against torch layer_norm", "",
              "Transformer-like rows (Gaussian channels, four outlier channels 6x larger), the float result clamped "
              "to the output range; errors in output steps.", "",
              "| config | channels | rows | max error | mean error |", "|---|---:|---:|---:|---:|"]
    for r in result.get("ilayernorm", []):
        lines.append(f"| {r['config']} | {r['channels']} | {r['rows']} | {r['max_steps']:.2f} | {r['mean_steps']:.3f} |")
    lines += ["", "## log_softmax_int accuracy against torch.softmax (weights 2^-code, or 0)", "",
              "| config | n | distribution | max abs error | mean abs error | mean KL | argmax flips | zero weights |",
              "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in result.get("log_softmax_int", []):
        lines.append(f"| {r['config']} | {r['n']} | {r['distribution']} | {r['max_abs']:.4f} | {r['mean_abs']:.5f} | "
                     f"{r['kl']:.4f} | {r['argmax_flips']} / {r['rows']} | {r['zero_share']:.1%} |")
    lines += ["", "## attn_v: attention x V from the codes (Gaussian scores, std 2; uniform V)", "",
              "| config | rounding | rows | max error vs the codes' exact sum | max error vs float softmax x V | "
              "mean error vs float |", "|---|---|---:|---:|---:|---:|"]
    for r in result.get("attn_v", []):
        lines.append(f"| {r['config']} | {r['rounding']} | {r['rows']} | {r['max_vs_codes']:.3f} | "
                     f"{r['max_vs_float']:.2f} | {r['mean_vs_float']:.3f} |")
    return "\n".join(lines) + "\n"
