"""The logarithmic number system (LNS) word shared by the ``lns_*`` blocks, and the float conversions.

Source: LNS-Madam (Zhao et al., 2022), ``ALGORITHMS.md`` section 7: a value is ``sign * 2**(e / gamma)``
with ``e`` a signed fixed-point exponent of ``b`` fractional bits and ``gamma = 2**b``.

The word (``width`` bits, most significant first)::

    [ sign | exponent code E: width - 1 bits, two's complement, b fractional bits ]

* value ``= (-1)**sign * 2**(E / gamma)`` (times a per-tensor ``scale`` kept outside the word, as
  LNS-Madam's per-tensor scaling; the blocks never see it);
* the most negative exponent code ``E = -2**(width - 2)`` is reserved for **zero** (no separate flag bit);
  a zero word with the sign bit set is read as zero too, and every block writes zero as the all-zero
  sign with the reserved code (``zero_word``), so zero has one canonical encoding on output;
* so a nonzero exponent lies in ``[emin, emax] = [-2**(width-2) + 1, 2**(width-2) - 1]``, the magnitudes
  in ``[2**(emin / gamma), 2**(emax / gamma)]`` (8-bit words, b = 3: 0.0043 .. 235).

Conversions and the rules every block states the same way:

* **encode** (float -> LNS): ``E = floor(gamma * log2(|x| / scale) + 1/2)`` (round to nearest in the
  log domain; exact ties need irrational inputs, so the tie rule never matters for floats);
  ``E > emax`` **saturates** to ``emax`` (and infinities with it), ``E < emin`` **flushes to zero**
  (as a float's flush-to-zero), ``x == 0`` is zero. NaN is rejected.
* **decode** (LNS -> float): ``(-1)**sign * 2**(E / gamma) * scale``, zero as ``0.0``.
* Results of the arithmetic blocks follow the same two rules: an exponent above ``emax`` saturates,
  one below ``emin`` flushes to zero.

Words travel as their bit patterns (unsigned integers ``0 .. 2**width - 1``).

This module also holds the two smallest blocks' configs and models: ``lns_mul`` (:class:`LnsMulConfig`,
:func:`lns_mul`) and ``lns_to_int`` (:class:`LnsToIntConfig`, :func:`lns_to_int`).
"""

import math
from dataclasses import dataclass

import torch

from .codes import OutputCodes, require_integers

__all__ = ["LnsFormat", "POW2_METHODS", "fields", "join", "encode", "decode", "lns_mul", "lns_words",
           "pow2_table", "LnsMulConfig", "LnsToIntConfig", "lns_to_int"]

#: How ``2**(r / gamma)`` is made linear: a rounded table, or Mitchell's ``2**f ~ 1 + f``.
POW2_METHODS = ("table", "mitchell")


@dataclass(frozen=True)
class LnsFormat:
    """The LNS word: ``width`` bits in total, ``frac_bits`` (b) fractional exponent bits.

    Parameters
    ----------
    width : int
        Word width, sign bit included (3..16).
    frac_bits : int
        Fractional bits ``b`` of the exponent (0..width - 3), so ``gamma = 2**b``: the exponent keeps at
        least one integer bit besides its sign.
    """
    width: int = 8
    frac_bits: int = 3

    def __post_init__(self):
        require_integers(self, ("width", "frac_bits"))
        if not 3 <= self.width <= 16:
            raise ValueError(f"LNS word width must be between 3 and 16, not {self.width}")
        if not 0 <= self.frac_bits <= self.width - 3:
            raise ValueError(f"Fraction bits must be between 0 and {self.width - 3} for {self.width}-bit "
                             f"LNS words (one integer exponent bit besides the sign), not {self.frac_bits}")

    @property
    def gamma(self):
        """Exponent steps per octave, ``2**frac_bits``."""
        return 1 << self.frac_bits

    @property
    def exp_width(self):
        """Width of the exponent field (two's complement)."""
        return self.width - 1

    @property
    def zero_exp(self):
        """The reserved exponent code that means zero."""
        return -(1 << (self.width - 2))

    @property
    def emin(self):
        return self.zero_exp + 1

    @property
    def emax(self):
        return (1 << (self.width - 2)) - 1

    @property
    def zero_word(self):
        """The canonical zero: sign 0, reserved exponent code."""
        return self.zero_exp & ((1 << self.exp_width) - 1)

    @property
    def words(self):
        """Number of distinct words, ``2**width``."""
        return 1 << self.width


def lns_words(fmt):
    """Every word of the format, ascending bit patterns."""
    return torch.arange(fmt.words, dtype=torch.int64)


