"""Row-wise test cases shared by the benches of the row blocks (``softmax_lut``, ``shiftmax``)."""

import torch

from ...golden.common.scores import score_rows
from .bench import Vectors

__all__ = ["row_vectors", "edge_rows", "row_cases"]


def row_vectors(cfg, name, rows, model):
    """Vectors for whole rows (``rows x n`` codes) through ``model(cfg, rows)`` (a tensor of the rows'
    shape, or a flat list of per-element payloads); each output depends on every element of its row."""
    rows = torch.as_tensor(rows, dtype=torch.int64).reshape(-1, cfg.n)
    expected = model(cfg, rows)
    if isinstance(expected, torch.Tensor):
        expected = expected.flatten().tolist()
    origin = [list(range(r * cfg.n, (r + 1) * cfg.n)) for r in range(len(rows)) for _ in range(cfg.n)]
    return Vectors(name, rows.flatten().tolist(), expected, origin=origin)


def edge_rows(cfg):
    """Named edge rows: all equal (at 0, the top code, the minimum code and one above it), one maximum
    among minimum codes at the first / last / middle position, the extremes alternating, a single
    element above the minimum, a maximum and its neighbour tied, and a ramp over the whole code range."""
    n, low, high = cfg.n, -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
    full = lambda value: torch.full((n,), value, dtype=torch.int64)
    rows = [full(0), full(high), full(low), full(low + 1)]
    for position in (0, n - 1, n // 2):
        row = full(low)
        row[position] = high
        rows.append(row)
    alternating = full(low)
    alternating[::2] = high
    rows.append(alternating)
    single = full(low)
    single[n // 3] = low + 1
    rows.append(single)
    tied = full(0)
    tied[0] = tied[-1] = 5
    rows.append(tied)
    rows.append(torch.linspace(low, high, n).round().to(torch.int64))
    return torch.stack(rows)


def row_cases(cfg, model, seed=1):
    """Named cases for ``model``: realistic rows (Gaussian scores at three temperatures, peaked rows,
    causal-masked rows), the edge rows, and a long back-to-back run of random rows that cycles every
    buffer bank."""
    gen = torch.Generator().manual_seed(seed)
    low, high = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
    per_kind = max(1, 128 // cfg.n)
    realistic = torch.cat([score_rows(cfg, kind, per_kind, cfg.n, seed=seed)[0]
                           for kind in ("gauss1", "gauss2", "gauss4", "peaked", "masked")])
    back_to_back = max(12, 512 // cfg.n)
    uniform = torch.randint(low, high + 1, (back_to_back, cfg.n), generator=gen)
    return [
        row_vectors(cfg, "realistic", realistic, model),
        row_vectors(cfg, "edges", edge_rows(cfg), model),
        row_vectors(cfg, "uniform_back_to_back", uniform, model),
    ]
