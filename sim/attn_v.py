"""Test bench of the ``attn_v`` block: rows of (log2 code, V) terms against the golden model."""

import cocotb
import torch

from ..golden.attn_v import attn_v
from ..golden.common.scores import score_rows
from ..golden.log_softmax_int import LogSoftmaxIntConfig, log_softmax_int
from ..hdl.attn_v import AttnV
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors"]


def _attn_case(cfg, name, code, zero, v):
    beats = [{"code": int(c), "zero": int(z), "v": int(x)} for c, z, x in zip(code.flatten(), zero.flatten(), v.flatten())]
    origin = [list(range(r * cfg.n, (r + 1) * cfg.n)) for r in range(len(code))]
    return Vectors(name, beats, attn_v(cfg, code, zero, v).tolist(), origin=origin)


def vectors(cfg, seed=1):
    """Named cases for ``attn_v``: codes from Log-Int-Softmax of Gaussian scores with random ``V``; random
    codes with a fifth zero; the extremes (every ``V`` at the minimum or maximum with code 0, every code
    the largest, every term zero)."""
    gen = torch.Generator().manual_seed(seed)
    low, high = -(1 << (cfg.v_width - 1)), (1 << (cfg.v_width - 1)) - 1
    rows = max(8, 256 // cfg.n)
    # Log-Int-Softmax makes codes of at most 4 bits; a 5-bit attn_v takes them as they are.
    lis = LogSoftmaxIntConfig(n=cfg.n, bits=min(cfg.bits, 4))
    scores = score_rows(lis, "gauss2", rows, cfg.n, seed=seed)[0]
    code, zero = log_softmax_int(lis, scores)
    v = torch.randint(low, high + 1, (rows, cfg.n), generator=gen)
    random_code = torch.randint(0, cfg.levels, (rows, cfg.n), generator=gen)
    random_zero = (torch.rand(rows, cfg.n, generator=gen) < 0.2).to(torch.int64)
    full = lambda value: torch.full((4, cfg.n), value, dtype=torch.int64)
    edge_code = torch.cat([full(0)[:2], full(cfg.levels - 1)[:1], full(0)[:1]])
    edge_zero = torch.cat([full(0)[:3], full(1)[:1]])
    edge_v = torch.cat([full(low)[:1], full(high)[:1], full(low)[:1], full(high)[:1]])
    return [
        _attn_case(cfg, "log_int_softmax_codes", code, zero, v),
        _attn_case(cfg, "random_codes", random_code, random_zero, v),
        _attn_case(cfg, "extremes", edge_code, edge_zero, edge_v),
    ]


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, AttnV, vectors, mode)