def fields(fmt, words):
    """``(sign, exponent, zero)`` of LNS bit patterns: sign in {0, 1}, the signed exponent code, and a
    bool tensor that is true for zero words (either sign)."""
    words = torch.as_tensor(words, dtype=torch.int64)
    if bool(((words < 0) | (words >= fmt.words)).any()):
        raise ValueError(f"LNS words must be bit patterns between 0 and {fmt.words - 1}")
    sign = words >> fmt.exp_width
    exp = words & ((1 << fmt.exp_width) - 1)
    exp = torch.where(exp >= (1 << (fmt.exp_width - 1)), exp - (1 << fmt.exp_width), exp)
    return sign, exp, exp == fmt.zero_exp


def join(fmt, sign, exp, zero=None):
    """Bit patterns from fields; ``exp`` outside ``[emin, emax]`` saturates above and flushes to zero
    below; where ``zero`` is true (or ``exp`` underflows) the word is the canonical zero."""
    sign = torch.as_tensor(sign, dtype=torch.int64)
    exp = torch.as_tensor(exp, dtype=torch.int64)
    underflow = exp < fmt.emin
    zero = underflow if zero is None else (torch.as_tensor(zero, dtype=torch.bool) | underflow)
    exp = exp.clamp(max=fmt.emax)
    word = (sign << fmt.exp_width) | (exp & ((1 << fmt.exp_width) - 1))
    return torch.where(zero, torch.full_like(word, fmt.zero_word), word)


def encode(fmt, x, scale=1.0):
    """Float values -> LNS words (round to nearest in the log domain, saturate above, flush below)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if bool(torch.isnan(x).any()):
        raise ValueError("Cannot encode NaN as an LNS word")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"Scale must be a positive finite number, not {scale!r}")
    magnitude = x.abs() / scale
    safe = torch.where(magnitude > 0, magnitude, torch.ones_like(magnitude))
    exp = torch.floor(fmt.gamma * torch.log2(safe) + 0.5).clamp(fmt.zero_exp - 1, fmt.emax + 1)
    exp = torch.where(torch.isinf(magnitude), torch.full_like(exp, fmt.emax), exp).to(torch.int64)
    return join(fmt, (x < 0).to(torch.int64), exp, magnitude == 0)


def decode(fmt, words, scale=1.0):
    """LNS words -> float64 values."""
    sign, exp, zero = fields(fmt, words)
    value = torch.exp2(exp.to(torch.float64) / fmt.gamma) * scale
    value = torch.where(sign == 1, -value, value)
    return torch.where(zero, torch.zeros_like(value), value)


def lns_mul(fmt, a, b):
    """LNS product of word tensors ``a`` and ``b`` (broadcast): exponents add, signs XOR; zero if either
    operand is zero; the sum saturates above ``emax`` and flushes to zero below ``emin``."""
    sign_a, exp_a, zero_a = fields(fmt, a)
    sign_b, exp_b, zero_b = fields(fmt, b)
    return join(fmt, sign_a ^ sign_b, exp_a + exp_b, zero_a | zero_b)


def pow2_table(fmt, frac_bits, method="table"):
    """The ``gamma`` constants ``2**(r / gamma)``, ``r = 0 .. gamma - 1``, as integers with ``frac_bits``
    fractional bits: ``floor(2**(r / gamma) * 2**frac_bits + 1/2)`` (``method="table"``), or Mitchell's
    ``(1 + r / gamma) * 2**frac_bits`` (``method="mitchell"``, exact when ``frac_bits >= b``)."""
    if method not in POW2_METHODS:
        raise ValueError(f"Method must be one of {', '.join(POW2_METHODS)}, not {method!r}")
    r = torch.arange(fmt.gamma, dtype=torch.float64)
    if method == "mitchell":
        if frac_bits < fmt.frac_bits:
            raise ValueError(f"Mitchell's 1 + r/gamma needs at least {fmt.frac_bits} table fraction bits, "
                             f"not {frac_bits}")
        return (1 << frac_bits) + torch.arange(fmt.gamma, dtype=torch.int64) * (1 << (frac_bits - fmt.frac_bits))
    return torch.floor(torch.exp2(r / fmt.gamma) * 2.0 ** frac_bits + 0.5).to(torch.int64)


def _lanes(cfg, limit=64):
    require_integers(cfg, ("lanes",))
    if not 1 <= cfg.lanes <= limit:
        raise ValueError(f"Lanes must be between 1 and {limit}, not {cfg.lanes}")


@dataclass(frozen=True)
class LnsMulConfig(LnsFormat):
    """Configuration of the ``lns_mul`` block: ``lanes`` LNS products per beat (the format's fields and
    ``lanes``, 1..64)."""
    lanes: int = 4

    def __post_init__(self):
        super().__post_init__()
        _lanes(self)


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
        _lanes(self)
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
