"""The integer encoder layer in hardware, phase 1: the Q, K, V projections of
:func:`qarith.golden.encoder_layer.encoder_layer`, ITA-style on one time-multiplexed MAC array.

Structure (one :class:`~qarith.hdl.mac_array.MacArray` and one :class:`~qarith.hdl.requant.Requant`,
instantiated as submodules)::

    tokens --> token buffer (rows banks, token t in bank t % rows) --+
                                                                     +--> mac_array --> requant --> Q|K|V
               weight memory (cols codes per word, Wq|Wk|Wv) --------+       ^
               quant-parameter ROM (bias, M0, shift per column tile) --------+

``load``
    One token (``d_model`` int8 codes) per input beat into the token buffer; ``last`` ends the
    sequence (1..``max_seq`` tokens).
``run``
    A sequencer steps the array through the ``3 d_model / cols`` column tiles of the fused
    ``[Wq | Wk | Wv]`` projection, and per column tile through the ``ceil(seq / rows)`` row tiles of the
    sequence: ``d_model`` reduction steps each (the token buffer's banks give a tile's ``rows`` tokens in
    one read, the weight memory the step's ``cols`` weights). Only the row tiles the sequence fills are
    run, so a shorter sequence costs proportionally fewer cycles; rows past its end in the last row tile
    are computed and dropped before the requantizer.
``drain``
    The requantizer's rows go out as beats of ``cols`` int8 codes, column tile by column tile, tokens in
    order within one (:func:`qkv_order`); ``last`` marks the sequence's final beat. The next sequence
    loads once the last beat has left.

The weights and the requantization parameters are the config's integerized layer
(:func:`qarith.golden.encoder_layer.config_params`), baked into the memories' initial contents.

Cycles per sequence of ``seq`` tokens: ``seq`` to load, then ``3 d_model / cols * ceil(seq / rows) *
max(d_model, rows)`` array steps (the array takes a step per cycle), plus :attr:`EncoderLayer.latency`
to the first output.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.encoder_layer import EncoderLayerConfig, config_params, qkv_projection
from ..golden.requant import RequantConfig
from .common.component import BlockComponent
from .mac_array import MacArray
from .requant import SHIFT_WIDTH, Requant

__all__ = ["EncoderLayer"]


def _pack(codes, width):
    """Little-endian packing of signed codes into one unsigned word (code ``j`` at bits ``j*width``)."""
    word = 0
    for j, code in enumerate(codes):
        word |= (int(code) & ((1 << width) - 1)) << (j * width)
    return word


class EncoderLayer(BlockComponent):
    """Phase 1 of the integer encoder layer (Q, K, V projections) on a time-multiplexed MAC array.

    Parameters
    ----------
    cfg : EncoderLayerConfig

    Members
    -------
    i : In(stream.Signature(StructLayout({"token": ArrayLayout(signed(8), d_model), "last": 1})))
    o : Out(stream.Signature(StructLayout({"data": ArrayLayout(signed(8), cols), "last": 1})))
    """

    config_class = EncoderLayerConfig

    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        self.mac = MacArray(cfg.mac)
        self.requant = Requant(RequantConfig(lanes=cfg.cols, acc_width=cfg.mac.acc_bits))
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "token": data.ArrayLayout(signed(8), cfg.d_model), "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(signed(8), cfg.cols), "last": 1}))),
        })

    @property
    def column_tiles(self):
        return 3 * self.cfg.d_model // self.cfg.cols

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
        weight_bits = 3 * cfg.d_model * cfg.d_model * 8
        param_bits = 3 * cfg.d_model * (32 + 32 + SHIFT_WIDTH)
        return (weight_bits + param_bits + 7) // 8

    def cycles(self, seq):
        """Array steps of one sequence (the run phase), excluding load and pipeline latency."""
        cfg = self.cfg
        return self.column_tiles * (-(-seq // cfg.rows)) * max(cfg.d_model, cfg.rows)

    def finish_cycles(self, seq):
        """Cycles from accepting a sequence's last token to its last output beat leaving (no stalls,
        ``d_model >= rows``): the last row tile starts ``cycles(seq) - d_model`` cycles into the run,
        its first row appears :attr:`latency` later, and its ``(seq - 1) % rows`` further rows follow
        one per cycle."""
        return self.cycles(seq) - self.cfg.d_model + self.latency + (seq - 1) % self.cfg.rows

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.mac = mac = self.mac
        m.submodules.requant = requant = self.requant
        rows, cols, d_model = cfg.rows, cfg.cols, cfg.d_model
        params = config_params(cfg)
        weight, bias, multiplier, shift = qkv_projection(params)
        tiles_c = self.column_tiles
        depth_r = -(-cfg.max_seq // rows)

        # Token buffer: bank r holds tokens r, r + rows, ...; a word is one whole token.
        banks = []
        for r in range(rows):
            bank = Memory(shape=unsigned(8 * d_model), depth=depth_r, init=[])
            m.submodules[f"tokens{r}"] = bank
            banks.append((bank.write_port(), bank.read_port(domain="sync")))
        weights = Memory(shape=unsigned(8 * cols), depth=tiles_c * d_model,
                         init=[_pack(weight[ct * cols:(ct + 1) * cols, k].tolist(), 8)
                               for ct in range(tiles_c) for k in range(d_model)])
        m.submodules.weights = weights
        weight_port = weights.read_port(domain="sync")
        lanes = data.ArrayLayout(data.StructLayout({"bias": signed(32), "multiplier": signed(32),
                                                    "shift": signed(SHIFT_WIDTH)}), cols)
        quant = Memory(shape=lanes, depth=tiles_c, init=[
            [{"bias": int(bias[c]), "multiplier": int(multiplier[c]), "shift": int(shift[c])}
             for c in range(ct * cols, (ct + 1) * cols)] for ct in range(tiles_c)])
        m.submodules.quant = quant
        quant_port = quant.read_port(domain="comb")

        seq_len = Signal(range(cfg.max_seq + 1))
        row_tiles = Signal(range(depth_r + 1))
        wr_bank = Signal(range(rows))
        wr_addr = Signal(range(depth_r))
        # Sequencer position: column tile, row tile, reduction step.
        ct, rt, k = Signal(range(tiles_c)), Signal(range(depth_r)), Signal(range(d_model))
        issuing = Signal()
        # Stage 1: the step read from the memories last cycle.
        s1_valid, s1_k, s1_last = Signal(), Signal(range(d_model)), Signal()
        advance = Signal()
        m.d.comb += advance.eq(~s1_valid | mac.i.ready)

        token_bits = self.i.payload.token.as_value()
        loading = Signal()
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
                m.d.sync += [issuing.eq(1), ct.eq(0), rt.eq(0), k.eq(0)]
                m.next = "run"
            with m.State("run"):
                with m.If(advance & issuing):
                    with m.If(k == d_model - 1):
                        m.d.sync += k.eq(0)
                        with m.If(rt == row_tiles - 1):
                            m.d.sync += rt.eq(0)
                            with m.If(ct == tiles_c - 1):
                                m.d.sync += issuing.eq(0)
                            with m.Else():
                                m.d.sync += ct.eq(ct + 1)
                        with m.Else():
                            m.d.sync += rt.eq(rt + 1)
                    with m.Else():
                        m.d.sync += k.eq(k + 1)
                with m.If(self.o.valid & self.o.ready & self.o.payload.last):
                    m.d.sync += [seq_len.eq(0), row_tiles.eq(0), wr_bank.eq(0), wr_addr.eq(0)]
                    m.next = "load"
        # An expression, not a conditional assignment inside the FSM: the emitted Verilog then drives it
        # with a continuous assignment, which Icarus evaluates at time 0 (see the test's note).
        m.d.comb += [loading.eq(fsm.ongoing("load")), self.i.ready.eq(loading)]

        # An accepted token is registered, then written: the memories see no input port directly.
        pend_valid, pend_bank = Signal(), Signal(range(rows))
        pend_addr, pend_data = Signal(range(depth_r)), Signal(8 * d_model)
        m.d.sync += [pend_valid.eq(loading & self.i.valid), pend_bank.eq(wr_bank), pend_addr.eq(wr_addr),
                     pend_data.eq(token_bits)]
        for r, (write, read) in enumerate(banks):
            m.d.comb += [write.addr.eq(pend_addr), write.data.eq(pend_data),
                         write.en.eq(pend_valid & (pend_bank == r))]
        for _, read in banks:
            m.d.comb += [read.addr.eq(rt), read.en.eq(advance)]
        m.d.comb += [weight_port.addr.eq(ct * d_model + k), weight_port.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(issuing), s1_k.eq(k), s1_last.eq(k == d_model - 1)]

        m.d.comb += [mac.i.valid.eq(s1_valid), mac.i.payload.last.eq(s1_last)]
        for r, (_, read) in enumerate(banks):
            m.d.comb += mac.i.payload.a[r].eq(read.data.word_select(s1_k, 8).as_signed())
        for c in range(cols):
            m.d.comb += mac.i.payload.b[c].eq(weight_port.data.word_select(c, 8).as_signed())

        # The array's rows in order: drop the rows past the sequence's end, attach the column tile's
        # quantization parameters.
        out_ct, out_tok = Signal(range(tiles_c)), Signal(range(depth_r * rows))
        out_r = Signal(range(rows))
        row_used = Signal()
        m.d.comb += [
            row_used.eq(out_tok < seq_len),
            quant_port.addr.eq(out_ct),
            requant.i.valid.eq(mac.o.valid & row_used),
            mac.o.ready.eq(requant.i.ready | ~row_used),
            requant.output_offset.eq(0), requant.act_min.eq(-128), requant.act_max.eq(127),
        ]
        for c in range(cols):
            m.d.comb += [
                requant.i.payload[c].acc.eq(mac.o.payload.acc[c]),
                requant.i.payload[c].bias.eq(quant_port.data[c].bias),
                requant.i.payload[c].multiplier.eq(quant_port.data[c].multiplier),
                requant.i.payload[c].shift.eq(quant_port.data[c].shift),
            ]
        with m.If(mac.o.valid & mac.o.ready):
            with m.If(out_r == rows - 1):
                m.d.sync += out_r.eq(0)
                with m.If(out_tok + 1 >= seq_len):
                    m.d.sync += [out_tok.eq(0), out_ct.eq(Mux(out_ct == tiles_c - 1, 0, out_ct + 1))]
                with m.Else():
                    m.d.sync += out_tok.eq(out_tok + 1)
            with m.Else():
                m.d.sync += [out_r.eq(out_r + 1), out_tok.eq(out_tok + 1)]

        # Output beats and the sequence's last one.
        fin_ct, fin_tok = Signal(range(tiles_c)), Signal(range(cfg.max_seq))
        m.d.comb += [
            self.o.valid.eq(requant.o.valid),
            requant.o.ready.eq(self.o.ready),
            self.o.payload.data.eq(requant.o.payload),
            self.o.payload.last.eq((fin_ct == tiles_c - 1) & (fin_tok == seq_len - 1)),
        ]
        with m.If(self.o.valid & self.o.ready):
            with m.If(fin_tok == seq_len - 1):
                m.d.sync += [fin_tok.eq(0), fin_ct.eq(Mux(fin_ct == tiles_c - 1, 0, fin_ct + 1))]
            with m.Else():
                m.d.sync += fin_tok.eq(fin_tok + 1)
        return m
