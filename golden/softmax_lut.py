"""Softmax from small lookup tables, after Vasyltsov & Chang (arXiv 2111.10770).

Subtracting the row maximum first pins the ranges: ``exp(x - max)`` lies in (0, 1] and the sum of a row
of ``n`` such values lies in [1, n], so a few hundred bytes of table replace the exponential and the
division (Vasyltsov & Chang, "Efficient Softmax Approximation for Deep Neural Networks with Attention
Mechanism", arXiv:2111.10770, 2021, section 3). Both of the paper's methods are implemented, as ``method``:

``"recip"``
    exp table, reciprocal table, one multiply per element:
    ``p_i = E[d_i] * R[s] / 2**(...)``.
``"log"``
    no multiplier and no divider: ``p_i = exp(x_i - max - ln(sum))`` as one table read
    ``O[(d_i << G) + L]`` where ``L`` is ``ln(sum)`` from a logarithm table.

The exact integer algorithm (the paper leaves index widths and table splits open; these are qarith's
choices). Input codes ``x`` are signed ``in_width``-bit integers of real value ``x * scale``; the output
codes are unsigned ``out_width``-bit probabilities of real value ``code * 2**-out_width``.

1. ``d_i = max(x) - x_i`` (exact, ``0 .. 2**in_width - 1``).
2. ``e_i = E[min(d_i, len(E) - 1)]`` with ``E[d] = round(A * exp(-d * scale))`` and ``A = 2**exp_width - 1``
   (so ``E[0] = A`` fills the word). ``E`` stops at its first zero entry (every larger ``d`` reads it)
   or at ``2**in_width`` entries.
   With ``mask_min`` (the default), ``e_i = 0`` where ``x_i`` is the minimum code (a masked score).
3. ``s = sum_i e_i`` (exact; ``s >= A`` because the maximum contributes ``E[0]``, unless every element
   is masked: then ``s = 0``, and it is normalised as ``2**p_min``; every output of such a row is 0).
4. Normalise the sum: ``p = floor(log2 s)`` and ``j`` = the ``norm_bits`` bits after the leading one
   (zero-filled when ``s`` is shorter), so ``s ~ 2**p * (1 + (j + 1/2) / 2**norm_bits)``.
5. ``"recip"``: ``R[j] = round(2**recip_width / (1 + (j + 1/2) / 2**norm_bits))`` (the constant with
   the least relative error over the mantissa interval) and
   ``out_i = min((e_i * R[j] + 2**(t - 1)) >> t, 2**out_width - 1)`` with ``t = p + recip_width - out_width``
   (round half up).
6. ``"log"``: ``L = max(Lp[p - p_min] + Lm[j], 0)`` in units of ``scale / 2**log_frac_bits``, with
   ``Lp[k] = round(((p_min + k) ln 2 - ln A) 2**G / scale)`` and ``Lm[j]`` the mid-range value
   ``round((ln(1 + j/2**r) + ln(1 + (j+1)/2**r)) / 2 * 2**G / scale)`` (``r = norm_bits``,
   ``G = log_frac_bits``); ``L`` is clamped at 0 because the real sum is at least 1. Then
   ``out_i = O[min((d_i << G) + L, len(O) - 1)]`` with ``O[k] = min(round(2**out_width exp(-k scale / 2**G)),
   2**out_width - 1)``, which also stops at its first zero entry. Masked elements output 0.

Table entries are rounded half to even in float64 (``torch.round``). ``table_bytes`` counts every table's
bits (entries x word width) rounded up to whole bytes.

The float reference is ``torch.softmax`` of ``x * scale``. :func:`hls4ml_softmax` emulates the peer this
block is measured against: hls4ml's default ("stable") softmax with its default types (section 2).
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import require_integers
from .common.ragged import by_length, check_variable_length

__all__ = ["SoftmaxLutConfig", "METHODS", "MEMORIES", "MULTIPLIERS", "exp_table", "recip_table", "log_tables", "out_table",
           "normalise", "softmax_lut", "error_bound", "float_softmax", "SoftmaxLut", "hls4ml_softmax", "HLS4ML_TABLE_BYTES",
           "accuracy"]

METHODS = ("recip", "log")
#: Where the block's ROMs live: inferred memories (``"fabric"``, any device) or instantiated ECP5 DP16KD
#: with their output registers (``"ecp5"``); the function is the same.
MEMORIES = ("fabric", "ecp5")
#: The ``"recip"`` product ``E[d] * R``: inferred (``"fabric"``) or an ECP5 MULT18X18D with its input
#: and output registers (``"ecp5"``); the function is the same.
MULTIPLIERS = ("fabric", "ecp5")
MAX_TABLE_DEPTH = 4096


def _bits_unsigned(value):
    return max(int(value).bit_length(), 1)


def _bits_signed(values):
    low, high = min(values), max(values)
    width = 1
    while not (-(1 << (width - 1)) <= low and high <= (1 << (width - 1)) - 1):
        width += 1
    return width


@dataclass(frozen=True)
class SoftmaxLutConfig:
    """Configuration of the ``softmax_lut`` block.

    Parameters
    ----------
    n : int
        Row length (1..4096): elements per softmax vector.
    method : str
        ``"recip"`` (exp table, reciprocal table, multiply) or ``"log"`` (log-domain, no multiplier).
    in_width : int
        Width of the signed input score codes (2..16).
    scale : float
        Real value of one input step (positive).
    out_width : int
        Width of the unsigned output probability codes (2..16); output step ``2**-out_width``.
    exp_width : int
        Word width of the exp table (2..16).
    norm_bits : int
        Mantissa bits of the normalised sum that index the reciprocal / logarithm table (1..10).
    recip_width : int
        Word width of the reciprocal table (``"recip"`` only, 2..18).
    log_frac_bits : int
        Extra fraction bits of ``ln(sum)`` and of the output table's index (``"log"`` only, 0..4).
    mask_min : bool
        The minimum input code stands for ``-inf`` (a masked score): it contributes nothing to the sum
        and its output is 0. A row of nothing but masked scores gives all zeros.
    variable_length : bool
        Rows of any length ``1..n``, each ended by the input's ``last`` (payloads ``{"data", "last"}``
        in and out; :mod:`qarith.golden.common.ragged`); ``False``: every row has ``n`` elements.
    memory : str
        The hardware's ROMs (:data:`MEMORIES`): ``"ecp5"`` adds a cycle per ROM read to the latency.
    multiplier : str
        The hardware's ``"recip"`` multiplier (:data:`MULTIPLIERS`; ``"fabric"`` for ``"log"``, which
        has none).
    """
    n: int = 64
    method: str = "recip"
    in_width: int = 8
    scale: float = 0.0625
    out_width: int = 8
    exp_width: int = 8
    norm_bits: int = 7
    recip_width: int = 10
    log_frac_bits: int = 2
    mask_min: bool = True
    variable_length: bool = False
    memory: str = "fabric"
    multiplier: str = "fabric"

    def __post_init__(self):
        require_integers(self, ("n", "in_width", "out_width", "exp_width", "norm_bits", "recip_width", "log_frac_bits"))
        if not isinstance(self.mask_min, bool):
            raise TypeError(f"mask_min must be a bool, not {self.mask_min!r}")
        check_variable_length(self)
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool):
            raise TypeError(f"scale must be a number, not {self.scale!r}")
        if self.method not in METHODS:
            raise ValueError(f"Method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.memory not in MEMORIES:
            raise ValueError(f"Memory must be one of {', '.join(MEMORIES)}, not {self.memory!r}")
        if self.multiplier not in MULTIPLIERS:
            raise ValueError(f"Multiplier must be one of {', '.join(MULTIPLIERS)}, not {self.multiplier!r}")
        if self.method == "log" and self.multiplier != "fabric":
            raise ValueError(f"Multiplier {self.multiplier!r} needs method 'recip': the log method has no "
                             f"multiplier")
        if not 1 <= self.n <= 4096:
            raise ValueError(f"Row length must be between 1 and 4096, not {self.n}")
        if not 2 <= self.in_width <= 16:
            raise ValueError(f"Input width must be between 2 and 16, not {self.in_width}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"Scale must be a positive finite number, not {self.scale!r}")
        if not 2 <= self.out_width <= 16:
            raise ValueError(f"Output width must be between 2 and 16, not {self.out_width}")
        if not 2 <= self.exp_width <= 16:
            raise ValueError(f"Exp table width must be between 2 and 16, not {self.exp_width}")
        if not 1 <= self.norm_bits <= 10:
            raise ValueError(f"Normalisation bits must be between 1 and 10, not {self.norm_bits}")
        if not 2 <= self.recip_width <= 18:
            raise ValueError(f"Reciprocal width must be between 2 and 18, not {self.recip_width}")
        if not 0 <= self.log_frac_bits <= 4:
            raise ValueError(f"Log fraction bits must be between 0 and 4, not {self.log_frac_bits}")
        if self.method == "recip" and self.min_shift < 1:
            raise ValueError(f"Reciprocal width {self.recip_width} is too small for exp width {self.exp_width} "
                             f"and output width {self.out_width}: need exp_width + recip_width >= "
                             f"out_width + 2")
        for name, depth in [("Exp", self.exp_depth), ("Output", self.out_depth if self.method == "log" else 0)]:
            if depth is None or depth > MAX_TABLE_DEPTH:
                needed = f"more than {DEPTH_SEARCH_LIMIT}" if depth is None else depth
                raise ValueError(f"{name} table would need {needed} entries for scale {self.scale}; "
                                 f"at most {MAX_TABLE_DEPTH} are supported (use a coarser scale)")

    # -- derived sizes ----------------------------------------------------------------------------

    @property
    def exp_scale(self):
        """``A``: the exp table's value of ``exp(0)``."""
        return (1 << self.exp_width) - 1

    @property
    def exp_depth(self):
        return _first_zero_depth(lambda d: self.exp_scale * torch.exp(-d * self.scale), 1 << self.in_width)

    @property
    def out_depth(self):
        step = self.scale / (1 << self.log_frac_bits)
        limit = ((1 << self.in_width) - 1 << self.log_frac_bits) + self.log_max + 1
        return _first_zero_depth(lambda k: (1 << self.out_width) * torch.exp(-k * step), limit)

    @property
    def sum_width(self):
        return _bits_unsigned(self.n * self.exp_scale)

    @property
    def p_min(self):
        """``floor(log2)`` of the smallest possible sum, ``E[0]``."""
        return self.exp_scale.bit_length() - 1

    @property
    def p_max(self):
        return self.sum_width - 1

    @property
    def min_shift(self):
        return self.p_min + self.recip_width - self.out_width

    @property
    def log_max(self):
        """Largest ``L = max(Lp[p] + Lm[j], 0)`` over every entry of the two tables (at least the
        largest real ``ln(n)``, plus the tables' roundings and half a mantissa interval)."""
        lp, lm = log_tables(self)
        return max(int(lp.max()) + int(lm.max()), 0)

    @property
    def out_max(self):
        return (1 << self.out_width) - 1

    def tables(self):
        """Name -> (entries, word width in bits, signed) of every table the block holds."""
        exp = exp_table(self)
        result = {"exp": (exp, _bits_unsigned(int(exp.max())), False)}
        if self.method == "recip":
            recip = recip_table(self)
            result["recip"] = (recip, _bits_unsigned(int(recip.max())), False)
        else:
            lp, lm = log_tables(self)
            out = out_table(self)
            result["log_exponent"] = (lp, _bits_signed(lp.tolist()), True)
            result["log_mantissa"] = (lm, _bits_signed(lm.tolist()), True)
            result["out"] = (out, _bits_unsigned(int(out.max())), False)
        return result

    @property
    def table_bytes(self):
        return sum(math.ceil(len(entries) * width / 8) for entries, width, _ in self.tables().values())


