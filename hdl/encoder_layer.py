"""The integer encoder layer in hardware: :func:`qarith.golden.encoder_layer.encoder_layer` from the
Q, K, V projections (``rtl_phases="qkv"``) on to the attention block's O projection and the first
residual sum (``rtl_phases="attention"``), ITA-style on one time-multiplexed MAC array.

Structure (one :class:`~qarith.hdl.mac_array.MacArray`, one :class:`~qarith.hdl.requant.Requant` and,
for the attention phases, the config's softmax block, :class:`~qarith.hdl.shiftmax.Shiftmax` or
:class:`~qarith.hdl.softmax_lut.SoftmaxLut`, and a second requantizer for the residual, all instantiated
as submodules)::

    tokens -> X banks ---------+                         +-> Q banks, K banks, V memory    (qkv)
              Q banks, K banks |--> mac_array -> requant -+-> score memory                 (scores)
              P banks, V mem   |       ^                  +-> ctx banks                     (ctx)
              ctx banks -------+       |                  +-> attn_out memory               (attn_out)
              weights Wq|Wk|Wv|Wo -----+    quant ROM --^
    score memory -> softmax -> P banks                                                    (probs)
    X banks -> requant_x --(+ attn_out memory)--> o                                       (res1)

Every phase's tensor also leaves on ``o`` as it is written (the tap stream: ``phase`` names it, the
order is :data:`~qarith.golden.encoder_layer.RTL_PHASES`), so a bench checks each phase bit for bit; a
stalled ``o`` stalls the phase, and a tensor is written on chip exactly when its beat leaves.

Phases of one sequence, each started once the previous one's last beat has left:

``load``
    One token (``d_model`` int8 codes) per input beat into the X banks (token ``t`` in bank ``t % rows``);
    ``last`` ends the sequence (``1..max_seq`` tokens for ``"qkv"``, exactly ``max_seq`` for
    ``"attention"``).
``qkv``
    The fused ``[Wq | Wk | Wv]`` projection: ``3 d_model / cols`` column tiles, each over the
    ``ceil(seq / rows)`` row tiles the sequence fills, ``d_model`` reduction steps each; rows past the
    sequence's end in the last row tile are computed and dropped before the requantizer. Beats: ``cols``
    codes of one token, column tile by column tile, tokens in order within one.
``scores``
    Per head, ``Q_h K_h^T`` in ``(max_seq / rows) x (max_seq / cols)`` tiles of ``d_head`` steps,
    requantized with the scalar score multiplier. Beats: ``cols`` scores of one query row.
``probs``
    The score rows (``max_seq`` codes, head by head, query by query) through the softmax block, one code
    per cycle. Beats: one probability code in lane 0, the other lanes zero.
``ctx``
    Per head, ``P_h V_h`` in ``(max_seq / rows) x (d_head / cols)`` tiles of ``max_seq`` steps,
    requantized to the context codes. Beats as ``scores`` (a head's channels, tile by tile).
``attn_out``
    ``ctx Wo^T`` with the O projection's requantizer (to the first residual's scale), beats as ``qkv``.
``res1``
    ``requant_x(x) + attn_out`` (the 9-bit residual sum, the first LayerNorm's input), one beat of
    ``cols`` channels per cycle in the ``attn_out`` order: the block's result so far; ``last`` marks the
    sequence's final beat.

The weights and the requantization parameters are the config's integerized layer
(:func:`qarith.golden.encoder_layer.config_params`), baked into the memories' initial contents.
Cycles: :meth:`EncoderLayer.finish_cycles` (exact, no stalls).
"""

import torch
from amaranth.hdl import Cat, Const, Mux, Module, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.encoder_layer import RESIDUAL_WIDTH, RTL_PHASES, EncoderLayerConfig, config_params, qkv_projection
from ..golden.requant import RequantConfig
from .common.component import BlockComponent
from .mac_array import MacArray
from .requant import SHIFT_WIDTH, Requant
from .shiftmax import Shiftmax
from .softmax_lut import SoftmaxLut

