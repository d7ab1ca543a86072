"""Accuracy of the table-based blocks against their float functions (part of ``make bench``).

* ``softmax_lut``: every registered config, re-sized to rows of 16, 64 and 256 elements, on score
  distributions from :func:`qarith.golden.scores.score_rows`, against ``torch.softmax``; beside it
  the emulated hls4ml default softmax (:func:`qarith.golden.softmax_lut.hls4ml_softmax`) on the same codes.

* ``shiftmax``: every registered config on the same distributions (rows of the config's length)
  against ``torch.softmax``;
* ``shiftgelu``: every registered config over every input code against the exact GELU;
* ``ilayernorm``: every registered config on transformer-like rows against ``layer_norm``;
* ``log_softmax_int``: the log2 weights against ``torch.softmax``; ``attn_v``: its sums against the exact
  sum of the codes' weights times ``V`` and against float softmax times ``V``;
* LNS: 8-bit LNS products, sums and dot products (K = 64, 256) against int8 fixed point of the same
  bit budget on Gaussian data, relative errors plotted into ``lns_error.png`` (:func:`lns_errors`);
* Winograd: :func:`qarith.golden.winograd.winograd_error` (tap-wise, per-tap-and-channel and single-scale
  int8 F(4x4,3x3) and F(2x2,3x3) against the direct integer and the float layer) and the multipliers per
  output pixel counted in each ``wino_conv`` netlist;
* ``pwl``: every function with both fitters (NN-LUT, iRNN) at 8, 16 and 32 entries on a 16-bit input,
  16-bit output format, over every input code (:func:`qarith.golden.pwl.error_sweep`), plotted into
  ``pwl_error.png``, and every registered config's own error.

Everything here is the golden models' arithmetic (bit-exact with the RTL by the test suite), so it runs
in seconds on a CPU.
"""

import dataclasses

import torch

from ..golden.scores import KINDS, score_rows
from ..golden.softmax_lut import HLS4ML_TABLE_BYTES, accuracy, float_softmax, hls4ml_softmax, softmax_lut
from ..hdl.registry import BLOCKS

__all__ = ["SOFTMAX_KINDS", "SOFTMAX_LENGTHS", "softmax_accuracy", "softmax_summary", "softmax_markdown",
           "shift_accuracy", "shift_markdown", "pwl_accuracy", "pwl_plot", "pwl_markdown", "lns_errors",
           "lns_summary", "lns_plot", "lns_markdown", "lns_add_accuracy",
           "lns_add_markdown", "winograd_accuracy", "winograd_markdown"]

SOFTMAX_KINDS = KINDS
SOFTMAX_LENGTHS = (16, 64, 256)
PEER = "hls4ml"


def softmax_accuracy(rows=1000, seed=0):
    """One record per (config, n, distribution) and one for the peer on the same input codes."""
    records = []
    for name, base in BLOCKS["softmax_lut"].configs.items():
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


