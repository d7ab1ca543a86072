"""The logarithmic number system (LNS) word shared by the ``lns_*`` blocks, and the float conversions.

Source: Zhao et al., "LNS-Madam: Low-Precision Training in Logarithmic Number System using Multiplicative
Weight Update" (IEEE Transactions on Computers, 2022), its LNS format: a value is ``sign * 2**(e / gamma)``
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
"""

import math
from dataclasses import dataclass

import torch

from .codes import require_integers

__all__ = ["LnsFormat", "POW2_METHODS", "fields", "join", "encode", "decode", "lns_words", "pow2_table",
           "check_lanes"]

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


def check_lanes(cfg, limit=64):
    """Raise unless ``cfg.lanes`` is an integer in ``1 .. limit``."""
    require_integers(cfg, ("lanes",))
    if not 1 <= cfg.lanes <= limit:
        raise ValueError(f"Lanes must be between 1 and {limit}, not {cfg.lanes}")
