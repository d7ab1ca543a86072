"""LNS-Madam dot product of LNS word vectors: the function of the ``lns_dot`` block.

Source: Zhao et al., "LNS-Madam: Low-Precision Training in Logarithmic Number System using Multiplicative
Weight Update" (IEEE Transactions on Computers, 2022), its LNS dot-product unit; the word format is
:mod:`qarith.golden.common.lns`. For vectors ``a`` and ``b`` of ``K`` words the block computes, in word units
(``scale = 1``),

1. each product in the log domain: exponent ``e = E_a + E_b`` (an exact sum, one bit wider than a word's
   exponent, **not** saturated), sign ``s = s_a XOR s_b``; the product is zero if either word is zero;
2. ``e = q * gamma + r`` with ``q = floor(e / gamma)`` and ``0 <= r < gamma``, so the product is
   ``(-1)**s * 2**q * 2**(r / gamma)``;
3. the term ``t = (-1)**s * floor(2**(q + F))`` with ``F = acc_frac_bits``: a one-hot shifted 1, and 0
   when ``q + F < 0`` (**truncation**: the magnitude is truncated, then the sign applied; since ``q`` is an
   integer the magnitude is either exact or dropped whole);
4. ``S = sum over the K products of t * T[r]`` with ``T = pow2_table(fmt, table_frac_bits, method)``,
   ``T[r] ~ 2**(r / gamma) * 2**table_frac_bits``; the hardware forms ``gamma`` partial sums
   ``P[r] = sum of t over products with remainder r`` and multiplies each by ``T[r]`` once per output,
   which is the same integer ``S`` (written here as one sum over the products);
5. the output ``y = clamp(floor(S / 2**(F + table_frac_bits - out_frac_bits) + 1/2))``: ``S`` carries
   ``F + table_frac_bits`` fraction bits, the output ``out_frac_bits``; rounding is **half up** (toward
   plus infinity) and the result **saturates** to the signed ``out_width``-bit range.

Error against the decoded float dot product (:func:`lns_dot_float`), where the output does not
saturate (:func:`lns_dot_bound`): a truncated product has ``e < -F * gamma``, so each drops at most
``2**(-F - 1/gamma) < 2**-F``; a kept product ``x`` is off by ``|x| * eps`` with
``eps = max_r |T[r] / (2**(r/gamma) 2**table_frac_bits) - 1|`` (at most ``2**-(table_frac_bits + 1)``
for ``method="table"``); the output rounding adds at most half an output step.
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import OutputCodes, require_integers, width_for
from .common.lns import POW2_METHODS, LnsFormat, decode, encode, fields, pow2_table

__all__ = ["ACCUMULATIONS", "LnsDotConfig", "lns_dot", "lns_dot_float", "lns_dot_bound", "lns_dot_error", "table_error"]

#: The golden model's integers are int64: the sum (and its rounding constant) must stay below 2**62.
MAX_SUM_WIDTH = 62

#: ``lns_dot`` keeps one partial sum per exponent remainder: at most ``2**MAX_FRAC_BITS`` of them.
MAX_FRAC_BITS = 5

#: How the hardware forms ``S`` (the same integer either way): ``"remainders"``, LNS-Madam's ``gamma``
#: partial sums scaled once per output; ``"linear"``, every product converted on its own (``T[r]``
#: looked up by the remainder and shifted by ``q + F``) into one accumulator.
ACCUMULATIONS = ("remainders", "linear")


@dataclass(frozen=True)
class LnsDotConfig(LnsFormat, OutputCodes):
    """Configuration of the ``lns_dot`` block: the LNS word format plus the dot-product unit's sizes.

    Parameters
    ----------
    width, frac_bits : int
        The LNS word (:class:`~qarith.golden.common.lns.LnsFormat`); ``frac_bits`` at most 5 here (``gamma``
        partial sums, at most 32).
    lanes : int
        Element pairs per input beat, products per cycle (1..32).
    max_k : int
        Longest vector (1..65536): the partial sums are sized so that ``max_k`` products never wrap.
    acc_frac_bits : int
        Fraction bits ``F`` kept in the partial sums (0 up to :attr:`exact_acc_frac_bits`, where no
        product is truncated any more).
    table_frac_bits : int
        Fraction bits of the constants ``T[r]`` (1..24; at least ``frac_bits`` for Mitchell).
    method : str
        ``"table"`` (``T[r]`` rounded from ``2**(r / gamma)``) or ``"mitchell"`` (``1 + r / gamma``).
    accumulate : str
        ``"remainders"`` (``gamma`` partial sums, one constant multiply each per output) or ``"linear"``
        (a ``gamma``-entry table and a shifter per lane, one accumulator): see :data:`ACCUMULATIONS`.
    out_width : int
        Output width, signed (2..64; :attr:`sum_width` with ``out_frac_bits = acc_frac_bits +
        table_frac_bits`` outputs the sum ``S`` exactly).
    out_frac_bits : int
        Output fraction bits (-16 .. ``acc_frac_bits + table_frac_bits``).

    Raises
    ------
    TypeError, ValueError
        For the wrong kind of value or a value out of range, and for sizes whose sum would not fit
        62 bits.
    """
    out_signed = True  # a class constant for OutputCodes, not a field: outputs are signed
    lanes: int = 4
    max_k: int = 256
    acc_frac_bits: int = 8
    table_frac_bits: int = 8
    method: str = "table"
    out_width: int = 32
    out_frac_bits: int = 8
    accumulate: str = "remainders"

    def __post_init__(self):
        super().__post_init__()
        require_integers(self, ("lanes", "max_k", "acc_frac_bits", "table_frac_bits", "out_width",
                                "out_frac_bits"))
        if not isinstance(self.method, str):
            raise TypeError(f"method must be a string, not {self.method!r}")
        if self.method not in POW2_METHODS:
            raise ValueError(f"Method must be one of {', '.join(POW2_METHODS)}, not {self.method!r}")
        if not isinstance(self.accumulate, str):
            raise TypeError(f"accumulate must be a string, not {self.accumulate!r}")
        if self.accumulate not in ACCUMULATIONS:
            raise ValueError(f"Accumulation must be one of {', '.join(ACCUMULATIONS)}, not {self.accumulate!r}")
        if self.frac_bits > MAX_FRAC_BITS:
            raise ValueError(f"Fraction bits must be between 0 and {MAX_FRAC_BITS} for lns_dot (one partial "
                             f"sum per exponent remainder), not {self.frac_bits}")
        if not 1 <= self.lanes <= 32:
            raise ValueError(f"Lanes must be between 1 and 32, not {self.lanes}")
        if not 1 <= self.max_k <= 65536:
            raise ValueError(f"Maximum vector length must be between 1 and 65536, not {self.max_k}")
        if not 0 <= self.acc_frac_bits <= self.exact_acc_frac_bits:
            raise ValueError(f"Accumulator fraction bits must be between 0 and {self.exact_acc_frac_bits} "
                             f"for {self.width}-bit words with {self.frac_bits} fraction bits, "
                             f"not {self.acc_frac_bits}")
        if not 1 <= self.table_frac_bits <= 24:
            raise ValueError(f"Table fraction bits must be between 1 and 24, not {self.table_frac_bits}")
        pow2_table(self, self.table_frac_bits, self.method)  # Mitchell's table needs frac_bits bits
        if not 2 <= self.out_width <= 64:
            raise ValueError(f"Output width must be between 2 and 64, not {self.out_width}")
        top = self.acc_frac_bits + self.table_frac_bits
        if not -16 <= self.out_frac_bits <= top:
            raise ValueError(f"Output fraction bits must be between -16 and {top} (acc_frac_bits + "
                             f"table_frac_bits), not {self.out_frac_bits}")
        if self.sum_width > MAX_SUM_WIDTH:
            raise ValueError(f"Sum width must be at most {MAX_SUM_WIDTH} bits, not {self.sum_width} "
                             f"(max_k={self.max_k}, acc_frac_bits={self.acc_frac_bits}, "
                             f"table_frac_bits={self.table_frac_bits})")

    @property
    def q_min(self):
        """Smallest ``q = floor(e / gamma)`` of a product of nonzero words."""
        return (2 * self.emin) >> self.frac_bits

    def q_max(self, r):
        """Largest ``q`` of a product with remainder ``r``."""
        return (2 * self.emax - r) >> self.frac_bits

    @property
    def exact_acc_frac_bits(self):
        """The smallest ``acc_frac_bits`` at which no product is truncated."""
        return -self.q_min

    @property
    def shift_width(self):
        """Bits of the term's shift amount ``q + acc_frac_bits`` (unsigned, where the term is kept)."""
        return (self.q_max(0) + self.acc_frac_bits).bit_length()

    @property
    def table(self):
        """The constants ``T[r]``, ``r = 0 .. gamma - 1`` (:func:`qarith.golden.common.lns.pow2_table`)."""
        return tuple(pow2_table(self, self.table_frac_bits, self.method).tolist())

    def term_bound(self, r):
        """Largest term magnitude of remainder ``r``: ``2**(q_max(r) + acc_frac_bits)``."""
        return 1 << (self.q_max(r) + self.acc_frac_bits)

    @property
    def inc_widths(self):
        """Width of each remainder's per-beat increment (the sum of up to ``lanes`` terms)."""
        bounds = [min(self.lanes, self.max_k) * self.term_bound(r) for r in range(self.gamma)]
        return tuple(width_for(-bound, bound) for bound in bounds)

    @property
    def acc_widths(self):
        """Width of each partial sum ``P[r]``: ``max_k`` terms of the largest magnitude never wrap."""
        bounds = [self.max_k * self.term_bound(r) for r in range(self.gamma)]
        return tuple(width_for(-bound, bound) for bound in bounds)

    @property
    def sum_bound(self):
        """Largest ``|S|``: every product lands in one partial sum, so ``max_k`` times the largest
        ``term * T[r]``."""
        table = pow2_table(self, self.table_frac_bits, self.method).tolist()
        return self.max_k * max(self.term_bound(r) * table[r] for r in range(self.gamma))

    @property
    def term_product_bound(self):
        """Largest ``|t * T[r]|`` of one product (``sum_bound / max_k``)."""
        table = pow2_table(self, self.table_frac_bits, self.method).tolist()
        return max(self.term_bound(r) * table[r] for r in range(self.gamma))

    @property
    def sum_width(self):
        return width_for(-self.sum_bound, self.sum_bound)

    @property
    def out_shift(self):
        """Right shift from ``S`` to the output (``acc_frac_bits + table_frac_bits - out_frac_bits``)."""
        return self.acc_frac_bits + self.table_frac_bits - self.out_frac_bits

    @property
    def macs(self):
        """Products (LNS multiplies) per cycle."""
        return self.lanes

    @property
    def table_bytes(self):
        """Bytes of the ``gamma`` constants ``T[r]`` (held as constant multipliers, not a ROM)."""
        return self.gamma * math.ceil(max(self.table).bit_length() / 8)


