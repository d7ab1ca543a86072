"""Accuracy of the LNS blocks: 8-bit LNS against int8 of the same bit budget, and ``lns_add``'s error."""

import torch

__all__ = ["LNS_SAMPLES", "LNS_LENGTHS", "lns_errors", "lns_summary", "lns_plot", "lns_markdown", "lns_add_accuracy",
           "lns_add_markdown"]

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
    from ...golden.common.lns import decode, encode
    from ...golden.lns_add import LnsAddConfig, lns_add
    from ...golden.lns_dot import gaussian_config, gaussian_dot
    from ...golden.lns_mul import LnsMulConfig, lns_mul
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


def lns_add_accuracy(configs):
    """:func:`qarith.golden.lns_add.lns_add_error` of each of the named ``lns_add`` ``configs`` (every pair of
    words, both operations), with its ROM size."""
    from ...golden.lns_add import lns_add_error, lns_add_rom
    records = []
    for name, cfg in configs.items():
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
