"""Test bench of the ``lns_to_int`` block: every word (exhaustive up to 16-bit words), shuffled, and the
range ends, against :func:`qarith.golden.lns_to_int.lns_to_int`."""

import cocotb
import torch

from ..golden.common.lns import lns_words
from ..golden.lns_to_int import lns_to_int
from ..hdl.lns_to_int import LnsToInt
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test
from .lns_mul import edge_words

__all__ = ["vectors"]


def word_vectors(cfg, name, words):
    """``words`` packed ``cfg.lanes`` per beat (the last beat padded with zero words)."""
    words = torch.cat([words, torch.full((-len(words) % cfg.lanes,), cfg.zero_word)]).reshape(-1, cfg.lanes)
    return Vectors(name, words.tolist(), lns_to_int(cfg, words).tolist(),
                   origin=[[n] for n in range(len(words))])


def vectors(cfg, seed=1):
    """Every word in ascending order, the same shuffled, and the edge words."""
    gen = torch.Generator().manual_seed(seed)
    words = lns_words(cfg)
    return [
        word_vectors(cfg, "exhaustive", words),
        word_vectors(cfg, "shuffled", words[torch.randperm(len(words), generator=gen)]),
        word_vectors(cfg, "edges", edge_words(cfg)),
    ]


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, LnsToInt, vectors, mode)
