"""ELBERT early exit: the integer thresholds of the entropy test, and how the block's integer rule
compares with the paper's float rule (two classes: equal; more classes: the top-2 margin against the
C-class entropy)."""

import torch

from ...golden.early_exit import EarlyExitConfig, early_exit, elbert_exit_float, entropy_logit, normalised_entropy

__all__ = ["elbert_thresholds", "elbert_agreement", "elbert_accuracy", "elbert_markdown"]


def elbert_thresholds(scales=(1 / 16, 1 / 32)):
    """``t`` (real logit units) and ``T`` (codes) for the paper's ``tau = 0.1`` and for 0.2 and 0.3."""
    return [{"tau": tau, "t": round(entropy_logit(tau), 4),
             **{f"codes_scale_1_{round(1 / s)}": EarlyExitConfig(scale=s, tau=tau).entropy_codes for s in scales}}
            for tau in (0.1, 0.2, 0.3)]


def elbert_agreement(samples=300, layers=24, seed=0):
    """Share of layers where the block's exit equals the paper's rule: two classes (random-walk logits,
    8-bit codes at 1/16, tau 0.1, N = 4, m = 0 and 0.2), and for C = 4 and 8 the confident test (top-2
    margin) against the C-class entropy (random 8-bit logits at 1/8, tau 0.3)."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for margin in (0.0, 0.2):
        cfg = EarlyExitConfig(scale=1 / 16, tau=0.1, patience=4, margin=margin)
        same = total = exits = 0
        for _ in range(samples):
            walk = torch.randint(-12, 13, (layers,), generator=gen).cumsum(0).clamp(-127, 127)
            logits = torch.stack([walk, torch.zeros_like(walk)], dim=1)
            ours = early_exit(cfg, logits, [True] + [False] * (layers - 1))["exit"]
            paper = elbert_exit_float(logits.double() * cfg.scale, cfg.tau, cfg.patience, margin)
            same += int((ours == paper).sum())
            total += layers
            exits += int(ours.sum())
        rows.append({"classes": 2, "test": f"exit (H < tau or N = 4 same, m = {margin})", "layers": total,
                     "agreement": same / total, "positive": exits / total})
    for classes in (4, 8):
        cfg = EarlyExitConfig(classes=classes, scale=1 / 8, tau=0.3)
        logits = torch.randint(-128, 128, (20000, classes), generator=gen)
        ours = early_exit(cfg, logits, torch.ones(20000, dtype=torch.bool))["confident"]
        paper = normalised_entropy(logits.double() * cfg.scale) < cfg.tau
        rows.append({"classes": classes, "test": "confident: top-2 margin > T vs C-class H < tau",
                     "layers": 20000, "agreement": float((ours == paper).double().mean()),
                     "positive": float(ours.double().mean())})
    return rows


def elbert_accuracy():
    return {"thresholds": elbert_thresholds(), "agreement": elbert_agreement()}


def elbert_markdown(result):
    lines = ["## early_exit: entropy thresholds as logit differences (two classes)", "",
             "| tau | t = ln(p / (1 - p)) at H2(p) = tau | T at scale 1/16 | T at scale 1/32 |",
             "|---:|---:|---:|---:|"]
    for r in result["thresholds"]:
        lines.append(f"| {r['tau']} | {r['t']} | {r['codes_scale_1_16']} | {r['codes_scale_1_32']} |")
    lines += ["", "## early_exit: integer rule vs the paper's float rule", "",
              "| C | test | layers | agreement | share positive |", "|---:|---|---:|---:|---:|"]
    for r in result["agreement"]:
        lines.append(f"| {r['classes']} | {r['test']} | {r['layers']} | {r['agreement']:.2%} | {r['positive']:.1%} |")
    return "\n".join(lines) + "\n"
