"""I-ViT's shift-based exponential in hardware, shared by ``shiftmax`` and ``shiftgelu``:
:func:`shift_exp_stages`, :func:`qarith.golden.shift_exp.shift_exp` in four register stages
  (``t`` with its clamp; ``q`` by comparing ``t`` with the constants ``k x0``; ``r = t - q x0``;
  ``e`` by a barrel shift);
The stages take a ``register(target, value)`` function, so the same stages serve a free-running pipeline
(plain ``m.d.sync``) and a pipeline that stalls with its consumer.
"""

from amaranth.hdl import Const, Mux, Signal, signed, unsigned

__all__ = ["SHIFT_EXP_STAGES", "shift_exp_stages"]

SHIFT_EXP_STAGES = 4


def shift_exp_stages(m, d, x0, n, variant, register, name="exp"):
    """``e = shift_exp(d)`` for a signed ``d <= 0``, available :data:`SHIFT_EXP_STAGES` registers after
    ``d``. Returns the ``e`` signal (unsigned, wide enough for ``-x0 * 2**n``)."""
    width = len(d) + 2
    limit = n * x0
    t = Signal(signed(max(width, Const(limit).shape().width + 1)), name=f"{name}_t")
    raw = Signal.like(t, name=f"{name}_t_raw")
    m.d.comb += raw.eq(d + (d >> 1) - (d >> 4))
    register(t, Mux(raw < limit, limit, raw))
    # q = floor(t / x0) = the number of k in 1..n with t <= k x0 (x0 < 0, t in [n x0, 0]).
    q = Signal(range(n + 1), name=f"{name}_q")
    t2 = Signal.like(t, name=f"{name}_t2")
    register(q, sum(t <= k * x0 for k in range(1, n + 1)))
    register(t2, t)
    # q x0 as a product with a constant (not a table: a constant lookup becomes an always block that
    # Icarus leaves at x until its index first changes).
    r = Signal(signed(Const(x0).shape().width + 1), name=f"{name}_r")
    amount = Signal(range(n + 1), name=f"{name}_shift")
    register(r, t2 - q * Const(x0))
    register(amount, n - q)
    e = Signal(unsigned((-x0 << n).bit_length()), name=f"{name}_e")
    if variant == "pytorch":
        base = Signal(unsigned(Const(-2 * x0).shape().width), name=f"{name}_base")    # r - 2 x0 > 0
        m.d.comb += base.eq(r - 2 * x0)
        register(e, (base << amount) >> 1)
    else:
        base = Signal(unsigned(Const(-x0).shape().width), name=f"{name}_base")        # (r >> 1) - x0 > 0
        m.d.comb += base.eq((r >> 1) - x0)
        register(e, base << amount)
    return e
