"""Test bench of the ``pwl`` block: every input code, and the codes around every breakpoint, against the
golden model."""

import cocotb
import torch

from ..golden.pwl import pwl, pwl_tables, reduce_input
from ..hdl.pwl import Pwl
from .common.bench import slow_modes
from .common.cocotb_bench import run_stream_test
from .common.unary import unary_case, unary_cases

__all__ = ["vectors", "breakpoint_codes", "octave_codes"]


def breakpoint_codes(cfg):
    """Every input code whose table code is next to a breakpoint: the last reachable table code below
    it and the first two at or above it (range reduction leaves some table codes unreachable), ascending."""
    table_code, _, zero = reduce_input(cfg, cfg.codes)
    reachable = table_code[~zero].unique()
    breakpoints = torch.tensor(pwl_tables(cfg).breakpoints, dtype=torch.int64)
    first_above = torch.searchsorted(reachable, breakpoints)
    near = torch.cat([first_above - 1, first_above, first_above + 1]).clamp(0, len(reachable) - 1)
    return cfg.codes[torch.isin(table_code, reachable[near]) & ~zero]


def octave_codes(cfg):
    """Zero and both sides of every power of two: the leading-one detector's boundaries."""
    powers = [1 << p for p in range(cfg.in_width)]
    return torch.tensor([0, *powers, *(p - 1 for p in powers[2:]), (1 << cfg.in_width) - 1])


def vectors(cfg, seed=1):
    """Named cases: every input code in order (exhaustive), shuffled, the range ends, the codes on and next
    to every breakpoint, and for range-reduced functions the powers of two."""
    return [
        *unary_cases(cfg, cfg.codes, pwl, seed),
        unary_case(cfg, "breakpoints", breakpoint_codes(cfg), pwl),
        *([unary_case(cfg, "octaves", octave_codes(cfg), pwl)] if cfg.range_reduced else []),
    ]


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, Pwl, vectors, mode)
