"""The integer encoder layer in hardware: :func:`qarith.golden.encoder_layer.encoder_layer` from the
Q, K, V projections (``rtl_phases="qkv"``) on to the attention block's O projection and the first
residual sum (``rtl_phases="attention"``) or through the whole layer to the second LayerNorm's int8
output (``rtl_phases="layer"``), ITA-style on one time-multiplexed MAC array.

Structure (one :class:`~qarith.hdl.mac_array.MacArray` and one :class:`~qarith.hdl.requant.Requant`,
which requantizes every matrix product, the residuals' x and the GELU's codes, phase by phase; for the
attention phases the config's softmax block, :class:`~qarith.hdl.shiftmax.Shiftmax` or
:class:`~qarith.hdl.softmax_lut.SoftmaxLut` with variable-length rows; for the layer two
:class:`~qarith.hdl.ilayernorm.ILayerNorm` blocks and the config's GELU
(:class:`~qarith.hdl.shiftgelu.ShiftGelu`, ShiftGELU or i-GELU); all instantiated as submodules)::

    tokens -> X banks ---------+                         +-> Q banks, K banks, V memory    (qkv)
              Q banks, K banks |--> mac_array -> requant -+-> score memory                 (scores)
              P banks, V mem   |       ^                  +-> ctx banks                     (ctx)
              ctx banks        |       |                  +-> attn_out memory               (attn_out)
              X banks (ln1)    |       |                  +-> hidden memory                 (hidden)
              G banks ---------+       |                  +-> attn_out memory (ffn_out)     (ffn_out)
              weights Wq|Wk|Wv|Wo|W1|W2     quant ROM --^
    score memory -> softmax -> P banks                                                    (probs)
    X banks -> requant --(+ attn_out memory)--> residual memory                           (res1)
    residual memory -> ilayernorm 1 -> X banks                                            (ln1)
    hidden memory -> GELU -> requant (lane 0) -> G banks                                  (gelu)
    X banks (ln1) -> requant --(+ attn_out memory: ffn_out)--> residual memory            (res2)
    residual memory -> ilayernorm 2 -> o                                                  (out)

Every phase's tensor also leaves on ``o`` as it is written (the tap stream: ``phase`` names it, the
order is :data:`~qarith.golden.encoder_layer.RTL_PHASES`), so a bench checks each phase bit for bit; a
stalled ``o`` stalls the phase (its queues fill, then their credits stop the feeds), and a tensor is
written on chip the cycle after its beat leaves.

Phases of one sequence of ``seq`` tokens (``1 .. max_seq``, every phase), each started once the previous
one's last beat has left:

``load``
    One token (``d_model`` int8 codes) per input beat into the X banks (token ``t`` in bank ``t % rows``),
    a beat taken every ``d_model / cols`` cycles at most: a token is written a column tile per cycle;
    ``last`` ends the sequence.
``qkv``
    The fused ``[Wq | Wk | Wv]`` projection: ``3 d_model / cols`` column tiles, each over the
    ``ceil(seq / rows)`` row tiles the sequence fills, ``d_model`` reduction steps each; rows past the
    sequence's end in the last row tile are computed and dropped before the requantizer. Beats: ``cols``
    codes of one token, column tile by column tile, tokens in order within one.
``scores``
    Per head, ``Q_h K_h^T`` in ``ceil(seq / rows) x ceil(seq / cols)`` tiles of ``d_head`` steps,
    requantized with the scalar score multiplier. Beats: ``cols`` scores of one query row; the lanes
    past the sequence's last key are zero.
``probs``
    The score rows (``seq`` codes, head by head, query by query; ``last`` ends each row) through the
    softmax block, one code per cycle. Beats: one probability code in lane 0, the other lanes zero.
``ctx``
    Per head, ``P_h V_h`` in ``ceil(seq / rows) x (d_head / cols)`` tiles of ``seq`` steps, requantized
    to the context codes. Beats as ``scores`` (a head's channels, tile by tile).
``attn_out``
    ``ctx Wo^T`` with the O projection's requantizer (to the first residual's scale), beats as ``qkv``.
``res1``
    ``rq(x) + attn_out`` (``x`` requantized to the residual's scale; the 9-bit residual sum, the first
    LayerNorm's input), one beat of ``cols`` channels per cycle in the ``attn_out`` order: the attention
    block's result.
``ln1``
    Each token's ``d_model`` residual codes through the first I-LayerNorm, one per cycle; its int8 codes
    replace the tokens in the X banks. Beats: one code in lane 0.
``hidden``
    ``ln1 W1^T`` (``d_ff / cols`` column tiles of ``d_model`` steps) with the first FFN requantizer,
    beats as ``qkv``.
``gelu``
    Each token's ``d_ff`` hidden codes through the GELU block and its int8 requantizer (``gelu_q``), one
    per cycle, into the G banks. Beats: the GELU code in lane 0, its int8 code in lane 1.
``ffn_out``
    ``gelu_q W2^T`` (``d_model / cols`` column tiles of ``d_ff`` steps) with the second FFN requantizer
    (to the second residual's scale), beats as ``qkv``.
``res2``
    ``rq(ln1) + ffn_out``, as ``res1``.
``out``
    Each token's residual codes through the second I-LayerNorm: the layer's int8 output, one code per
    beat in lane 0, channel by channel, token by token; ``last`` marks the sequence's final beat.

The final phase of ``rtl_phases`` carries ``last``. The weights and the requantization parameters are
the config's integerized layer (:func:`qarith.golden.encoder_layer.config_params`), baked into the
memories' initial contents. Cycles: :meth:`EncoderLayer.phase_cycles` (exact, no stalls).
"""

import dataclasses
import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.encoder_layer import RESIDUAL_WIDTH, RTL_PHASES, EncoderLayerConfig, config_params, qkv_projection
from ..golden.requant import RequantConfig
from .common.component import BlockComponent
from .ilayernorm import ILayerNorm
from .mac_array import MacArray, RowQueue
from .requant import SHIFT_WIDTH, Requant
from .shiftgelu import ShiftGelu
from .shiftmax import Shiftmax
from .softmax_lut import SoftmaxLut

__all__ = ["EncoderLayer", "TAP_PHASES", "GEMM_PHASES"]