def shift_accuracy(rows=1000, seed=0):
    """``{"shiftmax": [...], "shiftgelu": [...], "ilayernorm": [...]}``: error records of the I-ViT
    blocks' configs (``ilayernorm`` against ``layer_norm`` on transformer-like rows, in output steps,
    the reference clamped to the output range)."""
    from ..golden.shiftgelu import gelu_reference, shiftgelu
    from ..golden.shiftmax import float_softmax as shift_float_softmax, shiftmax
    softmax_records = []
    for name, cfg in BLOCKS["shiftmax"].configs.items():
        for kind in SOFTMAX_KINDS:
            x, keep = score_rows(cfg, kind, rows, cfg.n, seed=seed)
            reference = torch.softmax((x.to(torch.float64) * cfg.scale).masked_fill(~keep, -torch.inf), dim=-1)
            lsb = 2.0 ** -cfg.out_bits
            softmax_records.append({"config": name, "n": cfg.n, "distribution": kind, "rows": rows,
                                    **accuracy(reference, shiftmax(cfg, x).to(torch.float64) * lsb, lsb)})
    gelu_records = []
    from ..golden.shiftgelu import ShiftGeluConfig
    references = {"reference_shift_n23 (not registered)": ShiftGeluConfig(factor="shift", exp_shift=23),
                  "reference_ibert_erf14 (not registered)": ShiftGeluConfig(method="ibert", erf_shift=14)}
    for name, cfg in [*BLOCKS["shiftgelu"].configs.items(), *references.items()]:
        codes = cfg.codes
        out = shiftgelu(cfg, codes).to(torch.float64) * cfg.out_scale
        error = (out - gelu_reference(cfg, codes)).abs()
        gelu_records.append({"config": name, "method": cfg.method,
                             "factor": cfg.factor if cfg.method == "shift" else f"erf_shift {cfg.erf_shift}",
                             "exp_shift": cfg.exp_shift if cfg.method == "shift" else "-",
                             "scale": cfg.scale, "codes": len(codes), "max_abs": float(error.max()),
                             "mean_abs": float(error.mean()), "max_steps": float(error.max() / cfg.scale)})
    from ..golden.ilayernorm import activation_rows, float_layernorm, ilayernorm
    norm_records = []
    for name, cfg in BLOCKS["ilayernorm"].configs.items():
        x = activation_rows(cfg, rows, seed=seed)
        reference = (float_layernorm(cfg, x) / cfg.out_scale).clamp(cfg.out_min, cfg.out_max)
        error = (ilayernorm(cfg, x).to(torch.float64) - reference).abs()
        norm_records.append({"config": name, "channels": cfg.channels, "rows": rows,
                             "max_steps": float(error.max()), "mean_steps": float(error.mean())})
    from ..golden.log_softmax_int import attn_v, log_softmax_int
    lis_records = []
    for name, cfg in BLOCKS["log_softmax_int"].configs.items():
        for kind in SOFTMAX_KINDS:
            x, keep = score_rows(cfg, kind, rows, cfg.n, seed=seed)
            reference = torch.softmax((x.to(torch.float64) * cfg.scale).masked_fill(~keep, -torch.inf), dim=-1)
            code, zero = log_softmax_int(cfg, x)
            weight = torch.where(zero.bool(), 0.0, 2.0 ** -code.to(torch.float64))
            lis_records.append({"config": name, "n": cfg.n, "distribution": kind, "rows": rows,
                                **accuracy(reference, weight, 2.0 ** -(cfg.levels - 1)),
                                "zero_share": float(zero.to(torch.float64).mean())})
    attn_records = []
    for name, cfg in BLOCKS["attn_v"].configs.items():
        gen = torch.Generator().manual_seed(seed)
        lis = BLOCKS["log_softmax_int"].config(n=cfg.n, bits=cfg.bits)
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


def pwl_accuracy(entries=(8, 16, 32)):
    """``{"sweep": [...], "configs": [...]}``: the fitters' sweep and the registered configs' errors."""
    from ..golden.pwl import error_stats, error_sweep
    configs = [{"config": name, **error_stats(cfg)} for name, cfg in BLOCKS["pwl"].configs.items()]
    return {"sweep": error_sweep(entries=entries), "configs": configs}


