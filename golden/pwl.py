"""Piecewise-linear (PWL) function unit: breakpoint search, one multiply-add, rounding, clamp.

Sources: NN-LUT, Yu et al., "NN-LUT: Neural Approximation of Non-Linear Operations for Efficient
Transformer Inference" (DAC 2022), and the adaptive PWL of iRNN, Sari et al., "iRNN: Integer-only
Recurrent Neural Network" (2022).

The hardware evaluates, for one input code ``q``::

    (v, e, zero) = reduce(q)                      # table code, exponent shift, zero input
    k = #{j : breakpoints[j] <= v}                # segment 0 .. entries-1
    acc = slopes[k] * v + intercepts[k]
    y = clamp(((acc >> (S + e - 1)) + 1) >> 1, out_min, out_max)     # out_max if zero

with ``S = coef_frac_bits``. The arithmetic shifts floor, so the last line rounds ``acc / 2**(S + e)``
half up (toward +inf on ties), once, and saturates.

Fixed-point formats
-------------------
* Input code ``q``: ``in_width`` bits, two's complement if ``in_signed``, value ``x = q * 2**-in_frac_bits``.
* Output code ``y``: ``out_width`` bits, value ``y * 2**-out_frac_bits``; every result is clamped to the
  output code range (saturation, never wrap-around).
* Direct functions (gelu, exp, sigmoid, tanh, silu): ``v = q``, ``e = 0``. Breakpoints are input codes
  (same width and signedness as the input); ``slopes[k] / 2**S`` is output LSBs per input LSB and
  ``intercepts[k] / 2**S`` is output LSBs, so ``acc / 2**S`` approximates ``f(x) * 2**out_frac_bits``.
* Range-reduced functions (reciprocal, rsqrt), unsigned input only. For ``q >= 1`` let ``p`` be the
  position of the leading one, and ``n = q << (in_width - 1 - p)`` the mantissa with its leading one at
  bit ``in_width - 1``, worth ``M = n * 2**-(in_width - 1)`` in ``[1, 2)``.

  - reciprocal: ``v = n - 2**(in_width-1)`` (``in_width - 1`` bits), ``e = p``; the table holds
    ``T(M) = 2**(in_frac_bits + out_frac_bits) / M``, since ``1/x = T(M) * 2**-p * 2**-out_frac_bits``.
  - rsqrt: the exponent ``p - in_frac_bits`` is made even by doubling the mantissa when it is odd
    (``M' = 2M`` in ``[2, 4)``), so ``v = (n << parity) - 2**(in_width-1)`` (``in_width + 1`` bits, value
    ``M' = 1 + v * 2**-(in_width-1)`` in ``[1, 4)``), ``e = (p + (in_frac_bits & 1)) >> 1`` and the table
    holds ``T(M') = 2**(out_frac_bits + ceil(in_frac_bits / 2)) / sqrt(M')``.

  In both, ``acc / 2**S`` approximates ``T`` and the final shift by ``e`` applies the exponent; ``q = 0``
  (``x = 0``, result ``+inf``) gives ``out_max``. In hardware: a leading-one detector and two shifters.
  The table scale (``2**(in_frac_bits + out_frac_bits)`` or ``2**(out_frac_bits + ceil(in_frac_bits/2))``)
  is limited to ``2**24``, which keeps ``acc`` within 49 bits.
* Breakpoints are table codes: a real breakpoint ``d`` becomes ``ceil(d)``, the first code at or above it,
  clipped to the table's code range (so segments outside the range are empty, or hold the end code only).
* Slopes and intercepts are signed integers of ``slope_width`` / ``intercept_width`` bits (default: the
  narrowest that holds the table).

Fitting (when the tables are not given)
---------------------------------------
The fitters place the breakpoints on the target ``t(v)``: ``f(x) * 2**out_frac_bits`` clamped to the
output range for direct functions, ``T`` for the range-reduced ones. A run of saturated codes at an end
of a direct function's range (exp above 0 into an output below 1.0, say) gets one segment of its own,
starting at the first saturated code; the fitter places the other breakpoints between. Fits are cached
per process and never run at import or in ``__post_init__``.

* ``method="nnlut"`` (:func:`fit_nnlut`): a one-hidden-layer ReLU network
  ``sum_i m_i relu(n_i v + b_i) + c`` with ``entries - 1`` hidden units, trained full-batch in float64 on
  at most :data:`NNLUT_POINTS` evenly spaced points by Levenberg-Marquardt on the mean-squared error
  (second-order training suits a network this small; the paper does not fix a trainer), from two
  starts with evenly spaced kinks, on one CPU thread with a fixed seed. It converts exactly to a PWL
  table (:func:`network_to_pwl`: breakpoints ``d_i = -b_i / n_i``, sorted; segment slope the sum of the
  active units' ``m_i n_i``, intercept ``c`` plus their ``m_i b_i``). The network form has no linear term
  of its own; it often builds one from two units with coincident kinks, which leaves an empty segment.
* ``method="irnn"`` (:func:`fit_irnn`): no network. The breakpoints minimise the total squared error of
  least-squares segments directly: the optimal segmentation on a grid of at most :data:`IRNN_GRID` codes
  (dynamic programming; exact for tables with no more codes than that), then coordinate descent at full
  resolution (every other breakpoint at once moves to its best code between its neighbours, at most
  :data:`IRNN_SWEEPS` sweeps). Segment costs come from prefix sums. ``weights`` (an input distribution)
  weight the squared errors.

Both methods then keep only the breakpoints and refit every segment on the integer codes it holds (the
NN-LUT paper fine-tunes its table too): the slope is the segment's least-squares slope rounded half to
even to ``S`` fraction bits, and the intercept, for that rounded slope, is the middle of the segment's
residual range rounded half to even, which minimises the segment's maximum error before the output
rounding. Empty segments hold zeros.
"""

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import torch

