"""Test bench of the ``int8_outlier_linear`` block: tiles of activation codes with planted outliers and
the LLM.int8() edge cases, against :func:`qarith.golden.int8_outlier_linear.int8_outlier_linear`."""

import cocotb
import torch

from ..golden.common.codes import code_range
from ..golden.int8_outlier_linear import int8_outlier_linear
from ..hdl.int8_outlier_linear import Int8OutlierLinear
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "tile_vectors", "activation_tile", "back_to_back", "EDGE_CASES"]

#: The named edge cases of :func:`vectors`, one tile sequence each.
EDGE_CASES = ("threshold_exact", "all_zero_row", "all_outlier_row", "ties", "no_outliers", "extreme_codes",
              "short_tiles")


def tile_vectors(cfg, name, tiles):
    """Vectors for ``tiles``, a list of ``(x (rows, K), w (cols, K))`` code pairs (K may differ per
    tile), played back to back."""
    beats, expected, origin = [], [], []
    for x, w in tiles:
        x = torch.as_tensor(x, dtype=torch.int64)
        w = torch.as_tensor(w, dtype=torch.int64)
        acc = int8_outlier_linear(cfg, x.unsqueeze(0), w)[0]
        first, depth = len(beats), x.shape[1]
        for k in range(depth):
            beats.append({"x": x[:, k].tolist(), "w": w[:, k].tolist(), "last": int(k == depth - 1)})
        for r in range(cfg.rows):
            expected.append({"acc": acc[r].tolist(), "last": int(r == cfg.rows - 1)})
            origin.append(list(range(first, len(beats))))
    return Vectors(name, beats, expected, origin=origin)


def back_to_back(name, cases):
    """One case playing ``cases`` one after the other (so one simulation runs them all)."""
    beats, expected, origin = [], [], []
    for case in cases:
        offset = len(beats)
        beats += case.beats
        expected += case.expected
        origin += [[offset + n for n in beat_origin] for beat_origin in case.origin]
    return Vectors(name, beats, expected, origin=origin)


def activation_tile(cfg, gen, depth, outlier_columns=(), outlier_rows=None, spread=1.0):
    """Activation codes ``(rows, depth)``: N(0, spread) in real units, rounded to the fixed-point grid
    and clamped to the code range; ``outlier_columns`` get magnitudes between 1.5 and 4 thresholds in
    ``outlier_rows`` (every row if ``None``), with random signs."""
    low, high = code_range(cfg.in_width, True)
    unit = 1 << cfg.frac_bits
    x = (torch.randn(cfg.rows, depth, generator=gen) * spread * unit).round()
    tau = cfg.threshold_code
    for column in outlier_columns:
        chosen = range(cfg.rows) if outlier_rows is None else outlier_rows
        for row in chosen:
            sign = 1 if torch.rand(1, generator=gen) < 0.5 else -1
            x[row, column] = sign * tau * (1.5 + 2.5 * float(torch.rand(1, generator=gen)))
    return x.round().clamp(low, high).to(torch.int64)


def _weights(cfg, gen, depth):
    return torch.randint(-127, 128, (cfg.cols, depth), generator=gen)


def _edge_tiles(cfg, gen, case):
    """The tiles of one named edge case, clamped to the code range (a narrow config cannot reach every
    planted value; the registered configs reach them all)."""
    low, high = code_range(cfg.in_width, True)
    return [(x.clamp(low, high), w) for x, w in _edge_case(cfg, gen, case)]


def _edge_case(cfg, gen, case):
    # Every case starts with a tile of max_k steps, whose latency is the declared one (the cocotb bench
    # checks each case's first output against it).
    depth = cfg.max_k
    tau = cfg.threshold_code
    low, high = code_range(cfg.in_width, True)
    w = _weights(cfg, gen, depth)
    x = activation_tile(cfg, gen, depth, spread=0.5).clamp(-(tau - 1), tau - 1)
    if case == "threshold_exact":
        # |x| = t is an outlier (column 1 from row 0, column 3 negative from the last row);
        # |x| = t - 1 is the largest in-range value and sets the row's scale.
        x[0, 1 % depth], x[-1, 3 % depth] = tau, -tau
        x[:, 0] = torch.tensor([tau - 1, -(tau - 1)] * cfg.rows)[: cfg.rows]
        return [(x, w)]
    if case == "all_zero_row":
        x[0] = 0
        x[-1, depth - 1] = tau        # another row's outlier makes a column of zeros in row 0 an outlier
        return [(x, w)]
    if case == "all_outlier_row":
        x[0] = torch.where(torch.arange(depth) % 2 == 0, tau, -min(2 * tau, -low))
        return [(x, w)]
    if case == "ties":
        # Scale 254 (or the largest even scale below the threshold): 127 |x| / c = |x| / 2 for odd |x|
        # lands exactly half-way; both signs, rounding to the even neighbour.
        scale = min(254, (tau - 1) // 2 * 2)
        values = torch.arange(depth) * 2 + 1
        x = torch.stack([values * (1 - 2 * (r % 2)) for r in range(cfg.rows)]).clamp(-(scale - 1), scale - 1)
        x[:, 0] = scale
        return [(x, w), (x.flip(1), w.flip(1))]
    if case == "no_outliers":
        return [(activation_tile(cfg, gen, depth).clamp(-(tau - 1), tau - 1), w)]
    if case == "extreme_codes":
        # The most negative code (an outlier wherever the threshold allows), the largest in-range code
        # as every row's scale, weights at -128 and 127.
        w = torch.where(torch.arange(depth) % 2 == 0, -128, 127).repeat(cfg.cols, 1)
        big = min(tau - 1, high)
        x = torch.full((cfg.rows, depth), big)
        x[:, 1::2] = -big
        x[0, 0] = low
        return [(x, w)]
    # short_tiles: K = 1 and K = 2 tiles (fewer steps than rows) back to back, with outliers.
    tiles = [(activation_tile(cfg, gen, depth, (0,)), w)]
    for depth in (1, 2, 1, min(3, cfg.max_k)):
        columns = (0,) if depth > 1 else ()
        tiles.append((activation_tile(cfg, gen, depth, columns, outlier_rows=[0]), _weights(cfg, gen, depth)))
    return tiles


def vectors(cfg, seed=1):
    """Random tiles with outliers planted in a few columns (in one row, and in every row), tiles of every
    depth up to ``max_k``, and the named edge cases (:data:`EDGE_CASES`)."""
    gen = torch.Generator().manual_seed(seed)
    planted = []
    for n in range(6):
        depth = cfg.max_k if n % 2 == 0 else int(torch.randint(1, cfg.max_k + 1, (1,), generator=gen))
        columns = torch.randperm(depth, generator=gen)[: min(depth, n % 3)].tolist()
        rows = None if n % 2 else [int(torch.randint(0, cfg.rows, (1,), generator=gen))]
        planted.append((activation_tile(cfg, gen, depth, columns, rows, spread=1.5), _weights(cfg, gen, depth)))
    cases = [tile_vectors(cfg, "planted_outliers", planted)]
    cases += [tile_vectors(cfg, case, _edge_tiles(cfg, gen, case)) for case in EDGE_CASES]
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, Int8OutlierLinear, vectors, mode)
