"""Test bench of the ``ant_mac`` block: tiles of random activations and ANT weight codes from the
golden model (every kind, the kind changing between tiles), back-to-back tiles, short tiles and
full-depth tiles of extreme values; cocotb entry point."""

import cocotb
import torch

from ..golden.ant_mac import ant_mac_tiles
from ..golden.common.ant import BITS, KINDS, code_values
from ..golden.common.codes import code_range
from ..hdl.ant_mac import AntMac
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "tile_vectors", "random_tiles"]


def tile_vectors(cfg, name, tiles):
    """Vectors for a list of ``(A (rows, K), kind (K,), B codes (K, cols))`` tiles."""
    beats, expected, origin = [], [], []
    for a, kind, b in tiles:
        first = len(beats)
        depth = a.shape[1]
        for k in range(depth):
            beats.append({"a": a[:, k].tolist(), "b": b[k, :].tolist(), "kind": int(kind[k]),
                          "last": int(k == depth - 1)})
        result = ant_mac_tiles(cfg, a.unsqueeze(0), kind.unsqueeze(0), b.unsqueeze(0))[0]
        for r in range(cfg.rows):
            expected.append({"acc": result[r].tolist(), "last": int(r == cfg.rows - 1)})
            origin.append(list(range(first, len(beats))))
    return Vectors(name, beats, expected, origin=origin)


def random_tiles(cfg, gen, count, depths, kind=None):
    """``count`` tiles of random activations and codes; tile ``n`` has depth ``depths[n % len]`` and
    kind ``kind`` (an index), or kind ``n mod 3`` (one kind per tile, as one type per tensor)."""
    low, high = code_range(cfg.a_width, cfg.a_signed)
    tiles = []
    for n in range(count):
        depth = depths[n % len(depths)]
        tile_kind = n % len(KINDS) if kind is None else kind
        tiles.append((torch.randint(low, high + 1, (cfg.rows, depth), generator=gen),
                      torch.full((depth,), tile_kind),
                      torch.randint(0, 1 << BITS, (depth, cfg.cols), generator=gen)))
    return tiles


def _extreme_code(cfg, kind, largest):
    """The code of the largest (or smallest) value of ``kind`` for the config's signedness."""
    values = code_values(KINDS[kind], cfg.b_signed)
    return int(values.argmax() if largest else values.argmin())


def _constant_tile(cfg, depth, a_value, kind, code):
    return (torch.full((cfg.rows, depth), a_value), torch.full((depth,), kind), torch.full((depth, cfg.cols), code))


def vectors(cfg, seed=1):
    """Named cases: random depths over every kind (the kind changing within the last two tiles),
    back-to-back tiles of K = rows, tiles of K = 1, and tiles of extreme activations times extreme weights of every kind
    (short), and of the extreme products of all kinds for max_k steps (the accumulator's overflow
    edges)."""
    gen = torch.Generator().manual_seed(seed)
    low, high = code_range(cfg.a_width, cfg.a_signed)
    small = [d for d in (1, 2, 3, cfg.rows, cfg.rows + 1, 2 * cfg.rows + 3, 17) if d <= cfg.max_k]
    mixed = []
    for depth in (min(7, cfg.max_k), min(12, cfg.max_k)):
        a, _, b = random_tiles(cfg, gen, 1, [depth])[0]
        mixed.append((a, torch.randint(0, len(KINDS), (depth,), generator=gen), b))
    cases = [
        # Then two tiles whose kind changes from step to step (the array does not care).
        tile_vectors(cfg, "random_depths", random_tiles(cfg, gen, 12, small) + mixed),
        tile_vectors(cfg, "k_equals_rows", random_tiles(cfg, gen, 6, [min(cfg.rows, cfg.max_k)])),
        tile_vectors(cfg, "k_one", random_tiles(cfg, gen, 6, [1])),
    ]
    # Every kind's smallest and largest product, in short tiles; the smallest and largest product of
    # all kinds held for max_k steps (the accumulator's overflow edges).
    corners = []
    for kind in range(len(KINDS)):
        values = code_values(KINDS[kind], cfg.b_signed)
        for a_value in (low, high):
            for largest in (False, True):
                code = _extreme_code(cfg, kind, largest)
                corners.append((a_value * int(values[code]), a_value, kind, code))
    extremes = []
    for _, a_value, kind, code in corners:
        extremes.append(_constant_tile(cfg, min(cfg.max_k, 2 * cfg.rows + 1), a_value, kind, code))
    for _, a_value, kind, code in (min(corners), max(corners)):
        extremes.append(_constant_tile(cfg, cfg.max_k, a_value, kind, code))
    cases.append(tile_vectors(cfg, "extremes_max_k", extremes))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, AntMac, vectors, mode)
