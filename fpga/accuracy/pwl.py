"""Accuracy of the ``pwl`` block: exhaustive error of every function x fitter x table size, and the plot."""

from dataclasses import replace

import torch

from ...golden.pwl import METHODS, PwlConfig, pwl, reference_codes

__all__ = ["error_stats", "sweep_configs", "error_sweep", "pwl_accuracy", "pwl_plot", "pwl_markdown"]


def error_stats(cfg):
    """Error of ``pwl(cfg, .)`` against the float function over every input code, as a dict: maximum
    and mean absolute error in output LSBs and in the function's units. The reference is clamped to the
    output range (saturation is the format's, not the table's)."""
    codes = cfg.codes
    error = (pwl(cfg, codes).to(torch.float64) - reference_codes(cfg, codes)).abs()
    lsb = 2.0 ** -cfg.out_frac_bits
    return {
        "function": cfg.function, "method": cfg.method, "entries": cfg.entries,
        "max_error_lsb": float(error.max()), "mean_error_lsb": float(error.mean()),
        "max_error": float(error.max()) * lsb, "mean_error": float(error.mean()) * lsb,
    }


def sweep_configs():
    """One 16-bit-input, 16-bit-output format per function, for :func:`error_sweep` (built on call:
    checking 16-bit configs is too slow for import time)."""
    return {
        "gelu": PwlConfig(function="gelu", in_width=16, in_frac_bits=12, out_width=16, out_frac_bits=12),
        "exp": PwlConfig(function="exp", in_width=16, in_frac_bits=12, out_width=16, out_signed=False,
                         out_frac_bits=16),
        "reciprocal": PwlConfig(function="reciprocal", in_width=16, in_signed=False, in_frac_bits=8,
                                out_width=16, out_signed=False, out_frac_bits=8),
        "rsqrt": PwlConfig(function="rsqrt", in_width=16, in_signed=False, in_frac_bits=8, out_width=16,
                           out_signed=False, out_frac_bits=12),
        "sigmoid": PwlConfig(function="sigmoid", in_width=16, in_frac_bits=12, out_width=16,
                             out_signed=False, out_frac_bits=16),
        "tanh": PwlConfig(function="tanh", in_width=16, in_frac_bits=12, out_width=16, out_frac_bits=15),
        "silu": PwlConfig(function="silu", in_width=16, in_frac_bits=12, out_width=16, out_frac_bits=12),
    }


def error_sweep(configs=None, entries=(8, 16, 32), methods=METHODS):
    """Exhaustive error of every function x method x entry count: a list of :func:`error_stats` dicts
    (plus ``in_width`` and ``out_width``), in the order of ``configs`` (an iterable of configs, default
    the values of :func:`sweep_configs`), then ``methods``, then ``entries``."""
    rows = []
    for base in sweep_configs().values() if configs is None else configs:
        for method in methods:
            for count in entries:
                cfg = replace(base, method=method, entries=count)
                rows.append({**error_stats(cfg), "in_width": cfg.in_width, "out_width": cfg.out_width})
    return rows


def pwl_accuracy(configs, entries=(8, 16, 32)):
    """``{"sweep": [...], "configs": [...]}``: the fitters' sweep and the errors of the named ``pwl``
    ``configs``."""
    records = [{"config": name, **error_stats(cfg)} for name, cfg in configs.items()]
    return {"sweep": error_sweep(entries=entries), "configs": records}


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
