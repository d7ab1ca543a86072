"""Test bench of the ``lut_gemv`` block: matrix-vector products through the beat protocol of
:mod:`qarith.hdl.lut_gemv`, expected values from :func:`qarith.golden.lut_gemv.lut_gemv`."""

import cocotb
import torch

from ..golden.lut_gemv import lut_gemv, pack_bits, rtn_to_bcq, with_offset
from ..hdl.lut_gemv import ACTIVATIONS, WEIGHTS, LutGemv
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "gemv_beats", "gemv_vectors", "random_gemv", "exhaustive_bytes", "rtn_gemv"]


def _beat(cfg, kind, group, x=None, byte=None, alpha=None, scale_last=0, row_last=0):
    return {"kind": kind, "group": group, "x": x or [0] * cfg.mu, "byte": byte or [0] * cfg.lanes,
            "alpha": alpha or [0] * cfg.lanes, "scale_last": scale_last, "row_last": row_last}


def gemv_beats(cfg, x, byte, alpha):
    """Input beats of one product: a table per ``mu`` inputs (``x`` padded with zeros), then per chunk
    of ``lanes`` rows (the last padded with zero rows) the weight beats, scale group by scale group,
    plane by plane, table group by table group. Returns ``(beats, row_last_indices)``."""
    x = torch.as_tensor(x, dtype=torch.int64)
    byte = torch.as_tensor(byte, dtype=torch.int64)
    alpha = torch.as_tensor(alpha, dtype=torch.int64)
    groups = byte.shape[2]
    padded = torch.nn.functional.pad(x, (0, groups * cfg.mu - len(x)))
    beats = [_beat(cfg, ACTIVATIONS, g, x=padded[g * cfg.mu:(g + 1) * cfg.mu].tolist()) for g in range(groups)]
    pad = -byte.shape[0] % cfg.lanes
    byte = torch.nn.functional.pad(byte, (0, 0, 0, 0, 0, pad))
    alpha = torch.nn.functional.pad(alpha, (0, 0, 0, 0, 0, pad))
    per_scale = cfg.group_size // cfg.mu
    planes, scales = byte.shape[1], alpha.shape[2]
    ends = []
    for first in range(0, byte.shape[0], cfg.lanes):
        rows = slice(first, first + cfg.lanes)
        for s in range(scales):
            table_groups = range(s * per_scale, min((s + 1) * per_scale, groups))
            for i in range(planes):
                for g in table_groups:
                    scale_last = g == table_groups[-1]
                    row_last = scale_last and i == planes - 1 and s == scales - 1
                    beats.append(_beat(cfg, WEIGHTS, g, byte=byte[rows, i, g].tolist(),
                                       alpha=alpha[rows, i, s].tolist(), scale_last=int(scale_last),
                                       row_last=int(row_last)))
        ends.append(len(beats) - 1)
    return beats, ends


def gemv_vectors(cfg, name, products):
    """One case of back-to-back products ``(x, byte, alpha)``; one output beat per chunk of ``lanes``
    rows (padding rows give 0)."""
    beats, expected, origin = [], [], []
    for x, byte, alpha in products:
        start = len(beats)
        new_beats, ends = gemv_beats(cfg, x, byte, alpha)
        y = lut_gemv(cfg, x, byte, alpha)
        y = torch.nn.functional.pad(y, (0, -len(y) % cfg.lanes)).reshape(-1, cfg.lanes)
        beats += new_beats
        expected += y.tolist()
        origin += [list(range(start, start + end + 1)) for end in ends]
    # The default limit allows 8 cycles per beat; each table build holds the input 2**(mu-1) cycles more.
    builds = sum(beat["kind"] == ACTIVATIONS for beat in beats)
    timeout = 200 + 8 * (len(beats) + len(expected)) + builds * cfg.half
    return Vectors(name, beats, expected, origin=origin, timeout=timeout)


