"""Attention-score rows of realistic distributions, shared by the softmax blocks' tests and reports."""

import torch

__all__ = ["KINDS", "score_rows"]

#: The named distributions of :func:`score_rows`.
KINDS = ("gauss0.5", "gauss1", "gauss2", "gauss4", "peaked", "equal", "masked")


def score_rows(cfg, kind, rows, n, seed=0):
    """``(codes, keep)``: ``rows`` x ``n`` input codes (``cfg``: any config with ``in_width`` and
    ``scale``) of a named distribution and the mask of the elements that take part (all but the masked
    ones):

    ``gauss<t>``: Gaussian scores of standard deviation ``t`` (real units); ``peaked``: Gaussian (std 1)
    with one element 6.0 above the rest; ``equal``: every element the same random code; ``masked``:
    Gaussian (std 2) with a causal mask (row ``r`` keeps ``1 + r % n`` elements, the rest at the minimum
    code, standing for ``-inf``)."""
    gen = torch.Generator().manual_seed(seed)
    low, high = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1

    def codes(real):
        return torch.round(real / cfg.scale).clamp(low, high).to(torch.int64)

    everything = torch.ones(rows, n, dtype=torch.bool)
    if kind.startswith("gauss"):
        return codes(torch.randn(rows, n, generator=gen, dtype=torch.float64) * float(kind[5:])), everything
    if kind == "peaked":
        real = torch.randn(rows, n, generator=gen, dtype=torch.float64)
        peak = torch.randint(0, n, (rows,), generator=gen)
        real[torch.arange(rows), peak] += 6.0
        return codes(real), everything
    if kind == "equal":          # above the minimum code, which stands for a masked score
        return torch.randint(low + 1, high + 1, (rows, 1), generator=gen).expand(rows, n).clone(), everything
    if kind == "masked":
        x = codes(torch.randn(rows, n, generator=gen, dtype=torch.float64) * 2.0)
        keep = torch.arange(n)[None, :] <= (torch.arange(rows) % n)[:, None]
        return torch.where(keep, x, torch.full_like(x, low)), keep
    raise ValueError(f"Unknown score distribution {kind!r}")
