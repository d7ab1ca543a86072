"""Test bench of the ``shiftgelu`` block: every input code against the golden model."""

import cocotb

from ..golden.shiftgelu import shiftgelu
from ..hdl.shiftgelu import ShiftGelu
from .common.bench import slow_modes
from .common.cocotb_bench import run_stream_test
from .common.unary import unary_cases

__all__ = ["vectors"]


def vectors(cfg, seed=1):
    """Every input code (exhaustive), shuffled, and the range ends (:func:`qarith.sim.common.unary.unary_cases`)."""
    return unary_cases(cfg, cfg.codes, shiftgelu, seed)


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, ShiftGelu, vectors, mode)
