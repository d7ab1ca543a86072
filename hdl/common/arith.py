"""Pipelined integer arithmetic shared by the blocks: every function builds register stages into a
module through a ``register(target, value)`` function, so the same stages serve a free-running pipeline
(plain ``m.d.sync``) and one that stalls with its consumer.

* :func:`constant_product`: a product with a constant by shifts and adds, no DSP;
* :func:`product_stages`: a product too wide for one DSP, its partial products registered before their sum;
* :func:`divide_stages`: ``floor(numerator / divisor)`` for a constant numerator, one non-restoring
  add-or-subtract stage per quotient bit (a new division can start every cycle);
* :func:`split_divide_stages`: the same quotient with each add-or-subtract cut into two stages;
* :func:`floor_divide_constant`: ``floor(value / divisor)`` for a constant divisor, as a multiply by
  ``ceil(2**k / divisor)`` and a shift (exact over the stated range);
* :func:`floor_divide_length`: the same for a divisor ``L`` that changes from row to row (a row's
  length, ``1 .. count``), the multiplier from a table of ``count`` constants;
* :func:`isqrt_stages`: ``floor(sqrt(value))``, digit by digit, one stage per root bit;
* :func:`delay`: a value carried through registers alongside such stages;
* :func:`thermometer_count`: the number of ones of a thermometer code, without an adder tree.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Signal, Value, unsigned

__all__ = ["delay", "constant_product", "PRODUCT_STAGES", "product_stages", "divide_stages",
           "split_divide_stages", "floor_divide_constant", "floor_divide_length", "isqrt_stages", "thermometer_count"]


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


def constant_product(value, constant):
    """``value * constant`` for a positive integer ``constant``, as the sum of ``value`` shifted to each of
    ``constant``'s set bits: adders in the fabric, where Yosys maps a product (even with a constant) to a
    DSP, whose delay followed by an adder was an ECP5 critical path."""
    terms = [value << bit for bit in range(constant.bit_length()) if constant >> bit & 1]
    return sum(terms[1:], terms[0])


#: Registers of :func:`product_stages`.
PRODUCT_STAGES = 2


def _dsp_pieces(operand, chunk=17):
    """``(piece, offset)`` pairs that make up ``operand``: itself when it fits an 18-bit signed DSP port,
    else ``chunk``-bit unsigned slices, the top one signed if ``operand`` is."""
    operand = Value.cast(operand)
    signed_operand = operand.shape().signed
    if len(operand) <= chunk + signed_operand:
        return [(operand, 0)]
    pieces = []
    for low in range(0, len(operand), chunk):
        piece = operand[low:low + chunk]
        pieces.append((piece.as_signed() if signed_operand and low + chunk >= len(operand) else piece, low))
    return pieces


def product_stages(value, factor, register, name):
    """``value * factor`` after two registers: the partial products of the operands' pieces (17-bit
    slices of an operand wider than a DSP's 18-bit signed port, so one 18x18 DSP each), then their
    shifted sum. A wide product in one stage has the fabric adders that join the DSPs' outputs on the
    DSP's own delay. Returns ``(product, 2)``."""
    parts = []
    for value_piece, value_low in _dsp_pieces(value):
        for factor_piece, factor_low in _dsp_pieces(factor):
            part = Signal(Value.cast(value_piece * factor_piece).shape(), name=f"{name}_part{value_low}_{factor_low}")
            register(part, value_piece * factor_piece)
            parts.append(part << (value_low + factor_low))
    product = Signal(Value.cast(value * factor).shape(), name=f"{name}_product")
    register(product, sum(parts[1:], parts[0]))
    return product, PRODUCT_STAGES


def divide_stages(m, numerator, divisor, quotient_width, register, name="div"):
    """``floor(numerator / divisor)`` for a constant ``numerator`` and a divisor at least
    ``numerator >> quotient_width`` + 1 (so the quotient fits ``quotient_width`` bits), after
    ``quotient_width`` registers. Returns ``(quotient, stage_count)``.

    Non-restoring: the stage of quotient bit ``b`` adds ``divisor << b`` to a negative remainder and
    subtracts it from a non-negative one, and the bit is 1 when the result is non-negative (the same
    bits as restoring division, which subtracts only where the result stays non-negative). The choice
    comes from the previous stage's register, so a stage is one carry chain, with no multiplexer after
    it on the chain's sign. The remainder before that stage lies in ``[-(divisor << (b + 1)),
    divisor << (b + 1))`` (the bound on the divisor makes it so for the first), and its low ``b`` bits do
    not change: the stage adds over the ``len(divisor) + 2`` bits from ``b`` up only."""
    divisor_width = len(divisor)
    remainder = Const(numerator, unsigned(quotient_width + divisor_width + 1))     # bit + divisor_width + 2
    negative = Const(0, 1)
    quotient = Const(0, unsigned(quotient_width))
    current_divisor = divisor
    for bit in reversed(range(quotient_width)):
        extended = Cat(current_divisor, Const(0, 2))
        total = Signal(divisor_width + 2, name=f"{name}_sum{bit}")
        m.d.comb += total.eq(remainder[bit:bit + divisor_width + 2] + Mux(negative, extended, ~extended) + ~negative)
        next_remainder = Signal(unsigned(bit + divisor_width + 1), name=f"{name}_rem{bit}")
        next_quotient = Signal(unsigned(quotient_width), name=f"{name}_quo{bit}")
        next_divisor = Signal.like(divisor, name=f"{name}_div{bit}")
        register(next_remainder, Cat(remainder[:bit], total[:divisor_width + 1]))
        register(next_quotient, quotient | Mux(total[divisor_width], 0, 1 << bit))
        register(next_divisor, current_divisor)
        remainder, quotient, current_divisor = next_remainder, next_quotient, next_divisor
        negative = remainder[-1]
    return quotient, quotient_width


