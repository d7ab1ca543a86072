"""Golden model of the ``lns_mul`` block: LNS products, lane by lane.

Source: Zhao et al., "LNS-Madam: Low-Precision Training in Logarithmic Number System using Multiplicative
Weight Update" (IEEE Transactions on Computers, 2022): in the LNS a product is the sum of the
exponents and the XOR of the signs. The word format and its saturate / flush-to-zero rules are
:mod:`qarith.golden.common.lns`.
"""

from dataclasses import dataclass

from .common.lns import LnsFormat, check_lanes, fields, join

__all__ = ["LnsMulConfig", "lns_mul"]


@dataclass(frozen=True)
class LnsMulConfig(LnsFormat):
    """Configuration of the ``lns_mul`` block: ``lanes`` LNS products per beat (the format's fields and
    ``lanes``, 1..64)."""
    lanes: int = 4

    def __post_init__(self):
        super().__post_init__()
        check_lanes(self)


def lns_mul(fmt, a, b):
    """LNS product of word tensors ``a`` and ``b`` (broadcast): exponents add, signs XOR; zero if either
    operand is zero; the sum saturates above ``emax`` and flushes to zero below ``emin``."""
    sign_a, exp_a, zero_a = fields(fmt, a)
    sign_b, exp_b, zero_b = fields(fmt, b)
    return join(fmt, sign_a ^ sign_b, exp_a + exp_b, zero_a | zero_b)
