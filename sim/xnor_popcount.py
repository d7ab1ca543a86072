"""Test bench of the ``xnor_popcount`` block: random vectors, every popcount 0..K on every channel (so
every threshold and its neighbours), all-ones / all-zeros extremes and, where a channel's input space
(activation and weight bits, padding included) has at most 16 bits, every pair of words; always with
random bits in the padding of the last word, which the block must ignore. Expected outputs come from
:func:`qarith.golden.xnor_popcount.xnor_popcount`."""

import cocotb
import torch

from ..golden.xnor_popcount import pack_words, xnor_popcount
from ..hdl.xnor_popcount import XnorPopcount
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "vector_case", "words_with_popcounts", "EXHAUSTIVE_BITS", "EVERY_COUNT_LIMIT"]

#: Largest number of bits a channel's vector spans (``words * W``) for which every pair of activation
#: and weight vectors is played: ``2 ** (2 * 8)`` pairs.
EXHAUSTIVE_BITS = 8
#: Largest ``K`` for which every popcount 0..K is played on every channel; beyond it the boundary
#: counts (0, 1, K - 1, K, each threshold and its neighbours) and random ones.
EVERY_COUNT_LIMIT = 128


def vector_case(cfg, name, x, w):
    """Beats of the packed vectors ``x`` (N, words) and ``w`` (N, channels, words): vector ``n`` is beats
    ``n * words .. (n + 1) * words - 1``, its expected output the golden model's bits."""
    out = xnor_popcount(cfg, x, w)
    beats, origin = [], []
    for n in range(x.shape[0]):
        first = len(beats)
        for j in range(cfg.words):
            beats.append({"x": int(x[n, j]), "w": w[n, :, j].tolist()})
        origin.append(list(range(first, len(beats))))
    return Vectors(name, beats, out.tolist(), origin=origin)


def _with_padding(cfg, words, gen):
    """``words`` with random bits in the last word's padding."""
    padding = ((1 << cfg.word_width) - 1) ^ cfg.last_mask
    noise = torch.randint(0, 1 << cfg.word_width, words[..., -1:].shape, generator=gen) & padding
    words = words.clone()
    words[..., -1:] |= noise
    return words


def words_with_popcounts(cfg, counts, gen):
    """Random packed ``x`` (N, words) and ``w`` (N, channels, words) whose XNOR has exactly
    ``counts[n, c]`` ones among the K elements (the ones at random places)."""
    n = counts.shape[0]
    x_bits = torch.randint(0, 2, (n, cfg.k), generator=gen)
    rank = torch.rand(n, cfg.channels, cfg.k, generator=gen).argsort(-1).argsort(-1)
    agree = (rank < counts.unsqueeze(-1)).to(torch.int64)
    # XNOR(x, w) = agree  <=>  w = x XOR NOT agree.
    w_bits = x_bits.unsqueeze(1) ^ (1 - agree)
    return (_with_padding(cfg, pack_words(x_bits, cfg.word_width), gen),
            _with_padding(cfg, pack_words(w_bits, cfg.word_width), gen))


def _count_table(cfg, gen):
    """Popcounts (N, channels): every count on every channel (rotated per channel) for small K, else the
    boundary counts of every channel and random ones."""
    k = cfg.k
    if k <= EVERY_COUNT_LIMIT:
        base = torch.arange(k + 1)
        return torch.stack([(base + 7 * c) % (k + 1) for c in range(cfg.channels)], dim=1)
    columns = []
    for t in cfg.threshold_codes:
        column = torch.tensor([0, 1, k - 1, k, t - 1, t, t + 1]).clamp(0, k)
        columns.append(torch.cat([column, torch.randint(0, k + 1, (57,), generator=gen)]))
    return torch.stack(columns, dim=1)


def _extremes(cfg):
    """All ones and all zeros on each side, alternating patterns; the padding all ones in half of them."""
    ones = (1 << cfg.word_width) - 1
    alternating = int("01" * 16, 2) & ones
    patterns = [(ones, ones), (0, 0), (ones, 0), (0, ones), (alternating, alternating),
                (alternating, ones ^ alternating)]
    x, w = [], []
    for padded in (False, True):
        for a, b in patterns:
            x_row = torch.full((cfg.words,), a)
            w_row = torch.full((cfg.channels, cfg.words), b)
            if not padded:
                x_row[-1] &= cfg.last_mask
                w_row[:, -1] &= cfg.last_mask
            else:
                x_row[-1] |= ones ^ cfg.last_mask
                w_row[:, -1] |= ones ^ cfg.last_mask
            x.append(x_row)
            w.append(w_row)
    return torch.stack(x), torch.stack(w)


def _exhaustive(cfg):
    """Every pair of a channel's activation and weight bits (``words * W`` each, padding included): for
    every ``x``, the weights ``j * channels + (c + x) % channels`` over ``j``, so each pair appears and
    every channel sees every ``x`` and every weight vector."""
    bits = cfg.words * cfg.word_width
    size = 1 << bits
    per_x = -(-size // cfg.channels)
    x_all = torch.arange(size).repeat_interleave(per_x)
    j = torch.arange(per_x).repeat(size)
    c = torch.arange(cfg.channels)
    w_all = (j.unsqueeze(1) * cfg.channels + (c.unsqueeze(0) + x_all.unsqueeze(1)) % cfg.channels) % size
    shifts = torch.arange(cfg.words) * cfg.word_width
    word_mask = (1 << cfg.word_width) - 1
    return (x_all.unsqueeze(-1) >> shifts) & word_mask, (w_all.unsqueeze(-1) >> shifts) & word_mask


def vectors(cfg, seed=1):
    """Named cases: ``exhaustive`` (small vectors only), ``every_popcount``, ``extremes``, ``random``."""
    gen = torch.Generator().manual_seed(seed)
    cases = []
    if cfg.words * cfg.word_width <= EXHAUSTIVE_BITS:
        cases.append(vector_case(cfg, "exhaustive", *_exhaustive(cfg)))
    cases.append(vector_case(cfg, "every_popcount", *words_with_popcounts(cfg, _count_table(cfg, gen), gen)))
    cases.append(vector_case(cfg, "extremes", *_extremes(cfg)))
    top = 1 << cfg.word_width
    x = torch.randint(0, top, (24, cfg.words), generator=gen)
    w = torch.randint(0, top, (24, cfg.channels, cfg.words), generator=gen)
    cases.append(vector_case(cfg, "random", x, w))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, XnorPopcount, vectors, mode)