__all__ = ["EncoderLayer", "TAP_PHASES"]

#: Every phase the tap stream can carry, by its ``phase`` code.
TAP_PHASES = RTL_PHASES["attention"]
QKV, SCORES, PROBS, CTX, ATTN_OUT, RES1 = range(len(TAP_PHASES))


def _pack(codes, width):
    """Little-endian packing of signed codes into one unsigned word (code ``j`` at bits ``j*width``)."""
    word = 0
    for j, code in enumerate(codes):
        word |= (int(code) & ((1 << width) - 1)) << (j * width)
    return word


def _ceil_div(a, b):
    return -(-a // b)


class EncoderLayer(BlockComponent):
    """The integer encoder layer up to ``cfg.rtl_phases`` on a time-multiplexed MAC array.

    Parameters
    ----------
    cfg : EncoderLayerConfig

    Members
    -------
    i : In(stream.Signature(StructLayout({"token": ArrayLayout(signed(8), d_model), "last": 1})))
    o : Out(stream.Signature(StructLayout({"phase": 3, "data": ArrayLayout(signed(data_width), cols), "last": 1})))
        The tap stream (module docstring); lanes are int8 codes, 9 bits wide once the RTL reaches ``res1``.
    """

    config_class = EncoderLayerConfig

    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        self.mac = MacArray(cfg.mac)
        self.requant = Requant(RequantConfig(lanes=cfg.cols, acc_width=cfg.mac.acc_bits))
        self.softmax = self.requant_x = None
        if self.attention:
            self.requant_x = Requant(RequantConfig(lanes=cfg.cols, acc_width=cfg.mac.acc_bits))
            softmax_cfg = config_params(cfg).softmax_config(cfg.max_seq)
            self.softmax = SoftmaxLut(softmax_cfg) if cfg.softmax == "lut" else Shiftmax(softmax_cfg)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "token": data.ArrayLayout(signed(8), cfg.d_model), "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({
                "phase": unsigned(3), "data": data.ArrayLayout(signed(self.data_width), cfg.cols), "last": 1}))),
        })

    @property
    def data_width(self):
        """Bits of a tap lane: int8 codes, or the 9-bit residual sum when the RTL reaches ``res1``."""
        return RESIDUAL_WIDTH if self.attention else 8

    @property
    def attention(self):
        return self.cfg.rtl_phases == "attention"

    @property
    def phases(self):
        """The phases the hardware computes, in order (the tap stream's)."""
        return RTL_PHASES[self.cfg.rtl_phases]

    @property
    def column_tiles(self):
        return 3 * self.cfg.d_model // self.cfg.cols

    def gemm_shape(self, phase, seq):
        """``(tiles, steps)`` of a matrix phase on ``seq`` tokens: array tiles and reduction steps each."""
        cfg = self.cfg
        row_tiles = _ceil_div(seq, cfg.rows)
        return {
            "qkv": (self.column_tiles * row_tiles, cfg.d_model),
            "scores": (cfg.heads * row_tiles * (seq // cfg.cols), cfg.d_head),
            "ctx": (cfg.heads * row_tiles * (cfg.d_head // cfg.cols), seq),
            "attn_out": (cfg.d_model // cfg.cols * row_tiles, cfg.d_model),
        }[phase]

    @property
    def latency(self):
        """Cycles from accepting a sequence's last token to its first output beat being valid: the
        last token's write, the sequencer's start and memory read (3), the first tile's ``d_model``
        steps, the array and the requantizer."""
        return 3 + self.cfg.d_model - 1 + self.mac.latency + self.requant.latency

    @property
    def throughput(self):
        """Peak MACs per cycle."""
        return self.mac.throughput

    @property
    def table_bytes(self):
        """Bytes of the weight memory and the quantization-parameter ROM."""
        cfg = self.cfg
        matrices = 4 if self.attention else 3
        weight_bits = matrices * cfg.d_model * cfg.d_model * 8
        param_bits = (matrices * cfg.d_model + (2 * cfg.cols if self.attention else 0)) * (32 + 32 + SHIFT_WIDTH)
        return (weight_bits + param_bits + 7) // 8

    def cycles(self, seq):
        """Array steps of the ``qkv`` phase on ``seq`` tokens, excluding load and pipeline latency."""
        tiles, steps = self.gemm_shape("qkv", seq)
        return tiles * max(steps, self.cfg.rows)

    def phase_cycles(self, seq):
        """``{phase: (first_cycle, last_cycle)}``: when each phase's first step is issued and its last
        beat leaves, counted from accepting the sequence's last token, with ``o`` always ready.

        A matrix phase of ``T`` tiles of ``K`` steps issues a step per cycle, each tile taking at least
        ``rows`` cycles (the array emits one row per cycle); its last tile's first row appears ``K`` +
        the array's and the requantizer's latencies after that tile starts, its further rows one per
        cycle. The softmax phase reads one score per cycle (a read cycle first) and its last row leaves
        the softmax's latency and ``max_seq - 1`` cycles after the last score. Each phase starts the
        cycle after the previous one's last beat (the first, two cycles after the last token: its write)."""
        cfg = self.cfg
        start, timing = 2, {}
        for phase in self.phases:
            if phase == "probs":
                n = cfg.max_seq
                last = start + cfg.heads * n * n + self.softmax.latency + n - 1
            elif phase == "res1":
                last = start + cfg.d_model // cfg.cols * seq - 1 + self.requant_x.latency
            else:
                tiles, steps = self.gemm_shape(phase, seq)
                rows_last = (seq - 1) % cfg.rows + 1
                last = (start + (tiles - 1) * max(steps, cfg.rows) + steps + self.mac.latency
                        + self.requant.latency + rows_last - 1)
            timing[phase] = (start, last)
            start = last + 1
        return timing

    def finish_cycles(self, seq):
        """Cycles from accepting a sequence's last token to its last output beat leaving (no stalls)."""
        return self.phase_cycles(seq)[self.phases[-1]][1]

    def _quant_rows(self, params):
        """The quantization ROM: per column tile of ``Wq|Wk|Wv`` (and ``Wo``), then the scalar score and
        context requantizers replicated over the lanes."""
        cfg = self.cfg
        weight, bias, multiplier, shift = qkv_projection(params)
        rows = [(int(bias[c]), int(multiplier[c]), int(shift[c])) for c in range(3 * cfg.d_model)]
        if self.attention:
            o = params.requant["o"]
            rows += [(int(o.bias[c]), int(o.multiplier[c]), int(o.shift[c])) for c in range(cfg.d_model)]
            for name in ("scores", "ctx"):
                r = params.requant[name]
                rows += [(int(r.bias[0]), int(r.multiplier[0]), int(r.shift[0]))] * cfg.cols
        return [[{"bias": b, "multiplier": mult, "shift": s} for b, mult, s in rows[t:t + cfg.cols]]
                for t in range(0, len(rows), cfg.cols)]

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.mac = mac = self.mac
        m.submodules.requant = requant = self.requant
        rows, cols, d_model, d_head = cfg.rows, cfg.cols, cfg.d_model, cfg.d_head
        attention = self.attention
        params = config_params(cfg)
        weight = qkv_projection(params)[0]
        if attention:
            m.submodules.softmax = softmax = self.softmax
            weight = torch.cat([weight, params.weights["o"]])
        d_tiles = d_model // cols
        depth_r = _ceil_div(cfg.max_seq, rows)
        final = len(self.phases) - 1

        def banks(name, count, depth, width, granularity, domain="sync"):
            """``count`` memories of ``depth`` words of ``width`` codes (8 bits), written ``granularity``
            codes at a time, read one word per cycle."""
            ports = []
            for b in range(count):
                memory = Memory(shape=unsigned(8 * width), depth=depth, init=[])
                m.submodules[f"{name}{b}"] = memory
                ports.append((memory.write_port(granularity=8 * granularity), memory.read_port(domain=domain)))
                if attention and name == "tokens":
                    x_residual.append(memory.read_port(domain="comb"))
            return ports

        x_residual = []
        x_banks = banks("tokens", rows, depth_r, d_model, d_model)
        weights = Memory(shape=unsigned(8 * cols), depth=weight.shape[0] // cols * d_model,
                         init=[_pack(weight[ct * cols:(ct + 1) * cols, k].tolist(), 8)
                               for ct in range(weight.shape[0] // cols) for k in range(d_model)])
        m.submodules.weights = weights
        weight_port = weights.read_port(domain="sync")
        lanes = data.ArrayLayout(data.StructLayout({"bias": signed(32), "multiplier": signed(32),
                                                    "shift": signed(SHIFT_WIDTH)}), cols)
        quant_rows = self._quant_rows(params)
        quant = Memory(shape=lanes, depth=len(quant_rows), init=quant_rows)
        m.submodules.quant = quant
        quant_port = quant.read_port(domain="comb")
        if attention:
            q_banks = banks("q", rows, depth_r, d_model, cols)
            k_banks = banks("k", cols, cfg.max_seq // cols, d_model, cols)
            (v_write, v_read), = banks("v", 1, cfg.max_seq, d_model, cols)
            (s_write, s_read), = banks("scores", 1, cfg.heads * cfg.max_seq, cfg.max_seq, cols)
            p_banks = banks("probs", rows, cfg.heads * depth_r, cfg.max_seq, 1)
            ctx_banks = banks("ctx", rows, depth_r, d_model, cols)
            (attn_write, attn_read), = banks("attn_out", 1, cfg.max_seq, d_model, cols, domain="comb")

        phase = Signal(range(len(self.phases)))

        def by_phase(default, cases):
            """``cases[phase]`` (``default`` for the other phases) as one expression: the emitted Verilog
            then drives it with a continuous assignment, not an ``always @*`` process that Icarus never
            wakes while its inputs hold their initial values (``test_icarus_time_zero_reproducer``)."""
            value = default
            if attention:
                for code, case in cases.items():
                    value = Mux(phase == code, case, value)
            return value
        seq_len = Signal(range(cfg.max_seq + 1))
        row_tiles = Signal(range(depth_r + 1))
        wr_bank = Signal(range(rows))
        wr_addr = Signal(range(depth_r))

        # Loop bounds of the current matrix phase: outer g (column tile or head), row tile, inner column
        # tile, reduction step.
        max_g, max_c = max(self.column_tiles, cfg.heads), max(cfg.max_seq // cols, 1)
        max_k = max(d_model, cfg.max_seq)
        bound_g, bound_r = Signal(range(max_g + 1)), Signal(range(depth_r + 1))
        bound_c, bound_k = Signal(range(max_c + 1)), Signal(range(max_k + 1))
        m.d.comb += [
            bound_g.eq(by_phase(self.column_tiles, {SCORES: cfg.heads, CTX: cfg.heads, ATTN_OUT: d_tiles})),
            bound_r.eq(row_tiles),
            bound_c.eq(by_phase(1, {SCORES: cfg.max_seq // cols, CTX: d_head // cols})),
            bound_k.eq(by_phase(d_model, {SCORES: d_head, CTX: cfg.max_seq})),
        ]

        def loop(counters, bounds, step):
            """Step the nested ``counters`` (outermost first) through ``range(bound)`` each when ``step``;
            returns whether every counter is at its last value (the loop's last iteration)."""
            ends = [counter == bound - 1 for counter, bound in zip(counters, bounds)]
            with m.If(step):
                for level, counter in enumerate(counters):
                    inner_done = Const(1)
                    for end in ends[level + 1:]:
                        inner_done = inner_done & end
                    with m.If(inner_done):
                        with m.If(ends[level]):
                            m.d.sync += counter.eq(0)
                        with m.Else():
                            m.d.sync += counter.eq(counter + 1)
            every = Const(1)
            for end in ends:
                every = every & end
            return every

        g, rt, c, k = Signal(range(max_g), name="g"), Signal(range(depth_r), name="rt"), \
            Signal(range(max_c), name="c"), Signal(range(max_k), name="k")
        issuing = Signal()
        # Stage 1: the step read from the memories last cycle.
        s1_valid, s1_last = Signal(), Signal()
        s1_g, s1_c, s1_k = Signal.like(g), Signal.like(c), Signal.like(k)
        advance = Signal()
        m.d.comb += advance.eq(~s1_valid | mac.i.ready)

        # Output beats: the requantizer's rows in the issue order, skipping the rows past the sequence.
        fg, frt, fc, fr = Signal.like(g), Signal.like(rt), Signal.like(c), Signal(range(rows))
        f_token = Signal(range(depth_r * rows))
        m.d.comb += f_token.eq(frt * rows + fr)
        beat = Signal()
        m.d.comb += beat.eq(self.o.valid & self.o.ready)
        gemm_beat = Signal()
        m.d.comb += gemm_beat.eq(beat & (phase != PROBS) & (phase != RES1) if attention else beat)
        row_end = (fr == rows - 1) | (f_token == seq_len - 1)
        fin_ends = [fg == bound_g - 1, frt == bound_r - 1, fc == bound_c - 1, row_end]
        # The beat on offer is its phase's last.
        at_last, gemm_at_last = Signal(), Signal()
        m.d.comb += gemm_at_last.eq(fin_ends[0] & fin_ends[1] & fin_ends[2] & fin_ends[3])
        with m.If(gemm_beat):
            with m.If(row_end):
                m.d.sync += fr.eq(0)
                with m.If(fin_ends[2]):
                    m.d.sync += fc.eq(0)
                    with m.If(fin_ends[1]):
                        m.d.sync += frt.eq(0)
                        m.d.sync += fg.eq(fg + 1)
                        with m.If(fin_ends[0]):
                            m.d.sync += fg.eq(0)
                    with m.Else():
                        m.d.sync += frt.eq(frt + 1)
                with m.Else():
                    m.d.sync += fc.eq(fc + 1)
            with m.Else():
                m.d.sync += fr.eq(fr + 1)

        phase_done = Signal()
        sequence_done = Signal()
        m.d.comb += [phase_done.eq(beat & at_last), sequence_done.eq(phase_done & (phase == final))]

        token_bits = self.i.payload.token.as_value()
        loading = Signal()
        feeding, res_feeding = Signal(), Signal()
        with m.FSM() as fsm:
            with m.State("load"):
                with m.If(self.i.valid):
                    m.d.sync += seq_len.eq(seq_len + 1)
                    with m.If(wr_bank == 0):
                        m.d.sync += row_tiles.eq(row_tiles + 1)
                    with m.If(wr_bank == rows - 1):
                        m.d.sync += [wr_bank.eq(0), wr_addr.eq(wr_addr + 1)]
                    with m.Else():
                        m.d.sync += wr_bank.eq(wr_bank + 1)
                    with m.If(self.i.payload.last):
                        m.next = "write"
            with m.State("write"):
                # The last token reaches its bank at the end of this cycle.
                m.d.sync += [issuing.eq(1), g.eq(0), rt.eq(0), c.eq(0), k.eq(0)]
                m.next = "run"
            with m.State("run"):
                with m.If(issuing & advance):
                    with m.If(loop([g, rt, c, k], [bound_g, bound_r, bound_c, bound_k], 1)):
                        m.d.sync += issuing.eq(0)
                with m.If(phase_done):
                    with m.If(sequence_done):
                        m.d.sync += [seq_len.eq(0), row_tiles.eq(0), wr_bank.eq(0), wr_addr.eq(0), phase.eq(0)]
                        m.next = "load"
                    with m.Else():
                        m.d.sync += phase.eq(phase + 1)
                        if attention:
                            with m.If(phase + 1 == PROBS):
                                m.d.sync += feeding.eq(1)
                            with m.Elif(phase + 1 == RES1):
                                m.d.sync += res_feeding.eq(1)
                            with m.Else():
                                m.d.sync += issuing.eq(1)
        m.d.comb += [loading.eq(fsm.ongoing("load")), self.i.ready.eq(loading)]

        # An accepted token is registered, then written: the memories see no input port directly.
        pend_valid, pend_bank = Signal(), Signal(range(rows))
        pend_addr, pend_data = Signal(range(depth_r)), Signal(8 * d_model)
        m.d.sync += [pend_valid.eq(loading & self.i.valid), pend_bank.eq(wr_bank), pend_addr.eq(wr_addr),
                     pend_data.eq(token_bits)]
        for r, (write, read) in enumerate(x_banks):
            m.d.comb += [write.addr.eq(pend_addr), write.data.eq(pend_data),
                         write.en.eq(pend_valid & (pend_bank == r))]
            m.d.comb += [read.addr.eq(rt), read.en.eq(advance)]
        m.d.comb += [weight_port.addr.eq(by_phase(g * d_model + k, {ATTN_OUT: (self.column_tiles + g) * d_model + k})),
                     weight_port.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(issuing), s1_g.eq(g), s1_c.eq(c), s1_k.eq(k),
                         s1_last.eq(k == bound_k - 1)]

        m.d.comb += [mac.i.valid.eq(s1_valid), mac.i.payload.last.eq(s1_last)]

        def code(word, index):
            return word.word_select(index, 8).as_signed()

        a_cases, b_cases = [{} for _ in range(rows)], [{} for _ in range(cols)]
        if attention:
            head_code = Signal(range(d_model))
            m.d.comb += head_code.eq(s1_g * d_head + s1_k)
            for r in range(rows):
                m.d.comb += [q_banks[r][1].addr.eq(rt), q_banks[r][1].en.eq(advance),
                             p_banks[r][1].addr.eq(g * depth_r + rt), p_banks[r][1].en.eq(advance),
                             ctx_banks[r][1].addr.eq(rt), ctx_banks[r][1].en.eq(advance)]
                a_cases[r] = {SCORES: code(q_banks[r][1].data, head_code), CTX: code(p_banks[r][1].data, s1_k),
                              ATTN_OUT: code(ctx_banks[r][1].data, s1_k)}
            for col in range(cols):
                m.d.comb += [k_banks[col][1].addr.eq(c), k_banks[col][1].en.eq(advance)]
            m.d.comb += [v_read.addr.eq(k), v_read.en.eq(advance)]
            v_tile = Signal(range(d_tiles))
            m.d.comb += v_tile.eq(s1_g * (d_head // cols) + s1_c)
            v_lanes = v_read.data.word_select(v_tile, 8 * cols)
            for col in range(cols):
                b_cases[col] = {SCORES: code(k_banks[col][1].data, head_code), CTX: code(v_lanes, col)}
        for r, (_, read) in enumerate(x_banks):
            m.d.comb += mac.i.payload.a[r].eq(by_phase(code(read.data, s1_k), a_cases[r]))
        for col in range(cols):
            m.d.comb += mac.i.payload.b[col].eq(by_phase(code(weight_port.data, col), b_cases[col]))

        # The array's rows in issue order: drop the rows past the sequence's end, attach the tile's
        # quantization parameters.
        og, ort, oc, orow = Signal.like(g), Signal.like(rt), Signal.like(c), Signal(range(rows))
        row_used = Signal()
        m.d.comb += row_used.eq(ort * rows + orow < seq_len)
        loop([og, ort, oc, orow], [bound_g, bound_r, bound_c, rows], mac.o.valid & mac.o.ready)
        m.d.comb += [
            quant_port.addr.eq(by_phase(og, {SCORES: 4 * d_tiles, CTX: 4 * d_tiles + 1, ATTN_OUT: 3 * d_tiles + og})),
            requant.i.valid.eq(mac.o.valid & row_used),
            mac.o.ready.eq(requant.i.ready | ~row_used),
            requant.output_offset.eq(0), requant.act_min.eq(-128), requant.act_max.eq(127),
        ]
        for col in range(cols):
            m.d.comb += [
                requant.i.payload[col].acc.eq(mac.o.payload.acc[col]),
                requant.i.payload[col].bias.eq(quant_port.data[col].bias),
                requant.i.payload[col].multiplier.eq(quant_port.data[col].multiplier),
                requant.i.payload[col].shift.eq(quant_port.data[col].shift),
            ]

        # The tap stream.
        in_probs, in_res = Signal(), Signal()
        if attention:
            m.submodules.requant_x = requant_x = self.requant_x
            # The first residual: requant_x(x) + attn_out per lane, one beat of cols channels per cycle,
            # column tile outer, tokens inner (as attn_out). x comes from the token banks' second
            # (combinational) read port, attn_out from its memory at the output side.
            xt, xtok = Signal(range(d_tiles)), Signal(range(cfg.max_seq))
            with m.If(res_feeding & requant_x.i.ready):
                with m.If(loop([xt, xtok], [d_tiles, cfg.max_seq], 1)):
                    m.d.sync += res_feeding.eq(0)
            x_word = x_residual[0].data
            for r, port in enumerate(x_residual):
                m.d.comb += port.addr.eq(xtok // rows)
                if r:
                    x_word = Mux(xtok % rows == r, port.data, x_word)
            x_lanes = x_word.word_select(xt, 8 * cols)
            res_x = params.requant["res1_x"]
            m.d.comb += [requant_x.i.valid.eq(res_feeding), requant_x.output_offset.eq(0),
                         requant_x.act_min.eq(-128), requant_x.act_max.eq(127)]
            for col in range(cols):
                m.d.comb += [
                    requant_x.i.payload[col].acc.eq(x_lanes.word_select(col, 8).as_signed()),
                    requant_x.i.payload[col].bias.eq(int(res_x.bias[0])),
                    requant_x.i.payload[col].multiplier.eq(int(res_x.multiplier[0])),
                    requant_x.i.payload[col].shift.eq(int(res_x.shift[0])),
                ]
            rt_tile, rtok = Signal(range(d_tiles)), Signal(range(cfg.max_seq))
            res_beat = Signal()
            m.d.comb += [in_res.eq(phase == RES1), res_beat.eq(beat & in_res), attn_read.addr.eq(rtok)]
            res_done = loop([rt_tile, rtok], [d_tiles, cfg.max_seq], res_beat)
            attn_lanes = attn_read.data.word_select(rt_tile, 8 * cols)
            m.d.comb += requant_x.o.ready.eq(self.o.ready & in_res)
            n = cfg.max_seq
            ph, pi, pj = Signal(range(cfg.heads)), Signal(range(n)), Signal(range(n))
            probs_beat = Signal()
            m.d.comb += [in_probs.eq(phase == PROBS), probs_beat.eq(beat & in_probs)]
            probs_done = loop([ph, pi, pj], [cfg.heads, n, n], probs_beat)
            softmax_lanes = Cat(softmax.o.payload, Const(0, 8 * cols - len(softmax.o.payload)))
            m.d.comb += [
                self.o.valid.eq(Mux(in_res, requant_x.o.valid, Mux(in_probs, softmax.o.valid, requant.o.valid))),
                softmax.o.ready.eq(self.o.ready & in_probs),
                at_last.eq(Mux(in_res, res_done, Mux(in_probs, probs_done, gemm_at_last))),
            ]
            for col in range(cols):
                residual = requant_x.o.payload[col] + attn_lanes.word_select(col, 8).as_signed()
                prob = softmax.o.payload if col == 0 else Const(0, 8)
                m.d.comb += self.o.payload.data[col].eq(
                    Mux(in_res, residual, Mux(in_probs, prob, requant.o.payload[col])))
        else:
            m.d.comb += [self.o.valid.eq(requant.o.valid), self.o.payload.data.eq(requant.o.payload),
                         at_last.eq(gemm_at_last)]
        m.d.comb += [
            requant.o.ready.eq(self.o.ready & ~in_probs & ~in_res),
            self.o.payload.phase.eq(phase),
            self.o.payload.last.eq(at_last & (phase == final)),
        ]
        if not attention:
            return m

        # Writes of the projections, scores and context as their beats leave.
        lanes_bits = requant.o.payload.as_value()
        qkv_beat = gemm_beat & (phase == QKV)
        k_tile, v_tile_w = Signal(range(d_tiles)), Signal(range(d_tiles))
        m.d.comb += [k_tile.eq(fg - d_tiles), v_tile_w.eq(fg - 2 * d_tiles)]
        q_tile = Signal(range(d_tiles))
        m.d.comb += q_tile.eq(fg)
        def enable(condition, width, index):
            """The write enable of one lane group: ``1 << index`` when ``condition``, else 0."""
            return Mux(condition, Const(1, width) << index, 0)

        for r, (write, _) in enumerate(q_banks):
            m.d.comb += [write.addr.eq(frt), write.data.eq(lanes_bits.replicate(d_tiles)),
                         write.en.eq(enable(qkv_beat & (fr == r) & (fg < d_tiles), d_tiles, q_tile))]
        for col, (write, _) in enumerate(k_banks):
            m.d.comb += [write.addr.eq(f_token // cols), write.data.eq(lanes_bits.replicate(d_tiles)),
                         write.en.eq(enable(qkv_beat & (f_token % cols == col) & (fg >= d_tiles)
                                            & (fg < 2 * d_tiles), d_tiles, k_tile))]
        m.d.comb += [v_write.addr.eq(f_token), v_write.data.eq(lanes_bits.replicate(d_tiles)),
                     v_write.en.eq(enable(qkv_beat & (fg >= 2 * d_tiles), d_tiles, v_tile_w))]
        s_tiles = cfg.max_seq // cols
        m.d.comb += [s_write.addr.eq(fg * cfg.max_seq + f_token), s_write.data.eq(lanes_bits.replicate(s_tiles)),
                     s_write.en.eq(enable(gemm_beat & (phase == SCORES), s_tiles, fc))]
        for r, (write, _) in enumerate(ctx_banks):
            m.d.comb += [write.addr.eq(frt), write.data.eq(lanes_bits.replicate(d_tiles)),
                         write.en.eq(enable(gemm_beat & (phase == CTX) & (fr == r), d_tiles,
                                            fg * (d_head // cols) + fc))]

        m.d.comb += [attn_write.addr.eq(f_token), attn_write.data.eq(lanes_bits.replicate(d_tiles)),
                     attn_write.en.eq(enable(gemm_beat & (phase == ATTN_OUT), d_tiles, fg))]

        # The softmax phase: score rows in, probability rows out (into the P banks and the tap stream).
        sh, si, sj = Signal(range(cfg.heads)), Signal(range(n)), Signal(range(n))
        sm_valid, sm_j = Signal(), Signal(range(n))
        sm_advance = Signal()
        m.d.comb += sm_advance.eq(~sm_valid | softmax.i.ready)
        m.d.comb += [s_read.addr.eq(sh * n + si), s_read.en.eq(sm_advance)]
        with m.If(feeding & sm_advance):
            with m.If(loop([sh, si, sj], [cfg.heads, n, n], 1)):
                m.d.sync += feeding.eq(0)
        with m.If(sm_advance):
            m.d.sync += [sm_valid.eq(feeding), sm_j.eq(sj)]
        m.d.comb += [softmax.i.valid.eq(sm_valid), softmax.i.payload.eq(s_read.data.word_select(sm_j, 8))]
        for r, (write, _) in enumerate(p_banks):
            m.d.comb += [write.addr.eq(ph * depth_r + pi // rows),
                         write.data.eq(softmax_lanes[:8].replicate(n))]
            m.d.comb += write.en.eq(enable(probs_beat & (pi % rows == r), n, pj))
        return m
