"""Test bench of the ``lns_add`` block: operand pairs against the golden model."""

import cocotb
import torch

from ..golden.common.lns import join
from ..golden.lns_add import lns_add
from ..hdl.lns_add import LnsAdd
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "EXHAUSTIVE_WIDTH", "RANDOM_PAIRS"]

#: Words of at most this width are checked on every pair, both operations.
EXHAUSTIVE_WIDTH = 8
#: Random pairs (each with a random operation) for wider words.
RANDOM_PAIRS = 4096


def _case(cfg, name, a, b, sub):
    """Vectors for flat tensors of operands (padded to whole beats by repeating the first pairs)."""
    a, b, sub = (torch.as_tensor(t, dtype=torch.int64).flatten() for t in (a, b, sub))
    a, b, sub = torch.broadcast_tensors(a, b, sub)
    count = -(-a.numel() // cfg.lanes) * cfg.lanes
    a, b, sub = (torch.cat([t, t.repeat(cfg.lanes)[:count - t.numel()]]) for t in (a, b, sub))
    expected = lns_add(cfg, a, b, sub)
    beats = [{"a": a[start:start + cfg.lanes].tolist(), "b": b[start:start + cfg.lanes].tolist(),
              "sub": sub[start:start + cfg.lanes].tolist()} for start in range(0, count, cfg.lanes)]
    outputs = [expected[start:start + cfg.lanes].tolist() for start in range(0, count, cfg.lanes)]
    return Vectors(name, beats, outputs, origin=[[n] for n in range(len(beats))])


def _word(cfg, sign, exp):
    return join(cfg, torch.as_tensor(sign), torch.as_tensor(exp))


def edge_cases(cfg):
    """Named ``(name, a, b, sub)`` cases at the rule boundaries of the golden model."""
    emin, emax, k = cfg.emin, cfg.emax, cfg.interp_bits
    zero, negative_zero = cfg.zero_word, cfg.zero_word | (1 << cfg.exp_width)
    some = _word(cfg, torch.tensor([0, 1, 0, 1, 0, 1]), torch.tensor([0, 0, emax, emax, emin, emin]))
    zeros = torch.tensor([zero, negative_zero])
    cases = []
    # Zeros of both signs against zeros and nonzero words, both orders, both operations.
    operands = torch.cat([zeros, some])
    grid = torch.cartesian_prod(operands, operands, torch.tensor([0, 1]))
    has_zero = torch.isin(grid[:, 0], zeros) | torch.isin(grid[:, 1], zeros)
    cases.append(("zero_operands", grid[has_zero, 0], grid[has_zero, 1], grid[has_zero, 2]))
    # Equal magnitudes: x + -x, -x + x, x - x and -x - -x cancel; x + x doubles.
    exps = torch.tensor([emin, -1, 0, 1, emax - cfg.gamma, emax])
    pos, neg = _word(cfg, 0, exps), _word(cfg, 1, exps)
    cases.append(("equal_magnitudes", torch.cat([pos, neg, pos, neg, pos]), torch.cat([neg, pos, pos, neg, pos]),
                  torch.tensor([0, 0, 1, 1, 0]).repeat_interleave(len(exps))))
    # The range ends, (sign, exponent) of a and b and sub: the largest sums saturate, the smallest
    # differences flush, emin + emin, emax - emin.
    ends = torch.tensor([(0, emax, 0, emax, 0), (0, emax, 0, emax - 1, 0), (1, emax, 1, emax, 0),
                         (0, emin + 1, 1, emin, 0), (0, emin, 0, emin, 0), (0, emin, 0, emin + 1, 1),
                         (0, emax, 0, emin, 1)])
    cases.append(("range_ends", _word(cfg, ends[:, 0], ends[:, 1]), _word(cfg, ends[:, 2], ends[:, 3]), ends[:, 4]))
    # d = 1 and 2 codes with opposite signs (the deepest cancellation), at both operand orders.
    big = torch.tensor([0, 1, emax, emin + 2])
    a = _word(cfg, 0, torch.cat([big, big - 1, big, big - 2]))
    b = _word(cfg, 1, torch.cat([big - 1, big, big - 2, big]))
    cases.append(("cancellation", torch.cat([a, a]), torch.cat([b, b ^ (1 << cfg.exp_width)]),
                  torch.tensor([0] * 16 + [1] * 16)))
    # Distances around each table's end, the direct db region's end and the largest distance.
    ends = [cfg.sb_end << k, cfg.db_end << k, cfg.db_direct]
    d = torch.tensor(sorted({min(max(e + s, 0), cfg.d_max) for e in ends for s in (-2, -1, 0, 1)} | {cfg.d_max}))
    a, b = _word(cfg, 0, torch.full_like(d, emax)), _word(cfg, 0, emax - d)
    cases.append(("table_ends", torch.cat([a, a, b, b]), torch.cat([b, b, a, a]),
                  torch.tensor([0, 1]).repeat_interleave(len(d)).repeat(2)))
    return cases


def vectors(cfg, seed=1):
    """Every pair of words with both operations (words of up to 8 bits, :data:`EXHAUSTIVE_WIDTH`) or
    :data:`RANDOM_PAIRS` random pairs and every distance ``d`` with both sign relations (every ROM entry);
    then the named edge cases (:func:`edge_cases`)."""
    gen = torch.Generator().manual_seed(seed)
    words = torch.arange(cfg.words)
    cases = []
    if cfg.width <= EXHAUSTIVE_WIDTH:
        a = words.repeat_interleave(cfg.words).repeat(2)
        b = words.repeat(2 * cfg.words)
        sub = torch.arange(2).repeat_interleave(cfg.words * cfg.words)
        cases.append(_case(cfg, "exhaustive", a, b, sub))
    else:
        pick = torch.randint(0, cfg.words, (2, RANDOM_PAIRS), generator=gen)
        sub = torch.randint(0, 2, (RANDOM_PAIRS,), generator=gen)
        cases.append(_case(cfg, "random_pairs", pick[0], pick[1], sub))
        d = torch.arange(cfg.d_max + 1)
        a = _word(cfg, 0, torch.full_like(d, cfg.emax))
        b = _word(cfg, 0, cfg.emax - d)
        order = torch.randperm(2 * len(d), generator=gen)
        cases.append(_case(cfg, "every_distance", torch.cat([a, a])[order], torch.cat([b, b])[order],
                           torch.tensor([0, 1]).repeat_interleave(len(d))[order]))
    cases += [_case(cfg, *case) for case in edge_cases(cfg)]
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, LnsAdd, vectors, mode)
