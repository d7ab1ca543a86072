"""Test bench of the ``lut_unary`` block: every input code against the golden table."""

import cocotb
import torch

from ..golden.lut_unary import lut_unary
from .bench import MODES, Vectors
from .cocotb_bench import run_stream_test

__all__ = ["vectors"]


def _case(cfg, name, codes):
    expected = lut_unary(cfg, codes)
    return Vectors(name, codes.tolist(), expected.tolist(), origin=[[n] for n in range(len(codes))])


def vectors(cfg, seed=1):
    """Named cases: every input code in order (exhaustive), then shuffled, then the range ends."""
    codes = cfg.codes.sort().values
    gen = torch.Generator().manual_seed(seed)
    low, high = int(codes[0]), int(codes[-1])
    return [
        _case(cfg, "exhaustive", codes),
        _case(cfg, "shuffled", codes[torch.randperm(len(codes), generator=gen)]),
        _case(cfg, "range_ends", torch.tensor([low, high, low, low + 1, high - 1, high, 0 if cfg.in_signed else low])),
    ]


@cocotb.test()
@cocotb.parametrize(mode=tuple(MODES))
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, vectors, mode)
