"""OCTAV: the integer recursion's clips beside the paper's, and what ``linear_int8``'s
``calibration_method="octav"`` changes against max calibration."""

import torch
from torch import nn

from ...golden.linear_int8 import quantize_linear
from ...golden.octav_stats import OctavStatsConfig, octav_clip, octav_density_clip

__all__ = ["PAPER_CLIPS", "octav_clips", "octav_linear", "octav_accuracy", "octav_markdown"]

#: Sakr et al. (ICML 2022), figure 1 and section 3: MSE-optimal clips of N(0, 1) by bits (and Laplace,
#: B = 4: 5.0341).
PAPER_CLIPS = {"gaussian": {2: 1.7388, 3: 2.1611, 4: 2.5621, 8: 3.9241}, "laplace": {4: 5.0341}}

#: Quantiles per distribution and codes per unit of the integer runs.
QUANTILES = 1 << 18
UNIT = 1 << 12


def _quantiles(distribution, n):
    p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    if distribution == "gaussian":
        return torch.special.ndtri(p)
    return -torch.sign(p - 0.5) * torch.log1p(-2 * (p - 0.5).abs())


def octav_clips():
    """Per distribution and bits: the paper's clip, the recursion on the exact density, and the integer
    recursion (the block's statistics and the host's floor division) on ``2**18`` quantiles at ``2**12``
    codes per unit, with its passes after the reference's 10-pass budget and to convergence."""
    rows = []
    for distribution, clips in PAPER_CLIPS.items():
        codes = (_quantiles(distribution, QUANTILES) * UNIT).round().to(torch.int64)
        for bits, paper in clips.items():
            cfg = OctavStatsConfig(in_width=16 if distribution == "gaussian" else 17, max_n=QUANTILES, bits=bits)
            ten, _ = octav_clip(cfg, codes)
            full, passes = octav_clip(cfg, codes, iterations=30)
            rows.append({"distribution": distribution, "bits": bits, "paper": paper,
                         "density": round(octav_density_clip(distribution, bits), 4),
                         "integer_10_passes": round(int(ten) / UNIT, 4), "integer": round(int(full) / UNIT, 4),
                         "passes": passes})
    return rows


def _samples(distribution, gen, shape):
    if distribution == "gaussian":
        return torch.randn(shape, generator=gen)
    if distribution == "laplace":
        uniform = torch.rand(shape, generator=gen) - 0.5
        return -torch.sign(uniform) * torch.log1p(-2 * uniform.abs())
    # Student t with 3 degrees of freedom: a normal over the root of a chi-square / 3.
    chi = (torch.randn((3, *shape), generator=gen) ** 2).sum(0) / 3
    return torch.randn(shape, generator=gen) / chi.sqrt()


def octav_linear(distribution, depth, seed=0, calibration_rows=256, test_rows=2048, outputs=16):
    """Relative RMS error against the float layer, on held-out inputs, of ``linear_int8`` calibrated by
    max and by OCTAV: a seeded ``nn.Linear(depth, outputs)``, inputs of ``distribution``."""
    torch.manual_seed(seed)
    linear = nn.Linear(depth, outputs)
    gen = torch.Generator().manual_seed(seed + 1)
    calibration = _samples(distribution, gen, (calibration_rows, depth))
    test = _samples(distribution, gen, (test_rows, depth))
    with torch.no_grad():
        reference = linear(test).to(torch.float64)
        row = {"distribution": distribution, "in_features": depth, "out_features": outputs}
        for method in ("max", "octav"):
            qlinear = quantize_linear(linear, calibration, calibration_method=method)
            error = qlinear(test).to(torch.float64) - reference
            row[f"{method}_rel_rms"] = float(error.norm() / reference.norm())
        row["change"] = row["octav_rel_rms"] / row["max_rel_rms"] - 1
    return row


def octav_accuracy():
    """``make bench``'s OCTAV tables: the clips, and ``linear_int8`` under both calibrations."""
    linear = [octav_linear(distribution, depth) for distribution in ("gaussian", "laplace", "student_t3")
              for depth in (64, 256)]
    return {"clips": octav_clips(), "linear_int8": linear}


def octav_markdown(result):
    lines = ["## OCTAV clips (unit distributions; integer recursion on 2**18 quantiles, 2**12 codes per unit)", "",
             "| distribution | B | paper | density recursion | integer, 10 passes | integer, converged | passes |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["clips"]:
        lines.append(f"| {r['distribution']} | {r['bits']} | {r['paper']} | {r['density']} | "
                     f"{r['integer_10_passes']} | {r['integer']} | {r['passes']} |")
    lines += ["", "## linear_int8 calibration: max vs OCTAV (relative RMS error vs float, 2048 held-out rows)", "",
              "| inputs | in x out | max | OCTAV | change |", "|---|---|---:|---:|---:|"]
    for r in result["linear_int8"]:
        lines.append(f"| {r['distribution']} | {r['in_features']} x {r['out_features']} | {r['max_rel_rms']:.3g} | "
                     f"{r['octav_rel_rms']:.3g} | {r['change']:+.0%} |")
    return "\n".join(lines) + "\n"