#: Every phase the tap stream can carry, by its ``phase`` code.
TAP_PHASES = RTL_PHASES["layer"]
QKV, SCORES, PROBS, CTX, ATTN_OUT, RES1, LN1, HIDDEN, GELU, FFN_OUT, RES2, OUT = range(len(TAP_PHASES))
#: Register stages between the issue and the MAC array's input besides the memories' read (the read
#: addresses, each memory's word, the chosen operands).
FEED_STAGES = 3
#: Register stages between the operand registers and the MAC array's input (its feed queue: the write,
#: then the head register).
FEED_QUEUE_STAGES = 2
#: Register stages between the MAC array's rows and the requantizer (the quantization ROM's address, its
#: read, then its word).
QUANT_STAGES = 3
#: Register stages between the requantizer's output (or a row block's) and the layer's: its queue's
#: write, the block RAM's read register, then the head register in fabric (``RowQueue(out_reg=True)``).
QUEUE_STAGES = 3
#: Register stages in front of a residual phase's quantization stage (the token banks' read, each bank's
#: word, then the bank's word chosen).
RES_STAGES = 3
#: Cycles between a phase's last beat and the next phase's start (each phase's last-beat test registered,
#: then their OR).
PHASE_STAGES = 2
#: Register stages between a row phase's feeder issuing an element and its block's input (softmax,
#: LayerNorm, GELU), besides the memory's read: the read address, the memory's word, the chosen code,
#: and the feeder's queue (its write, then its head register).
ROW_FEED_STAGES = 5
#: Words in each of the weight memory's chunks (one DP16KD deep at 36 bits): each chunk's word is
#: registered straight behind its block RAM, so no multiplexer across the chunks lies behind a RAM.
WEIGHT_CHUNK = 512
#: The phases that run on the MAC array.
GEMM_PHASES = ("qkv", "scores", "ctx", "attn_out", "hidden", "ffn_out")


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
    o : Out(stream.Signature(StructLayout({"phase": phase_width, "data": ArrayLayout(signed(data_width), cols), "last": 1})))
        The tap stream (module docstring); lanes are int8 codes, 9 bits wide once the RTL reaches ``res1``,
        wide enough for the GELU's codes once it reaches ``gelu``.
    """

    config_class = EncoderLayerConfig

    def __init__(self, cfg):
        self.cfg = cfg
        self.mac = MacArray(cfg.mac)
        self.softmax = self.ln1 = self.ln2 = self.gelu = None
        acc_width = cfg.mac.acc_bits
        if self.attention:
            params = config_params(cfg)
            softmax_cfg = params.softmax_config(cfg.max_seq, variable_length=True)
            self.softmax = SoftmaxLut(softmax_cfg) if cfg.softmax == "lut" else Shiftmax(softmax_cfg)
        if self.layer:
            self.ln1 = ILayerNorm(dataclasses.replace(params.ln1, multiplier=self.requant_multiplier))
            self.ln2 = ILayerNorm(dataclasses.replace(params.ln2, multiplier=self.requant_multiplier))
            self.gelu = ShiftGelu(params.gelu)
            acc_width = max(acc_width, params.gelu.out_width)
        # One requantizer for every phase that requantizes (the matrix products, the residuals' x, the
        # GELU's codes): they never overlap, and with multiplier="ecp5" each lane takes four MULT18X18D.
        self.requant = Requant(RequantConfig(lanes=cfg.cols, acc_width=acc_width, multiplier=self.requant_multiplier))
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "token": data.ArrayLayout(signed(8), cfg.d_model), "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({
                "phase": unsigned(self.phase_width),
                "data": data.ArrayLayout(signed(self.data_width), cfg.cols), "last": 1}))),
        })

    @property
    def requant_multiplier(self):
        """The requantizers' multipliers (the layer's and the LayerNorms'): with ``multiplier="ecp5"``,
        MULT18X18D with the left shift registered ahead of them (``ecp5_reg``), so that no shifter sits
        on the wires into the DSPs, which lie in rows across the die."""
        return "ecp5_reg" if self.cfg.multiplier == "ecp5" else self.cfg.multiplier

    @property
    def sim_sources(self):
        """Simulation models of the FPGA primitives the submodules instantiate (``multiplier="ecp5"``)."""
        sources = []
        for block in (self.mac, self.requant, self.ln1, self.ln2):
            for source in (block.sim_sources if block is not None else []):
                if source not in sources:
                    sources.append(source)
        return sources

    @property
    def data_width(self):
        """Bits of a tap lane: int8 codes, the 9-bit residual sum once the RTL reaches ``res1``, and the
        GELU's output codes (:attr:`~qarith.golden.shiftgelu.ShiftGeluConfig.out_width`) once it
        reaches ``gelu``."""
        if self.layer:
            return max(RESIDUAL_WIDTH, self.gelu.cfg.out_width)
        return RESIDUAL_WIDTH if self.attention else 8

    @property
    def phase_width(self):
        """Bits of the tap stream's ``phase`` code (at least 3)."""
        return max(3, (len(self.phases) - 1).bit_length())

    @property
    def attention(self):
        return self.cfg.rtl_phases != "qkv"

    @property
    def layer(self):
        return self.cfg.rtl_phases == "layer"

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
        d_tiles = cfg.d_model // cfg.cols
        return {
            "qkv": (self.column_tiles * row_tiles, cfg.d_model),
            "scores": (cfg.heads * row_tiles * _ceil_div(seq, cfg.cols), cfg.d_head),
            "ctx": (cfg.heads * row_tiles * (cfg.d_head // cfg.cols), seq),
            "attn_out": (d_tiles * row_tiles, cfg.d_model),
            "hidden": (cfg.d_ff // cfg.cols * row_tiles, cfg.d_model),
            "ffn_out": (d_tiles * row_tiles, cfg.d_ff),
        }[phase]

    def phase_macs(self, phase, seq):
        """The multiply-accumulates a matrix phase needs on ``seq`` tokens (no padding)."""
        cfg = self.cfg
        return {
            "qkv": 3 * seq * cfg.d_model * cfg.d_model,
            "scores": cfg.heads * seq * seq * cfg.d_head,
            "ctx": cfg.heads * seq * seq * cfg.d_head,
            "attn_out": seq * cfg.d_model * cfg.d_model,
            "hidden": seq * cfg.d_model * cfg.d_ff,
            "ffn_out": seq * cfg.d_ff * cfg.d_model,
        }[phase]

    @property
    def latency(self):
        """Cycles from accepting a sequence's last token to its first output beat being valid: the
        last token's write (a column tile per cycle), the sequencer's start and memory read, the
        operand stage, the first tile's ``d_model`` steps, the array, the quantization stage, the
        requantizer and its output queue."""
        return (self.start_cycle + 1 + FEED_STAGES + FEED_QUEUE_STAGES + self.cfg.d_model - 1 + self.mac.latency
                + QUANT_STAGES + self.requant.latency + QUEUE_STAGES)

    @property
    def feed_queue_depth(self):
        """Steps the array's feed queue holds: every step in flight from its issue to the queue's head,
        and the cycles a returned credit takes to reach ``feed_room``, so that steps issue at one per
        cycle while the array takes them."""
        return 1 + FEED_STAGES + FEED_QUEUE_STAGES + 2

    @property
    def row_feed_depth(self):
        """Elements a row phase's feeder queue holds: every element in flight from its issue to the
        queue's head, and the cycles a returned credit takes to reach the feeder's ``room``."""
        return 1 + ROW_FEED_STAGES + 2

    @property
    def row_queue_depth(self):
        """Codes the row blocks' output queue holds (softmax, LayerNorms): every code in flight from its
        element entering the block (where the credit is taken) to the queue's head, and the cycles a
        returned credit takes to reach ``row_room``. The blocks' outputs are then never stalled. A block's
        ``latency`` runs from a row's last element to its first output, so an element stays ``length - 1``
        cycles longer than that (its row's later elements entering, then its row's earlier outputs
        leaving): a row of ``max_seq`` scores in the softmax, of ``d_model`` codes in a LayerNorm."""
        blocks = (([(self.softmax, self.cfg.max_seq)] if self.attention else [])
                  + ([(self.ln1, self.cfg.d_model), (self.ln2, self.cfg.d_model)] if self.layer else []))
        return max((block.latency + length - 1 for block, length in blocks), default=0) + QUEUE_STAGES + 2

    @property
    def queue_depth(self):
        """Beats the requantizer's output queue holds: every beat in flight from taking its credit (at the
        quantization stage, in the GELU phase at the GELU's input, in the residual phases at the
        feeder's issue) to the queue's head, and the cycles a returned credit takes to reach ``room``, so
        that beats enter at one per cycle while ``o`` is ready."""
        ahead = max(self.gelu.latency if self.layer else 0, RES_STAGES + 1 if self.attention else 0)
        return ahead + QUANT_STAGES + self.requant.latency + QUEUE_STAGES + 2

    @property
    def load_interval(self):
        """Cycles between two tokens of a sequence accepted at the full input rate: a token's
        ``d_model / cols`` column tiles are written one per cycle."""
        return self.cfg.d_model // self.cfg.cols

    def load_cycles(self, seq):
        """Cycles from accepting a sequence's first token to accepting its last, both counted, at the
        full input rate."""
        return (seq - 1) * self.load_interval + 1

    @property
    def start_cycle(self):
        """The cycle, counted from accepting a sequence's last token, at which the first phase issues
        its first step: the token's ``d_model / cols`` column tiles written one per cycle, then the
        sequencer's start."""
        return 1 + self.load_interval

    @property
    def throughput(self):
        """Peak MACs per cycle."""
        return self.mac.throughput

    @property
    def weight_codes(self):
        """int8 weight codes in the weight memory: ``Wq|Wk|Wv``, ``Wo`` (attention), ``W1``, ``W2`` (layer)."""
        cfg = self.cfg
        matrices = 4 if self.attention else 3
        return matrices * cfg.d_model * cfg.d_model + (2 * cfg.d_model * cfg.d_ff if self.layer else 0)

    @property
    def _scalar_quant_names(self):
        """The scalar requantizers after the matrix ones in the quantization ROM, a row each."""
        return (["res1_x"] if self.attention else []) + (["res2_ln1", "gelu"] if self.layer else [])

    @property
    def scalar_quant_row(self):
        """``{name: row}`` of the quantization ROM's scalar requantizers: the first residual's x
        (``res1_x``), the second's LayerNorm codes (``res2_ln1``) and the GELU's codes (``gelu``)."""
        cfg = self.cfg
        d_tiles = cfg.d_model // cfg.cols
        first = 4 * d_tiles + 2 + (cfg.d_ff // cfg.cols + d_tiles if self.layer else 0)
        return {name: first + i for i, name in enumerate(self._scalar_quant_names)}

    @property
    def quant_channels(self):
        """Lanes of the quantization-parameter ROM (bias, multiplier and shift each)."""
        cfg = self.cfg
        channels = (4 if self.attention else 3) * cfg.d_model + (2 * cfg.cols if self.attention else 0)
        return (channels + (cfg.d_ff + cfg.d_model if self.layer else 0)
                + len(self._scalar_quant_names) * cfg.cols)

    @property
    def table_bytes(self):
        """Bytes of the weight memory and the quantization-parameter ROM."""
        return (self.weight_codes * 8 + self.quant_channels * (32 + 32 + SHIFT_WIDTH) + 7) // 8

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
        cycle. A row phase (softmax, LayerNorm) issues one element per cycle (its feeder's stages and the
        memory's read before the block) and its last row leaves the block's row latency and the row's
        length less one cycles after its last element, then the row queue (the softmax's rows later when
        short rows fill its banks: its ``row_outputs``); the GELU
        phase's last code leaves the GELU's latency, the quantization stage and the requantizer's latency
        after the last element. A residual phase issues a beat per cycle through the
        token banks' read and word stages, the quantization stage and the requantizer. Each phase starts
        PHASE_STAGES + 1 cycles after the previous one's last beat (the first at :attr:`start_cycle`, after
        the last token's write, a column tile per cycle). The register stages named ``*_STAGES`` in this
        module add their cycles where they sit."""
        cfg = self.cfg
        start, timing = self.start_cycle, {}
        for phase in self.phases:
            if phase == "probs":
                # The feeder's first element reaches the softmax ROW_FEED_STAGES + 1 cycles in; its rows
                # (heads x seq of seq scores) stream unless short rows fill its banks (row_outputs).
                rows_out = self.softmax.row_outputs([seq] * (cfg.heads * seq))
                last = start + ROW_FEED_STAGES + 1 + rows_out[-1] + seq - 1 + QUEUE_STAGES
            elif phase in ("res1", "res2"):
                last = (start + cfg.d_model // cfg.cols * seq - 1 + RES_STAGES + QUANT_STAGES
                        + self.requant.latency + QUEUE_STAGES)
            elif phase in ("ln1", "out"):
                ln = self.ln1 if phase == "ln1" else self.ln2
                last = start + seq * cfg.d_model + ROW_FEED_STAGES + ln.latency + cfg.d_model - 1 + QUEUE_STAGES
            elif phase == "gelu":
                last = (start + seq * cfg.d_ff + ROW_FEED_STAGES + self.gelu.latency + QUANT_STAGES
                        + self.requant.latency + QUEUE_STAGES)
            else:
                tiles, steps = self.gemm_shape(phase, seq)
                rows_last = (seq - 1) % cfg.rows + 1
                last = (start + (tiles - 1) * max(steps, cfg.rows) + steps + FEED_STAGES + FEED_QUEUE_STAGES
                        + self.mac.latency + QUANT_STAGES + self.requant.latency + QUEUE_STAGES + rows_last - 1)
            timing[phase] = (start, last)
            start = last + 1 + PHASE_STAGES
        return timing

    def finish_cycles(self, seq):
        """Cycles from accepting a sequence's last token to its last output beat leaving (no stalls)."""
        return self.phase_cycles(seq)[self.phases[-1]][1]

    def mac_utilisation(self, seq):
        """``{phase: MACs / (cycles x rows x cols)}`` of every matrix phase on ``seq`` tokens (its
        cycles from :meth:`phase_cycles`, first step to last beat)."""
        timing, size = self.phase_cycles(seq), self.cfg.rows * self.cfg.cols
        return {phase: self.phase_macs(phase, seq) / ((timing[phase][1] - timing[phase][0] + 1) * size)
                for phase in self.phases if phase in GEMM_PHASES}

    def _quant_rows(self, params):
        """The quantization ROM: per column tile of ``Wq|Wk|Wv`` (and ``Wo``), the scalar score and
        context requantizers replicated over the lanes, then per column tile of ``W1`` and ``W2``."""
        cfg = self.cfg
        _, bias, multiplier, shift = qkv_projection(params)
        rows = [(int(bias[c]), int(multiplier[c]), int(shift[c])) for c in range(3 * cfg.d_model)]

        def channels(name):
            r = params.requant[name]
            return [(int(r.bias[c]), int(r.multiplier[c]), int(r.shift[c])) for c in range(len(r.bias))]
        if self.attention:
            rows += channels("o")
            for name in ("scores", "ctx"):
                rows += channels(name) * cfg.cols
        if self.layer:
            rows += channels("ffn1") + channels("ffn2")
        # The residuals' and the GELU's scalar requantizers, replicated over the lanes (their rows from
        # :attr:`scalar_quant_row`).
        for name in self._scalar_quant_names:
            rows += channels(name) * cfg.cols
        return [[{"bias": b, "multiplier": mult, "shift": s} for b, mult, s in rows[t:t + cfg.cols]]
                for t in range(0, len(rows), cfg.cols)]

    def _weight_words(self, params):
        """The weight memory: per column tile of each matrix (``Wq|Wk|Wv``, ``Wo``, ``W1``, ``W2``), one
        word of ``cols`` codes per reduction step."""
        cfg = self.cfg
        matrices = [qkv_projection(params)[0]]
        if self.attention:
            matrices.append(params.weights["o"])
        if self.layer:
            matrices += [params.weights["ffn1"], params.weights["ffn2"]]
        return [_pack(w[ct * cfg.cols:(ct + 1) * cfg.cols, k].tolist(), 8)
                for w in matrices for ct in range(w.shape[0] // cfg.cols) for k in range(w.shape[1])]

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.mac = mac = self.mac
        m.submodules.requant = requant = self.requant
        rows, cols, d_model, d_head, d_ff, n = cfg.rows, cfg.cols, cfg.d_model, cfg.d_head, cfg.d_ff, cfg.max_seq
        attention, layer = self.attention, self.layer
        params = config_params(cfg)
        d_tiles = d_model // cols
        ff_tiles = d_ff // cols
        depth_r = _ceil_div(n, rows)
        final = len(self.phases) - 1

        def banks(name, count, depth, width, granularity, domain="sync", code_bits=8):
            """``count`` memories of ``depth`` words of ``width`` codes (``code_bits`` each), written
            ``granularity`` codes at a time, read one word per cycle."""
            ports = []
            for b in range(count):
                memory = Memory(shape=unsigned(code_bits * width), depth=depth, init=[])
                m.submodules[f"{name}{b}"] = memory
                ports.append((memory.write_port(granularity=code_bits * granularity),
                              memory.read_port(domain=domain)))
                if attention and name == "tokens":
                    x_residual.append(memory.read_port(domain="sync"))
            return ports

        x_residual = []
        # One word of cols codes per (token, column tile), so that they map to block RAM: a token is
        # written a column tile per cycle, and the layer writes the first LayerNorm's codes over the
        # tokens one code at a time.
        x_banks = banks("tokens", rows, depth_r * d_tiles, cols, 1 if layer else cols)
        weight_words = self._weight_words(params)
        weight_ports = []
        for j, low in enumerate(range(0, len(weight_words), WEIGHT_CHUNK)):
            chunk = weight_words[low:low + WEIGHT_CHUNK]
            m.submodules[f"weights{j}"] = weights = Memory(shape=unsigned(8 * cols), depth=len(chunk), init=chunk)
            weight_ports.append(weights.read_port(domain="sync"))
        weight_addr = Signal(range(len(weight_words)))
        lanes = data.ArrayLayout(data.StructLayout({"bias": signed(32), "multiplier": signed(32),
                                                    "shift": signed(SHIFT_WIDTH)}), cols)
        quant_rows = self._quant_rows(params)
        quant = Memory(shape=lanes, depth=len(quant_rows), init=quant_rows)
        m.submodules.quant = quant
        quant_port = quant.read_port(domain="sync")
        if attention:
            m.submodules.softmax = softmax = self.softmax
            # Q, K, V and the context: one word of cols codes per (token, column tile), so that they map
            # to block RAM.
            q_banks = banks("q", rows, depth_r * d_tiles, cols, cols)
            k_banks = banks("k", cols, n // cols * d_tiles, cols, cols)
            (v_write, v_read), = banks("v", 1, n * d_tiles, cols, cols)
            # Narrow and deep, so that they map to block RAM: one word of cols scores per (head, query,
            # key tile); one probability code per (head, row tile, key) in each P bank.
            (s_write, s_read), = banks("scores", 1, cfg.heads * n * (n // cols), cols, cols)
            p_banks = banks("probs", rows, cfg.heads * depth_r * n, 1, 1)
            ctx_banks = banks("ctx", rows, depth_r * d_tiles, cols, cols)
            # attn_out, then (layer) ffn_out: each is read by its residual phase only; one word of cols
            # codes per (token, column tile).
            (attn_write, attn_read), = banks("attn_out", 1, n * d_tiles, cols, cols)
        if layer:
            (res_write, res_read), = banks("residual", 1, n * d_tiles, cols, cols, code_bits=RESIDUAL_WIDTH)
            # Narrow and deep, so that they map to block RAM: the hidden memory one word of cols codes per
            # (token, column tile), the G banks one code per (row tile, channel).
            (hidden_write, hidden_read), = banks("hidden", 1, n * ff_tiles, cols, cols)
            g_banks = banks("gelu_q", rows, depth_r * d_ff, 1, 1)

        phase = Signal(range(len(self.phases)))
        # The phase again, one-hot (bit p: phase == p), counted alongside: every choice by phase below is
        # an AND-OR of these bits, two or three LUT levels, not a chain of compares and multiplexers.
        phase_hot = Signal(len(self.phases), init=1)

        def is_phase(code):
            return phase_hot[code] if code < len(self.phases) else Const(0)

        def by_phase(default, cases, hot=phase_hot):
            """``cases[phase]`` (``default`` for the other phases) as one expression: the emitted Verilog
            then drives it with a continuous assignment, not an ``always @*`` process that Icarus never
            wakes while its inputs hold their initial values (``test_icarus_time_zero_reproducer``).
            ``hot`` is the one-hot phase to choose by (the next cycle's, for a register)."""
            live = {code: case for code, case in cases.items() if code < len(self.phases)} if attention else {}
            if not live:
                return default
            others = ~Cat(hot[code] for code in live).any()
            return reduce(operator.or_, (Mux(hot[code], case, 0) for code, case in live.items()),
                          Mux(others, default, 0))

        def in_phase(*codes):
            """Whether the phase is one of ``codes``: a flip-flop of its own for each use (phase_flag,
            defined below), so a choice by phase starts at a register near its loads, not at an OR of the
            one-hot's bits, each of which has dozens of loads across the die."""
            return phase_flag("in_" + "_".join(TAP_PHASES[code] for code in codes), *codes)

        seq_len = Signal(range(n + 1))
        row_tiles = Signal(range(depth_r + 1))
        col_tiles = Signal(range(n // cols + 2))
        wr_bank = Signal(range(rows))
        wr_col = Signal(range(cols))
        wr_addr = Signal(range(depth_r))

        # The last value of each loop counter of the current matrix phase: outer g (column tile or head),
        # row tile, inner column tile, reduction step; and of a token index. Registers (driven below, from
        # the next cycle's phase), so a loop's end test is a compare of two registers.
        max_g = max(self.column_tiles, cfg.heads, ff_tiles if layer else 1)
        max_c = max(n // cols, 1)
        max_k = max(d_model, n, d_ff if layer else 1)
        last_g, last_r = Signal(range(max_g)), Signal(range(depth_r))
        last_c, last_k = Signal(range(max_c)), Signal(range(max_k))
        seq_last = Signal(range(n))

        def loop(counters, lasts, step):
            """Step the nested ``counters`` (outermost first) through ``range(last + 1)`` each when
            ``step``; returns whether every counter is at its last value (the loop's last iteration)."""
            ends = [counter == last for counter, last in zip(counters, lasts)]
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
        # Stage 0 (FEED_STAGES): the step's memory addresses, in the read ports' address registers: the
        # memories sit across the die, so no address logic lies on those wires.
        s0_valid, s0_last = Signal(), Signal()
        s0_g, s0_k = Signal.like(g), Signal.like(k)
        # Stage 1: the step read from the memories last cycle.
        s1_valid, s1_last = Signal(), Signal()
        s1_g, s1_k = Signal.like(g), Signal.like(k)
        # Stage 2 (FEED_STAGES): each memory's word, in a register straight behind its block RAM: the RAM's
        # clock-to-output (about 5.8 ns in nextpnr's ECP5 model) leaves no time for logic behind it, and
        # the memories sit across the die. Stage 3: each source's operand code, chosen from its word.
        s2_valid, s2_last = Signal(), Signal()
        s3_valid, s3_last = Signal(), Signal()
        # Neither stage stalls: a step is issued only on a credit (feed_room, a flip-flop) for the feed
        # queue in front of the array (FEED_QUEUE_STAGES), so the memories read every cycle and the
        # array's input ready reaches only the queue's head, not the read enables of every memory and
        # the operand registers (about 500 loads) across the die.
        feed_room, issue = Signal(init=1), Signal()
        m.d.comb += issue.eq(issuing & feed_room)

        # A phase's last beat is registered (PHASE_STAGES) before the sequencer moves on: each phase's
        # last-beat test (its source's valid and its counters' compares, with the output ready) into a
        # flip-flop of its own (driven at the end, done_terms), then their OR into phase_done, so neither
        # the multiplexers by phase nor the loads of the phase change sit behind the compares.
        phase_done = Signal()
        sequence_done = Signal()
        done_terms = []
        m.d.comb += sequence_done.eq(phase_done & is_phase(final))
        # The loops' last values for the next cycle's phase (the sequencer's moves below), and the
        # sequence's last token a cycle after each token is taken (the run starts later).
        next_hot = Signal.like(phase_hot)
        m.d.comb += next_hot.eq(Mux(phase_done, Mux(sequence_done, 1, phase_hot << 1), phase_hot))

        def phase_flag(name, *codes):
            """Whether the phase is one of ``codes``: a flip-flop of its own, loaded from the next cycle's
            phase, so that a ready gated by the phase has one flip-flop for it, not the one-hot's loads."""
            live = [code for code in codes if code < len(self.phases)]
            flag = Signal(name=name, init=int(0 in live))
            m.d.sync += flag.eq(reduce(operator.or_, (next_hot[code] for code in live), Const(0)))
            return flag

        # Output beats: the requantizer's rows in the issue order, skipping the rows past the sequence.
        fg, frt, fc, fr = Signal.like(g), Signal.like(rt), Signal.like(c), Signal(range(rows))
        f_token = Signal(range(depth_r * rows))
        m.d.comb += f_token.eq(frt * rows + fr)
        beat = Signal()
        m.d.comb += beat.eq(self.o.valid & self.o.ready)
        in_gemm = in_phase(QKV, SCORES, CTX, ATTN_OUT, HIDDEN, FFN_OUT)
        gemm_beat = Signal()
        m.d.comb += gemm_beat.eq(beat & in_gemm)
        row_end = (fr == rows - 1) | (f_token == seq_last)
        fin_ends = [fg == last_g, frt == last_r, fc == last_c, row_end]
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

        def finish_phase_done():
            terms = [Signal(name=f"done_term{j}") for j in range(len(done_terms))]
            m.d.sync += [t.eq(term & self.o.ready) for t, term in zip(terms, done_terms)]
            m.d.sync += phase_done.eq(reduce(operator.or_, terms))
        m.d.sync += [
            last_g.eq(by_phase(self.column_tiles - 1, {SCORES: cfg.heads - 1, CTX: cfg.heads - 1,
                                                       ATTN_OUT: d_tiles - 1, HIDDEN: ff_tiles - 1,
                                                       FFN_OUT: d_tiles - 1}, next_hot)),
            last_r.eq(row_tiles - 1),
            last_c.eq(by_phase(0, {SCORES: col_tiles - 1, CTX: d_head // cols - 1}, next_hot)),
            last_k.eq(by_phase(d_model - 1, {SCORES: d_head - 1, CTX: seq_len - 1, FFN_OUT: d_ff - 1}, next_hot)),
            seq_last.eq(seq_len - 1),
        ]

        token_bits = self.i.payload.token.as_value()
        loading = Signal()
        # An accepted token is registered, then written to its bank a column tile per cycle (the lowest
        # tile of a register shifted down by a tile each cycle): the memories see no input port directly.
        # A new token is taken as the last tile of the one before is written.
        pend_valid, pend_bank, pend_tile = Signal(), Signal(range(rows)), Signal(range(d_tiles))
        pend_addr, pend_data = Signal(range(depth_r)), Signal(8 * d_model)
        pend_last = (pend_tile == d_tiles - 1) if d_tiles > 1 else Const(1)
        # Whether the pending register takes a token this cycle (``~pend_valid | pend_last``), itself a
        # register: it drives the enable of every pending bit, so it must not sit behind a compare.
        pend_free = Signal(init=1)
        if d_tiles > 1:
            with m.If(pend_free):
                m.d.sync += pend_free.eq(~(loading & self.i.valid))
            with m.Else():
                m.d.sync += pend_free.eq(pend_tile == d_tiles - 2)
        else:
            m.d.comb += pend_free.eq(1)
        # Which non-matrix phase's feeder runs: the softmax's, the residuals', the LayerNorms', the GELU's.
        feeding, res_feeding, ln_feeding, gelu_feeding = Signal(), Signal(), Signal(), Signal()
        with m.FSM() as fsm:
            with m.State("load"):
                with m.If(self.i.valid & pend_free):
                    m.d.sync += seq_len.eq(seq_len + 1)
                    with m.If(wr_bank == 0):
                        m.d.sync += row_tiles.eq(row_tiles + 1)
                    with m.If(wr_bank == rows - 1):
                        m.d.sync += [wr_bank.eq(0), wr_addr.eq(wr_addr + 1)]
                    with m.Else():
                        m.d.sync += wr_bank.eq(wr_bank + 1)
                    with m.If(wr_col == 0):
                        m.d.sync += col_tiles.eq(col_tiles + 1)
                    m.d.sync += wr_col.eq(Mux(wr_col == cols - 1, 0, wr_col + 1))
                    with m.If(self.i.payload.last):
                        m.next = "write"
            with m.State("write"):
                # The last token's last column tile is registered at the end of the cycle of pend_last and
                # reaches its bank a cycle later (the X banks' writes are registered), before the first
                # issue's read a cycle after that.
                with m.If(pend_last):
                    m.d.sync += [issuing.eq(1), g.eq(0), rt.eq(0), c.eq(0), k.eq(0)]
                    m.next = "run"
            with m.State("run"):
                with m.If(issue):
                    with m.If(loop([g, rt, c, k], [last_g, last_r, last_c, last_k], 1)):
                        m.d.sync += issuing.eq(0)
                with m.If(phase_done):
                    with m.If(sequence_done):
                        m.d.sync += [seq_len.eq(0), row_tiles.eq(0), col_tiles.eq(0), wr_bank.eq(0),
                                     wr_col.eq(0), wr_addr.eq(0), phase.eq(0), phase_hot.eq(1)]
                        m.next = "load"
                    with m.Else():
                        m.d.sync += [phase.eq(phase + 1), phase_hot.eq(phase_hot << 1)]
                        if attention:
                            # The next phase is p + 1: one-hot bit p now.
                            with m.If(is_phase(PROBS - 1)):
                                m.d.sync += feeding.eq(1)
                            with m.Elif(is_phase(RES1 - 1) | is_phase(RES2 - 1)):
                                m.d.sync += res_feeding.eq(1)
                            with m.Elif(is_phase(LN1 - 1) | is_phase(OUT - 1)):
                                m.d.sync += ln_feeding.eq(1)
                            with m.Elif(is_phase(GELU - 1)):
                                m.d.sync += gelu_feeding.eq(1)
                            with m.Else():
                                m.d.sync += issuing.eq(1)
        m.d.comb += [loading.eq(fsm.ongoing("load")), self.i.ready.eq(loading & pend_free)]

        with m.If(pend_free):
            m.d.sync += [pend_valid.eq(loading & self.i.valid), pend_bank.eq(wr_bank), pend_addr.eq(wr_addr),
                         pend_data.eq(token_bits), pend_tile.eq(0)]
        with m.Else():
            m.d.sync += [pend_tile.eq(pend_tile + 1), pend_data.eq(pend_data >> (8 * cols))]
        x_writes = []
        for r, (write, read) in enumerate(x_banks):
            m.d.comb += read.en.eq(1)
            m.d.sync += read.addr.eq(rt * d_tiles + k // cols)
            x_writes.append((write, pend_addr * d_tiles + pend_tile, pend_data[:8 * cols],
                             (pend_valid & (pend_bank == r)).replicate(len(write.en))))
        m.d.sync += weight_addr.eq(by_phase(g * d_model + k, {
            ATTN_OUT: (self.column_tiles + g) * d_model + k,
            HIDDEN: (4 * d_tiles + g) * d_model + k,
            FFN_OUT: (4 * d_tiles + ff_tiles) * d_model + g * d_ff + k}))
        # Every chunk reads at the address's low bits; the chunk read is chosen by a one-hot register at
        # stage 1 that clears the other chunks' stage-2 words (a synchronous reset), so the weight word at
        # stage 2 is an OR of registers.
        chunk_hot = Signal(len(weight_ports), init=1)
        m.d.sync += chunk_hot.eq(Const(1, len(weight_ports)) << (weight_addr // WEIGHT_CHUNK))
        weight_words2 = []
        for j, port in enumerate(weight_ports):
            m.d.comb += [port.addr.eq(weight_addr % WEIGHT_CHUNK), port.en.eq(1)]
            word = Signal(8 * cols, name=f"w2_{j}")
            m.d.sync += word.eq(Mux(chunk_hot[j], port.data, 0) if len(weight_ports) > 1 else port.data)
            weight_words2.append(word)
        weight_word = reduce(operator.or_, weight_words2)
        m.d.sync += [s0_valid.eq(issue), s0_g.eq(g), s0_k.eq(k), s0_last.eq(k == last_k),
                     s1_valid.eq(s0_valid), s1_g.eq(s0_g), s1_k.eq(s0_k), s1_last.eq(s0_last),
                     s2_valid.eq(s1_valid), s2_last.eq(s1_last), s3_valid.eq(s2_valid), s3_last.eq(s2_last)]
        def credit_count(room, depth, taken, returned, name):
            """The credits of a queue of ``depth`` entries whose writer takes one per entry (``taken``)
            before it is written and gets it back as the entry leaves (``returned``): ``room``, a
            register, is whether a credit is free, leaving out this cycle's returned credit (it adds
            room a cycle later), so both ``room`` and the count are registers compared with constants."""
            credits = Signal(range(depth + 1), init=depth, name=name)
            m.d.sync += [credits.eq(credits - taken + returned),
                         room.eq(Mux(taken, credits >= 2, credits >= 1))]

        # The feed queue: the steps as the array takes them, written from stage 3.
        step = Signal(mac.i.payload.shape())
        m.submodules.feed_queue = feed_queue = RowQueue(
            width=len(step.as_value()), depth=self.feed_queue_depth, attrs={"ram_style": "distributed"})
        m.d.comb += [
            step.last.eq(s3_last),
            feed_queue.w_en.eq(s3_valid), feed_queue.w_data.eq(step.as_value()),
            mac.i.valid.eq(feed_queue.r_valid), mac.i.payload.eq(feed_queue.r_data),
            feed_queue.r_ready.eq(mac.i.ready),
        ]
        credit_count(feed_room, self.feed_queue_depth, issue, feed_queue.r_valid & mac.i.ready, "feed_credits")

        def staged(value, name):
            """``value`` registered (a stage-2 memory word, or a stage-3 operand chosen from one)."""
            register = Signal(value.shape(), name=name)
            m.d.sync += register.eq(value)
            return register

        def lane_copy(index, salt, name):
            """``index`` (a stage-1 lane index) registered at stage 2 for one memory's word, stored XOR
            ``salt`` (the memory's number) and with an initial value that is ``salt`` rotated by a bit.
            Yosys's ``opt_merge`` merges flip-flops bit by bit when their input and initial value agree,
            so each index bit keeps four registers (itself and its inverse, each with either initial
            value), not one per memory: at the target the lane index's largest nets went from about 1500
            loads to 576 with the XOR alone. The initial value only reaches operands that no valid step
            carries (the register loads every cycle)."""
            bits = len(index)
            salt %= 1 << bits
            init = ((salt >> 1) | (salt << (bits - 1))) % (1 << bits) if bits else 0
            register = Signal(bits, name=name, init=init)
            m.d.sync += register.eq(index ^ salt)
            return register ^ salt

        def code(word, index, bits=8):
            return word.word_select(index, bits).as_signed()

        a_cases, b_cases = [{} for _ in range(rows)], [{} for _ in range(cols)]
        if attention:
            # The head's channel: its column tile is read, its lane selected a cycle later.
            head_code, head_next = Signal(range(d_model)), Signal(range(d_model))
            m.d.comb += [head_code.eq(s1_g * d_head + s1_k), head_next.eq(g * d_head + k)]
            for r in range(rows):
                m.d.sync += [q_banks[r][1].addr.eq(rt * d_tiles + head_next // cols),
                             p_banks[r][1].addr.eq((g * depth_r + rt) * n + k),
                             ctx_banks[r][1].addr.eq(rt * d_tiles + k // cols)]
                m.d.comb += [q_banks[r][1].en.eq(1), p_banks[r][1].en.eq(1), ctx_banks[r][1].en.eq(1)]
                a_cases[r] = {SCORES: code(staged(q_banks[r][1].data, f"q2_{r}"),
                                           lane_copy(head_code % cols, r, f"q2_lane{r}")),
                              CTX: staged(p_banks[r][1].data, f"p2_{r}").as_signed(),
                              ATTN_OUT: code(staged(ctx_banks[r][1].data, f"ctx2_{r}"),
                                             lane_copy(s1_k % cols, r + rows, f"ctx2_lane{r}"))}
                if layer:
                    m.d.sync += g_banks[r][1].addr.eq(rt * d_ff + k)
                    m.d.comb += g_banks[r][1].en.eq(1)
                    a_cases[r][FFN_OUT] = staged(g_banks[r][1].data, f"g2_{r}").as_signed()
            for col in range(cols):
                m.d.sync += k_banks[col][1].addr.eq(c * d_tiles + head_next // cols)
                m.d.comb += k_banks[col][1].en.eq(1)
            m.d.sync += v_read.addr.eq(k * d_tiles + g * (d_head // cols) + c)
            m.d.comb += v_read.en.eq(1)
            v_word = staged(v_read.data, "v2")
            for col in range(cols):
                b_cases[col] = {SCORES: code(staged(k_banks[col][1].data, f"k2_{col}"),
                                             lane_copy(head_code % cols, col + rows, f"k2_lane{col}")),
                                CTX: code(v_word, col)}
        def row_feeder(name, read, want, addr, lane, bits, extra=None):
            """The feeder of a row phase (softmax, LayerNorm, GELU) from memory ``read``: while ``want``, it
            issues an element on a credit (``room``, a flip-flop) for its queue, so the memory reads every
            cycle and the block's input ready reaches only the queue's head (ROW_FEED_STAGES): the address
            ``addr`` registered, the memory's word registered beside ``lane`` (and ``extra``), the code
            ``word[lane]`` of ``bits`` bits registered, then the queue. Returns ``issue`` (the caller's
            counters step on it), the queue head's ``valid``, its code and ``extra``, and ``ready`` (for
            the caller to drive: the block takes the head)."""
            depth = self.row_feed_depth
            issue, room, ready = Signal(name=f"{name}_issue"), Signal(init=1, name=f"{name}_room"), Signal()
            extra = Const(0, 0) if extra is None else Value.cast(extra)
            m.d.comb += [issue.eq(want & room), read.en.eq(1)]
            m.d.sync += read.addr.eq(addr)
            valid, side = issue, Cat(lane, extra)
            for stage in ("s0", "s1"):      # the address register, the memory's read
                valid, side = staged(valid, f"{name}_{stage}_valid"), staged(side, f"{name}_{stage}_side")
            word = staged(read.data, f"{name}_word")
            valid, side = staged(valid, f"{name}_s2_valid"), staged(side, f"{name}_s2_side")
            chosen = staged(word.word_select(side[:len(lane)], bits), f"{name}_code")
            valid, side = staged(valid, f"{name}_s3_valid"), staged(side, f"{name}_s3_side")
            queue = RowQueue(width=bits + len(extra), depth=depth, attrs={"ram_style": "distributed"})
            m.submodules[f"{name}_queue"] = queue
            m.d.comb += [queue.w_en.eq(valid), queue.w_data.eq(Cat(chosen, side[len(lane):])),
                         queue.r_ready.eq(ready)]
            credit_count(room, depth, issue, queue.r_valid & ready, f"{name}_credits")
            return issue, queue.r_valid, queue.r_data[:bits], queue.r_data[bits:], ready

        live = set(range(len(self.phases))) if attention else set()
        for r, (_, read) in enumerate(x_banks):
            cases = {p: staged(v, f"a{r}_{TAP_PHASES[p]}") for p, v in a_cases[r].items() if p in live}
            x_code = code(staged(read.data, f"x2_word{r}"), lane_copy(s1_k % cols, r, f"x2_lane{r}"))
            m.d.comb += step.a[r].eq(by_phase(staged(x_code, f"a{r}_x"), cases))
        for col in range(cols):
            cases = {p: staged(v, f"b{col}_{TAP_PHASES[p]}") for p, v in b_cases[col].items() if p in live}
            m.d.comb += step.b[col].eq(by_phase(staged(code(weight_word, col), f"b{col}_w"), cases))

        # The array's rows in issue order: drop the rows past the sequence's end, attach the tile's
        # quantization parameters.
        og, ort, oc, orow = Signal.like(g), Signal.like(rt), Signal.like(c), Signal(range(rows))
        row_used = Signal()
        m.d.comb += row_used.eq(ort * rows + orow < seq_len)
        loop([og, ort, oc, orow], [last_g, last_r, last_c, rows - 1], mac.o.valid & mac.o.ready)
        # The quantization stage: a row is registered beside its tile's parameters, read from the ROM and
        # registered (QUANT_STAGES), so neither the ROM nor its address logic sits in front of the
        # requantizer's first adder.
        # The requantizer never stalls: its rows go into a queue (QUEUE_STAGES), and a beat enters the
        # quantization stage only while the queue has room for it beyond every beat already in flight (a
        # credit count, as the MAC array's output FIFO). The layer's output ready then reaches only the
        # queue's head, and the array's o.ready, the GELU's and the residual feeder's are a flip-flop
        # (``room``); before, the requantizer's pipeline enable (about 3700 loads) hung off the output
        # ready and the phase, and every feeder's stall off it (the target's deepest paths).
        # The residual and GELU phases share the stage and the requantizer: their beats (side_valid,
        # side_acc, driven below) take the array's place, their scalar parameters the ROM's rows after
        # the matrices'.
        q_valid = Signal()
        acc_width = self.requant.cfg.acc_width
        q_acc = [Signal(signed(acc_width), name=f"q_acc{col}") for col in range(cols)]
        # The first quantization stage registers the beat and the ROM address (a register at the far end
        # of its wire to the ROM), the second the beat as the ROM reads.
        qa_valid = Signal()
        qa_acc = [Signal(signed(acc_width), name=f"qa_acc{col}") for col in range(cols)]
        # The third registers the ROM's word, straight behind its block RAM, beside the beat.
        qb_valid = Signal()
        qb_acc = [Signal(signed(acc_width), name=f"qb_acc{col}") for col in range(cols)]
        quant_word = Signal.like(quant_port.data, name="quant_word")
        in_side = in_phase(RES1, RES2, GELU)
        side_valid = Signal()
        side_acc = [Signal(signed(acc_width), name=f"side_acc{col}") for col in range(cols)]
        quant_addr = Signal.like(quant_port.addr)
        scalar_rows = self.scalar_quant_row
        quant_cases = {SCORES: 4 * d_tiles, CTX: 4 * d_tiles + 1, ATTN_OUT: 3 * d_tiles + og,
                       HIDDEN: 4 * d_tiles + 2 + og, FFN_OUT: 4 * d_tiles + 2 + ff_tiles + og}
        if attention:
            quant_cases[RES1] = scalar_rows["res1_x"]
        if layer:
            quant_cases.update({RES2: scalar_rows["res2_ln1"], GELU: scalar_rows["gelu"]})
        # The GELU's own code rides beside its beat through the requantizer and the queue.
        code_width = self.gelu.cfg.out_width if layer else 0
        rq_code = Signal(code_width)
        # And a residual's attn_out (ffn_out) word beside its rq(x) (rq(ln1)) codes.
        attn_word = attn_read.data if attention else Const(0, 0)
        m.submodules.rq_queue = queue = RowQueue(width=8 * cols + len(attn_word) + code_width,
                                                 depth=self.queue_depth, attrs={"ram_style": "block"}, out_reg=True)
        room = Signal(init=1)
        source_valid = Signal()
        admit = Signal()
        # In the GELU phase the credit is taken as an element enters the GELU (gelu_taken, driven below),
        # so the GELU never stalls either (its pipeline enable has about 2200 loads), and its codes enter
        # the quantization stage as they come.
        gelu_taken = Signal()
        in_gelu_phase = in_phase(GELU)
        # In the residual phases the credit is taken as the feeder issues a beat (res_issue, driven below).
        in_res, res_issue = in_phase(RES1, RES2), Signal()
        taken = Signal()
        m.d.comb += [
            quant_addr.eq(by_phase(og, quant_cases)),
            source_valid.eq(Mux(in_side, side_valid, mac.o.valid & row_used)),
            admit.eq(Mux(in_gelu_phase | in_res, side_valid, room & source_valid)),
            taken.eq(Mux(in_gelu_phase, gelu_taken, Mux(in_res, res_issue, admit))),
            quant_port.en.eq(1),
            mac.o.ready.eq(room),
            requant.i.valid.eq(q_valid),
            requant.o.ready.eq(1),
            requant.output_offset.eq(0), requant.act_min.eq(-128), requant.act_max.eq(127),
            queue.w_en.eq(requant.o.valid),
            queue.w_data.eq(Cat(requant.o.payload, attn_word, rq_code)),
            queue.r_ready.eq(self.o.ready & phase_flag("in_queue_phase", QKV, SCORES, CTX, ATTN_OUT, HIDDEN,
                                                       FFN_OUT, RES1, RES2, GELU)),
        ]
        credit_count(room, self.queue_depth, taken, queue.r_valid & queue.r_ready, "credits")
        m.d.sync += [qa_valid.eq(admit), qb_valid.eq(qa_valid), q_valid.eq(qb_valid),
                     quant_port.addr.eq(quant_addr), quant_word.eq(quant_port.data)]
        m.d.sync += [a.eq(Mux(in_side, side_acc[col], mac.o.payload.acc[col])) for col, a in enumerate(qa_acc)]
        m.d.sync += [b.eq(a) for b, a in zip(qb_acc, qa_acc)] + [q.eq(b) for q, b in zip(q_acc, qb_acc)]
        rq_lanes = [queue.r_data.word_select(col, 8).as_signed() for col in range(cols)]
        rq_word = queue.r_data[:8 * cols]
        rq_attn = queue.r_data[8 * cols:8 * cols + len(attn_word)]
        rq_gelu_code = queue.r_data[8 * cols + len(attn_word):].as_signed() if layer else None
        for col in range(cols):
            m.d.comb += [
                requant.i.payload[col].acc.eq(q_acc[col]),
                requant.i.payload[col].bias.eq(quant_word[col].bias),
                requant.i.payload[col].multiplier.eq(quant_word[col].multiplier),
                requant.i.payload[col].shift.eq(quant_word[col].shift),
            ]

        m.d.comb += [
            self.o.payload.phase.eq(phase),
            self.o.payload.last.eq(at_last & is_phase(final)),
        ]
        if not attention:
            for write, addr, word, en in x_writes:
                m.d.sync += [write.addr.eq(addr), write.data.eq(word), write.en.eq(en)]
            m.d.comb += [self.o.valid.eq(queue.r_valid), at_last.eq(gemm_at_last)]
            done_terms.append(queue.r_valid & gemm_at_last)
            finish_phase_done()
            m.d.comb += [self.o.payload.data[col].eq(lane) for col, lane in enumerate(rq_lanes)]
            return m

        # The residuals: rq(x) + attn_out (res1) or rq(ln1) + ffn_out (res2) per lane, the requantizer's
        # lanes all on the phase's scalar parameters, one beat of cols channels per cycle, column tile
        # outer, tokens inner (as attn_out). x (ln1) comes from the token banks' second read port,
        # attn_out (ffn_out) from its memory.
        # Three stages (RES_STAGES): the token banks' read, each bank's word registered straight behind
        # its block RAM, then the bank's word chosen (the bank one-hot, registered beside the read), in
        # front of the quantization stage. A beat issues on the requantizer queue's credit (res_issue,
        # taken here instead of at the quantization stage), so this feeder never stalls either.
        xt, xtok = Signal(range(d_tiles)), Signal(range(n))
        x_valid, x_hot = Signal(), Signal(rows)
        x2_valid = Signal()
        x2 = [Signal(signed(8), name=f"x2_{col}") for col in range(cols)]
        m.d.comb += res_issue.eq(res_feeding & room)
        with m.If(res_issue):
            with m.If(loop([xt, xtok], [d_tiles - 1, seq_last], 1)):
                m.d.sync += res_feeding.eq(0)
        m.d.sync += [x_valid.eq(res_issue), x_hot.eq(Const(1, rows) << (xtok % rows))]
        for r, port in enumerate(x_residual):
            m.d.comb += [port.addr.eq(xtok // rows * d_tiles + xt), port.en.eq(1)]
        xw_valid, xw_hot = staged(x_valid, "xw_valid"), staged(x_hot, "xw_hot")
        x_words = [staged(port.data, f"xw_word{r}") for r, port in enumerate(x_residual)]
        x_word = reduce(operator.or_, (Mux(xw_hot[r], word, 0) for r, word in enumerate(x_words)))
        m.d.sync += [x2_valid.eq(xw_valid)] + [x.eq(code(x_word, col)) for col, x in enumerate(x2)]
        if not layer:
            m.d.comb += [side_valid.eq(x2_valid)] + [side_acc[col].eq(x) for col, x in enumerate(x2)]
        rt_tile, rtok = Signal(range(d_tiles)), Signal(range(n))
        res_beat = Signal()
        m.d.comb += res_beat.eq(beat & in_res)
        res_done = loop([rt_tile, rtok], [d_tiles - 1, seq_last], res_beat)
        # The attn_out (ffn_out) word of each beat: read as the beat leaves the requantizer (the read
        # addressed the cycle before, by the residual beats' valid delayed alongside the requantizer),
        # and queued beside it, so no address depends on the output handshake.
        at_tile, atok = Signal(range(d_tiles)), Signal(range(n))
        rq_ahead = Signal(self.requant.latency - 1)
        m.d.sync += rq_ahead.eq(Cat(q_valid, rq_ahead[:-1]))
        loop([at_tile, atok], [d_tiles - 1, seq_last], rq_ahead[-1] & in_res)
        m.d.comb += [attn_read.addr.eq(atok * d_tiles + at_tile), attn_read.en.eq(1)]
        residual = [Signal(signed(RESIDUAL_WIDTH), name=f"residual{col}") for col in range(cols)]
        for col in range(cols):
            m.d.comb += residual[col].eq(rq_lanes[col] + rq_attn.word_select(col, 8).as_signed())

        in_probs = in_phase(PROBS)
        ph, pi, pj = Signal(range(cfg.heads)), Signal(range(n)), Signal(range(n))
        probs_beat = Signal()
        m.d.comb += probs_beat.eq(beat & in_probs)
        probs_done = loop([ph, pi, pj], [cfg.heads - 1, seq_last, seq_last], probs_beat)
        # The row blocks' outputs (the softmax's, the LayerNorms') go into one queue, with a credit taken
        # as an element enters its block (row_taken), so no block's output ever stalls: before, the
        # layer's output ready reached the LayerNorms' pipeline enables (about 420 loads each) and, through
        # their input ready, their feeder's memory.
        rowq_depth = self.row_queue_depth
        m.submodules.row_queue = row_queue = RowQueue(width=8, depth=rowq_depth, attrs={"ram_style": "block"},
                                                       out_reg=True)
        row_room, row_taken = Signal(init=1), Signal()
        m.d.comb += row_queue.r_ready.eq(self.o.ready & phase_flag("in_row_phase", PROBS, LN1, OUT))
        credit_count(row_room, rowq_depth, row_taken, row_queue.r_valid & row_queue.r_ready, "row_credits")
        prob_code = Signal(8)      # the probability code, zero-extended to a P bank's code
        m.d.comb += [prob_code.eq(row_queue.r_data), softmax.o.ready.eq(1)]
        row_sources = [(softmax.o.valid, softmax.o.payload.data)]
        row_inputs = [softmax.i.valid & softmax.i.ready]

        # Scores past the sequence's last key (the last column tile's spare lanes) leave as zeros.
        in_scores = in_phase(SCORES)
        gemm_lanes = [Mux(in_scores & (fc * cols + col >= seq_len), 0, rq_lanes[col])
                      for col in range(cols)]
        valid_cases = {PROBS: row_queue.r_valid}
        last_cases = {PROBS: probs_done, RES1: res_done}
        lane_cases = [{PROBS: prob_code if col == 0 else Const(0, 8), RES1: residual[col]} for col in range(cols)]

        if layer:
            m.submodules.ln1 = ln1 = self.ln1
            m.submodules.ln2 = ln2 = self.ln2
            m.submodules.gelu = gelu = self.gelu
            in_ln1, in_out, in_gelu = in_phase(LN1), in_phase(OUT), in_phase(GELU)

            # The LayerNorm feeder: each token's residual codes, channel by channel, into ln1 or ln2.
            lt, lc = Signal(range(n)), Signal(range(d_model))
            ln_issue, ln_valid, ln_x, _, ln_ready = row_feeder(
                "ln", res_read, ln_feeding, lt * d_tiles + lc // cols, lc % cols, RESIDUAL_WIDTH)
            with m.If(ln_issue):
                with m.If(loop([lt, lc], [seq_last, d_model - 1], 1)):
                    m.d.sync += ln_feeding.eq(0)
            m.d.comb += [ln1.i.valid.eq(ln_valid & row_room & in_ln1), ln1.i.payload.eq(ln_x),
                         ln2.i.valid.eq(ln_valid & row_room & in_out), ln2.i.payload.eq(ln_x),
                         ln_ready.eq(Mux(in_out, ln2.i.ready, ln1.i.ready) & row_room),
                         ln1.o.ready.eq(1), ln2.o.ready.eq(1)]
            row_sources += [(ln1.o.valid, ln1.o.payload), (ln2.o.valid, ln2.o.payload)]
            row_inputs += [ln1.i.valid & ln1.i.ready, ln2.i.valid & ln2.i.ready]
            # Their outputs, token by token: ln1's codes replace the tokens in the X banks.
            ut, uc = Signal(range(n)), Signal(range(d_model))
            ln_done = loop([ut, uc], [seq_last, d_model - 1], beat & (in_ln1 | in_out))

            ln1_write = beat & in_ln1
            for r, (write, addr, word, en) in enumerate(x_writes):
                x_writes[r] = (write, Mux(in_ln1, ut // rows * d_tiles + uc // cols, addr),
                               Mux(in_ln1, row_queue.r_data.replicate(cols), word),
                               Mux(in_ln1, Mux(ln1_write & (ut % rows == r), Const(1, cols) << (uc % cols), 0), en))

            # The GELU feeder: each token's hidden codes, channel by channel, through the GELU, the
            # quantization stage and the requantizer's lane 0 (its int8 code); the GELU's own code rides
            # beside them (the requantizer never stalls) to leave with its int8 code.
            gt, g_tile, g_lane = Signal(range(n)), Signal(range(ff_tiles)), Signal(range(cols))
            g_issue, g_fed, g_x, _, g_ready = row_feeder(
                "gelu_feed", hidden_read, gelu_feeding, gt * ff_tiles + g_tile, g_lane, 8)
            with m.If(g_issue):
                with m.If(loop([gt, g_tile, g_lane], [seq_last, ff_tiles - 1, cols - 1], 1)):
                    m.d.sync += gelu_feeding.eq(0)
            m.d.comb += g_ready.eq(gelu.i.ready & room)
            m.d.comb += [gelu.i.valid.eq(g_fed & room), gelu.i.payload.eq(g_x), gelu.o.ready.eq(1),
                         gelu_taken.eq(gelu.i.valid & gelu.i.ready),
                         side_valid.eq(Mux(in_gelu, gelu.o.valid, x2_valid))]
            m.d.comb += [side_acc[col].eq(Mux(in_gelu, gelu.o.payload if col == 0 else 0, x))
                         for col, x in enumerate(x2)]
            qa_code = Signal.like(gelu.o.payload, name="gelu_code_qa")
            q_code = Signal.like(gelu.o.payload, name="gelu_code_q")
            qb_code = Signal.like(gelu.o.payload, name="gelu_code_qb")
            m.d.sync += [qa_code.eq(gelu.o.payload), qb_code.eq(qa_code), q_code.eq(qb_code)]
            beside = [Signal.like(gelu.o.payload, name=f"gelu_code{j}") for j in range(requant.latency)]
            m.d.sync += [beside[0].eq(q_code)] + [b.eq(a) for a, b in zip(beside, beside[1:])]
            m.d.comb += rq_code.eq(beside[-1])
            vt, vc = Signal(range(n)), Signal(range(d_ff))
            gelu_beat = beat & in_gelu
            gelu_done = loop([vt, vc], [seq_last, d_ff - 1], gelu_beat)
            gelu_q = rq_lanes[0]
            for r, (write, _) in enumerate(g_banks):
                m.d.sync += [write.addr.eq(vt // rows * d_ff + vc), write.data.eq(gelu_q),
                             write.en.eq(gelu_beat & (vt % rows == r))]

            # The residual memory: res1, then res2, as their beats leave.
            m.d.sync += [res_write.addr.eq(rtok * d_tiles + rt_tile), res_write.data.eq(Cat(*residual)),
                         res_write.en.eq(res_beat)]

            valid_cases.update({LN1: row_queue.r_valid, OUT: row_queue.r_valid})
            last_cases.update({RES2: res_done, LN1: ln_done, GELU: gelu_done, OUT: ln_done})
            for col, cases in enumerate(lane_cases):
                cases[RES2] = residual[col]
                cases[LN1] = row_queue.r_data.as_signed() if col == 0 else Const(0, 8)
                cases[OUT] = row_queue.r_data.as_signed() if col == 0 else Const(0, 8)
                cases[GELU] = rq_gelu_code if col == 0 else gelu_q if col == 1 else Const(0, 8)

        for write, addr, word, en in x_writes:
            m.d.sync += [write.addr.eq(addr), write.data.eq(word), write.en.eq(en)]
        # One row block's output at a time (each phase's last code leaves before the next phase starts).
        m.d.comb += [row_queue.w_en.eq(reduce(operator.or_, (valid for valid, _ in row_sources))),
                     row_queue.w_data.eq(reduce(operator.or_, (Mux(valid, code, 0) for valid, code in row_sources))),
                     row_taken.eq(reduce(operator.or_, row_inputs))]
        m.d.comb += [self.o.valid.eq(by_phase(queue.r_valid, valid_cases)),
                     at_last.eq(by_phase(gemm_at_last, last_cases))]
        done_terms.append(phase_flag("in_gemm_phase", QKV, SCORES, CTX, ATTN_OUT, HIDDEN, FFN_OUT)
                          & queue.r_valid & gemm_at_last)
        done_terms += [is_phase(p) & valid_cases.get(p, queue.r_valid) & last for p, last in last_cases.items()]
        finish_phase_done()
        for col in range(cols):
            m.d.comb += self.o.payload.data[col].eq(by_phase(gemm_lanes[col], lane_cases[col]))

        # Writes of the projections, scores and context as their beats leave. Every memory write but the
        # X banks' is registered (address, data and enable), a cycle after its beat: the memories sit
        # across the die, and the next phase reads them no sooner than PHASE_STAGES + 1 cycles on.
        lanes_bits = rq_word
        qkv_beat = gemm_beat & is_phase(QKV)
        k_tile, v_tile_w = Signal(range(d_tiles)), Signal(range(d_tiles))
        m.d.comb += [k_tile.eq(fg - d_tiles), v_tile_w.eq(fg - 2 * d_tiles)]
        q_tile = Signal(range(d_tiles))
        m.d.comb += q_tile.eq(fg)

        for r, (write, _) in enumerate(q_banks):
            m.d.sync += [write.addr.eq(frt * d_tiles + q_tile), write.data.eq(lanes_bits),
                         write.en.eq(qkv_beat & (fr == r) & (fg < d_tiles))]
        for col, (write, _) in enumerate(k_banks):
            m.d.sync += [write.addr.eq(f_token // cols * d_tiles + k_tile), write.data.eq(lanes_bits),
                         write.en.eq(qkv_beat & (f_token % cols == col) & (fg >= d_tiles) & (fg < 2 * d_tiles))]
        m.d.sync += [v_write.addr.eq(f_token * d_tiles + v_tile_w), v_write.data.eq(lanes_bits),
                     v_write.en.eq(qkv_beat & (fg >= 2 * d_tiles))]
        s_tiles = n // cols
        m.d.sync += [s_write.addr.eq((fg * n + f_token) * s_tiles + fc), s_write.data.eq(lanes_bits),
                     s_write.en.eq(gemm_beat & in_scores)]
        for r, (write, _) in enumerate(ctx_banks):
            m.d.sync += [write.addr.eq(frt * d_tiles + fg * (d_head // cols) + fc), write.data.eq(lanes_bits),
                         write.en.eq(gemm_beat & is_phase(CTX) & (fr == r))]
        m.d.sync += [attn_write.addr.eq(f_token * d_tiles + fg), attn_write.data.eq(lanes_bits),
                     attn_write.en.eq(gemm_beat & in_phase(ATTN_OUT, FFN_OUT))]
        if layer:
            m.d.sync += [hidden_write.addr.eq(f_token * ff_tiles + fg), hidden_write.data.eq(lanes_bits),
                         hidden_write.en.eq(gemm_beat & is_phase(HIDDEN))]

        # The softmax phase: score rows in (``last`` ends each), probability rows out (into the P banks
        # and the tap stream).
        sh, si, sj = Signal(range(cfg.heads)), Signal(range(n)), Signal(range(n))
        # sj as a key tile and a lane, counted alongside it.
        sj_tile, sj_lane = Signal(range(s_tiles)), Signal(range(cols))
        sm_issue, sm_valid, sm_x, sm_x_last, sm_ready = row_feeder(
            "sm", s_read, feeding, (sh * n + si) * s_tiles + sj_tile, sj_lane, 8, sj == seq_last)
        with m.If(sm_issue):
            with m.If(loop([sh, si, sj], [cfg.heads - 1, seq_last, seq_last], 1)):
                m.d.sync += feeding.eq(0)
            with m.If(sj == seq_last):
                m.d.sync += [sj_tile.eq(0), sj_lane.eq(0)]
            with m.Elif(sj_lane == cols - 1):
                m.d.sync += [sj_tile.eq(sj_tile + 1), sj_lane.eq(0)]
            with m.Else():
                m.d.sync += sj_lane.eq(sj_lane + 1)
        m.d.comb += [softmax.i.valid.eq(sm_valid & row_room), softmax.i.payload.data.eq(sm_x),
                     softmax.i.payload.last.eq(sm_x_last), sm_ready.eq(softmax.i.ready & row_room)]
        for r, (write, _) in enumerate(p_banks):
            m.d.sync += [write.addr.eq((ph * depth_r + pi // rows) * n + pj), write.data.eq(prob_code),
                         write.en.eq(probs_beat & (pi % rows == r))]
        return m