#: How far :func:`_first_zero_depth` looks for a table's first zero: a fine scale can put it (or the
#: search limit) at billions of entries, far past :data:`MAX_TABLE_DEPTH`.
DEPTH_SEARCH_LIMIT = 16 * MAX_TABLE_DEPTH


def _first_zero_depth(values, limit):
    """Entries of a decreasing table up to and including its first zero entry (at most ``limit``), or
    ``None`` if that is more than :data:`DEPTH_SEARCH_LIMIT`."""
    index = torch.arange(min(limit, DEPTH_SEARCH_LIMIT), dtype=torch.float64)
    zero = torch.nonzero(torch.round(values(index)) == 0)
    if len(zero):
        return int(zero[0]) + 1
    return limit if limit <= DEPTH_SEARCH_LIMIT else None


# -- tables -------------------------------------------------------------------------------------------

def exp_table(cfg):
    """``E[d] = round(A * exp(-d * scale))``."""
    d = torch.arange(cfg.exp_depth, dtype=torch.float64)
    return torch.round(cfg.exp_scale * torch.exp(-d * cfg.scale)).to(torch.int64)


def recip_table(cfg):
    """``R[j] = round(2**recip_width / (1 + (j + 1/2) / 2**norm_bits))``."""
    j = torch.arange(1 << cfg.norm_bits, dtype=torch.float64)
    return torch.round((1 << cfg.recip_width) / (1 + (j + 0.5) / (1 << cfg.norm_bits))).to(torch.int64)


