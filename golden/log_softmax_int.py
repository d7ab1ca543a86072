"""Golden model of the ``log_softmax_int`` block: FQ-ViT's Log-Int-Softmax.

Source: Lin et al., "FQ-ViT: Post-Training Quantization for Fully Quantized Vision Transformer" (IJCAI 2022),
section 3.3 (Log-Int-Softmax; reference code megvii-research/FQ-ViT), with Kim et al.'s i-exp, "I-BERT:
Integer-only BERT Quantization" (ICML 2021), section 3.4. The codes feed ``attn_v``
(:mod:`qarith.golden.attn_v`).

``log_softmax_int`` on a row of ``n`` integer scores ``x`` at scale ``S``::

    e_i   = ibert_exp(x_i - max(x))               # I-BERT's i-exp (qarith.golden.common.shift_exp), n = 30
    s     = sum_i e_i
    v_i   = round(s / e_i)                        # half to even, as torch.round; v_i >= 1
    r_i   = floor(log2 v_i) + [v_i - 2**f >= 2**(f - 1)]      # f = floor(log2 v_i): log2 rounded
    zero_i = r_i >= 2**bits;  code_i = min(r_i, 2**bits - 1)

so the attention weight is ``2**-code_i`` (or 0 when ``zero_i``): 4-bit log2 codes by default. The
reference computes ``v`` and the logarithm in floating point; this model uses exact integers.
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import require_integers
from .common.ragged import by_length, check_variable_length
from .common.shift_exp import ibert_constants, ibert_exp

__all__ = ["LogSoftmaxIntConfig", "log_round", "log_softmax_int"]


@dataclass(frozen=True)
class LogSoftmaxIntConfig:
    """Configuration of the ``log_softmax_int`` block.

    Parameters
    ----------
    n : int
        Row length (1..4096).
    in_width : int
        Width of the signed input score codes (2..16).
    scale : float
        Real value of one input step (positive).
    bits : int
        Width of the log2 code (1..4; 4 in FQ-ViT; 5 would need comparisons beyond 62 bits).
    variable_length : bool
        Rows of any length ``1..n``, each ended by the input's ``last`` (payloads ``{"data", "last"}``
        in and out; :mod:`qarith.golden.common.ragged`); ``False``: every row has ``n`` elements.
    """
    n: int = 64
    in_width: int = 8
    scale: float = 0.0625
    bits: int = 4
    variable_length: bool = False

    def __post_init__(self):
        check_variable_length(self)
        require_integers(self, ("n", "in_width", "bits"))
        if not isinstance(self.scale, (int, float)) or isinstance(self.scale, bool):
            raise TypeError(f"scale must be a number, not {self.scale!r}")
        if not 1 <= self.n <= 4096:
            raise ValueError(f"Row length must be between 1 and 4096, not {self.n}")
        if not 2 <= self.in_width <= 16:
            raise ValueError(f"Input width must be between 2 and 16, not {self.in_width}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"Scale must be a positive finite number, not {self.scale!r}")
        if not 1 <= self.bits <= 4:
            raise ValueError(f"Code width must be between 1 and 4, not {self.bits}")
        if self.scale >= -IBERT_X0_LIMIT:
            raise ValueError(f"Scale {self.scale} makes x0 = floor(-ln 2 / scale) -1 or less precise than "
                             f"one step; use a scale below {-IBERT_X0_LIMIT}")
        # Scales of 2**-16 or finer give e(0) = floor(c' / S**2) << 30 of 64 bits or more (and a subnormal
        # scale overflows the float division): refused before the width is computed.
        if self.scale <= 2.0 ** -16 or self.compare_width > 62:
            raise ValueError(f"Scale {self.scale} and row length {self.n} make the exponentials too wide "
                             f"(more than 62 bits in the comparisons); use a coarser scale or a shorter row")

    @property
    def e_max(self):
        """``e(0) = c << 30``."""
        return ibert_constants(self.scale)[2] << 30

    @property
    def sum_width(self):
        return (self.n * self.e_max).bit_length()

    @property
    def levels(self):
        """``2**bits``: codes ``0 .. levels - 1``, and ``r >= levels`` is zero."""
        return 1 << self.bits

    @property
    def compare_width(self):
        """Bits of the hardware's comparisons ``2 s`` against ``(2 T - 1) e`` (see the generator)."""
        return max((2 * self.n * self.e_max).bit_length(), (((3 << (self.levels - 1)) - 1) * self.e_max).bit_length())


#: ``x0 = floor(-0.6931 / S)`` must be at most -2 (a scale below ln 2 / 2) for ``r`` to have a range.
IBERT_X0_LIMIT = -0.6931 / 2


def log_round(v):
    """``floor(log2 v) + [v - 2**f >= 2**(f - 1)]`` for integers ``v >= 1`` (FQ-ViT's ``log_round``)."""
    v = torch.as_tensor(v, dtype=torch.int64)
    f = torch.zeros_like(v)
    for bit in range(1, 63):
        f = torch.where(v >> bit != 0, torch.full_like(v, bit), f)
    extra = (v - (torch.ones_like(v) << f)) * 2 >= (torch.ones_like(v) << f)
    return f + (extra & (f > 0)).to(torch.int64)


def log_softmax_int(cfg, x, lengths=None):
    """``(code, zero)`` int64 tensors for rows of input codes ``x`` (``(..., n)``). With ``lengths``, each
    row is its first ``L`` elements alone (``(0, 0)`` beyond them;
    :func:`qarith.golden.common.ragged.by_length`)."""
    if lengths is not None:
        return by_length(lambda rows: _log_softmax_rows(cfg, rows), cfg.n, lengths, x)
    x = torch.as_tensor(x, dtype=torch.int64)
    if x.shape[-1] != cfg.n:
        raise ValueError(f"Rows must have {cfg.n} elements, not {x.shape[-1]}")
    return _log_softmax_rows(cfg, x)


def _log_softmax_rows(cfg, x):
    e = ibert_exp(x - x.amax(dim=-1, keepdim=True), cfg.scale)
    s = e.sum(dim=-1, keepdim=True)
    q = torch.div(s, e, rounding_mode="floor")
    twice = 2 * (s - q * e)
    v = q + ((twice > e) | ((twice == e) & (q % 2 == 1))).to(torch.int64)
    r = log_round(v)
    return r.clamp(max=cfg.levels - 1), (r >= cfg.levels).to(torch.int64)
