"""Golden model of the ``lns_to_int`` block: LNS words to signed fixed-point integers.

Source: Zhao et al., "LNS-Madam" (IEEE Transactions on Computers, 2022): an LNS value
``2**(E / gamma)`` splits into the integer part of the exponent (a shift) and its remainder ``r`` (one of
``gamma`` constants ``2**(r / gamma)``), or Mitchell's approximation ``2**f ~ 1 + f`` (J. N. Mitchell,
"Computer Multiplication and Division Using Binary Logarithms", IRE Transactions on Electronic Computers,
1962). The word format is :mod:`qarith.golden.common.lns`.
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import OutputCodes, require_integers
from .common.lns import POW2_METHODS, LnsFormat, check_lanes, fields, pow2_table

__all__ = ["LnsToIntConfig", "lns_to_int"]


@dataclass(frozen=True)
class LnsToIntConfig(LnsFormat, OutputCodes):
    """Configuration of the ``lns_to_int`` block: LNS word -> signed fixed-point integer.

    Parameters
    ----------
    width, frac_bits : int
        The LNS format (:class:`LnsFormat`).
    lanes : int
        Words per beat (1..64).
    out_width : int
        Output width, signed (2..32).
    out_frac_bits : int
        Output scale ``2**-out_frac_bits`` (-16..32).
    table_frac_bits : int
        Fraction bits of the ``2**(r / gamma)`` constants (1..24; at least ``frac_bits`` for Mitchell).
    method : str
        ``"table"``: the rounded constants of :func:`pow2_table`, one ``gamma``-entry ROM.
        ``"mitchell"``: ``2**f ~ 1 + f``, no table (the constant is the exponent's fraction bits).
    """
    out_signed = True  # a class constant for OutputCodes, not a field: outputs are signed
    lanes: int = 1
    out_width: int = 18
    out_frac_bits: int = 8
    table_frac_bits: int = 10
    method: str = "table"

    def __post_init__(self):
        super().__post_init__()
        check_lanes(self)
        require_integers(self, ("out_width", "out_frac_bits", "table_frac_bits"))
        if not isinstance(self.method, str):
            raise TypeError(f"method must be a string, not {self.method!r}")
        if self.method not in POW2_METHODS:
            raise ValueError(f"Method must be one of {', '.join(POW2_METHODS)}, not {self.method!r}")
        if not 2 <= self.out_width <= 32:
            raise ValueError(f"Output width must be between 2 and 32, not {self.out_width}")
        if not -16 <= self.out_frac_bits <= 32:
            raise ValueError(f"Output fraction bits must be between -16 and 32, not {self.out_frac_bits}")
        low = self.frac_bits if self.method == "mitchell" else 1
        if not low <= self.table_frac_bits <= 24:
            raise ValueError(f"Table fraction bits must be between {low} and 24 for method {self.method!r}, "
                             f"not {self.table_frac_bits}")

    @property
    def table(self):
        """The ``gamma`` constants ``2**(r / gamma)`` with ``table_frac_bits`` fraction bits."""
        return pow2_table(self, self.table_frac_bits, self.method)

    @property
    def table_bits(self):
        """Width of the constants: ``table_frac_bits + 1``, or one more where ``T[gamma - 1]`` rounds up
        to ``2**(table_frac_bits + 1)`` (few fraction bits against ``gamma``)."""
        return int(self.table.max()).bit_length()

    @property
    def table_bytes(self):
        """ROM bytes (none for Mitchell's approximation)."""
        if self.method == "mitchell":
            return 0
        return self.gamma * math.ceil(self.table_bits / 8)


def lns_to_int(cfg, words):
    """LNS words -> signed fixed-point codes with ``out_frac_bits`` fraction bits.

    With ``E = q * gamma + r`` (``q = floor(E / gamma)``, ``0 <= r < gamma``) and ``T[r]`` from
    :attr:`LnsToIntConfig.table` (``F = table_frac_bits``)::

        |y| = round(T[r] * 2**(q + out_frac_bits - F))        round half up
        |y| = min(|y|, out_max);   y = -|y| for sign 1;   y = 0 for the zero word

    Half up on the magnitude is half away from zero on ``y``; a negative result can reach ``-out_max``,
    never ``out_min``, so the output is symmetric.
    """
    sign, exp, zero = fields(cfg, words)
    q = torch.div(exp, cfg.gamma, rounding_mode="floor")
    r = exp - q * cfg.gamma
    t = cfg.table[r]
    shift = q + cfg.out_frac_bits - cfg.table_frac_bits
    # Only to stay inside int64: every T[r] is below 2**25, so a right shift by 62 already rounds it to
    # zero, and a left shift by out_width (T[r] >= 1) already saturates.
    shift = shift.clamp(-62, cfg.out_width)
    up = t << shift.clamp(min=0)
    down = (t + ((1 << (-shift).clamp(min=1)) >> 1)) >> (-shift).clamp(min=0)
    magnitude = torch.where(shift >= 0, up, down).clamp(max=cfg.out_max)
    value = torch.where(sign == 1, -magnitude, magnitude)
    return torch.where(zero, torch.zeros_like(value), value)