def pwl_plot(sweep, path):
    """Max (solid) and mean (dashed) error in output LSB against table entries, one panel per function,
    both fitters; written as a PNG to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    functions = list(dict.fromkeys(r["function"] for r in sweep))
    columns = 4
    figure, axes = pyplot.subplots((len(functions) + columns - 1) // columns, columns,
                                   figsize=(4 * columns, 3.2 * ((len(functions) + columns - 1) // columns)),
                                   squeeze=False)
    for axis, function in zip(axes.flat, functions):
        for method, colour in (("nnlut", "tab:blue"), ("irnn", "tab:orange")):
            rows = [r for r in sweep if r["function"] == function and r["method"] == method]
            entries = [r["entries"] for r in rows]
            axis.plot(entries, [r["max_error_lsb"] for r in rows], "o-", color=colour, label=f"{method} max")
            axis.plot(entries, [r["mean_error_lsb"] for r in rows], "s--", color=colour, label=f"{method} mean")
        axis.set_title(f"{function} (16-bit in, 16-bit out)")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("entries")
        axis.set_ylabel("error (output LSB)")
        axis.grid(True, which="both", alpha=0.3)
    for axis in list(axes.flat)[len(functions):]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    figure.suptitle("pwl: error against the float function over every input code (make bench)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def pwl_markdown(result, plot_name="pwl_error.png"):
    lines = ["## pwl accuracy (every input code)", "",
             f"Fitter sweep on 16-bit input, 16-bit output formats; errors in output LSB, max / mean. "
             f"Plot: `{plot_name}`.", "",
             "| function | method | " + " | ".join(f"{e} entries" for e in sorted({r['entries'] for r in result['sweep']}))
             + " |", "|---|---|" + "---:|" * len({r["entries"] for r in result["sweep"]})]
    groups = {}
    for r in result["sweep"]:
        groups.setdefault((r["function"], r["method"]), []).append(r)
    for (function, method), rows in groups.items():
        cells = " | ".join(f"{r['max_error_lsb']:.3g} / {r['mean_error_lsb']:.3g}"
                           for r in sorted(rows, key=lambda r: r["entries"]))
        lines.append(f"| {function} | {method} | {cells} |")
    lines += ["", "Registered configs (their own formats):", "",
              "| config | function | method | entries | max error (LSB) | mean error (LSB) |",
              "|---|---|---|---:|---:|---:|"]
    for r in result["configs"]:
        lines.append(f"| {r['config']} | {r['function']} | {r['method']} | {r['entries']} | "
                     f"{r['max_error_lsb']:.3g} | {r['mean_error_lsb']:.3g} |")
    return "\n".join(lines) + "\n"


LNS_SAMPLES = 200_000
LNS_LENGTHS = (64, 256)


def _lns_scale(fmt, x, top=None):
    """Per-tensor LNS scale: the largest magnitude maps to exponent code ``top`` (default the largest)."""
    return float(x.abs().max()) / 2.0 ** ((fmt.emax if top is None else top) / fmt.gamma)


def _int8(x):
    """Symmetric per-tensor int8 (absmax / 127, round half to even): ``(codes, scale)``."""
    scale = float(x.abs().max()) / 127
    return torch.round(x / scale).clamp(-127, 127).to(torch.int64), scale


def _relative(approx, exact):
    return ((approx - exact).abs() / exact.abs()).clamp(max=1.0)


def lns_errors(samples=LNS_SAMPLES, lengths=LNS_LENGTHS, vectors=2000, seed=0):
    """Relative errors (capped at 1) of 8-bit LNS arithmetic and of int8 fixed point of the same bit
    budget, against float64 on N(0, 1) data: ``{op: {"lns": tensor, "int8": tensor}}`` for ``mul``
    (elementwise products), ``add`` (elementwise sums, both operands on one scale) and ``dot<K>``.

    LNS words are 8-bit with b = 3 (the ``lns_mul`` / ``lns_add`` / ``lns_dot`` formats of the registry),
    scaled per tensor so the largest magnitude is the largest exponent (for ``mul``, half of it, so that
    products fit the word; ``lns_dot``'s products have one more bit); int8 codes are absmax / 127 per
    tensor. Both sides are the golden models' integer arithmetic (bit-exact with the RTL), decoded."""
    from ..golden.lns import LnsMulConfig, decode, encode, lns_mul
    from ..golden.lns_add import LnsAddConfig, lns_add
    from ..golden.lns_dot import gaussian_config, gaussian_dot
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(2, samples, generator=gen, dtype=torch.float64)
    fmt = LnsMulConfig(width=8, frac_bits=3)
    errors = {}

    # Products must stay inside the word: each operand's largest magnitude maps to half the largest
    # exponent, so the largest product is the largest word.
    sx, sy = _lns_scale(fmt, x, fmt.emax // 2), _lns_scale(fmt, y, fmt.emax // 2)
    product = decode(fmt, lns_mul(fmt, encode(fmt, x, sx), encode(fmt, y, sy))) * sx * sy
    (qx, tx), (qy, ty) = _int8(x), _int8(y)
    errors["mul"] = {"lns": _relative(product, x * y), "int8": _relative((qx * qy) * tx * ty, x * y)}

    add_cfg = LnsAddConfig(width=8, frac_bits=3)
    both = torch.stack([x, y])
    s = _lns_scale(add_cfg, both)
    total = decode(add_cfg, lns_add(add_cfg, encode(add_cfg, x, s), encode(add_cfg, y, s))) * s
    q, t = _int8(both)
    errors["add"] = {"lns": _relative(total, x + y), "int8": _relative((q[0] + q[1]) * t, x + y)}

    for length in lengths:
        x = torch.randn(2, vectors, length, generator=gen, dtype=torch.float64)
        dot = gaussian_dot(gaussian_config(length), x)
        errors[f"dot{length}"] = {method: _relative(dot[method], dot["reference"]) for method in ("lns", "int8")}
    return errors


def lns_summary(errors):
    """Summary of :func:`lns_errors` per operation and method: median, mean, p90, p99 relative error."""
    records = []
    for op, methods in errors.items():
        for method, values in methods.items():
            records.append({"op": op, "method": method, "samples": len(values),
                            "median": float(values.median()), "mean": float(values.mean()),
                            "p90": float(torch.quantile(values, 0.9)), "p99": float(torch.quantile(values, 0.99))})
    return records


def lns_plot(errors, path):
    """Cumulative distributions of the relative errors of :func:`lns_errors`, one panel per operation,
    LNS against int8, written as a PNG to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(errors), figsize=(4 * len(errors), 3.4), squeeze=False)
    for axis, (op, methods) in zip(axes.flat, errors.items()):
        for method, colour in (("lns", "tab:blue"), ("int8", "tab:orange")):
            values = methods[method].clamp(min=1e-7).sort().values
            share = torch.arange(1, len(values) + 1, dtype=torch.float64) / len(values)
            axis.plot(values.numpy(), share.numpy(), color=colour, label=f"{method} (8 bits)")
        axis.set_xscale("log")
        axis.set_xlim(1e-5, 1.0)
        axis.set_title(op)
        axis.set_xlabel("relative error (capped at 1)")
        axis.set_ylabel("share of results below")
        axis.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=8, loc="upper left")
    figure.suptitle("8-bit LNS (b = 3) vs int8 on N(0, 1) data, against float64 (make bench)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def lns_markdown(records, plot_name="lns_error.png"):
    lines = ["## LNS accuracy (8-bit LNS, b = 3, against int8; N(0, 1) data, per-tensor scales)", "",
             f"Relative error against float64, capped at 1 (a zero result counts 1). Plot: `{plot_name}`.", "",
             "| operation | method | samples | median | mean | p90 | p99 |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['op']} | {r['method']} | {r['samples']} | {r['median']:.3g} | {r['mean']:.3g} | "
                     f"{r['p90']:.3g} | {r['p99']:.3g} |")
    return "\n".join(lines) + "\n"


WINOGRAD_CASES = ((4, 8), (2, 8), (4, 10))


def winograd_accuracy(cases=WINOGRAD_CASES):
    """``{"errors": [...], "mults": [...]}``: :func:`qarith.golden.winograd.winograd_error` for each
    ``(tile, weight_width)`` of ``cases`` (16 -> 4 channels, eight Gaussian 16 x 16 maps), and each
    registered ``wino_conv`` config's multipliers counted in its netlist per output pixel, against a direct
    3x3 convolution's 9."""
    from ..golden.winograd import DIRECT_MULTS_PER_OUTPUT, winograd_error
    errors = []
    for tile, weight_width in cases:
        for row, figures in winograd_error(tile=tile, weight_width=weight_width).items():
            if row == "direct int8" and (tile, weight_width) != cases[0]:
                continue
            errors.append({"tile": tile, "weight_width": weight_width, "row": row, **figures})
    mults = []
    for name, cfg in BLOCKS["wino_conv"].configs.items():
        component = BLOCKS["wino_conv"].interface(cfg)
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


def lns_add_accuracy():
    """:func:`qarith.golden.lns_add.lns_add_error` of every registered ``lns_add`` config (every pair of
    words, both operations), with its ROM size."""
    from ..golden.lns_add import lns_add_error, lns_add_rom
    records = []
    for name, cfg in BLOCKS["lns_add"].configs.items():
        rom = lns_add_rom(cfg)
        records.append({"config": name, "rom_entries": len(rom.words), "rom_bits": rom.word_bits,
                        "table_bytes": cfg.table_bytes, **lns_add_error(cfg)})
    return records


def lns_add_markdown(records):
    lines = ["## lns_add accuracy (every pair of words, a + b and a - b; results that neither saturate nor "
             "flush)", "",
             "| config | ROM | table bytes | max error (codes) | bound | max relative error | mean relative "
             "error | correctly rounded |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['config']} | {r['rom_entries']} x {r['rom_bits']} bits | {r['table_bytes']} | "
                     f"{r['max_code_error']:.3f} | {r['bound_codes']:.3f} | {r['max_rel_error']:.2%} | "
                     f"{r['mean_rel_error']:.3%} | {r['correctly_rounded']:.1%} |")
    return "\n".join(lines) + "\n"
