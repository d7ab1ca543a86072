"""Hardware view of the LNS word (:mod:`qarith.golden.common.lns`), shared by the ``lns_*`` blocks."""

__all__ = ["word_fields"]


def word_fields(cfg, word):
    """``(sign, exponent, zero)`` of an LNS word signal (combinational)."""
    exp = word[:cfg.exp_width].as_signed()
    return word[-1], exp, exp == cfg.zero_exp