def log_tables(cfg):
    """``(Lp, Lm)``: ``ln(sum / A)`` in units of ``scale / 2**log_frac_bits``, split into the part of the
    leading-one position ``p`` (``Lp[p - p_min]``) and the part of the mantissa (``Lm[j]``)."""
    unit = cfg.scale / (1 << cfg.log_frac_bits)
    p = torch.arange(cfg.p_min, cfg.p_max + 1, dtype=torch.float64)
    lp = torch.round((p * math.log(2) - math.log(cfg.exp_scale)) / unit)
    j = torch.arange(1 << cfg.norm_bits, dtype=torch.float64)
    steps = 1 << cfg.norm_bits
    lm = torch.round((torch.log1p(j / steps) + torch.log1p((j + 1) / steps)) / 2 / unit)
    return lp.to(torch.int64), lm.to(torch.int64)


def out_table(cfg):
    """``O[k] = min(round(2**out_width * exp(-k * scale / 2**log_frac_bits)), 2**out_width - 1)``."""
    k = torch.arange(cfg.out_depth, dtype=torch.float64)
    values = torch.round((1 << cfg.out_width) * torch.exp(-k * cfg.scale / (1 << cfg.log_frac_bits)))
    return values.clamp(max=cfg.out_max).to(torch.int64)


