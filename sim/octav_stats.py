"""Test bench of the ``octav_stats`` block: tensors of many lengths at many clips, every input code at
the clips around each magnitude, and the named edges, against
:func:`qarith.golden.octav_stats.octav_stats`."""

import cocotb
import torch

from ..golden.octav_stats import octav_stats
from ..hdl.octav_stats import OctavStats
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "tensor_vectors", "codes"]

#: Input spaces up to this many codes are played whole in ``every_code``; wider ones by a random sample
#: of this size (with the extreme codes).
EXHAUSTIVE_CODES = 512


def tensor_vectors(cfg, name, tensors, clip):
    """Vectors for a list of 1-D integer tensors at one ``clip``: one beat per element, ``last`` on each
    tensor's final element, one expected output per tensor."""
    beats, expected, origin = [], [], []
    for tensor in tensors:
        first = len(beats)
        values = tensor.tolist()
        beats += [{"x": value, "last": int(n == len(values) - 1)} for n, value in enumerate(values)]
        sum_out, n_out, n_in = (int(t) for t in octav_stats(cfg, tensor, clip))
        expected.append({"sum_out": sum_out, "n_out": n_out, "n_in": n_in})
        origin.append(list(range(first, len(beats))))
    return Vectors(name, beats, expected, {"clip": clip}, origin)


def codes(cfg):
    """Every input code, in order."""
    return torch.arange(cfg.in_min, cfg.in_max + 1, dtype=torch.int64)


def vectors(cfg, seed=1):
    """Named cases:

    * ``every_code``: one tensor of every input code (split into ``max_n`` pieces if needed; a sample of
      :data:`EXHAUSTIVE_CODES` for inputs over 9 bits) at clips 0,
      1, half and all of the largest magnitude, and one past it (nothing clipped);
    * ``random``: tensors of random lengths (1 .. ``max_n``, a one-element tensor among them) of
      Gaussian-like codes at a clip inside their range;
    * ``constant``: constant tensors at clip equal to their magnitude (the ``>=`` side), one below, one
      above; ``extremes``: the most negative code (the largest unsigned) repeated ``max_n`` times (the widest
      sum and count), then three times.
    """
    gen = torch.Generator().manual_seed(seed)
    top = cfg.max_magnitude
    count = cfg.in_max - cfg.in_min + 1
    if count <= EXHAUSTIVE_CODES:
        every = codes(cfg)[torch.randperm(count, generator=gen)]
    else:
        every = torch.cat([torch.tensor([cfg.in_min, cfg.in_max, 0, -1 if cfg.in_signed else 1]),
                           torch.randint(cfg.in_min, cfg.in_max + 1, (EXHAUSTIVE_CODES - 4,), generator=gen)])
    every = list(every.split(cfg.max_n))
    cases = [tensor_vectors(cfg, f"every_code_clip{clip}", every, clip)
             for clip in sorted({0, 1, top // 2, top, top + 1})]
    lengths = [1, 2, 3, min(cfg.max_n, 64), cfg.max_n] + \
        torch.randint(1, min(cfg.max_n, 100) + 1, (4,), generator=gen).tolist()
    spread = max(1, top // 4)
    tensors = [(torch.randn(n, generator=gen) * spread).round().to(torch.int64).clamp(cfg.in_min, cfg.in_max)
               for n in lengths]
    cases.append(tensor_vectors(cfg, "random", tensors, max(1, top // 3)))
    level = max(1, top // 5) if cfg.in_signed else max(1, top // 3)
    constant = [torch.full((n,), value) for n in (1, 7) for value in ((level, -level) if cfg.in_signed
                                                                       else (level,))]
    for clip in (level - 1, level, level + 1):
        cases.append(tensor_vectors(cfg, f"constant_clip{clip}", constant, clip))
    extreme = cfg.in_min if cfg.in_signed else cfg.in_max
    cases.append(tensor_vectors(cfg, "extremes", [torch.full((cfg.max_n,), extreme),
                                                  torch.full((3,), extreme)], 1))
    cases.append(tensor_vectors(cfg, "zeros", [torch.zeros(5, dtype=torch.int64)], 0))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, OctavStats, vectors, mode)
