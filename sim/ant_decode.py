"""Test bench of the ``ant_decode`` block: every code of every type in every lane, and random beats,
against :func:`qarith.golden.ant_decode.ant_decode`."""

import cocotb
import torch

from ..golden.ant_decode import ant_decode
from ..golden.common.ant import BITS, CODES, KINDS
from ..hdl.ant_decode import AntDecode
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "type_vectors", "TYPES"]

#: Every type as the hardware's (kind index, signed) pair.
TYPES = tuple((kind, signed) for kind in range(len(KINDS)) for signed in (0, 1))


def type_vectors(cfg, name, kind, signed, codes):
    """Beats of ``codes`` (T, lanes), beat ``t`` of type ``(kind[t], signed[t])``, and their fields."""
    sign, mantissa, shift = ant_decode(cfg, kind, signed, codes)
    beats = [{"codes": row, "type": {"kind": k, "signed": s}}
             for row, k, s in zip(codes.tolist(), kind.tolist(), signed.tolist())]
    expected = [[{"mantissa": m, "shift": e, "sign": s} for s, m, e in zip(*lanes)]
                for lanes in zip(sign.tolist(), mantissa.tolist(), shift.tolist())]
    return Vectors(name, beats, expected, origin=[[n] for n in range(len(beats))])


def vectors(cfg, seed=1):
    """``exhaustive``: for every type and code ``c`` a beat whose lane ``l`` holds ``(c + l) mod 16``, so
    every lane sees every code of every type (96 beats); ``random``: 64 beats of random types and codes,
    the type changing from beat to beat."""
    gen = torch.Generator().manual_seed(seed)
    lanes = torch.arange(cfg.lanes)
    kind, signed, codes = [], [], []
    for k, s in TYPES:
        for code in CODES:
            kind.append(k)
            signed.append(s)
            codes.append((code + lanes) % (1 << BITS))
    exhaustive = type_vectors(cfg, "exhaustive", torch.tensor(kind), torch.tensor(signed), torch.stack(codes))
    pick = torch.randint(0, len(TYPES), (64,), generator=gen)
    types = torch.tensor(TYPES)[pick]
    random_codes = torch.randint(0, 1 << BITS, (64, cfg.lanes), generator=gen)
    return [exhaustive, type_vectors(cfg, "random", types[:, 0], types[:, 1], random_codes)]


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, AntDecode, vectors, mode)
