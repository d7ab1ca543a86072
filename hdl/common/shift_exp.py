"""The integer exponentials in hardware:

* :func:`shift_exp_stages`: I-ViT's shift-based exponential
  (:func:`qarith.golden.common.shift_exp.shift_exp`) in four register stages (``t`` with its clamp and the
  comparisons that give ``q``, all decided on the input ``d``; ``q`` from the comparisons; ``r = t - q x0``
  by shifts and adds; ``e`` by a barrel shift), shared by
  ``shiftmax`` and ``shiftgelu``;
* :func:`ibert_exp_stages`: I-BERT's polynomial exponential (:func:`qarith.golden.common.shift_exp.ibert_exp`)
  in eight, for ``shiftmax``'s ``"ibert"`` variant and ``log_softmax_int``.

The stages take a ``register(target, value)`` function, so the same stages serve a free-running pipeline
(plain ``m.d.sync``) and a pipeline that stalls with its consumer.
"""

from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned

from ...golden.common.shift_exp import ibert_constants
from .arith import constant_product, thermometer_count

__all__ = ["SHIFT_EXP_STAGES", "shift_exp_stages", "IBERT_EXP_STAGES", "ibert_exp_stages"]

SHIFT_EXP_STAGES = 4


def _least_reaching(limit, width):
    """The least signed ``width``-bit ``d`` with ``d + (d >> 1) - (d >> 4) >= limit`` (a non-decreasing
    function of ``d``), or the least ``d`` itself when every ``d`` reaches it."""
    low, high = -(1 << (width - 1)), 0
    if low + (low >> 1) - (low >> 4) >= limit:
        return low
    while high - low > 1:       # raw(low) < limit <= raw(high)
        middle = (low + high) // 2
        if middle + (middle >> 1) - (middle >> 4) >= limit:
            high = middle
        else:
            low = middle
    return high


def shift_exp_stages(m, d, x0, n, variant, register, name="exp"):
    """``e = shift_exp(d)`` for a signed ``d <= 0``, available :data:`SHIFT_EXP_STAGES` registers after
    ``d``. Returns the ``e`` signal (unsigned, wide enough for ``-x0 * 2**n``)."""
    width = len(d) + 2
    limit = n * x0
    t = Signal(signed(max(width, Const(limit).shape().width + 1)), name=f"{name}_t")
    raw = Signal.like(t, name=f"{name}_t_raw")
    m.d.comb += raw.eq(d + (d >> 1) - (d >> 4))
    # The clamp and q's comparisons are decided on d, beside the adders rather than after them: raw(d)
    # never decreases as d grows, so raw < c exactly when d is below the least d whose raw reaches c.
    register(t, Mux(d < _least_reaching(limit, len(d)), limit, raw))
    # q = floor(t / x0) = the number of k in 1..n with t <= k x0 (x0 < 0, t in [n x0, 0]), and for
    # k <= n (k x0 >= n x0) t <= k x0 exactly when raw <= k x0: the clamp does not change the count.
    thermometer = Signal(n, name=f"{name}_thermometer")
    register(thermometer, Cat(*(d < _least_reaching(k * x0 + 1, len(d)) for k in range(1, n + 1))))
    q = Signal(range(n + 1), name=f"{name}_q")
    # t2 carries t - 2 x0: the offset of the last stage's base (r - 2 x0) is added here, beside q's
    # count, so that the last stage is the barrel shift alone (with the add, the iCE40 critical path).
    t2 = Signal(signed(max(len(t), Const(-2 * x0).shape().width + 1) + 1), name=f"{name}_t2")
    register(q, thermometer_count(thermometer))
    register(t2, t - 2 * x0)
    # q x0 by shifts and adds of q (not a table: a constant lookup becomes an always block that Icarus
    # leaves at x until its index first changes; not a product, which Yosys maps to a DSP whose delay
    # was the ECP5 critical path).
    # base = r - 2 x0 with r = t - q x0 in (x0, 0]: base in (-x0, -2 x0], positive.
    base = Signal(unsigned(Const(-2 * x0).shape().width), name=f"{name}_base")
    amount = Signal(range(n + 1), name=f"{name}_shift")
    register(base, t2 + constant_product(q, -x0))
    register(amount, n - q)
    e = Signal(unsigned((-x0 << n).bit_length()), name=f"{name}_e")
    if variant == "pytorch":
        register(e, (base << amount) >> 1)
    else:
        # (r >> 1) - x0 is (r - 2 x0) >> 1: 2 x0 is even.
        register(e, (base >> 1) << amount)
    return e


