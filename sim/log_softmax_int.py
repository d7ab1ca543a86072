"""Test bench of the ``log_softmax_int`` block: rows of scores against the golden model."""

import cocotb

from ..golden.log_softmax_int import log_softmax_int
from ..hdl.log_softmax_int import LogSoftmaxInt
from .common.bench import slow_modes
from .common.cocotb_bench import run_stream_test
from .common.rows import ragged_cases, row_cases

__all__ = ["vectors", "code_records", "row_records"]


def code_records(cfg, rows):
    """The golden ``{"code", "zero"}`` record of every element of ``rows``, flat."""
    code, zero = log_softmax_int(cfg, rows)
    return [{"code": int(c), "zero": int(z)} for c, z in zip(code.flatten(), zero.flatten())]


def row_records(cfg, rows, lengths):
    """The golden ``{"code", "zero"}`` records of variable-length rows (padded, with ``lengths``), per row."""
    code, zero = log_softmax_int(cfg, rows, lengths)
    return [[{"code": int(c), "zero": int(z)} for c, z in zip(cs, zs)] for cs, zs in zip(code.tolist(), zero.tolist())]


def vectors(cfg, seed=1):
    """The row blocks' cases (:func:`qarith.sim.common.rows.row_cases`) through :func:`log_softmax_int`."""
    if cfg.variable_length:
        return ragged_cases(cfg, row_records, seed)
    return row_cases(cfg, code_records, seed)


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, LogSoftmaxInt, vectors, mode)
