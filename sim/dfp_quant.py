"""Test bench of the ``dfp_quant`` block: tensors of float-like and of random words (every exponent
distance), subnormals, zeros, the saturating significands and one-word tensors, against
:func:`qarith.golden.dfp_quant.dfp_quant`, each case from the LFSR's seed (``reseed`` on its first
beat)."""

import cocotb
import torch

from ..golden.dfp_quant import Lfsr, dfp_quant
from ..hdl.dfp_quant import DfpQuant
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "tensor_vectors", "random_words"]


def tensor_vectors(cfg, name, tensors):
    """Vectors for a list of 1-D word tensors: each streamed twice (two passes), ``last`` on each pass's
    final word, ``reseed`` on the case's first beat; one expected code per second-pass word."""
    results = dfp_quant(cfg, tensors, Lfsr(cfg))
    beats, expected, origin = [], [], []
    for words, (codes, shared) in zip(tensors, results):
        words = words.tolist()
        for _ in range(2):
            start = len(beats)
            beats += [{"x": w, "last": int(n == len(words) - 1), "reseed": int(not beats and n == 0)}
                      for n, w in enumerate(words)]
        expected += [{"q": q, "exp": shared, "last": int(n == len(words) - 1)}
                     for n, q in enumerate(codes.tolist())]
        origin += [[start + n] for n in range(len(words))]
    return Vectors(name, beats, expected, origin=origin)


def random_words(cfg, gen, count, exp_low=0, exp_high=None):
    """``count`` words with random signs and fractions and exponent fields in ``[exp_low, exp_high]``."""
    exp_high = cfg.exp_max if exp_high is None else exp_high
    sign = torch.randint(0, 2, (count,), generator=gen)
    exponent = torch.randint(exp_low, exp_high + 1, (count,), generator=gen)
    fraction = torch.randint(0, 1 << cfg.man_width, (count,), generator=gen)
    return (sign << (cfg.width - 1)) | (exponent << cfg.man_width) | fraction


def vectors(cfg, seed=1):
    """Named cases:

    * ``narrow``: tensors of 1, 5, 64 and 120 random words whose exponents span 15 octaves around the
      middle of the range;
    * ``exponent_spread``: random words whose exponents span up to ``man_width + k + 4`` octaves below the
      maximum (every shift, including the clamped ones that leave nothing), and over the whole range;
    * ``subnormals_and_zeros``: both zeros, subnormals, the smallest normals, an all-zero tensor;
    * ``saturation``: the largest significands at the shared exponent (they round up to ``2**(b-1)`` and
      saturate) with both signs; ``extremes``: the largest and smallest finite words.
    """
    gen = torch.Generator().manual_seed(seed)
    top = cfg.exp_max
    width = cfg.man_width + cfg.rand_bits + 4
    cases = []
    tensors = [random_words(cfg, gen, n, max(0, top // 2 - 7), top // 2 + 7) for n in (1, 5, 64, 120)]
    cases.append(tensor_vectors(cfg, "narrow", tensors))
    spread = [random_words(cfg, gen, 150, max(0, top - width), top), random_words(cfg, gen, 100, 0, top)]
    cases.append(tensor_vectors(cfg, "exponent_spread", spread))
    subnormal = random_words(cfg, gen, 40, 0, 0)
    small = torch.cat([torch.tensor([0, 1 << (cfg.width - 1), 1, (1 << cfg.man_width)]), subnormal,
                       random_words(cfg, gen, 20, 1, 2)])
    cases.append(tensor_vectors(cfg, "subnormals_and_zeros",
                                [small, subnormal, torch.zeros(6, dtype=torch.int64)]))
    fraction_top = (1 << cfg.man_width) - 1
    near_top = [fraction_top - n for n in range(min(16, fraction_top + 1))]
    saturating = torch.tensor([(s << (cfg.width - 1)) | (min(5, top) << cfg.man_width) | f for s in (0, 1) for f in near_top]
                              * 2)
    cases.append(tensor_vectors(cfg, "saturation", [saturating]))
    largest = (top << cfg.man_width) | fraction_top
    cases.append(tensor_vectors(cfg, "extremes", [torch.tensor([largest, largest | (1 << (cfg.width - 1)), 1, 0]),
                                                  torch.tensor([largest])]))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, DfpQuant, vectors, mode)
