"""Test bench of the ``ilayernorm`` block: rows of channels against the golden model."""

import cocotb
import torch

from ..golden.ilayernorm import activation_rows, ilayernorm
from ..hdl.ilayernorm import ILayerNorm
from .common.bench import slow_modes
from .common.cocotb_bench import run_stream_test
from .common.rows import edge_rows, ragged_cases, row_vectors

__all__ = ["vectors"]


def vectors(cfg, seed=1):
    """Named cases: transformer-like rows (Gaussian channels with outlier channels), the row blocks'
    edge rows (all equal: zero variance; one extreme among minimum codes; alternating extremes; a ramp),
    and a long back-to-back run of uniformly random rows that cycles every buffer bank. Variable-length
    configs: :func:`~qarith.sim.common.rows.ragged_cases`, the realistic rows from transformer-like
    channels."""
    if cfg.variable_length:
        return ragged_cases(cfg, ilayernorm, seed, source=activation_rows(cfg, cfg.channels, seed=seed))
    gen = torch.Generator().manual_seed(seed)
    low, high = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
    realistic = activation_rows(cfg, max(4, 256 // cfg.channels), seed=seed)
    uniform = torch.randint(low, high + 1, (max(12, 512 // cfg.channels), cfg.channels), generator=gen)
    return [
        row_vectors(cfg, "realistic", realistic, ilayernorm),
        row_vectors(cfg, "edges", edge_rows(cfg), ilayernorm),
        row_vectors(cfg, "uniform_back_to_back", uniform, ilayernorm),
    ]


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, ILayerNorm, vectors, mode)
