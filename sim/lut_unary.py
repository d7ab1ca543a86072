"""Test bench of the ``lut_unary`` block: every input code against the golden table."""

import cocotb

from ..golden.lut_unary import lut_unary
from ..hdl.lut_unary import LutUnary
from .common.bench import slow_modes
from .common.cocotb_bench import run_stream_test
from .common.unary import unary_cases

__all__ = ["vectors"]


def vectors(cfg, seed=1):
    """Every input code (exhaustive), shuffled, and the range ends (:func:`qarith.sim.common.unary.unary_cases`)."""
    return unary_cases(cfg, cfg.codes, lut_unary, seed)


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, LutUnary, vectors, mode)