def _check_vectors(cfg, a, b):
    a = torch.as_tensor(a, dtype=torch.int64)
    b = torch.as_tensor(b, dtype=torch.int64)
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"Expected word tensors a and b of one shape (vectors, K), not {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if not 1 <= a.shape[1] <= cfg.max_k:
        raise ValueError(f"Vector length must be between 1 and max_k={cfg.max_k}, not {a.shape[1]}")
    return a, b


def _products(cfg, a, b):
    """``(sign, e, nonzero)`` of the elementwise products (exponent sum not saturated)."""
    sign_a, exp_a, zero_a = fields(cfg, a)
    sign_b, exp_b, zero_b = fields(cfg, b)
    return sign_a ^ sign_b, exp_a + exp_b, ~(zero_a | zero_b)


def lns_dot(cfg, a, b):
    """The block's output codes for LNS word vectors.

    Parameters
    ----------
    cfg : LnsDotConfig
    a, b : integer tensors (vectors, K)
        Word bit patterns, ``1 <= K <= cfg.max_k``.

    Returns
    -------
    int64 tensor (vectors,)
        Signed ``out_width``-bit codes with ``out_frac_bits`` fraction bits.
    """
    a, b = _check_vectors(cfg, a, b)
    sign, e, nonzero = _products(cfg, a, b)
    q = torch.div(e, cfg.gamma, rounding_mode="floor")
    r = e - q * cfg.gamma
    shift = q + cfg.acc_frac_bits
    kept = nonzero & (shift >= 0)
    magnitude = torch.where(kept, torch.ones_like(shift) << shift.clamp(min=0), torch.zeros_like(shift))
    table = torch.tensor(cfg.table, dtype=torch.int64)
    total = (torch.where(sign == 1, -magnitude, magnitude) * table[r]).sum(dim=1)
    if cfg.out_shift > 0:
        total = (total + (1 << (cfg.out_shift - 1))) >> cfg.out_shift
    else:
        total = total << -cfg.out_shift
    return total.clamp(cfg.out_min, cfg.out_max)


