"""Integer code ranges shared by the golden models."""

__all__ = ["code_range"]


def code_range(width, is_signed):
    """Inclusive ``(min, max)`` of an integer code of ``width`` bits (two's complement if signed)."""
    if is_signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1
