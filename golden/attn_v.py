"""Golden model of the ``attn_v`` block: attention times ``V`` from log2 attention codes, no multiplier.

Source: Lin et al., "FQ-ViT" (IJCAI 2022), section 3.3: with Log-Int-Softmax's codes the attention weight
is ``2**-code``, so the product with ``V`` becomes a shift. The codes come from ``log_softmax_int``
(:mod:`qarith.golden.log_softmax_int`).

``attn_v`` (:func:`attn_v`): for a row of codes and a column of ``V`` (signed integers),
``sum_j V_j 2**-code_j`` over the elements that are not ``zero``: with ``rounding="floor"`` each term is
``V_j >> code_j`` (the literal shift-and-add form, each shift floors); with ``rounding="exact"`` each
term is ``V_j << (2**bits - 1 - code_j)``, the exact sum at scale ``2**-(2**bits - 1)``.
"""

from dataclasses import dataclass

import torch

from .common.codes import code_range, require_integers
from .common.ragged import by_length, check_variable_length

__all__ = ["AttnVConfig", "attn_v", "ROUNDINGS"]

ROUNDINGS = ("floor", "exact")


@dataclass(frozen=True)
class AttnVConfig:
    """Configuration of the ``attn_v`` block.

    Parameters
    ----------
    n : int
        Row length (1..4096): the terms of one output.
    v_width : int
        Width of the signed ``V`` values (2..16).
    bits : int
        Width of the log2 attention codes (1..5).
    rounding : str
        ``"floor"`` (``V >> code``) or ``"exact"`` (``V << (2**bits - 1 - code)``).
    variable_length : bool
        Rows of any length ``1..n``, each ended by the input beat's ``last`` field
        (:mod:`qarith.golden.common.ragged`); ``False``: every row has ``n`` terms.
    """
    n: int = 64
    v_width: int = 8
    bits: int = 4
    rounding: str = "exact"
    variable_length: bool = False

    def __post_init__(self):
        check_variable_length(self)
        require_integers(self, ("n", "v_width", "bits"))
        if not 1 <= self.n <= 4096:
            raise ValueError(f"Row length must be between 1 and 4096, not {self.n}")
        if not 2 <= self.v_width <= 16:
            raise ValueError(f"V width must be between 2 and 16, not {self.v_width}")
        if not 1 <= self.bits <= 5:
            raise ValueError(f"Code width must be between 1 and 5, not {self.bits}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"Rounding must be one of {', '.join(ROUNDINGS)}, not {self.rounding!r}")

    @property
    def levels(self):
        return 1 << self.bits

    @property
    def out_width(self):
        """Signed width of the row sum."""
        low, high = code_range(self.v_width, True)
        shift = self.levels - 1 if self.rounding == "exact" else 0
        return max((abs(low) * self.n << shift).bit_length(), (high * self.n << shift).bit_length()) + 1


def attn_v(cfg, code, zero, v, lengths=None):
    """Row sums (``(...,)``) of ``V 2**-code`` over the non-zero terms of rows ``(..., n)``; with
    ``lengths``, over each row's first ``L`` terms alone (:func:`qarith.golden.common.ragged.by_length`)."""
    if lengths is not None:
        return by_length(lambda *rows: _attn_v_rows(cfg, *rows), cfg.n, lengths, code, zero, v)
    return _attn_v_rows(cfg, code, zero, v)


def _attn_v_rows(cfg, code, zero, v):
    code, zero, v = (torch.as_tensor(t, dtype=torch.int64) for t in (code, zero, v))
    if cfg.rounding == "floor":
        terms = v >> code
    else:
        terms = v << (cfg.levels - 1 - code)
    return torch.where(zero.bool(), torch.zeros_like(terms), terms).sum(dim=-1)
