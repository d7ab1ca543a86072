"""Test cases shared by the benches of the elementwise blocks (``lut_unary``, ``pwl``, ``shiftgelu``)."""

import torch

from .bench import Vectors

__all__ = ["unary_case", "unary_cases"]


def unary_case(cfg, name, codes, model):
    """One case: ``codes`` in, ``model(cfg, codes)`` expected, each output from its own input."""
    return Vectors(name, codes.tolist(), model(cfg, codes).tolist(), origin=[[n] for n in range(len(codes))],
                   exhaustive=name == "exhaustive")


def unary_cases(cfg, codes, model, seed=1):
    """Every input code in ascending order (exhaustive), the same shuffled, and the range ends with the
    codes next to them and zero (or the lowest code when there is no zero)."""
    codes = codes.sort().values
    gen = torch.Generator().manual_seed(seed)
    low, high = int(codes[0]), int(codes[-1])
    middle = 0 if low <= 0 <= high else low
    return [
        unary_case(cfg, "exhaustive", codes, model),
        unary_case(cfg, "shuffled", codes[torch.randperm(len(codes), generator=gen)], model),
        unary_case(cfg, "range_ends", torch.tensor([low, high, low, low + 1, high - 1, high, middle]), model),
    ]
