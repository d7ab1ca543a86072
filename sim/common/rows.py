"""Row-wise test cases shared by the benches of the row blocks (``softmax_lut``, ``shiftmax``,
``log_softmax_int``, ``ilayernorm``), fixed-length and variable-length
(:mod:`qarith.golden.common.ragged`)."""

import torch

from ...golden.common.ragged import cut_rows, pad_rows
from ...golden.common.scores import score_rows
from .bench import Vectors, full_run

__all__ = ["row_vectors", "edge_rows", "row_cases", "ragged_vectors", "ragged_families", "ragged_cases"]


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


def ragged_vectors(cfg, name, rows, model):
    """Vectors for variable-length rows: ``rows`` (lists of input codes, any length from 1; each ends with
    ``last``) as ``{"data", "last"}`` beats, and the expected ``{"data", "last"}`` outputs of the rows
    the block sees (:func:`~qarith.golden.common.ragged.cut_rows`: longer than ``n`` is cut), from
    ``model(cfg, padded, lengths)`` (a padded tensor, or per row a list of per-element payloads).
    ``last`` on every expected row's final element makes the scoreboard check each row's length."""
    rows = [[int(x) for x in row] for row in rows]
    beats = [{"data": x, "last": int(j == len(row) - 1)} for row in rows for j, x in enumerate(row)]
    cut = cut_rows(rows, cfg.n)
    padded, lengths = pad_rows(cut, cfg.n)
    got = model(cfg, padded, lengths)
    if isinstance(got, torch.Tensor):
        got = got.tolist()
    expected, origin, start = [], [], 0
    for index, row in enumerate(cut):
        span = list(range(start, start + len(row)))
        for j in range(len(row)):
            expected.append({"data": got[index][j], "last": int(j == len(row) - 1)})
            origin.append(span)
        start += len(row)
    return Vectors(name, beats, expected, origin=origin)


def ragged_families(cfg, seed=1, source=None):
    """Named families of variable-length rows (lists of codes): ``causal`` (masked attention: query ``t``
    of a sequence of ``n`` sees keys ``0 .. t``, rows of lengths 1..n of Gaussian scores),
    ``banded`` (a sliding window of ``max(1, n // 4)`` keys: lengths ``min(t + 1, w)``),
    ``random_lengths`` (uniform codes, lengths uniform in 1..n, back to back), ``edges`` (the edge rows
    cut to lengths 1, 2, n - 1 and n) and ``overlong`` (rows of ``n + 1``, ``2 n + 3`` and ``n``
    elements, which the block cuts after every ``n``-th). ``source`` gives the realistic ``n x n`` rows
    the first two cut from (default: Gaussian scores, :func:`~qarith.golden.common.scores.score_rows`)."""
    n = cfg.n
    gen = torch.Generator().manual_seed(seed)
    low, high = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
    scores = score_rows(cfg, "gauss2", n, n, seed=seed)[0] if source is None else source
    causal = [scores[t, :t + 1].tolist() for t in range(n)]
    window = max(1, n // 4)
    banded = [scores[t, max(0, t + 1 - window):t + 1].tolist() for t in range(n)]
    count = max(16, 512 // (n // 2 + 1))
    lengths = torch.randint(1, n + 1, (count,), generator=gen).tolist()
    random_rows = [torch.randint(low, high + 1, (length,), generator=gen).tolist() for length in lengths]
    edges = edge_rows(cfg)
    edge = [row[:length].tolist() for length in sorted({1, min(2, n), max(1, n - 1), n}) for row in edges]
    overlong = [torch.randint(low, high + 1, (length,), generator=gen).tolist() for length in (n + 1, 2 * n + 3, n)]
    return {"causal": causal, "banded": banded, "random_lengths": random_rows, "edges": edge,
            "overlong": overlong}


def ragged_cases(cfg, model, seed=1, source=None):
    """The variable-length cases for ``model`` (see :func:`ragged_vectors`): under ``make test-full``
    one per family of :func:`ragged_families`; under ``make test`` (one simulator run per mode) the
    families back to back in one case, ``causal``, whose first row has one element, first."""
    families = ragged_families(cfg, seed, source)
    if full_run():
        return [ragged_vectors(cfg, name, rows, model) for name, rows in families.items()]
    return [ragged_vectors(cfg, "causal", [row for rows in families.values() for row in rows], model)]