def lns_dot_float(cfg, a, b):
    """The float64 dot product of the decoded words (word units): what :func:`lns_dot` approximates,
    times ``2**out_frac_bits``."""
    a, b = _check_vectors(cfg, a, b)
    return (decode(cfg, a) * decode(cfg, b)).sum(dim=1)


def table_error(cfg):
    """``eps = max_r |T[r] / (2**(r / gamma) * 2**table_frac_bits) - 1|``, the largest relative error of
    a constant (at most ``2**-(table_frac_bits + 1)`` for the table method)."""
    r = torch.arange(cfg.gamma, dtype=torch.float64)
    exact = torch.exp2(r / cfg.gamma + cfg.table_frac_bits)
    return float((torch.tensor(cfg.table, dtype=torch.float64) / exact - 1).abs().max())


def lns_dot_bound(cfg, a, b):
    """A bound on ``|lns_dot / 2**out_frac_bits - lns_dot_float|`` for every vector whose output does not
    saturate (word units, float64 tensor of shape (vectors,))::

        n_truncated * 2**(-F - 1/gamma) + eps * sum_kept |x_i| + (2**-(out_frac_bits + 1) if rounded)

    ``n_truncated`` counts the nonzero products with ``q + F < 0``, ``x_i`` are the kept products and
    ``eps`` is :func:`table_error`.
    """
    a, b = _check_vectors(cfg, a, b)
    sign, e, nonzero = _products(cfg, a, b)
    truncated = nonzero & (e < -cfg.acc_frac_bits * cfg.gamma)
    kept = nonzero & ~truncated
    magnitude = torch.where(kept, torch.exp2(e.to(torch.float64) / cfg.gamma), torch.zeros_like(e, dtype=torch.float64))
    bound = truncated.sum(dim=1).to(torch.float64) * 2.0 ** (-cfg.acc_frac_bits - 1 / cfg.gamma)
    bound = bound + table_error(cfg) * magnitude.sum(dim=1)
    if cfg.out_shift > 0:
        bound = bound + 2.0 ** -(cfg.out_frac_bits + 1)
    return bound


