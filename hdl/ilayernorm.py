"""Integer LayerNorm in hardware: :func:`qarith.golden.ilayernorm.ilayernorm` on rows of ``C`` channels,
one element per cycle in and out.

Built on :class:`qarith.hdl.rows.RowEngine` (banked row buffer) and the foundation's
:class:`qarith.hdl.requant.Requant`:

``reduce`` pass
    ``x' = x << alpha_c`` (PTF factors from a ROM), ``x'**2`` (one multiplier), the sums ``s1`` and
    ``s2``; then per row: ``mu = round(s1 / C)`` (a multiply by ``ceil(2**k / C)``, exact, and the
    half-to-even correction), ``var = s2 - 2 mu s1 + C mu**2``, ``isqrt(var)`` digit by digit (one stage
    per root bit) and ``f = floor((2**31 - 1) / std)`` from a non-restoring divider with one stage per
    quotient bit (31): every row stage is pipelined, so a new row can finish every cycle.
``output`` pass
    ``z = ((x' - mu) f) >> 1`` (one multiplier), then the per-channel ``bias``, ``M0`` and ``shift`` from
    a ROM go with ``z`` into ``Requant`` (TFLite rounding, clamp).

Latency: ``C + root_width + 66`` cycles from a row's last element to its first output (``root_width`` is
half the variance's width); one element per cycle in steady state.

``variable_length``: rows of ``L = 1 .. C`` channels ended by ``last``
(:class:`qarith.hdl.common.rows.RowEngine`); the mean divides by the row's ``L``
(:func:`qarith.hdl.common.arith.floor_divide_length`, one stage more), the variance takes ``L mu**2``,
and the output pass rescales ``z`` by the row's ``R_L`` (:func:`qarith.golden.ilayernorm.length_rescale`,
one multiplier and one stage more) before ``Requant``; ``last`` travels beside ``Requant``'s pipeline.
Latency ``L + root_width + 68`` for a row of ``L``.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.ilayernorm import INT31_MAX, RESCALE_BITS, ILayerNormConfig, layernorm_params, length_rescale
from ..golden.requant import RequantConfig
from .common.arith import (
    PRODUCT_STAGES,
    constant_product,
    delay,
    divide_stages,
    floor_divide_constant,
    floor_divide_length,
    isqrt_stages,
    product_stages,
)
from .common.component import BlockComponent
from .common.rows import RowEngine, banks_for, row_layout
from .requant import Requant

__all__ = ["ILayerNorm"]

#: Reduce-pass cycles before the sums: buffer word, its register (RowEngine), PTF word, x', x'**2 (partial
#: products, their sum), sums.
_SUM_STAGES = 2 + 1 + 1 + PRODUCT_STAGES + 1
#: Row stages after the sums: mean (two for the division, the remainder, the rounding), mu s1 and
#: mu**2, C mu**2 (each as partial products, then their sum), the variance; after the square root:
#: std; after the divider: the parameters are written.
_MEAN_VAR_STAGES = 2 + 1 + 1 + PRODUCT_STAGES + PRODUCT_STAGES + 1
#: Buffer word and its register, x', x' - mu, the product (partial products, their sum), into Requant.
_OUT_STAGES = 2 + 1 + 1 + PRODUCT_STAGES + 1


class ILayerNorm(BlockComponent):
    """Streaming integer LayerNorm over rows of ``cfg.channels`` elements.

    Parameters
    ----------
    cfg : ILayerNormConfig

    Members
    -------
    i : In(stream.Signature(signed(in_width)))
    o : Out(stream.Signature(signed(out_width)))
        With ``variable_length``, both payloads are ``{"data", "last"}`` (rows of ``1 .. C`` channels).
    """

    config_class = ILayerNormConfig

    throughput = 1  # elements per cycle, in steady state
    @property
    def sim_sources(self):
        """Simulation models of the primitives the requantizer instantiates (``multiplier="ecp5"``)."""
        return self._requant.sim_sources

    def __init__(self, cfg):
        self.cfg = cfg
        self._requant = Requant(RequantConfig(lanes=1, acc_width=32, out_width=cfg.out_width, out_signed=True,
                                              multiplier=cfg.multiplier))
        i_shape, o_shape = signed(cfg.in_width), signed(cfg.out_width)
        if cfg.variable_length:
            i_shape, o_shape = row_layout(i_shape), row_layout(o_shape)
        super().__init__({
            "i": In(stream.Signature(i_shape)),
            "o": Out(stream.Signature(o_shape)),
        })

    @property
    def reduce_tail(self):
        """Cycles from the reduce pass's last read to the row's parameters being visible."""
        # Variable-length rows: the division by L takes one stage more than the one by C.
        return (_SUM_STAGES + _MEAN_VAR_STAGES + self.cfg.variable_length + self.cfg.root_width + 1
                + self.cfg.quotient_width + 1)

    @property
    def banks(self):
        return banks_for(self.cfg.channels, self.reduce_tail)

    @property
    def latency(self):
        return self.row_latency(self.cfg.channels)

    def row_latency(self, length):
        """Cycles from a row's last element to its first output, for a row of ``length`` elements
        with nothing else in flight (variable-length rows: one output stage more, the rescale)."""
        return length + self.reduce_tail + _OUT_STAGES + self.cfg.variable_length + self._requant.latency

    @property
    def table_bytes(self):
        """The per-channel parameter ROM (bias 32, multiplier 32, shift 6 bits) and the PTF ROM."""
        return -(-self.cfg.channels * (32 + 32 + 6 + 2) // 8)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        C = cfg.channels
        rows = RowEngine(m, C, signed(cfg.in_width), self.banks, self.i, cfg.variable_length)
        xp_shape = signed(cfg.in_width + 3)

        def sync(target, value):
            m.d.sync += target.eq(value)

        def delayed(value, stages, name, register=sync):
            return delay(value, stages, register, name)

        m.submodules.ptf_rom = ptf_rom = Memory(shape=unsigned(2), depth=C, init=list(cfg.alphas))
        bias, multiplier, shift = layernorm_params(cfg)
        words = [(b & 0xFFFFFFFF) | ((mul & 0xFFFFFFFF) << 32) | ((s & 0x3F) << 64)
                 for b, mul, s in zip(bias, multiplier, shift)]
        m.submodules.param_rom = param_rom = Memory(shape=unsigned(70), depth=C, init=words)

        # -- reduce pass ------------------------------------------------------------------------------
        ptf_reduce = ptf_rom.read_port(transparent_for=())
        m.d.comb += ptf_reduce.addr.eq(rows.index)
        valid, first, last = (delayed(s, 1, f"r_{s.name}") for s in (rows.valid, rows.first, rows.last))
        bank = delayed(rows.bank, 1, "r_bank")
        x3 = delayed(rows.x, 1, "r_x")
        xp = Signal(xp_shape)
        sync(xp, x3 << ptf_reduce.data)
        valid, first, last, bank = (delayed(s, 1, f"r4_{s.name}") for s in (valid, first, last, bank))
        square_signed, stages = product_stages(xp, xp, sync, "square")
        square = square_signed.as_unsigned()[:2 * xp_shape.width]
        xp5 = delayed(xp, stages, "r_xp")
        valid, first, last, bank = (delayed(s, stages, f"r5_{s.name}") for s in (valid, first, last, bank))
        acc1, acc2 = Signal(signed(cfg.s1_width)), Signal(unsigned(cfg.var_width + 1))
        sum1, sum2 = Signal.like(acc1, name="sum1"), Signal.like(acc2, name="sum2")
        added1, added2 = Signal.like(acc1, name="added1"), Signal.like(acc2, name="added2")
        m.d.comb += [added1.eq(Mux(first, 0, acc1) + xp5), added2.eq(Mux(first, 0, acc2) + square)]
        with m.If(valid):
            m.d.sync += [acc1.eq(added1), acc2.eq(added2)]
            with m.If(last):
                m.d.sync += [sum1.eq(added1), sum2.eq(added2)]
        row_valid, row_bank = Signal(), Signal(rows.bank_bits)
        m.d.sync += [row_valid.eq(valid & last), row_bank.eq(bank)]

        # mean: floor division by C (or the row's length L), then round half to even
        if cfg.variable_length:
            # A bank's last index stays put until its row's output pass is done, so every row stage
            # reads its row's length through its bank.
            def count(bank):
                return rows.top_of(bank) + 1
            quotient, stages = floor_divide_length(m, sum1, rows.top_of(row_bank), C, cfg.x_max, sync, name="mean")
        else:
            def count(bank):
                return C
            low, high = -C * cfg.x_max, C * cfg.x_max
            quotient, stages = floor_divide_constant(m, sum1, C, low, high, sync, name="mean")
        s1_q, s2_q = delayed(sum1, stages, "s1_mean"), delayed(sum2, stages, "s2_mean")
        row_valid, row_bank = delayed(row_valid, stages, "v_mean"), delayed(row_bank, stages, "b_mean")
        # The remainder lies in [0, L): its low bits need only the low bits of s1 and of the quotient
        # (a product narrow enough for the fabric, where the full one took a DSP).
        remainder = Signal(signed(C.bit_length() + 2))
        low = len(remainder)
        if cfg.variable_length:
            sync(remainder, (s1_q[:low] - quotient[:low] * count(row_bank))[:low])
        else:
            sync(remainder, (s1_q[:low] - constant_product(quotient[:low], C))[:low])
        q_r = delayed(quotient, 1, "q_round")
        s1_r, s2_r = delayed(s1_q, 1, "s1_round"), delayed(s2_q, 1, "s2_round")
        row_valid, row_bank = delayed(row_valid, 1, "v_round"), delayed(row_bank, 1, "b_round")
        mean = Signal(signed(cfg.s1_width))
        up = (2 * remainder > count(row_bank)) | ((2 * remainder == count(row_bank)) & q_r[0])
        sync(mean, q_r + up)
        # mu**2's two operands are copies of mean of their own, so that each register drives at most
        # two DSP ports (one register feeding all of mu s1's and mu**2's partial products was the ECP5
        # critical path of c16_w16_ptf: 2.7 ns of routing into a MULT18X18D). They differ from mean
        # only while the row is not valid, which no later stage reads, and their next-state logic
        # differs (an enable, a reset to zero), so that Yosys's opt_merge does not join them again.
        mean_a, mean_b = Signal.like(mean, name="mean_sq_a"), Signal.like(mean, name="mean_sq_b")
        with m.If(row_valid):
            m.d.sync += mean_a.eq(q_r + up)
        sync(mean_b, Mux(row_valid, q_r + up, 0))
        s1_m, s2_m = delayed(s1_r, 1, "s1_mu"), delayed(s2_r, 1, "s2_mu")
        row_valid, row_bank = delayed(row_valid, 1, "v_mu"), delayed(row_bank, 1, "b_mu")
        # variance = s2 - 2 mu s1 + C mu**2 (exact)
        mu_s1, stages = product_stages(mean, s1_m, sync, "mu_s1")
        mu_sq_signed, _ = product_stages(mean_a, mean_b, sync, "mu_sq")
        mu_sq = mu_sq_signed.as_unsigned()[:2 * cfg.s1_width]
        s2_v, mean_v = delayed(s2_m, stages, "s2_var"), delayed(mean, stages, "mu_var")
        row_valid, row_bank = delayed(row_valid, stages, "v_prod"), delayed(row_bank, stages, "b_prod")
        # C mu**2 from partial products (a 32-bit mu**2 is wider than a DSP's port) while s2 - 2 mu s1
        # waits; then the variance from the two.
        s2_mu_s1 = Signal(Value.cast(s2_v - 2 * mu_s1).shape())
        sync(s2_mu_s1, s2_v - 2 * mu_s1)
        count_mu_sq, stages = product_stages(count(row_bank), mu_sq, sync, "count_mu_sq")
        s2_mu_s1 = delayed(s2_mu_s1, stages - 1, "s2_mu_s1")
        mean_v = delayed(mean_v, stages, "mu_count")
        row_valid, row_bank = delayed(row_valid, stages, "v_count"), delayed(row_bank, stages, "b_count")
        variance = Signal(unsigned(cfg.var_width))
        sync(variance, s2_mu_s1 + count_mu_sq)
        mean_s = delayed(mean_v, 1, "mu_sqrt_in")
        row_valid, row_bank = delayed(row_valid, 1, "v_var"), delayed(row_bank, 1, "b_var")
        root, stages = isqrt_stages(m, variance, sync, name="sqrt")
        mean_s = delayed(mean_s, stages, "mu_sqrt")
        row_valid, row_bank = delayed(row_valid, stages, "v_sqrt"), delayed(row_bank, stages, "b_sqrt")
        std = Signal(unsigned(cfg.root_width))
        sync(std, Mux(root == 0, 1, root))
        mean_d = delayed(mean_s, 1, "mu_std")
        row_valid, row_bank = delayed(row_valid, 1, "v_std"), delayed(row_bank, 1, "b_std")
        factor, stages = divide_stages(m, INT31_MAX, std, cfg.quotient_width, sync, name="div")
        mean_d = delayed(mean_d, stages, "mu_div")
        row_valid, row_bank = delayed(row_valid, stages, "v_div"), delayed(row_bank, stages, "b_div")
        row_mean = rows.params(signed(cfg.s1_width), "row_mean")
        row_factor = rows.params(unsigned(cfg.quotient_width), "row_factor")
        with m.If(row_valid):
            m.d.sync += [row_mean[row_bank].eq(mean_d), row_factor[row_bank].eq(factor)]
        params = [row_mean, row_factor]
        if cfg.variable_length:
            rescale = length_rescale(cfg)
            rescale_shape = unsigned(max(rescale).bit_length())
            rescale_table = Array(Const(v, rescale_shape) for v in rescale)
            row_rescale = rows.params(rescale_shape, "row_rescale")
            with m.If(row_valid):
                m.d.sync += row_rescale[row_bank].eq(rescale_table[rows.top_of(row_bank)])
            params.append(row_rescale)
        m.d.comb += rows.publish.eq(row_valid)

        # -- output pass ------------------------------------------------------------------------------
        requant = self._requant
        m.submodules.requant = requant
        m.d.comb += [requant.output_offset.eq(0), requant.act_min.eq(cfg.out_min), requant.act_max.eq(cfg.out_max)]
        if not cfg.variable_length:
            wiring.connect(m, requant.o, wiring.flipped(self.o))
        out = rows.output_pass(requant.i, params, depth=_OUT_STAGES - 1 + cfg.variable_length)
        ptf_out, param_out = ptf_rom.read_port(transparent_for=()), param_rom.read_port(transparent_for=())
        m.d.comb += [ptf_out.addr.eq(out.values[1][-1]), ptf_out.en.eq(out.advance),
                     param_out.addr.eq(out.values[1][-1]), param_out.en.eq(out.advance)]
        out_xp = Signal(xp_shape)
        params3 = Signal(70)
        out.stalled((out_xp, out.x << ptf_out.data), (params3, param_out.data))
        y = Signal(signed(cfg.s1_width + 1))
        out.stalled((y, out_xp - out.values[3][1]))
        params4 = delayed(params3, 1, "params_y", lambda a, b: out.stalled((a, b)))
        product, stages = product_stages(y, out.values[4][2], lambda a, b: out.stalled((a, b)), "product")
        params5 = delayed(params4, stages, "params_z", lambda a, b: out.stalled((a, b)))
        lane = requant.i.payload[0]
        if not cfg.variable_length:
            out.stalled((requant.i.valid, out.valid[_OUT_STAGES - 1]), (lane.acc, product >> 1),
                        (lane.bias, params5[0:32]), (lane.multiplier, params5[32:64]), (lane.shift, params5[64:70]))
            return m
        # z to the C-channel scale: (z R_L + 2**(K-1)) >> K (R_C = 2**K leaves a full row unchanged).
        rescaled = Signal(signed(32))
        k = _OUT_STAGES - 1
        out.stalled((rescaled, ((product >> 1) * out.values[k][3] + (1 << (RESCALE_BITS - 1))) >> RESCALE_BITS))
        params6 = delayed(params5, 1, "params_r", lambda a, b: out.stalled((a, b)))
        row_end = Signal()
        out.stalled((requant.i.valid, out.valid[k + 1]), (lane.acc, rescaled), (row_end, out.last[k + 1]),
                    (lane.bias, params6[0:32]), (lane.multiplier, params6[32:64]), (lane.shift, params6[64:70]))
        # last moves beside Requant's stages, which all advance together while its output can move.
        ends = Signal(requant.latency)
        with m.If(~requant.o.valid | requant.o.ready):
            m.d.sync += ends.eq(Cat(row_end, ends[:-1]))
        m.d.comb += [self.o.valid.eq(requant.o.valid), requant.o.ready.eq(self.o.ready),
                     self.o.payload.data.eq(requant.o.payload[0]), self.o.payload.last.eq(ends[-1])]
        return m