from .common.codes import OutputCodes, code_range, require_integers
from .common.pwl_fit import NNLUT_POINTS, fit_irnn, fit_nnlut, network_to_pwl, one_thread

__all__ = ["PwlConfig", "FUNCTIONS", "METHODS", "RANGE_REDUCED", "PwlTables", "reduce_input", "table_target",
           "segment_coefficients", "pwl_tables", "pwl", "reference", "reference_codes"]

#: The target functions, on float64 tensors.
FUNCTIONS = {
    "gelu": lambda x: torch.nn.functional.gelu(x),
    "exp": torch.exp,
    "reciprocal": torch.reciprocal,
    "rsqrt": torch.rsqrt,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "silu": torch.nn.functional.silu,
}

#: Functions evaluated on a mantissa after power-of-two range reduction of an unsigned input.
RANGE_REDUCED = ("reciprocal", "rsqrt")

METHODS = ("nnlut", "irnn")



def _table_fields(value, name):
    if value is None:
        return None
    if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{name} must be a tuple of integers or None, not {value!r}")
    return value


def _signed_width(values):
    """Narrowest two's complement width (at least 2) holding every integer in ``values``."""
    return max([2, *((v.bit_length() if v >= 0 else (-v - 1).bit_length()) + 1 for v in values)])