def _stats(values):
    values = values.to(torch.float64)
    return {"median": float(values.median()), "mean": float(values.mean()),
            "p99": float(torch.quantile(values, 0.99))}


def gaussian_config(max_k):
    """The dot-product config of the Gaussian comparisons: 8-bit words with ``b = 3``, one lane, 8
    partial-sum and 12 table fraction bits, a 48-bit output with 16 fraction bits (no saturation)."""
    return LnsDotConfig(width=8, frac_bits=3, lanes=1, max_k=max_k, acc_frac_bits=8, table_frac_bits=12,
                        out_width=48, out_frac_bits=16)


def gaussian_dot(cfg, x):
    """LNS and int8 dot products of the vector pairs ``x[0][v]``, ``x[1][v]`` (float64, shape
    ``(2, vectors, K)``), quantized per tensor:

    * LNS: ``scale = max|x| / 2**(emax / gamma)`` (the largest magnitude maps to ``emax``), words by
      :func:`~qarith.golden.common.lns.encode`, the result ``lns_dot(cfg) * 2**-out_frac_bits * scale_a * scale_b``;
    * int8: symmetric, ``scale = max|x| / 127``, codes ``round(x / scale)`` (half to even), the exact
      integer dot product times ``scale_a * scale_b``.

    Returns ``{"lns", "int8", "reference", "norms"}``: the two results, the float64 dot products and
    ``||a|| ||b||``."""
    lns_scales = [float(t.abs().max()) / 2.0 ** (cfg.emax / cfg.gamma) for t in x]
    words = [encode(cfg, t, s) for t, s in zip(x, lns_scales)]
    codes = lns_dot(cfg, words[0], words[1])
    if bool(((codes == cfg.out_min) | (codes == cfg.out_max)).any()):
        raise ValueError("gaussian_dot needs a config whose output does not saturate on this data")
    int_scales = [float(t.abs().max()) / 127 for t in x]
    ints = [torch.round(t / s).clamp(-127, 127).to(torch.int64) for t, s in zip(x, int_scales)]
    return {"lns": codes.to(torch.float64) * 2.0 ** -cfg.out_frac_bits * lns_scales[0] * lns_scales[1],
            "int8": (ints[0] * ints[1]).sum(dim=1).to(torch.float64) * int_scales[0] * int_scales[1],
            "reference": (x[0] * x[1]).sum(dim=1),
            "norms": x[0].norm(dim=1) * x[1].norm(dim=1)}


def lns_dot_error(lengths=(64, 256), vectors=2000, seed=0):
    """Error of LNS dot products (:func:`gaussian_config`) against the float64 dot product of N(0, 1)
    vector pairs, next to an int8 fixed-point dot product of the same bit budget (:func:`gaussian_dot`).

    Two error measures per method, each as median / mean / p99 over the vectors: ``"normalised"``,
    ``|y - y_ref| / (||a|| ||b||)`` (bounded, the usual measure for dot products, whose value can be
    near zero), and ``"relative"``, ``|y - y_ref| / |y_ref|`` (heavy-tailed for that reason).
    """
    gen = torch.Generator().manual_seed(seed)
    figures = {}
    for length in lengths:
        x = torch.randn(2, vectors, length, generator=gen, dtype=torch.float64)
        result = gaussian_dot(gaussian_config(max(lengths)), x)
        reference = result["reference"]
        figures[f"k{length}"] = {
            method: {"normalised": _stats((result[method] - reference).abs() / result["norms"]),
                     "relative": _stats((result[method] - reference).abs() / reference.abs())}
            for method in ("lns", "int8")}
    return figures
