"""Test bench of the ``lns_mul`` block: every pair of words (exhaustive up to 8-bit words), random pairs
and the named edges, against :func:`qarith.golden.lns_mul.lns_mul`."""

import cocotb
import torch

from ..golden.common.lns import join, lns_words
from ..golden.lns_mul import lns_mul
from ..hdl.lns_mul import LnsMul
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "pair_vectors", "edge_words", "all_pairs"]

#: Largest word width whose every pair is played (2**16 pairs).
EXHAUSTIVE_WIDTH = 8


def pair_vectors(cfg, name, a, b, model):
    """``a`` and ``b`` (1-D word tensors of equal length) packed ``cfg.lanes`` pairs per beat, the last
    beat padded with zero words; ``model(cfg, a, b)`` is the expected output, one beat per input beat."""
    pad = -len(a) % cfg.lanes
    zero = torch.full((pad,), cfg.zero_word, dtype=torch.int64)
    a = torch.cat([a, zero]).reshape(-1, cfg.lanes)
    b = torch.cat([b, zero]).reshape(-1, cfg.lanes)
    out = model(cfg, a, b)
    beats = [{"a": x, "b": y} for x, y in zip(a.tolist(), b.tolist())]
    return Vectors(name, beats, out.tolist(), origin=[[n] for n in range(len(beats))],
                   exhaustive=name == "exhaustive")


def edge_words(cfg):
    """Both zeros, +-1, the extreme exponents and their neighbours, with both signs."""
    exps = torch.tensor([0, 1, -1, cfg.emax, cfg.emax - 1, cfg.emin, cfg.emin + 1, cfg.emax // 2, cfg.emin // 2])
    positive = join(cfg, torch.zeros_like(exps), exps)
    words = torch.cat([positive, positive | (1 << cfg.exp_width)])
    return torch.cat([torch.tensor([cfg.zero_word, cfg.zero_word | (1 << cfg.exp_width)]), words]).unique()


def all_pairs(cfg, gen):
    """Every pair of words in random order when the format has at most 8 bits, else 8192 random pairs."""
    words = lns_words(cfg)
    if cfg.width <= EXHAUSTIVE_WIDTH:
        a, b = torch.cartesian_prod(words, words).T
        order = torch.randperm(len(a), generator=gen)
        return "exhaustive", a[order], b[order]
    return "random", *torch.randint(0, cfg.words, (2, 8192), generator=gen)


def vectors(cfg, seed=1):
    """Every pair (or random pairs for wide words), and every pair of edge words."""
    gen = torch.Generator().manual_seed(seed)
    name, a, b = all_pairs(cfg, gen)
    edges = edge_words(cfg)
    ea, eb = torch.cartesian_prod(edges, edges).T
    return [pair_vectors(cfg, name, a, b, lns_mul), pair_vectors(cfg, "edges", ea, eb, lns_mul)]


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, LnsMul, vectors, mode)