def random_gemv(cfg, gen, rows, k, planes=None):
    """Random input codes, weight bytes and alpha codes over their whole ranges."""
    planes = cfg.planes if planes is None else planes
    groups = -(-k // cfg.mu)
    scales = -(-groups // (cfg.group_size // cfg.mu))
    x = torch.randint(cfg.x_range[0], cfg.x_range[1] + 1, (k,), generator=gen)
    byte = torch.randint(0, 1 << cfg.mu, (rows, planes, groups), generator=gen)
    alpha = torch.randint(cfg.alpha_range[0], cfg.alpha_range[1] + 1, (rows, planes, scales), generator=gen)
    return x, byte, alpha


def exhaustive_bytes(cfg, x):
    """Every byte pattern against the table of ``x`` (``mu`` codes): row ``p`` reads byte ``p`` with
    alpha 1, one plane (``y[p] = T[p]``; the hardware does not count planes)."""
    byte = torch.arange(1 << cfg.mu).view(-1, 1, 1)
    alpha = torch.ones((1 << cfg.mu, 1, 1), dtype=torch.int64)
    return torch.as_tensor(x, dtype=torch.int64), byte, alpha


def rtn_gemv(cfg, gen, rows, k):
    """Integer RTN weights ``w = s (q - zp)`` (integer ``s``, ``bits``-bit ``q``), converted exactly to
    BCQ with an offset at alpha exponent -1 (``alpha_i = s 2**i``, ``z = s (2**bits - 1 - 2 zp)`` in
    codes); requires ``cfg.offset``. Returns the product's operands and the dense integer weights."""
    scales = -(-k // cfg.group_size)
    top = (1 << cfg.bits) - 1
    limit = cfg.alpha_range[1] // top   # |z| <= s (2**bits - 1) in codes
    s = torch.randint(1, limit + 1, (rows, scales), generator=gen).to(torch.float64)
    zp = torch.randint(0, top + 1, (rows, scales), generator=gen).to(torch.float64)
    q = torch.randint(0, top + 1, (rows, k), generator=gen)
    alpha, b, z = rtn_to_bcq(s, zp, torch.nn.functional.pad(q, (0, -k % cfg.group_size)), cfg.bits, cfg.group_size)
    byte = pack_bits(cfg, b[:, :k].permute(0, 2, 1))
    byte, alpha = with_offset(cfg, byte, (2 * alpha).to(torch.int64), (2 * z).to(torch.int64))
    x = torch.randint(cfg.x_range[0], cfg.x_range[1] + 1, (k,), generator=gen)
    weights = 2 * (s.repeat_interleave(cfg.group_size, 1)[:, :k] * (q - zp.repeat_interleave(cfg.group_size, 1)[:, :k]))
    return (x, byte, alpha), weights.to(torch.int64)


def vectors(cfg, seed=1):
    """Named cases: random products of several shapes back to back (rows not a multiple of the lanes,
    inputs not a multiple of ``mu`` or of the scale group, one-row and one-table products), every byte
    pattern against extreme and random tables, the largest sums of either sign (all inputs at the
    minimum code, the most negative alpha, ``max_k``), and exactly converted RTN weights."""
    gen = torch.Generator().manual_seed(seed)
    k, lanes, mu = cfg.max_k, cfg.lanes, cfg.mu
    shapes = [(2 * lanes + 1, k - 3 if k > 3 else k), (1, mu), (lanes + 1, min(k, cfg.group_size + mu)),
              (3, min(k, 2 * mu + 1))]
    cases = [gemv_vectors(cfg, "random", [random_gemv(cfg, gen, rows, min(depth, k)) for rows, depth in shapes])]

    low, high = cfg.x_range
    tables = [torch.full((mu,), low), torch.tensor([low, high] * (mu // 2) + [low] * (mu % 2)),
              torch.randint(low, high + 1, (mu,), generator=gen)]
    cases.append(gemv_vectors(cfg, "every_byte", [exhaustive_bytes(cfg, x) for x in tables]))

    groups = cfg.groups
    scales = -(-groups // (cfg.group_size // mu))
    extreme = []
    # All inputs at the minimum code: bytes 0x00 read T = +mu 2**(x_width-1), 0xFF its negation; with the
    # most negative alpha on every plane the sums reach -/+ the accumulator's bound at max_k.
    for byte_value in (0, (1 << mu) - 1):
        byte = torch.full((lanes, cfg.planes, groups), byte_value)
        alpha = torch.full((lanes, cfg.planes, scales), cfg.alpha_range[0])
        extreme.append((torch.full((k,), low), byte, alpha))
    cases.append(gemv_vectors(cfg, "extremes", extreme))

    if cfg.offset and cfg.alpha_range[1] >= (1 << cfg.bits) - 1:
        cases.append(gemv_vectors(cfg, "rtn", [rtn_gemv(cfg, gen, lanes + 1, k)[0]]))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, LutGemv, vectors, mode)
