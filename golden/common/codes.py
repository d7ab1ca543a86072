"""Integer code ranges shared by the golden models."""

__all__ = ["code_range", "width_for", "OutputCodes", "require_integers"]


def code_range(width, is_signed):
    """Inclusive ``(min, max)`` of an integer code of ``width`` bits (two's complement if signed)."""
    if is_signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


def width_for(low, high, is_signed=True):
    """Smallest width whose codes (two's complement if signed) hold every integer in ``[low, high]``."""
    width = 1
    while code_range(width, is_signed)[0] > low or code_range(width, is_signed)[1] < high:
        width += 1
    return width


class OutputCodes:
    """``out_min`` / ``out_max`` for a config with ``out_width`` and ``out_signed`` fields."""

    @property
    def out_min(self):
        return code_range(self.out_width, self.out_signed)[0]

    @property
    def out_max(self):
        return code_range(self.out_width, self.out_signed)[1]


def require_integers(cfg, names):
    """Raise ``TypeError`` naming the first of ``cfg``'s fields ``names`` that is not an integer (a
    bool does not count)."""
    for name in names:
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, not {value!r}")
