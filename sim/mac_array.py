"""Test bench of the ``mac_array`` block: tiles from the golden model, cocotb entry point."""

import cocotb
import torch

from ..golden.common.codes import code_range
from ..golden.mac_array import mac_tiles
from ..hdl.mac_array import MacArray
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "tile_vectors"]


def tile_vectors(cfg, name, tiles):
    """Vectors for a list of ``(A (rows, K), B (K, cols))`` integer tiles."""
    beats, expected, origin = [], [], []
    for a, b in tiles:
        first = len(beats)
        depth = a.shape[1]
        for k in range(depth):
            beats.append({"a": a[:, k].tolist(), "b": b[k, :].tolist(), "last": int(k == depth - 1)})
        result = mac_tiles(cfg, a.unsqueeze(0), b.unsqueeze(0))[0]
        for r in range(cfg.rows):
            expected.append({"acc": result[r].tolist(), "last": int(r == cfg.rows - 1)})
            origin.append(list(range(first, len(beats))))
    return Vectors(name, beats, expected, origin=origin)


def random_tiles(cfg, gen, count, depths):
    a_lo, a_hi = code_range(cfg.a_width, cfg.a_signed)
    b_lo, b_hi = code_range(cfg.b_width, cfg.b_signed)
    tiles = []
    for n in range(count):
        depth = depths[n % len(depths)]
        tiles.append((torch.randint(a_lo, a_hi + 1, (cfg.rows, depth), generator=gen),
                      torch.randint(b_lo, b_hi + 1, (depth, cfg.cols), generator=gen)))
    return tiles


def vectors(cfg, seed=1):
    """Named cases: random depths, back-to-back tiles of K = rows, tiles shorter than the drain,
    and full-depth tiles of extreme codes (the accumulator's overflow edge)."""
    gen = torch.Generator().manual_seed(seed)
    a_lo, a_hi = code_range(cfg.a_width, cfg.a_signed)
    b_lo, b_hi = code_range(cfg.b_width, cfg.b_signed)
    small = [d for d in (1, 2, 3, cfg.rows, cfg.rows + 1, 2 * cfg.rows + 3, 17) if d <= cfg.max_k]
    cases = [
        tile_vectors(cfg, "random_depths", random_tiles(cfg, gen, 12, small)),
        tile_vectors(cfg, "k_equals_rows", random_tiles(cfg, gen, 6, [min(cfg.rows, cfg.max_k)])),
        tile_vectors(cfg, "k_one", random_tiles(cfg, gen, 4, [1])),
    ]
    depth = cfg.max_k
    extremes = []
    low_corner, high_corner = None, None
    for a_value in (a_lo, a_hi):
        for b_value in (b_lo, b_hi):
            product = a_value * b_value
            if low_corner is None or product < low_corner[2]:
                low_corner = (a_value, b_value, product)
            if high_corner is None or product > high_corner[2]:
                high_corner = (a_value, b_value, product)
    for a_value, b_value, _ in (low_corner, high_corner):
        extremes.append((torch.full((cfg.rows, depth), a_value), torch.full((depth, cfg.cols), b_value)))
    alternating = torch.tensor([a_lo, a_hi]).repeat(depth)[:depth]
    extremes.append((alternating.repeat(cfg.rows, 1), torch.full((depth, cfg.cols), b_lo)))
    cases.append(tile_vectors(cfg, "extremes_max_k", extremes))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, MacArray, vectors, mode)
