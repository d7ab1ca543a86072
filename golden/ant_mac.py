"""Golden model of the ``ant_mac`` block: integer matrix-multiply tiles whose weights are ANT codes.

A tile is ``C[r, c] = sum_k A[r, k] * W[k, c]`` with ``W[k, c] = decode(kind[k], B[k, c])``, the integer
value of a 4-bit ANT code (:mod:`qarith.golden.common.ant`), exact in int64. Source: Guo et al., "ANT:
Exploiting Adaptive Numerical Data Type for Low-bit Deep Neural Network Quantization" (MICRO 2022),
its processing element: the PE multiplies the activation by the decoded mantissa and shifts the product by the
decoded exponent into an integer accumulator; the dequantization scales (``alpha / max(grid)`` per
output channel for weights, the activations' scale) are applied after the reduction, outside the array.

Choices the paper leaves open, named here: the weights' signedness is fixed per config (``b_signed``:
the signed types for weights, as the reference code gives every tensor with negative values); the kind
(int, PoT, flint) arrives with every reduction step, so the type can change from tile to tile (one
type per tensor) without reconfiguring; activations are plain integers of ``a_width`` bits (int4, int8).
"""

from dataclasses import dataclass

import torch

from .common.ant import KINDS, decode, max_shift, value_range
from .common.codes import code_range, require_integers, width_for
from .mac_array import check_array

__all__ = ["AntMacConfig", "ant_mac_tiles", "ant_weights"]


@dataclass(frozen=True)
class AntMacConfig:
    """Configuration of the ``ant_mac`` block (an output-stationary ``rows x cols`` systolic array,
    :class:`~qarith.hdl.mac_array.MacArray`'s structure).

    Parameters
    ----------
    rows, cols : int
        Array size (1..32 each).
    a_width : int
        Activation width (2..8), ``a_signed`` its signedness.
    b_signed : bool
        The weights' types: the signed ANT types (sign bit and magnitude, or two's complement for int)
        or the unsigned ones.
    max_k : int
        Largest reduction depth the accumulators hold without overflow (1..65536).
    acc_width : int or None
        Accumulator width; ``None`` picks the exact width for ``max_k``; a narrower one is refused.
    input_reg, mult_reg, output_reg : bool
        As :class:`~qarith.golden.mac_array.MacArrayConfig`'s (``mult_reg`` registers the shifted
        product).
    """
    rows: int = 4
    cols: int = 4
    a_width: int = 8
    a_signed: bool = True
    b_signed: bool = True
    max_k: int = 256
    acc_width: int | None = None
    input_reg: bool = True
    mult_reg: bool = True
    output_reg: bool = False

    def __post_init__(self):
        require_integers(self, ("rows", "cols", "a_width", "max_k"))
        if not 2 <= self.a_width <= 8:
            raise ValueError(f"Activation width must be between 2 and 8, not {self.a_width}")
        check_array(self)

    # The attributes below are the ones MacArray's structure reads.
    multiplier = "fabric"
    family = None
    acc_split = 0

    @property
    def product_latency(self):
        """Cycles from a PE's operands to its product."""
        return int(self.mult_reg)

    @property
    def acc_signed(self):
        return self.a_signed or self.b_signed

    @property
    def weight_range(self):
        """``(min, max)`` of the decoded weights over every kind of the config's signedness."""
        return value_range(self.b_signed)

    @property
    def max_shift(self):
        """The largest decoded shift of the config's weight types (6 signed, 14 unsigned)."""
        return max_shift(self.b_signed)

    @property
    def product_range(self):
        a_lo, a_hi = code_range(self.a_width, self.a_signed)
        w_lo, w_hi = self.weight_range
        corners = [a_lo * w_lo, a_lo * w_hi, a_hi * w_lo, a_hi * w_hi]
        return min(corners), max(corners)

    @property
    def product_width(self):
        """Width of one PE's shifted product."""
        return width_for(*self.product_range, self.acc_signed)

    @property
    def min_acc_width(self):
        low, high = self.product_range
        return width_for(low * self.max_k, high * self.max_k, self.acc_signed)

    @property
    def acc_bits(self):
        """The accumulator width the generator uses."""
        return self.min_acc_width if self.acc_width is None else self.acc_width

    @property
    def macs(self):
        return self.rows * self.cols


def ant_weights(cfg, kind, b):
    """Integer weights of the codes ``b`` (T, K, cols), step ``k`` of tile ``t`` of kind ``kind[t, k]``
    (index into :data:`~qarith.golden.common.ant.KINDS`) and signedness ``cfg.b_signed``."""
    kind = torch.as_tensor(kind, dtype=torch.int64)
    b = torch.as_tensor(b, dtype=torch.int64)
    if kind.shape != b.shape[:2]:
        raise ValueError(f"Expected one kind per step, of shape {tuple(b.shape[:2])}, not {tuple(kind.shape)}")
    if kind.numel() and (int(kind.min()) < 0 or int(kind.max()) >= len(KINDS)):
        raise ValueError(f"Kind indices must lie in [0, {len(KINDS) - 1}] ({', '.join(KINDS)})")
    weights = torch.zeros_like(b)
    for index, name in enumerate(KINDS):
        steps = kind == index
        weights[steps] = decode(name, cfg.b_signed, b[steps])
    return weights


def ant_mac_tiles(cfg, a, kind, b):
    """Exact integer tiles of activations ``a`` and ANT weight codes ``b``.

    Parameters
    ----------
    a : integer tensor (T, rows, K)
    kind : integer tensor (T, K)
        The weights' kind at every step.
    b : integer tensor (T, K, cols)
        4-bit codes.

    Returns
    -------
    int64 tensor (T, rows, cols): the dense integer matmul of ``a`` and the decoded weights.
    """
    a = torch.as_tensor(a, dtype=torch.int64)
    b = torch.as_tensor(b, dtype=torch.int64)
    if a.dim() != 3 or b.dim() != 3 or a.shape[1] != cfg.rows or b.shape[2] != cfg.cols \
            or a.shape[2] != b.shape[1] or a.shape[0] != b.shape[0]:
        raise ValueError(f"Expected A of shape (T, {cfg.rows}, K) and B of shape (T, K, {cfg.cols}), "
                         f"not {tuple(a.shape)} and {tuple(b.shape)}")
    if not 1 <= a.shape[2] <= cfg.max_k:
        raise ValueError(f"Reduction depth must be between 1 and max_k={cfg.max_k}, not {a.shape[2]}")
    low, high = code_range(cfg.a_width, cfg.a_signed)
    if a.numel() and (int(a.min()) < low or int(a.max()) > high):
        raise ValueError(f"A codes must lie in [{low}, {high}] for a {cfg.a_width}-bit "
                         f"{'signed' if cfg.a_signed else 'unsigned'} operand")
    weights = ant_weights(cfg, kind, b)
    return (a.unsqueeze(3) * weights.unsqueeze(1)).sum(dim=2)
