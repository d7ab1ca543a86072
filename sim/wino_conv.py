"""Test bench of the ``wino_conv`` block: random and extreme tiles, short tiles and whole zero-padded
feature maps streamed tile by tile, channel by channel."""

import cocotb
import torch

from ..golden.common.codes import code_range
from ..golden.common.winograd import input_transform, matrices
from ..golden.wino_conv import feature_map_tiles, wino_conv, winograd_layer
from ..hdl.wino_conv import WinoConv
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "conv_case", "extreme_output_tiles"]


def conv_case(cfg, name, tiles, channels=None):
    """Vectors for input tiles ``(T, C_in, n, n)``: tile ``t`` is ``channels[t]`` beats (default
    ``in_channels``; the rest of its channels are not sent) with ``last`` on the final one, and one
    output beat, ``(C_out, m, m)``."""
    tiles = torch.as_tensor(tiles, dtype=torch.int64).clone()
    channels = channels or [cfg.in_channels] * len(tiles)
    beats, origin = [], []
    for t, count in enumerate(channels):
        tiles[t, count:] = 0                                             # unsent channels count as zero
        first = len(beats)
        beats += [{"tile": tiles[t, c].tolist(), "last": int(c == count - 1)} for c in range(count)]
        origin.append(list(range(first, len(beats))))
    return Vectors(name, beats, wino_conv(cfg, tiles).tolist(), origin=origin)


def extreme_output_tiles(cfg):
    """Tiles that drive each output pixel of each lane to its largest and to its smallest value (up to
    the roundings): the extreme input codes with the signs of that pixel's effective weights, found by
    probing the layer's linear part (``A^T [2**-e (U_q (.) B^T d B)] A``) with one-hot tiles."""
    layer = winograd_layer(cfg)
    low, high = code_range(cfg.in_width, True)
    n, c_in = cfg.n, cfg.in_channels
    probes = torch.eye(c_in * n * n, dtype=torch.int64).reshape(-1, c_in, n, n)
    v = input_transform(cfg.tile, probes).to(torch.float64)                       # (P, C_in, n, n)
    taps = torch.einsum("ocij,pcij->poij", layer.weights.to(torch.float64), v)
    taps = taps * torch.exp2(-layer.shifts.to(torch.float64))
    at = torch.tensor(matrices(cfg.tile).AT, dtype=torch.float64)
    effective = (at @ taps @ at.T).reshape(c_in, n, n, -1)                       # per (o, p, q) pixel
    tiles = []
    for pixel in range(effective.shape[-1]):
        positive = effective[..., pixel] > 0
        tiles += [torch.where(positive, high, low), torch.where(positive, low, high)]
    return torch.stack(tiles)


def vectors(cfg, seed=1):
    """Named cases: uniformly random tiles; extreme tiles (all max, all min, checkerboards, alternating
    rows, channels alternating between max and min); the tiles that drive every output pixel to its
    extremes (:func:`extreme_output_tiles`); tiles cut short by an early ``last``; and the tiles
    of zero-padded 8x8 and 16x16 feature maps of Gaussian codes (standard deviation 32, like calibrated
    activations)."""
    gen = torch.Generator().manual_seed(seed)
    low, high = code_range(cfg.in_width, True)
    n, c_in = cfg.n, cfg.in_channels
    cases = [conv_case(cfg, "random_tiles", torch.randint(low, high + 1, (12, c_in, n, n), generator=gen))]

    checker = (torch.arange(n).view(-1, 1) + torch.arange(n)) % 2 == 0
    rows = (torch.arange(n).view(-1, 1) % 2 == 0).expand(n, n)
    patterns = [torch.full((n, n), high), torch.full((n, n), low), torch.where(checker, high, low),
                torch.where(checker, low, high), torch.where(rows, high, low)]
    extremes = [pattern.expand(c_in, n, n) for pattern in patterns]
    alternating = torch.where(torch.arange(c_in).view(-1, 1, 1) % 2 == 0, high, low).expand(c_in, n, n)
    cases.append(conv_case(cfg, "extreme_tiles", torch.stack(extremes + [alternating, -alternating.clamp(min=-high)])))

    cases.append(conv_case(cfg, "extreme_outputs", extreme_output_tiles(cfg)))

    short = torch.randint(low, high + 1, (6, c_in, n, n), generator=gen)
    counts = torch.randint(1, c_in + 1, (6,), generator=gen).tolist()
    cases.append(conv_case(cfg, "short_tiles", short, counts))

    scale = 2 ** (cfg.in_width - 3)
    for size in (8, 16):
        feature_map = (torch.randn(c_in, size, size, generator=gen) * scale).round().clamp(low, high)
        cases.append(conv_case(cfg, f"feature_map_{size}x{size}", feature_map_tiles(cfg, feature_map)))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, WinoConv, vectors, mode)
