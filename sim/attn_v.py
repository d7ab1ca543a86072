"""Test bench of the ``attn_v`` block: rows of (log2 code, V) terms against the golden model."""

import cocotb
import torch

from ..golden.attn_v import attn_v
from ..golden.common.ragged import cut_rows, pad_rows
from ..golden.common.scores import score_rows
from ..golden.log_softmax_int import LogSoftmaxIntConfig, log_softmax_int
from ..hdl.attn_v import AttnV
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "ragged_vectors"]


def _attn_case(cfg, name, code, zero, v):
    beats = [{"code": int(c), "zero": int(z), "v": int(x)} for c, z, x in zip(code.flatten(), zero.flatten(), v.flatten())]
    origin = [list(range(r * cfg.n, (r + 1) * cfg.n)) for r in range(len(code))]
    return Vectors(name, beats, attn_v(cfg, code, zero, v).tolist(), origin=origin)


def _ragged_case(cfg, name, terms):
    """A variable-length case: ``terms`` lists rows of ``(code, zero, v)`` triples, each row ended by
    ``last``; the block cuts a row longer than ``n`` after every ``n``-th term
    (:func:`qarith.golden.common.ragged.cut_rows`), one sum per row it sees."""
    beats = [{"code": c, "zero": z, "v": x, "last": int(j == len(row) - 1)}
             for row in terms for j, (c, z, x) in enumerate(row)]
    cut = cut_rows(terms, cfg.n)
    columns = [pad_rows([[term[k] for term in row] for row in cut], cfg.n) for k in range(3)]
    lengths = columns[0][1]
    expected = attn_v(cfg, *(column for column, _ in columns), lengths=lengths).tolist()
    ends = torch.cumsum(lengths, 0).tolist()
    origin = [list(range(end - length, end)) for end, length in zip(ends, lengths.tolist())]
    return Vectors(name, beats, expected, origin=origin)


def ragged_vectors(cfg, seed=1):
    """Variable-length rows: causal attention (query ``t`` of ``n`` sees keys ``0 .. t``: Log-Int-Softmax
    codes of the row's own ``t + 1`` Gaussian scores, random ``V``), a sliding band of
    ``max(1, n // 4)`` keys, random lengths 1..n with random codes, and rows of ``n + 1`` and
    ``2 n + 3`` terms (cut by the block)."""
    gen = torch.Generator().manual_seed(seed)
    n = cfg.n
    low, high = -(1 << (cfg.v_width - 1)), (1 << (cfg.v_width - 1)) - 1
    lis = LogSoftmaxIntConfig(n=n, bits=min(cfg.bits, 4))
    scores = score_rows(lis, "gauss2", n, n, seed=seed)[0]
    v = torch.randint(low, high + 1, (n,), generator=gen)

    def attention(lengths):
        keys = [slice(t + 1 - length, t + 1) for t, length in enumerate(lengths)]
        padded, lens = pad_rows([scores[t, span].tolist() for t, span in enumerate(keys)], n)
        code, zero = log_softmax_int(lis, padded, lens)
        return [list(zip(code[t, :length].tolist(), zero[t, :length].tolist(), v[span].tolist()))
                for t, (length, span) in enumerate(zip(lengths, keys))]

    def random_terms(length):
        return list(zip(torch.randint(0, cfg.levels, (length,), generator=gen).tolist(),
                        (torch.rand(length, generator=gen) < 0.2).to(torch.int64).tolist(),
                        torch.randint(low, high + 1, (length,), generator=gen).tolist()))

    window = max(1, n // 4)
    lengths = torch.randint(1, n + 1, (max(16, 512 // (n // 2 + 1)),), generator=gen).tolist()
    return [
        _ragged_case(cfg, "causal", attention([t + 1 for t in range(n)])),
        _ragged_case(cfg, "banded", attention([min(t + 1, window) for t in range(n)])),
        _ragged_case(cfg, "random_lengths", [random_terms(length) for length in lengths]),
        _ragged_case(cfg, "overlong", [random_terms(length) for length in (n + 1, 2 * n + 3, 1)]),
    ]


def vectors(cfg, seed=1):
    """Named cases for ``attn_v`` (variable-length configs: :func:`ragged_vectors`): codes from Log-Int-Softmax of Gaussian scores with random ``V``; random
    codes with a fifth zero; the extremes (every ``V`` at the minimum or maximum with code 0, every code
    the largest, every term zero)."""
    if cfg.variable_length:
        return ragged_vectors(cfg, seed)
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
