"""Pipelined integer arithmetic shared by the blocks: every function builds register stages into a
module through a ``register(target, value)`` function, so the same stages serve a free-running pipeline
(plain ``m.d.sync``) and one that stalls with its consumer.

* :func:`divide_stages`: ``floor(numerator / divisor)`` for a constant numerator, one restoring
  compare-and-subtract stage per quotient bit (a new division can start every cycle);
* :func:`floor_divide_constant`: ``floor(value / divisor)`` for a constant divisor, as a multiply by
  ``ceil(2**k / divisor)`` and a shift (exact over the stated range);
* :func:`floor_divide_length`: the same for a divisor ``L`` that changes from row to row (a row's
  length, ``1 .. count``), the multiplier from a table of ``count`` constants;
* :func:`isqrt_stages`: ``floor(sqrt(value))``, digit by digit, one stage per root bit;
* :func:`delay`: a value carried through registers alongside such stages;
* :func:`thermometer_count`: the number of ones of a thermometer code, without an adder tree.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Signal, unsigned

__all__ = ["delay", "divide_stages", "floor_divide_constant", "floor_divide_length", "isqrt_stages",
           "thermometer_count"]


def delay(value, stages, register, name):
    """``value`` after ``stages`` registers (``{name}_0``, ``{name}_1``, ...)."""
    for stage in range(stages):
        later = Signal.like(value, name=f"{name}_{stage}")
        register(later, value)
        value = later
    return value


def thermometer_count(code, values=None, width=None):
    """The number of ones ``q`` of ``code``, a thermometer code (bit ``k`` set implies bit ``k - 1``
    set), or with ``values`` the constant ``values[q]`` (as ``width`` bits, two's complement), as a
    combinational value: bit ``j`` of the result is the OR of the one-hot edges at the counts whose
    value has bit ``j`` set, two or three LUT levels where a popcount's adder tree (or a multiplier)
    is several carry chains."""
    n = len(code)
    if values is None:
        values, width = range(n + 1), n.bit_length()
    edges = [~code[0]] + [code[k - 1] & ~code[k] for k in range(1, n)] + [code[n - 1]]
    return Cat(*(Cat(*(edges[k] for k in range(n + 1) if values[k] >> bit & 1)).any() for bit in range(width)))


def divide_stages(m, numerator, divisor, quotient_width, register, name="div"):
    """``floor(numerator / divisor)`` for a constant ``numerator`` and a divisor at least
    ``numerator >> quotient_width`` + 1 (so the quotient fits ``quotient_width`` bits), after
    ``quotient_width`` registers. Returns ``(quotient, stage_count)``."""
    width = max(numerator.bit_length(), len(divisor)) + 1
    remainder = Const(numerator, unsigned(width))
    quotient = Const(0, unsigned(quotient_width))
    current_divisor = divisor
    for bit in reversed(range(quotient_width)):
        trial = current_divisor << bit
        fits = remainder >= trial
        next_remainder = Signal(unsigned(width), name=f"{name}_rem{bit}")
        next_quotient = Signal(unsigned(quotient_width), name=f"{name}_quo{bit}")
        next_divisor = Signal.like(divisor, name=f"{name}_div{bit}")
        register(next_remainder, Mux(fits, remainder - trial, remainder))
        register(next_quotient, quotient | Mux(fits, 1 << bit, 0))
        register(next_divisor, current_divisor)
        remainder, quotient, current_divisor = next_remainder, next_quotient, next_divisor
    return quotient, quotient_width


def floor_divide_constant(m, value, divisor, low, high, register, name="cdiv"):
    """``floor(value / divisor)`` for a signed ``value`` in ``[low, high]`` and a positive constant
    ``divisor``, after two registers: ``v = value + B divisor >= 0``, ``q = (v M) >> k - B`` with
    ``M = ceil(2**k / divisor)`` and ``2**k >= (V + 1) divisor`` for every ``v <= V``, which makes the
    product's error ``v (M divisor - 2**k) / (divisor 2**k)`` smaller than ``1 / divisor`` (exact)."""
    offset = -(low // divisor) + 1
    top = high + offset * divisor
    k = top.bit_length() + divisor.bit_length()
    multiplier = -(-(1 << k) // divisor)
    product = Signal(unsigned(top.bit_length() + multiplier.bit_length()), name=f"{name}_product")
    register(product, (value + offset * divisor) * multiplier)
    quotient = Signal(range(low // divisor, high // divisor + 1), name=f"{name}_quotient")
    register(quotient, (product >> k) - offset)
    return quotient, 2


def floor_divide_length(m, value, top, count, bound, register, name="ldiv"):
    """``floor(value / L)`` for ``L = top + 1`` in ``1 .. count`` and a signed ``value`` with
    ``|value| <= L bound``, after three registers: ``v = value + B L >= 0`` with ``B = bound + 1``, then
    ``q = (v M_L) >> k - B`` with ``M_L = ceil(2**k / L)`` from a table and ``2**k > (V + 1) count``
    for every ``v <= V = count (2 bound + 1)``: the product's error ``v (M_L L - 2**k) / (L 2**k)`` is
    below ``V / 2**k < 1 / L``, so the floor is exact for every ``L`` (the argument of
    :func:`floor_divide_constant`)."""
    offset = bound + 1
    top_value = count * (2 * bound + 1)
    k = (top_value + 1).bit_length() + count.bit_length()
    multipliers = [-(-(1 << k) // length) for length in range(1, count + 1)]
    table = Array(Const(v, unsigned(max(multipliers).bit_length())) for v in multipliers)
    shifted = Signal(unsigned(top_value.bit_length()), name=f"{name}_shifted")
    multiplier = Signal(unsigned(max(multipliers).bit_length()), name=f"{name}_multiplier")
    register(shifted, value + offset * (top + 1))
    register(multiplier, table[top])
    product = Signal(unsigned(len(shifted) + len(multiplier)), name=f"{name}_product")
    register(product, shifted * multiplier)
    quotient = Signal(range(-bound, bound + 1), name=f"{name}_quotient")
    register(quotient, (product >> k) - offset)
    return quotient, 3


def isqrt_stages(m, value, register, name="sqrt"):
    """``floor(sqrt(value))`` for an unsigned ``value``, one register stage per root bit (restoring,
    two radicand bits a stage). Returns ``(root, stage_count)``."""
    bits = len(value) + (len(value) & 1)
    count = bits // 2
    remainder = Const(0, unsigned(count + 2))
    root = Const(0, unsigned(count))
    radicand = value
    for stage in reversed(range(count)):
        pair = Cat(radicand[2 * stage], radicand[2 * stage + 1] if 2 * stage + 1 < len(radicand) else Const(0, 1))
        current = Cat(pair, remainder)                      # remainder * 4 + next two bits
        trial = Cat(Const(1, 2), root)                      # root * 4 + 1
        fits = current >= trial
        next_remainder = Signal(unsigned(count + 2), name=f"{name}_rem{stage}")
        next_root = Signal(unsigned(count), name=f"{name}_root{stage}")
        next_radicand = Signal.like(value, name=f"{name}_radicand{stage}")
        register(next_remainder, Mux(fits, current - trial, current))
        register(next_root, Cat(fits, root))
        register(next_radicand, radicand)
        remainder, root, radicand = next_remainder, next_root, next_radicand
    return root, count
