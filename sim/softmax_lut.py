"""Test bench of the ``softmax_lut`` block: rows of scores against the golden model."""

import cocotb

from ..golden.softmax_lut import softmax_lut
from ..hdl.common.component import interface
from ..hdl.softmax_lut import SoftmaxLut
from .common.bench import case_seed, played, slow_modes
from .common.cocotb_bench import TB, run_stream_test
from .common.rows import ragged_cases, row_cases
from .common.runner import bench_config, bench_run

__all__ = ["vectors"]


def vectors(cfg, seed=1):
    """The row blocks' cases (:func:`qarith.sim.common.rows.row_cases`; variable-length rows:
    :func:`~qarith.sim.common.rows.ragged_cases`) through :func:`softmax_lut`."""
    if cfg.variable_length:
        return ragged_cases(cfg, softmax_lut, seed)
    return row_cases(cfg, softmax_lut, seed)


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, SoftmaxLut, vectors, mode)


@cocotb.test()
async def schedule(dut):
    """Full-length rows back to back, never stalled: every row's first output when
    :meth:`~qarith.hdl.common.rows.RowSchedule.row_outputs` says, so the banks, ``output_gap`` and
    ``row_latency`` hold together on the Verilog (the configs that instantiate FPGA primitives have no
    amaranth.sim tier to check them). Variable-length rows are checked in ``tests/test_varlen.py``."""
    cfg = bench_config(SoftmaxLut)
    if cfg.variable_length:
        return
    component = interface(SoftmaxLut, cfg)
    tb = TB(dut, component)
    await tb.reset()
    case = played(next(case for case in vectors(cfg) if case.name == "uniform_back_to_back"), "plain")
    accepted, delivered = await tb.play(case, case_seed(bench_run(), "schedule", case.name))
    rows = len(case.expected) // cfg.n
    measured = [delivered[row * cfg.n] - accepted[0] for row in range(rows)]
    assert measured == component.row_outputs([cfg.n] * rows), measured