# -- the integer model ---------------------------------------------------------------------------------

def normalise(cfg, s):
    """``(p, j)`` of sums ``s`` (int64 tensor): leading-one position and the ``norm_bits`` bits after
    it; sums below ``2**p_min`` (only an all-masked row's 0) count as ``2**p_min``."""
    s = s.clamp(min=1 << cfg.p_min)
    p = torch.zeros_like(s)
    for bit in range(1, cfg.sum_width):
        p = torch.where(s >> bit != 0, torch.full_like(s, bit), p)
    r = cfg.norm_bits
    m = torch.where(p >= r, s >> (p - r).clamp(min=0), s << (r - p).clamp(min=0))
    return p, m - (1 << r)


def softmax_lut(cfg, x, lengths=None):
    """The block's function on rows of input codes: ``x`` has shape ``(..., n)``; returns output codes
    of the same shape (int64). With ``lengths`` (the rows' leading shape), row ``r`` is ``x[r, :L]``
    for its length ``L`` and the softmax runs over those ``L`` elements alone; outputs beyond ``L`` are
    0 (:func:`qarith.golden.common.ragged.by_length`)."""
    if lengths is not None:
        return by_length(lambda rows: _softmax_rows(cfg, rows), cfg.n, lengths, x)
    x = torch.as_tensor(x, dtype=torch.int64)
    if x.shape[-1] != cfg.n:
        raise ValueError(f"Rows must have {cfg.n} elements, not {x.shape[-1]}")
    return _softmax_rows(cfg, x)


def _softmax_rows(cfg, x):
    d = x.amax(dim=-1, keepdim=True) - x
    exp = exp_table(cfg)
    e = exp[d.clamp(max=len(exp) - 1)]
    masked = x == -(1 << (cfg.in_width - 1)) if cfg.mask_min else torch.zeros_like(x, dtype=torch.bool)
    e = e.masked_fill(masked, 0)
    p, j = normalise(cfg, e.sum(dim=-1, keepdim=True))
    if cfg.method == "recip":
        shift = p + cfg.recip_width - cfg.out_width
        product = e * recip_table(cfg)[j]
        return ((product + (1 << (shift - 1))) >> shift).clamp(max=cfg.out_max)
    lp, lm = log_tables(cfg)
    log_sum = (lp[p - cfg.p_min] + lm[j]).clamp(min=0)
    out = out_table(cfg)
    result = out[((d << cfg.log_frac_bits) + log_sum).clamp(max=len(out) - 1)]
    return result.masked_fill(masked, 0)


