"""Test bench of the ``softmax_lut`` block: rows of scores against the golden model."""

import cocotb
import torch

from ..golden.softmax_lut import score_rows, softmax_lut
from .bench import MODES, Vectors
from .cocotb_bench import run_stream_test

__all__ = ["vectors", "edge_rows", "row_vectors"]


def row_vectors(cfg, name, rows):
    """Vectors for whole rows (``rows x n`` codes); each output depends on every element of its row."""
    rows = torch.as_tensor(rows, dtype=torch.int64).reshape(-1, cfg.n)
    expected = softmax_lut(cfg, rows)
    origin = [list(range(r * cfg.n, (r + 1) * cfg.n)) for r in range(len(rows)) for _ in range(cfg.n)]
    return Vectors(name, rows.flatten().tolist(), expected.flatten().tolist(), origin=origin)


def edge_rows(cfg):
    """Named edge rows: all equal (at 0, the top code and the minimum code, i.e. all masked), one
    maximum among minimum codes at the first / last / middle position, the extremes alternating, a
    single unmasked element, a maximum and its neighbour tied, and a ramp over the whole code range."""
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


def vectors(cfg, seed=1):
    """Named cases: realistic rows (Gaussian scores at three temperatures, peaked rows, causal-masked
    rows), the edge rows, and a long back-to-back run of random rows that cycles every buffer bank."""
    gen = torch.Generator().manual_seed(seed)
    low, high = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
    per_kind = max(1, 128 // cfg.n)
    realistic = torch.cat([score_rows(cfg, kind, per_kind, cfg.n, seed=seed)[0]
                           for kind in ("gauss1", "gauss2", "gauss4", "peaked", "masked")])
    back_to_back = max(12, 512 // cfg.n)
    uniform = torch.randint(low, high + 1, (back_to_back, cfg.n), generator=gen)
    return [
        row_vectors(cfg, "realistic", realistic),
        row_vectors(cfg, "edges", edge_rows(cfg)),
        row_vectors(cfg, "uniform_back_to_back", uniform),
    ]


@cocotb.test()
@cocotb.parametrize(mode=tuple(MODES))
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, vectors, mode)
