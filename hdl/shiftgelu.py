"""I-ViT ShiftGELU in hardware: :func:`qarith.golden.shiftgelu.shiftgelu`, one element per cycle.

A single pipeline that stalls as a whole while ``o.ready`` is low:

1. ``x`` registered with ``y`` (``x``, or ``x + x/2 + x/8 + x/16`` for ``factor="shift"``);
2. ``m = max(y, 0)``: ``y - m`` and ``-m`` registered;
3. two four-stage shift-exp pipelines side by side (:func:`qarith.hdl.shift_exp.shift_exp_stages`)
   give ``e1 = exp(y - m)`` and ``e2 = exp(-m)``;
4. ``e1 + e2`` registered;
5. a non-restoring divider, two stages per quotient bit (:func:`qarith.hdl.common.arith.split_divide_stages`,
   ``2 quotient_width``), gives ``f = floor((2**31 - 1) / (e1 + e2))``;
6. ``e1 * f`` as 16-bit partial products, registered; 7. the sigmoid code ``(e1 * f) >> (32 - sig_width)``,
   their sum, registered; 8. ``x * sigmoid``, registered.

Latency ``2 quotient_width + 10`` cycles; the multipliers ``e1 * f`` (one per 16 bits of its wider
operand) and ``x * sigmoid``, no table.

``method="ibert"`` is I-BERT's i-GELU instead: ``min(|x|, -b)`` and the sign, ``+ b``, the square,
``sign (... + c) >> erf_shift``, ``+ h``, ``-(x * ...)``: six stages, two multipliers, latency 6.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from ..golden.shiftgelu import ShiftGeluConfig, ibert_gelu_constants
from ..golden.shiftmax import INT31_MAX
from .common.arith import delay, split_divide_stages
from .common.component import BlockComponent
from .common.shift_exp import SHIFT_EXP_STAGES, shift_exp_stages

__all__ = ["ShiftGelu"]

#: I-BERT i-GELU pipeline: min(|x|, -b) and the sign; + b; the square; sign (... + c) >> k; + h; x times.
IBERT_STAGES = 6


class ShiftGelu(BlockComponent):
    """Streaming ShiftGELU.

    Parameters
    ----------
    cfg : ShiftGeluConfig

    Members
    -------
    i : In(stream.Signature(signed(in_width)))
    o : Out(stream.Signature(signed(out_width)))
        ``GELU`` at ``cfg.out_scale``: ``in_width + sig_width - 1`` bits at ``scale * 2**-(sig_width - 1)``
        (``"shift"``), or as :attr:`ShiftGeluConfig.out_width` says at ``|s_erf| scale / 2`` (``"ibert"``).
    """

    config_class = ShiftGeluConfig

    throughput = 1  # elements per cycle
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(signed(cfg.in_width))),
            "o": Out(stream.Signature(signed(cfg.out_width))),
        })

    @property
    def latency(self):
        if self.cfg.method == "ibert":
            return IBERT_STAGES
        return 2 + SHIFT_EXP_STAGES + 1 + 2 * self.cfg.quotient_width + 3

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        def stalled(target, value):
            with m.If(advance):
                m.d.sync += target.eq(value)

        def delayed(value, stages, name):
            return delay(value, stages, stalled, name)

        x = self.i.payload
        if cfg.method == "ibert":
            self._ibert(m, stalled, delayed)
            return m
        y_shape = signed(cfg.in_width + 2)
        y = Signal(y_shape)
        x1 = Signal.like(x, name="x1")
        stalled(x1, x)
        stalled(y, x if cfg.factor == "scale" else x + (x >> 1) + (x >> 3) + (x >> 4))
        valid = delayed(self.i.valid, 1, "valid_in")
        # m = max(y, 0); both exponent arguments are <= 0
        a, b = Signal(signed(len(y) + 1), name="a"), Signal(signed(len(y) + 1), name="b")
        stalled(a, Mux(y > 0, 0, y))
        stalled(b, Mux(y > 0, -y, 0))
        x2 = delayed(x1, 1, "x2")
        valid = delayed(valid, 1, "valid_m")
        e1 = shift_exp_stages(m, a, cfg.x0, cfg.exp_shift, "pytorch", stalled, name="e1")
        e2 = shift_exp_stages(m, b, cfg.x0, cfg.exp_shift, "pytorch", stalled, name="e2")
        x3 = delayed(x2, SHIFT_EXP_STAGES, "x3")
        valid = delayed(valid, SHIFT_EXP_STAGES, "valid_exp")
        total = Signal(len(e1) + 1)
        stalled(total, e1 + e2)
        e1 = delayed(e1, 1, "e1_sum")
        x4 = delayed(x3, 1, "x4")
        valid = delayed(valid, 1, "valid_sum")
        factor, stages = split_divide_stages(m, INT31_MAX, total, cfg.quotient_width, stalled, name="div")
        e1 = delayed(e1, stages, "e1_div")
        x5 = delayed(x4, stages, "x5")
        valid = delayed(valid, stages, "valid_div")
        # e1 * f in partial products of 16 bits of the wider operand by the narrower one (at most 16 bits:
        # the two together are about 32), each registered straight behind its multiplier, then summed into
        # the sigmoid register: no DSP's combinational delay and adder share one stage (the encoder
        # layer's ECP5 critical path ran from the quotient through an inferred MULT18X18D and its sum).
        wide, narrow = (e1, factor) if len(e1) >= len(factor) else (factor, e1)
        partials = []
        for j, low in enumerate(range(0, len(wide), 16)):
            chunk = wide[low:low + 16]
            partial = Signal(len(chunk) + len(narrow), name=f"sig_partial{j}")
            stalled(partial, chunk * narrow)
            partials.append(partial)
        sigmoid = Signal(cfg.sig_width)
        product = Signal(len(e1) + cfg.quotient_width)
        m.d.comb += product.eq(sum(partial << (16 * j) for j, partial in enumerate(partials)))
        stalled(sigmoid, product >> (32 - cfg.sig_width))
        x6 = delayed(x5, 2, "x6")
        valid = delayed(valid, 2, "valid_sig")
        stalled(self.o.payload, x6 * sigmoid)
        stalled(self.o.valid, valid)
        return m

    def _ibert(self, m, stalled, delayed):
        """I-BERT's i-GELU: six stages, two multipliers (the square and the final product)."""
        cfg = self.cfg
        b, c, k, h, _ = ibert_gelu_constants(cfg)
        x = self.i.payload
        magnitude = Signal(unsigned(cfg.in_width), name="magnitude")
        negative, positive = Signal(name="negative"), Signal(name="positive")
        stalled(magnitude, Mux(x < 0, -x, x))
        stalled(negative, x < 0)
        stalled(positive, x > 0)
        clipped = Mux(magnitude > -b, -b, magnitude)
        t = Signal(signed(Const(b).shape().width + 1), name="t")
        stalled(t, clipped + b)
        square = Signal(unsigned(2 * len(t)), name="square")
        stalled(square, t * t)
        poly = Signal(signed(max(len(square), Const(c).shape().width) + 2), name="poly")
        # square + c and its negation -c - square side by side: two carry chains in parallel, not one
        # after the other (the iCE40 critical path).
        raw, negated = Signal.like(poly, name="poly_raw"), Signal.like(poly, name="poly_negated")
        m.d.comb += [raw.eq(square + c), negated.eq(-c - square)]
        negative3, positive3 = delayed(negative, 2, "negative"), delayed(positive, 2, "positive")
        stalled(poly, Mux(negative3, negated, Mux(positive3, raw, 0)))
        shifted = Signal(signed(len(poly) + Const(h).shape().width + 1), name="erf_plus_h")
        stalled(shifted, (poly >> k) + h)
        x5 = delayed(x, 5, "x_ibert")
        stalled(self.o.payload, -(x5 * shifted))
        stalled(self.o.valid, delayed(self.i.valid, 5, "valid_ibert"))