@dataclass(frozen=True)
class PwlConfig(OutputCodes):
    """Configuration of the ``pwl`` block.

    Parameters
    ----------
    function : str
        One of :data:`FUNCTIONS`. ``reciprocal`` and ``rsqrt`` are range reduced and need unsigned input.
    method : str
        Breakpoint fitter, ``"nnlut"`` or ``"irnn"`` (ignored when the tables are given).
    entries : int
        Segments in the table (8..64); there are ``entries - 1`` breakpoints.
    in_width : int
        Input code width (2..16).
    in_signed : bool
        Signed (two's complement) or unsigned input codes.
    in_frac_bits : int
        Input scale ``2**-in_frac_bits`` (-16..16).
    out_width : int
        Output code width (2..16).
    out_signed : bool
        Signed or unsigned output codes.
    out_frac_bits : int
        Output scale ``2**-out_frac_bits`` (-16..24).
    coef_frac_bits : int
        Fraction bits ``S`` of slopes and intercepts below the output (or table) LSB (1..24).
    slope_width, intercept_width : int or None
        Signed widths of the slope and intercept tables (2..32); ``None`` picks the narrowest that fits.
    seed : int
        Seed of the NN-LUT network's initialisation (0 .. 2**64 - 1).
    breakpoints, slopes, intercepts : tuple of int or None
        Explicit integer tables (all three or none): ``entries - 1`` ascending breakpoints (table codes),
        ``entries`` slopes and intercepts, in the formats of the module docstring.

    Raises
    ------
    TypeError
        A parameter of the wrong type.
    ValueError
        A parameter out of range, a signed input for a range-reduced function, an output range that every
        input saturates, or inconsistent explicit tables.
    """
    function: str = "gelu"
    method: str = "nnlut"
    entries: int = 16
    in_width: int = 8
    in_signed: bool = True
    in_frac_bits: int = 4
    out_width: int = 8
    out_signed: bool = True
    out_frac_bits: int = 5
    coef_frac_bits: int = 10
    slope_width: int | None = None
    intercept_width: int | None = None
    seed: int = 0
    breakpoints: tuple | None = None
    slopes: tuple | None = None
    intercepts: tuple | None = None

    def __post_init__(self):
        for name in ("breakpoints", "slopes", "intercepts"):
            # A JSON round trip (the cocotb process) turns tuples into lists.
            object.__setattr__(self, name, _table_fields(getattr(self, name), name.capitalize()))
        if not isinstance(self.function, str):
            raise TypeError(f"Function must be a name, not {self.function!r}")
        if self.function not in FUNCTIONS:
            raise ValueError(f"Function must be one of {', '.join(FUNCTIONS)}, not {self.function!r}")
        if not isinstance(self.method, str):
            raise TypeError(f"Method must be a name, not {self.method!r}")
        if self.method not in METHODS:
            raise ValueError(f"Method must be one of {', '.join(METHODS)}, not {self.method!r}")
        require_integers(self, ("entries", "in_width", "in_frac_bits", "out_width", "out_frac_bits",
                                "coef_frac_bits", "seed"))
        for name in ("slope_width", "intercept_width"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"{name} must be an integer or None, not {value!r}")
        for name in ("in_signed", "out_signed"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, not {getattr(self, name)!r}")
        if not 8 <= self.entries <= 64:
            raise ValueError(f"Entries must be between 8 and 64, not {self.entries}")
        if not 0 <= self.seed < 1 << 64:
            raise ValueError(f"Seed must be between 0 and 2**64 - 1 (a torch generator's seed), not {self.seed}")
        if not 2 <= self.in_width <= 16:
            raise ValueError(f"Input width must be between 2 and 16, not {self.in_width}")
        if not 2 <= self.out_width <= 16:
            raise ValueError(f"Output width must be between 2 and 16, not {self.out_width}")
        if not -16 <= self.in_frac_bits <= 16:
            raise ValueError(f"Input fraction bits must be between -16 and 16, not {self.in_frac_bits}")
        if not -16 <= self.out_frac_bits <= 24:
            raise ValueError(f"Output fraction bits must be between -16 and 24, not {self.out_frac_bits}")
        if not 1 <= self.coef_frac_bits <= 24:
            raise ValueError(f"Coefficient fraction bits must be between 1 and 24, not {self.coef_frac_bits}")
        for name, label in (("slope_width", "Slope width"), ("intercept_width", "Intercept width")):
            value = getattr(self, name)
            if value is not None and not 2 <= value <= 32:
                raise ValueError(f"{label} must be between 2 and 32, not {value}")
        if self.range_reduced and self.table_scale_bits > 24:
            raise ValueError(f"Table scale of {self.function} must be at most 2**24, not "
                             f"2**{self.table_scale_bits} (from in_frac_bits and out_frac_bits)")
        if self.range_reduced and self.in_signed:
            raise ValueError(f"Function {self.function} needs an unsigned input for its range reduction, "
                             f"not a signed one")
        scaled = reference_codes(self, self.codes)
        if bool((scaled <= self.out_min).all()) or bool((scaled >= self.out_max).all()):
            low, high = self.input_range
            raise ValueError(f"Function {self.function} saturates the output over the whole input range "
                             f"[{low}, {high}]")
        self._check_explicit_tables()
        if self.breakpoints is None and (self.slope_width is not None or self.intercept_width is not None):
            # Given widths are checked against the fitted tables here, not first in the generator: this runs
            # the (cached) fit, which configs that leave the widths to the fit never do at construction.
            pwl_tables(self)

    def _check_explicit_tables(self):
        given = [t is not None for t in (self.breakpoints, self.slopes, self.intercepts)]
        if not any(given):
            return
        if not all(given):
            raise ValueError("Breakpoints, slopes and intercepts must be given together or not at all")
        if len(self.breakpoints) != self.entries - 1:
            raise ValueError(f"Breakpoints must have entries - 1 = {self.entries - 1} elements, "
                             f"not {len(self.breakpoints)}")
        for name in ("slopes", "intercepts"):
            if len(getattr(self, name)) != self.entries:
                raise ValueError(f"{name.capitalize()} must have {self.entries} elements, "
                                 f"not {len(getattr(self, name))}")
        low, high = self.table_range
        for value in self.breakpoints:
            if not low <= value <= high:
                raise ValueError(f"Breakpoints must be table codes between {low} and {high}, not {value}")
        if any(a > b for a, b in zip(self.breakpoints, self.breakpoints[1:])):
            raise ValueError("Breakpoints must be in ascending order")
        _check_widths(self, self.slopes, self.intercepts)

    @property
    def range_reduced(self):
        return self.function in RANGE_REDUCED

    @property
    def codes(self):
        """Every input code, ascending."""
        low, high = code_range(self.in_width, self.in_signed)
        return torch.arange(low, high + 1, dtype=torch.int64)

    @property
    def input_range(self):
        low, high = code_range(self.in_width, self.in_signed)
        return low * 2.0 ** -self.in_frac_bits, high * 2.0 ** -self.in_frac_bits

    @property
    def table_range(self):
        """Inclusive range of the table codes ``v`` (the breakpoints' domain)."""
        if self.function == "reciprocal":
            return 0, (1 << (self.in_width - 1)) - 1
        if self.function == "rsqrt":
            return 0, 3 * (1 << (self.in_width - 1)) - 1
        return code_range(self.in_width, self.in_signed)

    @property
    def table_scale_bits(self):
        """Range-reduced functions: ``T`` is the function of the mantissa times ``2**table_scale_bits``."""
        if self.function == "reciprocal":
            return self.in_frac_bits + self.out_frac_bits
        return self.out_frac_bits - (-self.in_frac_bits // 2)

    @property
    def table_code_shape(self):
        """``(width, signed)`` of the table codes and the breakpoints."""
        if self.function == "reciprocal":
            return self.in_width - 1, False
        if self.function == "rsqrt":
            return self.in_width + 1, False
        return self.in_width, self.in_signed


def _check_widths(cfg, slopes, intercepts):
    for values, name, label in ((slopes, "slope_width", "Slope"), (intercepts, "intercept_width", "Intercept")):
        width = getattr(cfg, name)
        needed = _signed_width(values)
        if width is not None and needed > width:
            raise ValueError(f"{label} table needs {needed} bits, more than {name}={width}")


# --- targets and range reduction -------------------------------------------------------------------------

def reference(cfg, codes):
    """The float function at the input codes' values (float64; ``inf`` where it has a pole)."""
    x = torch.as_tensor(codes, dtype=torch.int64).to(torch.float64) * 2.0 ** -cfg.in_frac_bits
    return torch.as_tensor(FUNCTIONS[cfg.function](x), dtype=torch.float64)


def reference_codes(cfg, codes):
    """The float function in output LSBs, clamped to the output code range: the unit's exact answer
    before rounding (float64)."""
    return (reference(cfg, codes) * 2.0 ** cfg.out_frac_bits).clamp(cfg.out_min, cfg.out_max)


def table_target(cfg, table_codes):
    """The value ``acc / 2**S`` should approximate at table codes ``v`` (float64, see the module
    docstring: ``t(v)`` for direct functions, ``T`` for range-reduced ones)."""
    v = torch.as_tensor(table_codes, dtype=torch.float64)
    if cfg.range_reduced:
        mantissa = 1 + v * 2.0 ** -(cfg.in_width - 1)
        return 2.0 ** cfg.table_scale_bits * FUNCTIONS[cfg.function](mantissa)
    values = FUNCTIONS[cfg.function](v * 2.0 ** -cfg.in_frac_bits)
    return (values * 2.0 ** cfg.out_frac_bits).clamp(cfg.out_min, cfg.out_max)


def reduce_input(cfg, codes):
    """Range reduction of integer input codes: ``(v, e, zero)`` as int64, int64, bool tensors.

    Direct functions: ``v = q``, ``e = 0``. Range-reduced functions: see the module docstring; for
    ``q = 0`` the result is ``v = 0, e = 0, zero = True``.
    """
    q = torch.as_tensor(codes, dtype=torch.int64)
    if not cfg.range_reduced:
        return q, torch.zeros_like(q), torch.zeros_like(q, dtype=torch.bool)
    zero = q == 0
    # frexp is exact for integers below 2**53: q = m * 2**exponent with m in [0.5, 1).
    position = torch.where(zero, 0, torch.frexp(q.to(torch.float64)).exponent.to(torch.int64) - 1)
    top = cfg.in_width - 1
    normalised = torch.where(zero, 1 << top, q << (top - position))
    if cfg.function == "reciprocal":
        return normalised - (1 << top), torch.where(zero, 0, position), zero
    parity = (position + cfg.in_frac_bits) & 1
    v = (normalised << parity) - (1 << top)
    exponent = (position + (cfg.in_frac_bits & 1)) >> 1
    return v, torch.where(zero, 0, exponent), zero


# --- tables ----------------------------------------------------------------------------------------------

class PwlTables(NamedTuple):
    """The integer tables the hardware holds and the golden model reads (tuples of ints)."""
    breakpoints: tuple
    slopes: tuple
    intercepts: tuple
    slope_width: int
    intercept_width: int
    breakpoint_width: int

    @property
    def table_bytes(self):
        return (len(self.breakpoints) * math.ceil(self.breakpoint_width / 8)
                + len(self.slopes) * (math.ceil(self.slope_width / 8) + math.ceil(self.intercept_width / 8)))


@lru_cache(maxsize=None)
def _fitted_breakpoints(method, entries, seed, target_key):
    """Integer breakpoints (table codes) for one target; cached, so each fit runs once per process.

    A run of saturated codes at either end of a direct function's range gets a segment of its own (its
    breakpoint is the first code past the run), and the fitter places the other breakpoints on the codes
    between.
    """
    cfg = PwlConfig(**dict(target_key))
    low, high = cfg.table_range
    y = table_target(cfg, torch.arange(low, high + 1, dtype=torch.int64))
    inside = ((y > cfg.out_min) & (y < cfg.out_max)).nonzero()[:, 0]
    if cfg.range_reduced or len(inside) == 0:
        first, last = low, high
    else:
        first, last = low + int(inside[0]), low + int(inside[-1])
    tails = ([first] if first > low else []) + ([last + 1] if last < high else [])
    count = entries - len(tails)
    if method == "irnn":
        inner = first + fit_irnn(y[first - low:last - low + 1], count)
    else:
        sample = torch.linspace(first, last, min(last - first + 1, NNLUT_POINTS), dtype=torch.float64)
        net = fit_nnlut(sample, table_target(cfg, sample), count, seed)
        inner = torch.ceil(network_to_pwl(net).breakpoints).clamp(first, last).to(torch.int64)
        inner = torch.cat([inner, torch.full((count - 1 - len(inner),), first, dtype=torch.int64)])
    return tuple(sorted(inner.tolist() + tails))


def segment_coefficients(cfg, breakpoints):
    """Integer slopes and intercepts for fixed integer breakpoints (see the module docstring):
    least-squares slope, rounded; intercept centring the segment's residual range, rounded."""
    low, high = cfg.table_range
    v = torch.arange(low, high + 1, dtype=torch.int64)
    target = table_target(cfg, v) * 2.0 ** cfg.coef_frac_bits
    segment = torch.searchsorted(torch.tensor(breakpoints, dtype=torch.int64), v, right=True)
    entries = cfg.entries
    xf = v.to(torch.float64)

    def per_segment(values):
        return torch.zeros(entries, dtype=torch.float64).index_add_(0, segment, values)

    count = per_segment(torch.ones_like(xf))
    safe = torch.clamp(count, min=1)
    mean_x, mean_y = per_segment(xf) / safe, per_segment(target) / safe
    dx, dy = xf - mean_x[segment], target - mean_y[segment]
    var_x, cov = per_segment(dx * dx), per_segment(dx * dy)
    slope = torch.where(var_x > 0, cov / var_x.clamp(min=1e-300), torch.zeros_like(var_x))
    slopes = torch.round(slope)
    residual = target - slopes[segment] * xf
    top = torch.full((entries,), -math.inf, dtype=torch.float64).scatter_reduce(0, segment, residual, "amax")
    bottom = torch.full((entries,), math.inf, dtype=torch.float64).scatter_reduce(0, segment, residual, "amin")
    intercepts = torch.where(count > 0, torch.round((top + bottom) / 2), torch.zeros_like(top))
    slopes = torch.where(count > 0, slopes, torch.zeros_like(slopes))
    return tuple(int(s) for s in slopes.tolist()), tuple(int(c) for c in intercepts.tolist())


def _target_key(cfg):
    return tuple((name, getattr(cfg, name)) for name in
                 ("function", "in_width", "in_signed", "in_frac_bits", "out_width", "out_signed", "out_frac_bits"))


@lru_cache(maxsize=None)
def pwl_tables(cfg):
    """The integer tables of ``cfg``: its explicit tables, or fitted (cached per process).

    Raises
    ------
    ValueError
        If a fitted slope or intercept does not fit a given ``slope_width`` / ``intercept_width``.
    """
    if cfg.breakpoints is not None:
        breakpoints, slopes, intercepts = cfg.breakpoints, cfg.slopes, cfg.intercepts
    else:
        with one_thread():
            breakpoints = _fitted_breakpoints(cfg.method, cfg.entries, cfg.seed, _target_key(cfg))
            slopes, intercepts = segment_coefficients(cfg, breakpoints)
        _check_widths(cfg, slopes, intercepts)
    return PwlTables(breakpoints, slopes, intercepts,
                     slope_width=cfg.slope_width or _signed_width(slopes),
                     intercept_width=cfg.intercept_width or _signed_width(intercepts),
                     breakpoint_width=cfg.table_code_shape[0])


def pwl(cfg, codes):
    """The block's function on integer input codes (any shape), bit-exact with the hardware."""
    tables = pwl_tables(cfg)
    v, exponent, zero = reduce_input(cfg, codes)
    segment = torch.searchsorted(torch.tensor(tables.breakpoints, dtype=torch.int64), v, right=True)
    acc = torch.tensor(tables.slopes, dtype=torch.int64)[segment] * v \
        + torch.tensor(tables.intercepts, dtype=torch.int64)[segment]
    rounded = ((acc >> (cfg.coef_frac_bits + exponent - 1)) + 1) >> 1
    return torch.where(zero, cfg.out_max, rounded.clamp(cfg.out_min, cfg.out_max))