def error_bound(cfg, reference):
    """Worst-case ``|out * 2**-out_width - reference|`` for each element, given the float probabilities
    ``reference`` of the same rows (derivation, with ``x_i = A exp(-d_i scale)``, ``X = sum x_i``,
    ``p_i = x_i / X`` and ``s >= A``):

    * the exp table is within 1/2 of ``x_i`` (entries past its end are below 1/2), so
      ``|e_i / s - p_i| <= (1 + n p_i) / (2 A)``;
    * ``"recip"``: ``R[j] / 2**(p + recip_width)`` is ``1 / s`` within the relative error ``delta``
      that the table reaches at its interval ends (measured from the table), on a value ``e_i / s <= 1``;
    * ``"log"``: ``L`` is within ``1 + 2**-(norm_bits + 1) 2**G / scale`` index units of
      ``ln(s / A) 2**G / scale`` (two table roundings and half a mantissa interval), a relative error of
      ``exp(that * scale / 2**G) - 1`` on ``x_i / s <= 1``, plus ``p_i n / (2 A)`` from the sum;
    * the output rounding and the clamp at ``2**out_width - 1`` add at most one output step.
    """
    reference = torch.as_tensor(reference, dtype=torch.float64)
    lsb, a, n = 2.0 ** -cfg.out_width, cfg.exp_scale, cfg.n
    if cfg.method == "recip":
        steps = 1 << cfg.norm_bits
        j = torch.arange(steps, dtype=torch.float64)
        rel = recip_table(cfg).to(torch.float64) / (1 << cfg.recip_width)
        delta = max(float((rel * (1 + j / steps) - 1).abs().max()), float((rel * (1 + (j + 1) / steps) - 1).abs().max()))
        return (1 + n * reference) / (2 * a) + delta + lsb
    unit = cfg.scale / (1 << cfg.log_frac_bits)
    slack = 1 + 2.0 ** -(cfg.norm_bits + 1) / unit
    return reference * n / (2 * a) + math.expm1(slack * unit) + lsb


def float_softmax(cfg, x, keep=None):
    """The float function the block approximates: ``torch.softmax(x * scale)`` in float64; elements
    where ``keep`` is false count as ``-inf`` (masked)."""
    real = torch.as_tensor(x, dtype=torch.float64) * cfg.scale
    if keep is not None:
        real = real.masked_fill(~keep, -math.inf)
    return torch.softmax(real, dim=-1)


class SoftmaxLut(torch.nn.Module):
    """Drop-in for ``nn.Softmax(dim=-1)`` on float scores: quantizes to the config's input codes (round
    to nearest, saturate), runs :func:`softmax_lut` and returns the dequantized probabilities."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg

    def forward(self, scores):
        cfg = self.cfg
        low, high = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
        codes = torch.round(scores.to(torch.float64) / cfg.scale).clamp(low, high).to(torch.int64)
        return (softmax_lut(cfg, codes).to(torch.float64) * 2.0 ** -cfg.out_width).to(scores.dtype)


# -- the peer: hls4ml's default softmax ---------------------------------------------------------------

#: hls4ml's default softmax tables: 1024-entry exp and inverse tables of ap_fixed<18,8> words.
HLS4ML_TABLE_BYTES = 2 * 1024 * 18 // 8


def _ap_fixed(value, width, integer, rounding, saturate):
    """Raw integer of an ``ap_fixed<width, integer>`` holding ``value`` (float64 tensor): AP_RND (round
    half up) or AP_TRN (floor); AP_SAT (clamp) or AP_WRAP."""
    frac = width - integer
    scaled = value * 2.0 ** frac
    raw = torch.floor(scaled + 0.5) if rounding else torch.floor(scaled)
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if saturate:
        raw = torch.nan_to_num(raw, posinf=high, neginf=low).clamp(low, high)
    else:
        raw = torch.remainder(raw, 1 << width)
        raw = torch.where(raw > high, raw - (1 << width), raw)
    return raw.to(torch.int64)


def _top_bits_index(raw, width, index_bits=10):
    """hls4ml's ``softmax_idx_from_real_val``: the top ``index_bits`` bits of the two's complement word."""
    return (raw & ((1 << width) - 1)) >> (width - index_bits)


def _value_of_index(index, width, frac, index_bits=10):
    """hls4ml's ``softmax_real_val_from_idx``: the word whose top bits are ``index``, as a real value."""
    raw = index << (width - index_bits)
    raw = torch.where(raw >= 1 << (width - 1), raw - (1 << width), raw)
    return raw.to(torch.float64) * 2.0 ** -frac


