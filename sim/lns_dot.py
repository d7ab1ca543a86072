"""Test bench of the ``lns_dot`` block: vectors of LNS words against the golden model, cocotb entry point."""

import cocotb
import torch

from ..golden.common.lns import join
from ..golden.lns_dot import lns_dot
from ..hdl.lns_dot import LnsDot
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "dot_vectors", "beats_per_vector"]


def beats_per_vector(cfg, length):
    return -(-length // cfg.lanes)


def dot_vectors(cfg, name, pairs):
    """Vectors for a list of ``(a, b)`` word tensors of one length each: ``ceil(K / lanes)`` beats per
    vector, the last padded with zero words, one expected output per vector."""
    beats, expected, origin = [], [], []
    for a, b in pairs:
        first = len(beats)
        count = beats_per_vector(cfg, len(a))
        padding = torch.full((count * cfg.lanes - len(a),), cfg.zero_word, dtype=torch.int64)
        padded_a, padded_b = torch.cat([a, padding]), torch.cat([b, padding])
        for n in range(count):
            lanes = slice(n * cfg.lanes, (n + 1) * cfg.lanes)
            beats.append({"a": padded_a[lanes].tolist(), "b": padded_b[lanes].tolist(), "last": int(n == count - 1)})
        expected.append(int(lns_dot(cfg, a.unsqueeze(0), b.unsqueeze(0))[0]))
        origin.append(list(range(first, len(beats))))
    return Vectors(name, beats, expected, origin=origin)


def random_words(cfg, gen, shape, zeros=0.1):
    """Random nonzero words of any sign and exponent, a fraction ``zeros`` of them zero."""
    sign = torch.randint(0, 2, shape, generator=gen)
    exp = torch.randint(cfg.emin, cfg.emax + 1, shape, generator=gen)
    zero = torch.rand(shape, generator=gen) < zeros
    return join(cfg, sign, exp, zero)


def lengths(cfg):
    """Vector lengths worth testing: 1, around the lane count, non-multiples of it, and ``max_k``."""
    candidates = [1, cfg.lanes - 1, cfg.lanes, cfg.lanes + 1, 2 * cfg.lanes + 3, 3 * cfg.lanes - 1, 17, cfg.max_k]
    return sorted({k for k in candidates if 1 <= k <= cfg.max_k})


def vectors(cfg, seed=1):
    """Named cases: random vectors of several lengths, back-to-back one- and two-beat vectors, zeros,
    exact cancellation, all maximum exponents at ``max_k`` (the largest sums: nothing may wrap), all
    minimum exponents (truncated to zero when ``acc_frac_bits`` is small) and mixed extremes."""
    gen = torch.Generator().manual_seed(seed)
    k = cfg.max_k
    zero = cfg.zero_word
    negative_zero = zero | (1 << cfg.exp_width)

    def words(sign, exp, length):
        return join(cfg, torch.full((length,), sign), torch.full((length,), exp))

    def random_pair(length, zeros=0.1):
        return random_words(cfg, gen, (length,), zeros), random_words(cfg, gen, (length,), zeros)

    cases = [dot_vectors(cfg, "random_lengths", [random_pair(n) for n in lengths(cfg) for _ in range(2)])]
    one_beat, two_beats = min(cfg.lanes, k), min(2 * cfg.lanes, k)
    cases.append(dot_vectors(cfg, "back_to_back", [random_pair(one_beat, 0.0) for _ in range(8)]
                             + [random_pair(two_beats, 0.0) for _ in range(4)]))

    x, y = random_pair(k, 0.0)
    zero_pairs = [
        (torch.full((k,), zero), torch.full((k,), negative_zero)),   # both zero, either sign of zero
        (x, torch.full((k,), zero)),                                # one operand zero
        (torch.full((1,), negative_zero), y[:1]),
    ]
    cases.append(dot_vectors(cfg, "zeros", zero_pairs))

    # (x, y) against (x, -y): every product meets its negation, the sum is exactly zero.
    half = max(k // 2, 1)
    x, y = random_pair(half, 0.0)
    flipped = y ^ (1 << cfg.exp_width)
    cancel = [(torch.cat([x, x])[:k], torch.cat([y, flipped])[:k])] if k >= 2 else []
    cancel.append((torch.cat([x[:1], x[:1]]), torch.cat([y[:1], flipped[:1]])) if k >= 2 else (x[:1], y[:1]))
    cases.append(dot_vectors(cfg, "cancellation", cancel))

    # The largest product exponent whose remainder is gamma - 1 (P[gamma - 1], one bit narrower than the
    # other partial sums, at its bound): 119 = 63 + 56 for 8-bit words with b = 3.
    top = 2 * cfg.emax - (2 * cfg.emax - (cfg.gamma - 1)) % cfg.gamma
    cases.append(dot_vectors(cfg, "max_exponents", [
        (words(0, cfg.emax, k), words(0, cfg.emax, k)),
        (words(1, cfg.emax, k), words(0, cfg.emax, k)),
        (words(1, cfg.emax, k), words(1, top - cfg.emax, k)),
    ]))
    cases.append(dot_vectors(cfg, "min_exponents", [
        (words(0, cfg.emin, k), words(0, cfg.emin, k)),
        (words(1, cfg.emin, k), words(0, cfg.emin, k)),
        (words(0, cfg.emin, k), words(0, cfg.emax, k)),
    ]))

    extremes = torch.tensor([cfg.emin, cfg.emin + 1, -1, 0, 1, cfg.emax - 1, cfg.emax])
    mixed = []
    for length in (k, max(k // 3, 1)):
        pick = torch.randint(0, len(extremes), (2, length), generator=gen)
        sign = torch.randint(0, 2, (2, length), generator=gen)
        zero_flags = torch.rand((2, length), generator=gen) < 0.15
        pair = join(cfg, sign, extremes[pick], zero_flags)
        mixed.append((pair[0], pair[1]))
    cases.append(dot_vectors(cfg, "mixed_extremes", mixed))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, LnsDot, vectors, mode)