IBERT_EXP_STAGES = 8


def ibert_exp_stages(m, d, scale, n, requant_shift, register, name="iexp"):
    """``ibert_exp(d) >> requant_shift`` for a signed ``d <= 0``, :data:`IBERT_EXP_STAGES` registers after
    ``d``: the clamp; the comparisons with ``k x0`` (a thermometer code); their count ``q``;
    ``r = t - q x0``; ``r`` and ``r + b``; the product ``r (r + b)`` (one multiplier); ``z = r (r + b) + c``;
    the shift ``(z << (n - q)) >> requant_shift``. (The comparisons and the count, the sum and the
    product, and the product and ``+ c`` each take a stage of their own: together they were the ECP5
    critical path; the product's register is the multiplier's output register, so a DSP's 3.9 ns are
    not followed by a carry chain.)"""
    x0, b, c = ibert_constants(scale)
    limit = n * x0
    t = Signal(signed(max(len(d) + 1, Const(limit).shape().width + 1)), name=f"{name}_t")
    register(t, Mux(d < limit, limit, d))
    thermometer = Signal(n, name=f"{name}_thermometer")
    t2 = Signal.like(t, name=f"{name}_t2")
    register(thermometer, Cat(*(t <= k * x0 for k in range(1, n + 1))))
    register(t2, t)
    q = Signal(range(n + 1), name=f"{name}_q")
    t3 = Signal.like(t, name=f"{name}_t3")
    # t <= k x0 holds for k = 1 .. q (k x0 decreases): a thermometer code, counted without an adder tree
    # (the popcount was the iCE40 critical path).
    # q x0 selected the same way, beside q: as a product with a constant it was an ECP5 DSP (3.9 ns)
    # and then the subtraction, the ECP5 critical path.
    q_x0 = Signal(signed(Const(n * x0).shape().width), name=f"{name}_qx0")
    register(q, thermometer_count(thermometer))
    register(q_x0, thermometer_count(thermometer, [k * x0 for k in range(n + 1)], len(q_x0)).as_signed())
    register(t3, t2)
    r = Signal(signed(Const(x0).shape().width + 1), name=f"{name}_r")
    amount = Signal(range(n + 1), name=f"{name}_shift")
    register(r, t3 - q_x0)
    register(amount, n - q)
    r5, rb = Signal.like(r, name=f"{name}_r5"), Signal(signed(len(r) + Const(b).shape().width), name=f"{name}_rb")
    amount5 = Signal.like(amount, name=f"{name}_shift5")
    register(r5, r)
    register(rb, r + b)
    register(amount5, amount)
    z = Signal(signed(max((c + b * -x0).bit_length(), Const(c).shape().width) + 2), name=f"{name}_z")
    product = Signal(signed(len(r5) + len(rb)), name=f"{name}_product")
    amount6, amount7 = Signal.like(amount, name=f"{name}_shift6"), Signal.like(amount, name=f"{name}_shift7")
    register(product, r5 * rb)
    register(amount6, amount5)
    register(z, product + c)
    register(amount7, amount6)
    width = (c << n).bit_length() - requant_shift
    e = Signal(unsigned(max(width, 1)), name=f"{name}_e")
    positive = Signal(unsigned(len(z)), name=f"{name}_zpos")
    m.d.comb += positive.eq(Mux(z < 0, 0, z))
    register(e, (positive << amount7) >> requant_shift)
    return e
