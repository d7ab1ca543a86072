"""Test bench of the ``requant`` block: vectors from the golden model, cocotb entry point."""

import cocotb
import torch

from ..golden.requant import INT32_MAX, INT32_MIN, quantize_multiplier, requantize
from ..hdl.requant import Requant
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors"]


def _case(cfg, name, acc, bias, multiplier, shift, output_offset, act_min, act_max):
    """Vectors for one case from flat per-element tensors (padded to whole beats)."""
    acc, bias, multiplier, shift = (torch.as_tensor(t, dtype=torch.int64) for t in (acc, bias, multiplier, shift))
    count = -(-acc.numel() // cfg.lanes) * cfg.lanes
    acc, bias, multiplier, shift = (torch.cat([t, t[:count - t.numel()]]) for t in (acc, bias, multiplier, shift))
    expected = requantize(cfg, acc, bias, multiplier, shift, output_offset, act_min, act_max)
    beats, outputs = [], []
    for start in range(0, count, cfg.lanes):
        lanes = range(start, start + cfg.lanes)
        beats.append([{"acc": int(acc[j]), "bias": int(bias[j]), "multiplier": int(multiplier[j]),
                       "shift": int(shift[j])} for j in lanes])
        outputs.append([int(expected[j]) for j in lanes])
    static = {"output_offset": output_offset, "act_min": act_min, "act_max": act_max}
    return Vectors(name, beats, outputs, static, origin=[[n] for n in range(len(beats))])


def vectors(cfg, seed=1, count=256):
    """Named cases: realistic scales, uniformly random words, and the TFLite corner cases."""
    gen = torch.Generator().manual_seed(seed)
    acc_lo, acc_hi = -(1 << (cfg.acc_width - 1)), (1 << (cfg.acc_width - 1)) - 1
    out_lo, out_hi = cfg.out_min, cfg.out_max
    zero = 0 if cfg.out_signed else (out_hi + 1) // 2

    def rand(low, high, n=count):
        return torch.randint(low, high + 1, (n,), generator=gen, dtype=torch.int64)

    cases = []
    scales = torch.exp(torch.empty(count, dtype=torch.float64).uniform_(-14, 1, generator=gen))
    pairs = [quantize_multiplier(float(s)) for s in scales]
    cases.append(_case(cfg, "realistic", rand(acc_lo, acc_hi) >> 4, rand(-(1 << 16), 1 << 16),
                       [m for m, _ in pairs], [s for _, s in pairs], zero, out_lo, out_hi))
    cases.append(_case(cfg, "random_words", rand(acc_lo, acc_hi), rand(INT32_MIN, INT32_MAX),
                       rand(INT32_MIN, INT32_MAX), rand(-32, 31), int(rand(-(1 << cfg.out_width) // 2,
                       (1 << cfg.out_width) // 2, 1)), out_lo, out_hi))

    # Corners: INT32_MIN products, M0 = 2**31 - 1, extreme shifts, exact rounding ties, wrap-around.
    accs = [0, 1, -1, acc_lo, acc_hi, acc_lo + 1, 3, -3, 5, -5]
    biases = [0, INT32_MIN, INT32_MAX, INT32_MIN - acc_lo if acc_lo > INT32_MIN else 0, 1 << 30, -(1 << 30)]
    multipliers = [INT32_MIN, INT32_MAX, 1 << 30, (1 << 30) + 1, 0, -1, 1]
    shifts = [-32, -31, -30, -16, -1, 0, 1, 15, 30, 31]
    grid = torch.cartesian_prod(torch.tensor(accs), torch.tensor(biases), torch.tensor(multipliers),
                                torch.tensor(shifts))
    cases.append(_case(cfg, "corners", grid[:, 0], grid[:, 1], grid[:, 2], grid[:, 3], 0, out_lo, out_hi))

    # Ties of RoundingDivideByPOT and saturation against a narrow (ReLU6-like) clamp window.
    ties = torch.tensor([(2 * n + 1) << 3 for n in range(-8, 8)], dtype=torch.int64)
    cases.append(_case(cfg, "ties_and_clamp", torch.cat([ties, ties * 1000]), torch.zeros(32),
                       torch.full((32,), INT32_MAX), torch.full((32,), -4), zero,
                       max(out_lo, zero), min(out_hi, zero + 20)))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, Requant, vectors, mode)
