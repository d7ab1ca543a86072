"""Test bench of the ``wino_input`` block: random, extreme and feature-map tiles against ``B^T d B``."""

import cocotb
import torch

from ..golden.common.codes import code_range
from ..golden.common.winograd import matrices
from ..golden.wino_conv import feature_map_tiles
from ..golden.wino_input import wino_input
from ..hdl.wino_input import WinoInput
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "tile_case", "extreme_tiles"]


def tile_case(name, tiles, expected):
    """One case: tile ``k`` in, expected tile ``k`` out."""
    return Vectors(name, tiles.tolist(), expected.tolist(), origin=[[k] for k in range(len(tiles))])


def extreme_tiles(matrix, width):
    """Tiles of signed ``width``-bit codes that reach both ends of every entry of ``R X R^T``
    (``R = matrix``): the extreme codes with the signs of that entry's coefficients, plus all-max,
    all-min and the two checkerboards."""
    low, high = code_range(width, True)
    r = torch.tensor(matrix, dtype=torch.int64)
    coefficients = torch.einsum("ik,jl->ijkl", r, r).flatten(0, 1)         # (entries, n, n)
    n = r.shape[1]
    checker = (torch.arange(n).view(-1, 1) + torch.arange(n)) % 2 == 0
    rows = torch.arange(n).view(-1, 1).expand(n, n) % 2 == 0
    fixed = [torch.full((n, n), high), torch.full((n, n), low), torch.where(checker, high, low),
             torch.where(checker, low, high), torch.where(rows, high, low)]
    reaching = [torch.where(coefficients > 0, high, low), torch.where(coefficients > 0, low, high)]
    return torch.cat([torch.stack(fixed), *reaching])


def vectors(cfg, seed=1):
    """Named cases: uniformly random tiles; the extreme tiles (every tap's range ends, all-max, all-min,
    checkerboards); the overlapping tiles of zero-padded feature maps (8x8 with 3 channels, 16x16)."""
    gen = torch.Generator().manual_seed(seed)
    low, high = code_range(cfg.in_width, True)
    random_tiles = torch.randint(low, high + 1, (160, cfg.n, cfg.n), generator=gen)
    extremes = extreme_tiles(matrices(cfg.tile).BT, cfg.in_width)
    maps = {size: torch.randint(low, high + 1, (channels, size, size), generator=gen)
            for size, channels in ((8, 3), (16, 1))}
    cases = [tile_case("random", random_tiles, wino_input(cfg, random_tiles)),
             tile_case("extremes", extremes, wino_input(cfg, extremes))]
    for size, feature_map in maps.items():
        tiles = feature_map_tiles(cfg, feature_map).flatten(0, 1)
        cases.append(tile_case(f"feature_map_{size}x{size}", tiles, wino_input(cfg, tiles)))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, WinoInput, vectors, mode)
