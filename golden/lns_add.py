"""Pure LNS addition and subtraction with Gaussian logarithms (the ``lns_add`` block).

Source: Zhao et al., "LNS-Madam" (IEEE Transactions on Computers, 2022) for the LNS word, and the classic sign/logarithm adder's
Gaussian logarithms (Swartzlander & Alexopoulos, "The sign/logarithm number system", IEEE Trans.
Computers C-24, 1975). Words are :class:`qarith.golden.common.lns.LnsFormat` words, value
``(-1)**s * 2**(E / gamma)``. For two nonzero operands with exponent codes ``A >= B`` and
``d = A - B`` (an integer number of codes, ``d / gamma`` octaves)::

    log2(2**(A/gamma) + 2**(B/gamma)) = A/gamma + sb(d/gamma),  sb(x) = log2(1 + 2**-x)   (same signs)
    log2(2**(A/gamma) - 2**(B/gamma)) = A/gamma + db(d/gamma),  db(x) = log2(1 - 2**-x)   (opposite signs)

so the result's code is ``A + F(d)`` with ``F(d) ~ gamma * sb(d/gamma)`` or ``gamma * db(d/gamma)``.

Tables (``t = table_frac_bits``, ``k = interp_bits``, float64, rounded half up as the format's
``encode``)::

    T_sb(c) = floor(2**(b + t) * sb(c / gamma) + 1/2)
    T_db(c) = floor(2**(b + t) * db(c / gamma) + 1/2)

are ``gamma * sb`` / ``gamma * db`` in codes with ``t`` extra fraction bits, at exponent-code distance ``c``.

The offset ``F(d)``, exactly (``q = d >> k``, ``r = d mod 2**k``):

1. ``V = T(q 2**k) 2**k + (T((q + 1) 2**k) - T(q 2**k)) r`` -- linear interpolation between the points
   ``2**k`` codes apart, kept exact with ``t + k`` fraction bits (for ``k = 0``, ``V = T(d)``: a direct
   table).
2. **Cancellation region.** ``db`` has a logarithmic singularity at 0 (``db(x) ~ log2(x ln 2)``) and its
   chords there are useless. ``db`` is read from a **direct** table, ``V = T_db(d) 2**k``, for
   ``d < db_direct``, the first multiple of ``2**k`` at or above ``gamma * log2(3 + 2 sqrt 2)``
   (2.54 octaves): the point from which ``|db''(x)| = ln2 2**-x / (1 - 2**-x)**2`` is at most
   ``max |sb''| = ln2 / 4``, so both functions share one interpolation error bound. (Reading only the
   first segment directly leaves chords across the singularity: 5.9 codes of error at ``d = 24`` for
   12-bit words, ``b = 6``, ``k = 4``, against 0.14 codes there with this rule, whose largest error over
   all distances is 0.57 codes, in ``sb``.) ``d = 0`` with opposite
   signs is the exact zero (``T_db(0)`` is never used; stored as 0).
3. **Table end.** Each function's table ends at the first point ``q`` whose value rounds to an offset of
   zero at the word (``sb_end``, ``db_end``; searched up to ``q_max + 1``, ``q_max = d_max >> k``,
   ``d_max = emax - emin``). The points are monotone (``sb`` falls to 0, ``db`` rises to 0), so every
   interpolation between two later points rounds to zero as well: ``V = 0`` for ``q >= end``, and the
   result is the larger operand. The tables' length is derived this way, not chosen.
4. One rounding to the word, half up: ``F = floor((V + 2**(t + k - 1)) / 2**(t + k))`` (``F = V`` when
   ``t + k = 0``).

The result: the larger-magnitude operand's sign (``a`` on equal exponents) and exponent ``A + F(d)``,
through :func:`qarith.golden.common.lns.join`: above ``emax`` saturates, below ``emin`` flushes to zero.
Equal magnitudes with opposite signs give the canonical zero; a zero operand (either sign bit) gives the
other operand, canonicalised; ``sub`` flips ``b``'s sign before all of this.

**Error** (results that neither saturate nor flush, in exponent codes against ``gamma log2 |a +- b|``):
a direct table at the word's precision (``k = t = 0``) rounds once, ``|err| <= 1/2``: the result is
``encode(a +- b)``, correctly rounded. Otherwise ``|err| <= 1/2 + 2**-(t + 1) + [k > 0] gamma h**2 ln2 / 32``
with ``h = 2**k / gamma`` octaves: the word rounding, the points' rounding (carried through the
interpolation's convex weights), and the chord error ``gamma h**2 / 8 max|f''|`` with ``max|f''| = ln2 / 4``
for ``sb`` everywhere and for ``db`` beyond the direct region. Relative error ``<= 2**(err / gamma) - 1``.
:func:`error_bound` returns it; :func:`lns_add_error` measures it over all pairs.
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import require_integers, width_for
from .common.lns import LnsFormat, decode, encode, fields, join, lns_words

__all__ = ["LnsAddConfig", "MAX_TABLE_DEPTH", "DB_DIRECT_OCTAVES", "FUNCTIONS", "gaussian_table",
           "gaussian_offsets", "LnsAddRom", "lns_add_rom", "lns_add", "float_add", "error_bound", "lns_add_error"]

#: Largest table (entries of the sb and db sections together) the block accepts.
MAX_TABLE_DEPTH = 4096
#: ``log2(3 + 2 sqrt 2)``: beyond this many octaves ``|db''|`` is at most ``ln2 / 4``, sb's maximum.
DB_DIRECT_OCTAVES = math.log2(3 + 2 * math.sqrt(2))
MAX_LANES = 32
MAX_TABLE_FRAC_BITS = 8
#: The two Gaussian logarithms.
FUNCTIONS = ("sb", "db")


@dataclass(frozen=True)
class LnsAddConfig(LnsFormat):
    """Configuration of the ``lns_add`` block: the LNS word (``width``, ``frac_bits``) and the tables.

    Parameters
    ----------
    width, frac_bits : int
        The word, as :class:`qarith.golden.common.lns.LnsFormat`.
    lanes : int
        Operand pairs per beat (1..32).
    interp_bits : int
        ``k``: the tables hold points ``2**k`` codes apart and the low ``k`` bits of ``d`` interpolate
        linearly between them (0..frac_bits: a segment is at most one octave; 0 is a direct table).
    table_frac_bits : int
        ``t``: fraction bits of the table entries beyond the word's exponent code (0..8).

    Raises
    ------
    TypeError, ValueError
        As :class:`LnsFormat`, and for the fields above or tables above :data:`MAX_TABLE_DEPTH` entries.
    """
    lanes: int = 1
    interp_bits: int = 0
    table_frac_bits: int = 0

    def __post_init__(self):
        super().__post_init__()
        require_integers(self, ("lanes", "interp_bits", "table_frac_bits"))
        if not 1 <= self.lanes <= MAX_LANES:
            raise ValueError(f"Lanes must be between 1 and {MAX_LANES}, not {self.lanes}")
        if not 0 <= self.interp_bits <= self.frac_bits:
            raise ValueError(f"Interpolation bits must be between 0 and {self.frac_bits} (segments of at most "
                             f"one octave), not {self.interp_bits}")
        if not 0 <= self.table_frac_bits <= MAX_TABLE_FRAC_BITS:
            raise ValueError(f"Table fraction bits must be between 0 and {MAX_TABLE_FRAC_BITS}, "
                             f"not {self.table_frac_bits}")
        depth = self.table_depth
        if depth > MAX_TABLE_DEPTH:
            raise ValueError(f"The sb and db tables would hold {depth} entries, more than {MAX_TABLE_DEPTH}")

    @property
    def segment(self):
        """Codes between two table points, ``2**interp_bits``."""
        return 1 << self.interp_bits

    @property
    def shift(self):
        """Fraction bits of the interpolated offset ``V``, ``table_frac_bits + interp_bits``."""
        return self.table_frac_bits + self.interp_bits

    @property
    def d_max(self):
        """Largest exponent-code distance of two nonzero operands, ``emax - emin``."""
        return self.emax - self.emin

    @property
    def q_max(self):
        """Largest segment index, ``d_max >> interp_bits``."""
        return self.d_max >> self.interp_bits

    @property
    def db_direct(self):
        """``db`` is read directly for ``d`` below this (a multiple of the segment; see step 2)."""
        first = self.segment * math.ceil(DB_DIRECT_OCTAVES * self.gamma / self.segment)
        return min(first, self.segment * (self.q_max + 1))

    @property
    def sb_end(self):
        """First segment index whose point rounds to a zero offset (``q_max + 1`` if none does)."""
        return _table_end(self, "sb", 0)

    @property
    def db_end(self):
        """As :attr:`sb_end` for ``db``, searched from the end of the direct region."""
        return _table_end(self, "db", self.db_direct >> self.interp_bits)

    @property
    def table_depth(self):
        """Entries of the ROM (:func:`lns_add_rom`): both sections."""
        sb, db = _sections(self)
        return len(sb) + len(db)

    @property
    def table_bytes(self):
        rom = lns_add_rom(self)
        return math.ceil(len(rom.words) * rom.word_bits / 8)


def gaussian_table(cfg, function, codes):
    """``T(c) = floor(2**(b + t) * f(c / gamma) + 1/2)`` at exponent-code distances ``codes``, ``f`` being
    ``"sb"`` or ``"db"`` (``T_db(0)``, minus infinity, is returned as 0: it is never used)."""
    if function not in FUNCTIONS:
        raise ValueError(f"Function must be one of {', '.join(FUNCTIONS)}, not {function!r}")
    codes = torch.as_tensor(codes, dtype=torch.int64)
    x = codes.to(torch.float64) / cfg.gamma
    if function == "sb":
        value = torch.log1p(torch.exp2(-x)) / math.log(2)
    else:
        value = torch.log(-torch.expm1(-x * math.log(2))) / math.log(2)
        value = torch.where(codes == 0, torch.zeros_like(value), value)
    return torch.floor(value * 2.0 ** (cfg.frac_bits + cfg.table_frac_bits) + 0.5).to(torch.int64)


def _to_word(cfg, value):
    """Step 4: ``V`` with ``t + k`` fraction bits -> an offset in codes, rounded half up."""
    if cfg.shift == 0:
        return value
    return (value + (1 << (cfg.shift - 1))) >> cfg.shift


def _table_end(cfg, function, start):
    q = torch.arange(start, cfg.q_max + 2, dtype=torch.int64)
    zero = _to_word(cfg, gaussian_table(cfg, function, q << cfg.interp_bits) << cfg.interp_bits) == 0
    found = torch.nonzero(zero)
    return int(q[found[0]]) if len(found) else cfg.q_max + 1


def gaussian_offsets(cfg, d, opposite):
    """``F(d)`` in exponent codes (steps 1-4 of the module docstring) for distances ``d`` in
    ``[0, d_max]``; ``opposite`` selects ``db`` (with ``d > 0``) over ``sb``, elementwise."""
    d = torch.as_tensor(d, dtype=torch.int64)
    opposite = torch.as_tensor(opposite, dtype=torch.bool)
    k = cfg.interp_bits
    q, r = d >> k, d & (cfg.segment - 1)

    def interpolated(function, end):
        low = gaussian_table(cfg, function, q << k)
        high = gaussian_table(cfg, function, (q + 1) << k)
        value = (low << k) + (high - low) * r
        return torch.where(q >= end, torch.zeros_like(value), value)

    sb = interpolated("sb", cfg.sb_end)
    db = torch.where(d < cfg.db_direct, gaussian_table(cfg, "db", d) << k, interpolated("db", cfg.db_end))
    return _to_word(cfg, torch.where(opposite, db, sb))


@dataclass(frozen=True)
class LnsAddRom:
    """The block's one ROM (both tables), as :func:`lns_add_rom` builds it from :func:`gaussian_table`.

    Each word is ``point | delta << point_bits`` (two's complement fields): ``V = point * 2**k + delta * r``.
    Addresses: ``sb``: ``min(q, sb_end)``; ``db``: ``db_base + d`` for ``d < db_direct``, else
    ``db_base + db_direct + min(q, db_end) - db_direct / 2**k``. The entry at ``sb_end`` / ``db_end``
    (present when that index can be reached) is zero.
    """
    words: list
    point_bits: int
    delta_bits: int
    db_base: int

    @property
    def word_bits(self):
        return self.point_bits + self.delta_bits


def _signed_bits(values):
    """Two's complement width that holds every integer of ``values``."""
    return width_for(min(values, default=0), max(values, default=0))


def _sections(cfg):
    """``(sb entries, db entries)``, each a list of ``(point, delta)``."""
    k = cfg.interp_bits

    def points(function, first, end):
        q = torch.arange(first, end + 1, dtype=torch.int64)
        values = gaussian_table(cfg, function, q << k).tolist()
        entries = [(values[i], values[i + 1] - values[i] if k else 0) for i in range(len(values) - 1)]
        return entries + ([(0, 0)] if end <= cfg.q_max else [])

    sb = points("sb", 0, cfg.sb_end)
    direct = gaussian_table(cfg, "db", torch.arange(min(cfg.db_direct, cfg.d_max + 1))).tolist()
    db = [(value, 0) for value in direct] + points("db", cfg.db_direct >> k, cfg.db_end)
    return sb, db


def lns_add_rom(cfg):
    """The ROM the generator instantiates (:class:`LnsAddRom`)."""
    sb, db = _sections(cfg)
    entries = sb + db
    point_bits = _signed_bits([p for p, _ in entries])
    delta_bits = _signed_bits([e for _, e in entries]) if cfg.interp_bits else 0
    words = [(p & ((1 << point_bits) - 1)) | ((e & ((1 << delta_bits) - 1)) << point_bits) for p, e in entries]
    return LnsAddRom(words, point_bits, delta_bits, len(sb))


def _sum_fields(cfg, a, b, sub):
    """``(sign, exponent before saturation, zero)`` of ``a + b`` (``sub`` = 0) or ``a - b`` (``sub`` = 1)."""
    sub = torch.as_tensor(sub, dtype=torch.int64)
    if bool(((sub != 0) & (sub != 1)).any()):
        raise ValueError("sub must be 0 or 1")
    sign_a, exp_a, zero_a = fields(cfg, a)
    sign_b, exp_b, zero_b = fields(cfg, b)
    sign_a, exp_a, zero_a, sign_b, exp_b, zero_b, sub = torch.broadcast_tensors(
        sign_a, exp_a, zero_a, sign_b, exp_b, zero_b, sub)
    sign_b = sign_b ^ sub
    a_larger = exp_a >= exp_b
    opposite = sign_a != sign_b
    d = (exp_a - exp_b).abs().clamp(max=cfg.d_max)     # zero operands' distances are not used
    distances = torch.arange(cfg.d_max + 1)
    offset = torch.where(opposite, gaussian_offsets(cfg, distances, True)[d],
                         gaussian_offsets(cfg, distances, False)[d])
    sign = torch.where(a_larger, sign_a, sign_b)
    exp = torch.where(a_larger, exp_a, exp_b) + offset
    zero = opposite & (exp_a == exp_b)
    sign = torch.where(zero_a, sign_b, torch.where(zero_b, sign_a, sign))
    exp = torch.where(zero_a, exp_b, torch.where(zero_b, exp_a, exp))
    zero = torch.where(zero_a, zero_b, torch.where(zero_b, torch.zeros_like(zero), zero))
    return sign, exp, zero


def lns_add(cfg, a, b, sub=0):
    """``a + b`` (``sub`` = 0) or ``a - b`` (``sub`` = 1) of LNS word tensors (broadcast), as words."""
    return join(cfg, *_sum_fields(cfg, a, b, sub))


def float_add(cfg, a, b, sub=0):
    """The float reference: ``decode(a) +- decode(b)`` in float64."""
    sub = torch.as_tensor(sub, dtype=torch.int64)
    return decode(cfg, a) + torch.where(sub == 1, -1.0, 1.0).to(torch.float64) * decode(cfg, b)


def error_bound(cfg):
    """A-priori bound of ``|E - gamma log2|a +- b||`` in codes, for results that neither saturate nor
    flush (module docstring)."""
    if cfg.interp_bits == 0 and cfg.table_frac_bits == 0:
        return 0.5
    h = cfg.segment / cfg.gamma
    chord = cfg.gamma * h * h * math.log(2) / 32 if cfg.interp_bits else 0.0
    return 0.5 + 2.0 ** -(cfg.table_frac_bits + 1) + chord


def lns_add_error(cfg, chunk=1 << 20):
    """Measured error over every pair of words, both operations.

    Returns a dict: ``pairs`` (operand pairs x 2 operations), ``measured`` (pairs of nonzero operands
    whose result neither saturates nor flushes and is not an exact cancellation), their ``max_code_error``
    / ``mean_code_error`` (``|E - gamma log2|exact||``) and ``max_rel_error`` / ``mean_rel_error``
    (``|decoded - exact| / |exact|``), ``max_code_error_cancellation`` (the measured pairs of opposite
    signs read from the direct ``db`` region, ``d < db_direct``), the a-priori ``bound_codes`` and
    ``bound_rel``, the counts of ``saturated`` and ``flushed`` results, ``cancellations`` (exact zeros,
    all returned as zero), ``sign_errors``, and ``correctly_rounded``: the fraction of all pairs whose
    result is ``encode(exact)``. Pairs with a zero operand are exact and not counted as measured.
    """
    words = lns_words(cfg)
    values = decode(cfg, words)                    # every word's value, looked up rather than decoded per pair
    signs, exps, _ = fields(cfg, words)
    rows = max(1, chunk // (2 * cfg.words))
    totals = dict(pairs=0, measured=0, saturated=0, flushed=0, cancellations=0, sign_errors=0, rounded=0)
    max_code = max_rel = sum_code = sum_rel = max_direct = 0.0
    for start in range(0, cfg.words, rows):
        count = len(words[start:start + rows])
        a = words[start:start + rows].repeat_interleave(2 * cfg.words)
        b = words.repeat(2 * count)
        sub = torch.arange(2).repeat_interleave(cfg.words).repeat(count)
        sign, exp, zero = _sum_fields(cfg, a, b, sub)
        result = join(cfg, sign, exp, zero)
        exact = values[a] + (1 - 2 * sub).to(torch.float64) * values[b]
        nonzero_operands = (values[a] != 0) & (values[b] != 0)
        cancel = nonzero_operands & zero
        saturated = nonzero_operands & ~zero & (exp > cfg.emax)
        flushed = nonzero_operands & ~zero & (exp < cfg.emin)
        measured = nonzero_operands & ~zero & ~saturated & ~flushed
        magnitude = exact[measured].abs()
        code_error = (exp[measured].to(torch.float64) - cfg.gamma * torch.log2(magnitude)).abs()
        rel_error = (values[result[measured]] - exact[measured]).abs() / magnitude
        totals["pairs"] += len(a)
        totals["measured"] += int(measured.sum())
        totals["saturated"] += int(saturated.sum())
        totals["flushed"] += int(flushed.sum())
        totals["cancellations"] += int(cancel.sum())
        totals["sign_errors"] += int((measured & (sign != (exact < 0).to(torch.int64))).sum()) \
            + int((cancel & (exact != 0)).sum())
        totals["rounded"] += int((result == encode(cfg, exact)).sum())
        distance = (exps[a] - exps[b]).abs()
        direct = (signs[a] != signs[b] ^ sub)[measured] & (distance[measured] < cfg.db_direct)
        if bool(direct.any()):
            max_direct = max(max_direct, float(code_error[direct].max()))
        if len(code_error):
            max_code, max_rel = max(max_code, float(code_error.max())), max(max_rel, float(rel_error.max()))
            sum_code, sum_rel = sum_code + float(code_error.sum()), sum_rel + float(rel_error.sum())
    count = max(totals["measured"], 1)
    return {
        "pairs": totals["pairs"], "measured": totals["measured"],
        "max_code_error": max_code, "mean_code_error": sum_code / count,
        "max_rel_error": max_rel, "mean_rel_error": sum_rel / count,
        "max_code_error_cancellation": max_direct,
        "bound_codes": error_bound(cfg), "bound_rel": 2.0 ** (error_bound(cfg) / cfg.gamma) - 1,
        "saturated": totals["saturated"], "flushed": totals["flushed"],
        "cancellations": totals["cancellations"], "sign_errors": totals["sign_errors"],
        "correctly_rounded": totals["rounded"] / totals["pairs"],
    }
