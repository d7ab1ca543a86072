"""Test bench of the ``shiftmax`` block: rows of scores against the golden model."""

import cocotb

from ..golden.shiftmax import shiftmax
from ..hdl.shiftmax import Shiftmax
from .common.bench import slow_modes
from .common.cocotb_bench import run_stream_test
from .common.rows import ragged_cases, row_cases

__all__ = ["vectors"]


def vectors(cfg, seed=1):
    """The row blocks' cases (:func:`qarith.sim.common.rows.row_cases`; variable-length rows:
    :func:`~qarith.sim.common.rows.ragged_cases`) through :func:`shiftmax`."""
    if cfg.variable_length:
        return ragged_cases(cfg, shiftmax, seed)
    return row_cases(cfg, shiftmax, seed)


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, Shiftmax, vectors, mode)