def hls4ml_softmax(cfg, x):
    """Emulation of hls4ml's ``softmax_stable`` (its default implementation) with its default types:
    input and result ``ap_fixed<16,6>`` (AP_TRN, AP_WRAP), ``x - max`` in ``ap_fixed<16,6,AP_RND,AP_SAT>``,
    exp and inverse tables of 1024 ``ap_fixed<18,8,AP_RND,AP_SAT>`` words indexed by the top 10 bits
    of the word (tables filled from single-precision ``exp`` and ``1/x``), sum in the exp table's type.
    Input is the real score ``x * scale``; returns real probabilities (float64)."""
    x = torch.as_tensor(x, dtype=torch.int64)
    data = _ap_fixed(x.to(torch.float64) * cfg.scale, 16, 6, rounding=False, saturate=False)
    diff = (data - data.amax(dim=-1, keepdim=True)).clamp(min=-(1 << 15))          # AP_SAT, exact grid
    index = torch.arange(1024)
    exp_values = torch.exp(_value_of_index(index, 16, 10).to(torch.float32)).to(torch.float64)
    exp = _ap_fixed(exp_values, 18, 8, rounding=True, saturate=True)
    inv_values = (1 / _value_of_index(index, 18, 10).to(torch.float32)).to(torch.float64)
    inv = _ap_fixed(inv_values, 18, 8, rounding=True, saturate=True)
    e = exp[_top_bits_index(diff, 16)]
    total = e.sum(dim=-1, keepdim=True).clamp(max=(1 << 17) - 1)                   # AP_SAT sum
    product = e * inv[_top_bits_index(total, 18)]                                  # 20 fraction bits
    result = _ap_fixed(product.to(torch.float64) * 2.0 ** -20, 16, 6, rounding=False, saturate=False)
    return result.to(torch.float64) * 2.0 ** -10


# -- the accuracy metrics -----------------------------------------------------------------------------

def accuracy(reference, approx, lsb):
    """Error metrics of approximate probabilities against float ones (both float64, rows x n):
    max and mean absolute error, mean KL divergence ``KL(reference || approx')`` where ``approx'`` is the
    approximation with zeros raised to ``lsb / 2`` and renormalised, and the share of rows whose argmax
    (first index of the largest output) is a largest element of the reference (``argmax_agree``; rows
    that are not: ``argmax_flips``). ``top_kept`` is the share of rows where a largest element of the
    reference also has the largest output (ties in the output allowed)."""
    error = (approx - reference).abs()
    q = approx.clamp(min=lsb / 2)
    q = q / q.sum(dim=-1, keepdim=True)
    kl = (torch.special.xlogy(reference, reference) - torch.special.xlogy(reference, q)).sum(dim=-1)
    picked = reference.gather(-1, approx.argmax(dim=-1, keepdim=True)).squeeze(-1)
    agree = picked == reference.amax(dim=-1)
    best = reference == reference.amax(dim=-1, keepdim=True)
    top = approx.masked_fill(~best, -1.0).amax(dim=-1) == approx.amax(dim=-1)
    return {"top_kept": float(top.to(torch.float64).mean()),"max_abs": float(error.max()), "mean_abs": float(error.mean()), "kl": float(kl.mean()),
            "argmax_agree": float(agree.to(torch.float64).mean()), "argmax_flips": int((~agree).sum())}
