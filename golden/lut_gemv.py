"""LUT-GEMM: matrix-vector products with binary-coded (BCQ) weights by table lookup.

Sources: Park et al., "nuQmm: Quantized MatMul for Efficient Inference of Large-Scale Generative
Language Models" (arXiv 2206.09557, 2022) and its revision "LUT-GEMM: Quantized Matrix Multiplication
based on LUTs for Efficient Inference in Large-Scale Generative Language Models" (ICLR 2024); the
equations are the papers' and their reference code's (naver-aics/lut-gemm, ``examples/bcq.py``,
``examples/rtn_parameter.py``, the CUDA kernel ``_nqmv``).

Weights (section 3.1 of LUT-GEMM, binary-coding quantization): row ``m`` of ``W (M, K)`` is cut into
scale groups of ``group_size`` columns, and in scale group ``s``

    ``W[m, k] ~ sum_i alpha[m, i, s] * b[m, k, i]``,  ``b`` in {-1, +1}, ``i = 0 .. q-1``

(plus an optional offset ``z[m, s]``, which this module carries as one more plane whose bits are all
+1 and whose alpha is ``z``). :func:`bcq_quantize` finds ``alpha`` and ``b`` as the reference code does:
greedy (``b = sign(r)``, ``alpha = mean |r|`` over the group, ``r -= alpha b``), then ``rounds`` rounds
of alternating refinement (``alpha`` by least squares given ``b``, made positive and sorted descending;
``b`` as the nearest of the ``2**q`` sums ``sum_i +-alpha_i``, ties to the larger sum). Uniform
round-to-nearest weights ``w = s (q - zp)`` (:func:`rtn_quantize`) are converted exactly
(:func:`rtn_to_bcq`): ``alpha_i = s 2**(i-1)``, ``b_i = 2 bit_i(q) - 1``, ``z = s ((2**q - 1)/2 - zp)``.

Product (LUT-GEMM section 3.2, eq. 4 and 5): the input ``x`` is cut into groups of ``mu`` elements; for
group ``g`` the table

    ``T_g[p] = sum_j (2 bit_j(p) - 1) x[mu g + j]``,  ``p = 0 .. 2**mu - 1`` (bit ``j``, LSB first,
    stands for input ``mu g + j``)

holds every signed sum of the group, so that ``sum_j b[m, mu g + j, i] x[mu g + j] = T_g[byte]`` where
``byte`` packs the group's weight bits (bit ``j`` set = +1). Then

    ``y[m] = sum_i sum_s alpha[m, i, s] * sum_{g in s} T_g[byte[m, i, g]]``.

The table is symmetric, ``T_g[2**mu - 1 - p] = -T_g[p]``, so only the half with bit ``mu - 1`` set is
stored (:func:`half_tables`). In the integer model here ``x`` are integer codes (int8 by default) and
``alpha`` are signed integer codes of ``alpha_width`` bits (the fixed-point format: real alpha =
code * 2**alpha_exponent, one exponent per layer chosen by :func:`quantize_alphas`), so ``y`` is an
exact integer in units of ``x_scale * 2**alpha_exponent``; every sum is exact (no rounding anywhere,
unlike the reference kernel's fp16 tables). Padding ``K`` to a multiple of ``mu`` with ``x = 0`` is
exact. Rounding choices, named: ``sign(0)`` is +1 in the greedy step (the reference gives 0, not a
binary code); alpha codes round half to even (``torch.round``) and saturate at the code range.
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import code_range, require_integers, width_for

__all__ = ["LutGemvConfig", "sign_matrix", "lut_tables", "half_tables", "half_index", "gray_order",
           "lut_gemv", "dense_gemv", "pack_bits", "unpack_bits", "rebuild_weights", "bcq_quantize",
           "rtn_quantize", "rtn_to_bcq", "quantize_alphas", "with_offset", "bcq_offset_planes"]


@dataclass(frozen=True)
class LutGemvConfig:
    """Configuration of the ``lut_gemv`` block.

    Parameters
    ----------
    mu : int
        Inputs per table (2..8): each table has ``2**mu`` entries, ``2**(mu-1)`` stored.
    lanes : int
        Rows read and accumulated per cycle (1..16), each with its own table read port.
    bits : int
        Weight bit-planes ``q`` (1..8).
    offset : bool
        One more plane per row and scale group for the offset ``z`` (all bits +1, alpha = ``z``).
    group_size : int
        Columns sharing one alpha (a multiple of ``mu``; at most ``max_k``).
    max_k : int
        Largest input length (a multiple of ``mu``, at most 4096): ``max_k / mu`` tables are held.
    x_width : int
        Signed input code width (2..16).
    alpha_width : int
        Signed alpha code width (2..24).
    """
    mu: int = 8
    lanes: int = 1
    bits: int = 3
    offset: bool = True
    group_size: int = 64
    max_k: int = 128
    x_width: int = 8
    alpha_width: int = 12

    def __post_init__(self):
        require_integers(self, ("mu", "lanes", "bits", "group_size", "max_k", "x_width", "alpha_width"))
        if not isinstance(self.offset, bool):
            raise TypeError(f"offset must be a bool, not {self.offset!r}")
        if not 2 <= self.mu <= 8:
            raise ValueError(f"Table group size mu must be between 2 and 8, not {self.mu}")
        if not 1 <= self.lanes <= 16:
            raise ValueError(f"Lanes must be between 1 and 16, not {self.lanes}")
        if not 1 <= self.bits <= 8:
            raise ValueError(f"Weight bits must be between 1 and 8, not {self.bits}")
        if not 1 <= self.max_k <= 4096 or self.max_k % self.mu:
            raise ValueError(f"Maximum input length must be a multiple of mu={self.mu} between {self.mu} "
                             f"and 4096, not {self.max_k}")
        if not 1 <= self.group_size <= self.max_k or self.group_size % self.mu:
            raise ValueError(f"Scale group size must be a multiple of mu={self.mu} between {self.mu} and "
                             f"max_k={self.max_k}, not {self.group_size}")
        if not 2 <= self.x_width <= 16:
            raise ValueError(f"Input width must be between 2 and 16, not {self.x_width}")
        if not 2 <= self.alpha_width <= 24:
            raise ValueError(f"Alpha width must be between 2 and 24, not {self.alpha_width}")

    @property
    def half(self):
        """Stored entries per table, ``2**(mu-1)``: the half with bit ``mu - 1`` set."""
        return 1 << (self.mu - 1)

    @property
    def groups(self):
        """Tables held: ``max_k / mu``."""
        return self.max_k // self.mu

    @property
    def planes(self):
        """Planes per row and scale group: ``bits``, plus one for the offset."""
        return self.bits + int(self.offset)

    @property
    def x_range(self):
        return code_range(self.x_width, True)

    @property
    def alpha_range(self):
        return code_range(self.alpha_width, True)

    @property
    def table_bound(self):
        """Largest ``|T_g[p]|``: ``mu * 2**(x_width-1)`` (all inputs at the minimum code)."""
        return self.mu << (self.x_width - 1)

    @property
    def table_width(self):
        """Bits of a table entry (signed)."""
        return width_for(-self.table_bound, self.table_bound)

    @property
    def partial_width(self):
        """Bits of one plane's sum over a scale group's tables (``group_size / mu`` reads)."""
        bound = self.table_bound * (self.group_size // self.mu)
        return width_for(-bound, bound)

    @property
    def product_bound(self):
        """Largest ``|alpha * partial|``."""
        return (self.table_bound * (self.group_size // self.mu)) << (self.alpha_width - 1)

    @property
    def product_width(self):
        return width_for(-self.product_bound, self.product_bound)

    @property
    def acc_width(self):
        """Bits of a row's sum over ``planes`` planes and every scale group of ``max_k``: never wraps."""
        groups = -(-self.max_k // self.group_size)
        bound = self.product_bound * self.planes * groups
        return width_for(-bound, bound)

    @property
    def table_entries(self):
        """Stored table entries: ``max_k / mu`` tables of ``2**(mu-1)``."""
        return self.groups * self.half

    @property
    def table_bytes(self):
        """Bytes of table memory per read port (lane), whole bytes per entry."""
        return self.table_entries * -(-self.table_width // 8)


def sign_matrix(mu):
    """``S[p, j] = 2 bit_j(p) - 1`` for ``p = 0 .. 2**mu - 1``: row ``p`` is the sign pattern of byte ``p``."""
    p = torch.arange(1 << mu).unsqueeze(1)
    return ((p >> torch.arange(mu)) & 1) * 2 - 1


def _groups(cfg, x):
    x = torch.as_tensor(x, dtype=torch.int64)
    if x.shape[-1] % cfg.mu:
        x = torch.nn.functional.pad(x, (0, cfg.mu - x.shape[-1] % cfg.mu))   # x = 0 adds nothing
    return x.reshape(*x.shape[:-1], -1, cfg.mu)


def lut_tables(cfg, x):
    """Full tables ``T (..., G, 2**mu)`` of inputs ``x (..., K)`` (eq. 4): ``T[g, p] = sum_j S[p, j] x[mu g + j]``."""
    return _groups(cfg, x) @ sign_matrix(cfg.mu).T


def half_tables(cfg, x):
    """The stored half ``H (..., G, 2**(mu-1))``: ``H[g, p] = T[g, p + 2**(mu-1)]`` (bit ``mu - 1`` set)."""
    return lut_tables(cfg, x)[..., cfg.half:]


def half_index(cfg, byte):
    """Where byte ``p`` is read from the half table: ``(index, negate)``. With bit ``mu - 1`` set,
    ``T[p] = H[p - 2**(mu-1)]``; otherwise ``T[p] = -T[2**mu - 1 - p] = -H[(2**mu - 1 - p) - 2**(mu-1)]``."""
    byte = torch.as_tensor(byte, dtype=torch.int64)
    negate = (byte >> (cfg.mu - 1)) & 1 == 0
    mirrored = torch.where(negate, (1 << cfg.mu) - 1 - byte, byte)
    return mirrored - cfg.half, negate


def gray_order(cfg):
    """The order the hardware writes a half table: step ``n`` writes entry ``n XOR (n >> 1)`` (Gray
    code), so each entry is the previous one plus or minus ``2 x_j`` for the one bit ``j`` that flips."""
    n = torch.arange(cfg.half)
    return n ^ (n >> 1)


def pack_bits(cfg, b):
    """Binary codes ``b (..., K)`` in {-1, +1} as bytes ``(..., K / mu)``: bit ``j`` of byte ``g`` is
    ``b[mu g + j] == +1`` (the reference's layout, one byte per table instead of 32 bits per word)."""
    b = torch.as_tensor(b, dtype=torch.int64)
    if not bool(((b == 1) | (b == -1)).all()):
        raise ValueError("Binary codes must be -1 or +1")
    bits = (b > 0).to(torch.int64)
    if bits.shape[-1] % cfg.mu:
        bits = torch.nn.functional.pad(bits, (0, cfg.mu - bits.shape[-1] % cfg.mu))
    bits = bits.reshape(*bits.shape[:-1], -1, cfg.mu)
    return (bits << torch.arange(cfg.mu)).sum(-1)


def unpack_bits(cfg, byte):
    """Inverse of :func:`pack_bits`: ``(..., G)`` bytes to ``(..., G * mu)`` codes in {-1, +1}."""
    byte = torch.as_tensor(byte, dtype=torch.int64)
    signs = ((byte.unsqueeze(-1) >> torch.arange(cfg.mu)) & 1) * 2 - 1
    return signs.reshape(*byte.shape[:-1], -1)


def _check_gemv(cfg, x, byte, alpha):
    x = torch.as_tensor(x, dtype=torch.int64)
    byte = torch.as_tensor(byte, dtype=torch.int64)
    alpha = torch.as_tensor(alpha, dtype=torch.int64)
    groups = -(-x.shape[-1] // cfg.mu)
    per_scale = cfg.group_size // cfg.mu
    if x.shape[-1] > cfg.max_k:
        raise ValueError(f"Input length {x.shape[-1]} exceeds max_k={cfg.max_k}")
    if byte.dim() != 3 or byte.shape[2] != groups:
        raise ValueError(f"Weight bytes must have shape (rows, planes, {groups}), not {tuple(byte.shape)}")
    if alpha.shape != (byte.shape[0], byte.shape[1], -(-groups // per_scale)):
        raise ValueError(f"Alpha codes must have shape {(byte.shape[0], byte.shape[1], -(-groups // per_scale))}, "
                         f"not {tuple(alpha.shape)}")
    low, high = cfg.x_range
    if bool(((x < low) | (x > high)).any()):
        raise ValueError(f"Input codes must lie in [{low}, {high}]")
    low, high = cfg.alpha_range
    if bool(((alpha < low) | (alpha > high)).any()):
        raise ValueError(f"Alpha codes must lie in [{low}, {high}]")
    if bool(((byte < 0) | (byte >= 1 << cfg.mu)).any()):
        raise ValueError(f"Weight bytes must lie in [0, {(1 << cfg.mu) - 1}]")
    return x, byte, alpha


def lut_gemv(cfg, x, byte, alpha):
    """The ``lut_gemv`` block (eq. 5): ``x (..., K)`` input codes, ``byte (M, P, G)`` weight bits per
    row, plane and table group (:func:`pack_bits`), ``alpha (M, P, S)`` alpha codes per row, plane and
    scale group; returns ``y (..., M)`` exactly, by table lookup."""
    x, byte, alpha = _check_gemv(cfg, x, byte, alpha)
    tables = lut_tables(cfg, x)                                    # (..., G, 2**mu)
    looked_up = tables[..., torch.arange(tables.shape[-2]), byte]  # (..., M, P, G): T_g[byte]
    per_scale = cfg.group_size // cfg.mu
    pad = -looked_up.shape[-1] % per_scale
    padded = torch.nn.functional.pad(looked_up, (0, pad))
    partial = padded.reshape(*padded.shape[:-1], -1, per_scale).sum(-1)
    return (alpha * partial).sum(dim=(-2, -1))


def rebuild_weights(cfg, byte, alpha, k):
    """The dense integer weights the codes stand for: ``W[m, k] = sum_i alpha[m, i, s(k)] b[m, k, i]``,
    shape ``(M, k)``."""
    byte = torch.as_tensor(byte, dtype=torch.int64)
    alpha = torch.as_tensor(alpha, dtype=torch.int64)
    b = unpack_bits(cfg, byte)[..., :k]                                        # (M, P, k)
    a = alpha.repeat_interleave(cfg.group_size, dim=2)[..., :k]               # (M, P, k)
    return (a * b).sum(1)


def dense_gemv(cfg, x, byte, alpha):
    """``rebuild_weights(...) @ x``: the product the table lookup must equal."""
    x = torch.as_tensor(x, dtype=torch.int64)
    return rebuild_weights(cfg, byte, alpha, x.shape[-1]) @ x


def _sign_plus(r):
    return torch.where(r >= 0, 1.0, -1.0).to(r.dtype)


def _nearest_codes(w, alpha):
    """Per row of ``w (N, n)`` the nearest of the ``2**q`` sums of ``+-alpha (N, q)``, ties to the larger
    sum (the reference's binary search goes right when ``w`` equals a midpoint); returns ``b (N, n, q)``."""
    q = alpha.shape[1]
    patterns = -sign_matrix(q).to(alpha.dtype)              # row p: bit i set means -1
    values = alpha @ patterns.T                              # (N, 2**q)
    order = values.argsort(dim=1, stable=True)
    sorted_values = values.gather(1, order)
    mids = (sorted_values[:, :-1] + sorted_values[:, 1:]) / 2
    position = torch.searchsorted(mids.contiguous(), w.contiguous(), right=True)
    return patterns[order.gather(1, position)]


def bcq_quantize(w, bits, group_size, rounds=15):
    """Binary-coding quantization of ``w (M, K)`` (float): returns ``alpha (M, bits, K / group_size)``
    (float, non-negative, descending in ``i``) and ``b (M, K, bits)`` in {-1, +1}.

    The reference's ``greedy_mean_torch`` then ``rounds`` rounds of ``refine_mean_torch`` (no weighting
    factors): alpha by least squares over each group given ``b`` (solved exactly here; the reference runs
    ``q`` conjugate-gradient steps, exact in exact arithmetic), ``|alpha|`` sorted descending, then ``b``
    as each weight's nearest representable value. ``rounds`` is skipped for ``bits = 1`` (the greedy
    ``alpha = mean |w|`` is already optimal), as in the reference.
    """
    w = torch.as_tensor(w, dtype=torch.float64)
    rows, k = w.shape
    if k % group_size:
        raise ValueError(f"Input length {k} must be a multiple of the scale group size {group_size}")
    groups = w.reshape(-1, group_size)
    residual = groups.clone()
    b = torch.zeros(*groups.shape, bits, dtype=torch.float64)
    alpha = torch.zeros(groups.shape[0], bits, dtype=torch.float64)
    for i in range(bits):
        b[:, :, i] = _sign_plus(residual)
        alpha[:, i] = residual.abs().mean(dim=1)
        residual -= b[:, :, i] * alpha[:, i:i + 1]
    if bits > 1:
        for _ in range(rounds):
            gram = b.transpose(1, 2) @ b                                     # (N, q, q)
            rhs = (b.transpose(1, 2) @ groups.unsqueeze(-1)).squeeze(-1)     # (N, q)
            alpha = (torch.linalg.pinv(gram) @ rhs.unsqueeze(-1)).squeeze(-1)
            alpha = alpha.abs().sort(dim=1, descending=True).values
            b = _nearest_codes(groups, alpha)
    alpha = alpha.reshape(rows, k // group_size, bits).permute(0, 2, 1).contiguous()
    return alpha, b.reshape(rows, k, bits)


def rtn_quantize(w, bits, group_size):
    """Uniform asymmetric round-to-nearest over each scale group, as the reference's ``Quantizer``
    (``sym=False``): the range is widened to include 0, ``s = (max - min) / (2**bits - 1)``,
    ``zp = round(-min / s)``, ``q = clamp(round(w / s) + zp, 0, 2**bits - 1)``; returns ``s, zp``
    ``(M, K / group_size)`` and ``q (M, K)``. The weights stand for ``s (q - zp)``."""
    w = torch.as_tensor(w, dtype=torch.float64)
    rows, k = w.shape
    groups = w.reshape(rows, k // group_size, group_size)
    low = groups.amin(-1).clamp(max=0)
    high = groups.amax(-1).clamp(min=0)
    empty = (low == 0) & (high == 0)
    low, high = torch.where(empty, -1.0, low), torch.where(empty, 1.0, high)
    top = (1 << bits) - 1
    scale = (high - low) / top
    zero = torch.round(-low / scale)
    q = torch.clamp(torch.round(groups / scale.unsqueeze(-1)) + zero.unsqueeze(-1), 0, top)
    return scale, zero, q.reshape(rows, k).to(torch.int64)


def rtn_to_bcq(scale, zero, q, bits, group_size):
    """Exact conversion of RTN weights to BCQ with an offset (reference ``convert_bcq_format``):
    ``alpha (M, bits, S)`` with ``alpha_i = s 2**(i-1)``, ``b (M, K, bits)`` with ``b_i = 2 bit_i(q) - 1``
    and ``z (M, S) = s ((2**bits - 1) / 2 - zp)``; ``sum_i alpha_i b_i + z = s (q - zp)``."""
    q = torch.as_tensor(q, dtype=torch.int64)
    b = ((q.unsqueeze(-1) >> torch.arange(bits)) & 1) * 2 - 1
    alpha = scale.unsqueeze(1) * torch.exp2(torch.arange(bits, dtype=torch.float64) - 1).view(1, -1, 1)
    z = scale * (((1 << bits) - 1) / 2 - zero)
    return alpha, b.to(torch.float64), z


def bcq_offset_planes(cfg, k, rows):
    """The offset plane's bytes: every bit +1, ``(rows, 1, ceil(k / mu))`` of ``2**mu - 1``."""
    return torch.full((rows, 1, -(-k // cfg.mu)), (1 << cfg.mu) - 1, dtype=torch.int64)


def with_offset(cfg, byte, alpha, z):
    """Append the offset plane (bits all +1, alpha ``z (M, S)``) to ``byte (M, q, G)`` and ``alpha (M, q, S)``.
    Padding columns read +1 bits too; they meet ``x = 0`` and add nothing."""
    byte = torch.as_tensor(byte, dtype=torch.int64)
    ones = torch.full_like(byte[:, :1], (1 << cfg.mu) - 1)
    return torch.cat([byte, ones], dim=1), torch.cat([torch.as_tensor(alpha), torch.as_tensor(z).unsqueeze(1)], dim=1)


def quantize_alphas(cfg, alpha):
    """Float alphas (any shape, any sign) as signed ``alpha_width``-bit codes with one power-of-two
    exponent: ``alpha ~ code * 2**exponent``, the smallest exponent at which the largest ``|alpha|``
    rounds inside the code range. Returns ``(code, exponent)``; codes round half to even."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    top = cfg.alpha_range[1]
    largest = float(alpha.abs().max())
    if largest == 0:
        return torch.zeros_like(alpha, dtype=torch.int64), 0
    exponent = math.ceil(math.log2(largest / top))
    while torch.round(torch.tensor(largest) / 2.0 ** exponent) > top:
        exponent += 1
    code = torch.round(alpha / 2.0 ** exponent).clamp(*cfg.alpha_range).to(torch.int64)
    return code, exponent