def split_divide_stages(m, numerator, divisor, quotient_width, register, name="div"):
    """``floor(numerator / divisor)`` as :func:`divide_stages` computes it
    (non-restoring, the same quotient bits), with each quotient bit's add-or-subtract cut into two
    register stages: the low half of the ``len(divisor) + 1`` kept bits and its carry, then the high
    half from that registered carry, with its operand (the divisor or its complement) already chosen.
    A stage is half a carry chain with no multiplexer in front of it (the iCE40 critical path of
    ``shiftmax`` and ``shiftgelu`` was one whole chain, 27 to 31 bits, behind that multiplexer).
    Returns ``(quotient, 2 * quotient_width)``.

    The kept bits of a stage's sum depend on the kept bits of its operands only (a sum modulo
    ``2**(len(divisor) + 1)``), and the remainder's bits below the quotient bit are the numerator's own,
    constants, so the stage adds the window ``[bit, bit + len(divisor)]`` of the remainder alone."""
    divisor_width = len(divisor)
    width = divisor_width + 1                  # kept bits of each sum; the top one is the sign
    low_width = width // 2
    numerator_bits = Const(numerator, unsigned(quotient_width + width))
    remainder = numerator_bits                  # bits [bit, bit + width) are the window of quotient bit `bit`
    negative = Const(0, 1)
    quotient = Const(0, unsigned(quotient_width))
    current_divisor = divisor

    def stage_signal(shape, label, bit):
        return Signal(shape, name=f"{name}_{label}{bit}", reset_less=True)

    for bit in reversed(range(quotient_width)):
        window = remainder[bit:bit + width]
        operand = Mux(negative, Cat(current_divisor, Const(0, 1)), ~Cat(current_divisor, Const(0, 1)))
        # first register stage: the low half with its carry out; the high half's operands
        low = stage_signal(low_width + 1, "low", bit)
        high_window = stage_signal(width - low_width, "hwin", bit)
        high_operand = stage_signal(width - low_width, "hop", bit)
        half_divisor = stage_signal(divisor_width, "hdiv", bit)
        half_quotient = stage_signal(quotient_width, "hquo", bit)
        register(low, window[:low_width] + operand[:low_width] + ~negative)
        register(high_window, window[low_width:])
        register(high_operand, operand[low_width:])
        register(half_divisor, current_divisor)
        register(half_quotient, quotient)
        # second register stage: the high half, the carry brought in as a bit below both operands
        carry = low[low_width]
        high = Signal(width - low_width + 1, name=f"{name}_high{bit}")
        m.d.comb += high.eq(Cat(carry, high_window) + Cat(carry, high_operand))
        kept = stage_signal(width, "rem", bit)
        next_quotient = stage_signal(quotient_width, "quo", bit)
        next_divisor = stage_signal(divisor_width, "div", bit)
        register(kept, Cat(low[:low_width], high[1:]))
        register(next_quotient, half_quotient | Mux(high[-1], 0, 1 << bit))
        register(next_divisor, half_divisor)
        remainder = Cat(numerator_bits[:bit], kept)
        negative = kept[-1]
        quotient, current_divisor = next_quotient, next_divisor
    return quotient, 2 * quotient_width


def floor_divide_constant(m, value, divisor, low, high, register, name="cdiv"):
    """``floor(value / divisor)`` for a signed ``value`` in ``[low, high]`` and a positive constant
    ``divisor``, after two registers: ``v = value + B divisor >= 0``, ``q = (v M) >> k - B`` with
    ``M = ceil(2**k / divisor)`` and ``2**k >= (V + 1) divisor`` for every ``v <= V``, which makes the
    product's error ``v (M divisor - 2**k) / (divisor 2**k)`` smaller than ``1 / divisor`` (exact)."""
    offset = -(low // divisor) + 1
    top = high + offset * divisor
    k = top.bit_length() + divisor.bit_length()
    multiplier = -(-(1 << k) // divisor)
    # (value + B divisor) M = value M + B divisor M: the multiplier takes value itself (no adder in front
    # of the DSP), and floor((value M + B divisor M) / 2**k) - B = floor((value M + B divisor M - B 2**k)
    # / 2**k) folds both constants into one adder before the shift.
    product = Signal(Value.cast(value * multiplier).shape(), name=f"{name}_product")
    register(product, value * multiplier)
    quotient = Signal(range(low // divisor, high // divisor + 1), name=f"{name}_quotient")
    register(quotient, (product + (offset * divisor * multiplier - (offset << k))) >> k)
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
