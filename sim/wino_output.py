"""Test bench of the ``wino_output`` block: random, extreme and rounding-tie tiles against
``round_shift(A^T M A, shift)``."""

import cocotb
import torch

from ..golden.common.codes import code_range
from ..golden.common.winograd import matrices
from ..golden.wino_output import wino_output
from ..hdl.wino_output import WinoOutput
from .common.bench import slow_modes
from .common.cocotb_bench import run_stream_test
from .wino_input import extreme_tiles, tile_case

__all__ = ["vectors"]


def vectors(cfg, seed=1):
    """Named cases: uniformly random tiles; tiles reaching both ends of every output pixel, all-max,
    all-min and checkerboards; with a shift, tiles whose pixel (0, 0) is an exact rounding tie (only
    tap (0, 0) non-zero, +-(k 2**shift + 2**(shift-1)))."""
    gen = torch.Generator().manual_seed(seed)
    low, high = code_range(cfg.in_width, True)
    random_tiles = torch.randint(low, high + 1, (160, cfg.n, cfg.n), generator=gen)
    extremes = extreme_tiles(matrices(cfg.tile).AT, cfg.in_width)
    cases = [tile_case("random", random_tiles, wino_output(cfg, random_tiles)),
             tile_case("extremes", extremes, wino_output(cfg, extremes))]
    if cfg.shift:
        step = 1 << cfg.shift
        limit = max(1, (high - step // 2) // step)
        k = torch.randint(-limit, limit, (32,), generator=gen)
        ties = torch.zeros(32, cfg.n, cfg.n, dtype=torch.int64)
        ties[:, 0, 0] = (k * step + step // 2).clamp(low, high)
        cases.append(tile_case("rounding_ties", ties, wino_output(cfg, ties)))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, WinoOutput, vectors, mode)
