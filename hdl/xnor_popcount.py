"""Binary (XNOR-popcount) layer: ``channels`` +-1 dot products side by side, one word per cycle, each
followed by its folded batch-norm + sign threshold; one output bit per channel and vector.

Computes :func:`qarith.golden.xnor_popcount.xnor_popcount` (the encoding, the fold and the ``sign(0) = +1``
rule are stated there).

Input: one beat per word of a vector, ``x`` (``W`` activation bits) and ``w`` (one ``W``-bit weight word
per channel); a vector is :attr:`~qarith.golden.xnor_popcount.XnorPopcountConfig.words` beats, counted
by the block (no ``last`` flag: ``K`` is part of the config). Output: one beat per vector, one bit per
channel (1 = +1).

Two stages, both registered, the whole pipeline stalling while ``o.ready`` is low (``i.ready`` is
``~o.valid | o.ready``):

1. ``popcount``: per channel ``XNOR(x, w)``, ANDed with the constant mask of the vector's last word
   (padding bits count nothing), and a balanced adder tree of its ``W`` bits;
2. ``accumulate``: ``acc += popcount``; on the vector's last word ``acc + popcount`` is compared with
   the channel's threshold (``>=`` for direction +1, ``<=`` for -1, both constants of the config) into
   the output register and ``acc`` restarts from zero, so vectors follow each other without a bubble.

Thresholds and directions are configuration constants (a folded batch norm is fixed once a network is
trained, as FINN's thresholding units keep them), so each compare is against a constant and costs no
threshold register. Latency 2 cycles from a vector's last word to its output bits; one word per cycle
(``W * channels`` binary MACs) for any vector length, one-word vectors included. No DSP block.
"""

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.xnor_popcount import XnorPopcountConfig
from .common.component import BlockComponent

__all__ = ["XnorPopcount", "beat_layout", "popcount_tree"]


def beat_layout(cfg):
    """One input beat: the activation word and one weight word per channel."""
    word = unsigned(cfg.word_width)
    return data.StructLayout({"x": word, "w": data.ArrayLayout(word, cfg.channels)})


def popcount_tree(bits):
    """The number of ones among ``bits`` (a list of 1-bit values) as a balanced tree of adders, each
    level's sums one bit wider than its operands."""
    level = list(bits)
    while len(level) > 1:
        pairs = [level[n] + level[n + 1] for n in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]


class XnorPopcount(BlockComponent):
    """Streaming XNOR-popcount dot products with per-channel threshold outputs.

    Parameters
    ----------
    cfg : XnorPopcountConfig

    Members
    -------
    i : In(stream.Signature(beat_layout(cfg)))
    o : Out(stream.Signature(ArrayLayout(1, channels)))
    """

    config_class = XnorPopcountConfig

    latency = 2
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(beat_layout(cfg))),
            "o": Out(stream.Signature(data.ArrayLayout(unsigned(1), cfg.channels))),
        })

    @property
    def throughput(self):
        """Binary MACs per cycle."""
        return self.cfg.macs

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        advance = Signal()
        accept = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
            accept.eq(self.i.valid & advance),
        ]

        # Word position within the vector; the last word is the one that masks and finishes.
        word_index = Signal(range(cfg.words), name="word_index")
        last_word = Signal()
        m.d.comb += last_word.eq(word_index == cfg.words - 1)
        with m.If(accept):
            m.d.sync += word_index.eq(Mux(last_word, 0, word_index + 1))

        # Stage 1: XNOR, mask, popcount tree.
        full_mask = (1 << cfg.word_width) - 1
        count_valid = Signal()
        count_last = Signal()
        counts = [Signal(unsigned(cfg.word_width.bit_length()), name=f"count{c}") for c in range(cfg.channels)]
        # One expression (a continuous assignment in the Verilog), not a process with a default: Icarus
        # never ran that process before last_word first changed, leaving the first word's mask undefined.
        mask = Signal(cfg.word_width)
        m.d.comb += mask.eq(Mux(last_word, Const(cfg.last_mask, cfg.word_width), Const(full_mask, cfg.word_width)))
        with m.If(advance):
            m.d.sync += [count_valid.eq(self.i.valid), count_last.eq(last_word)]
        for c in range(cfg.channels):
            agree = ~(self.i.payload.x ^ self.i.payload.w[c]) & mask
            # Loaded only from an accepted word: an idle input's payload (undefined in a simulator before
            # the first beat) never reaches the registers.
            with m.If(accept):
                m.d.sync += counts[c].eq(popcount_tree([agree[n] for n in range(cfg.word_width)]))

        # Stage 2: accumulate over the vector's words and compare on its last one.
        with m.If(advance):
            m.d.sync += self.o.valid.eq(count_valid & count_last)
        for c, (threshold, direction) in enumerate(zip(cfg.threshold_codes, cfg.direction_codes)):
            acc = Signal(unsigned(cfg.count_width), name=f"acc{c}")
            total = Signal(unsigned(cfg.count_width), name=f"total{c}")
            m.d.comb += total.eq(acc + counts[c])
            with m.If(advance & count_valid):
                with m.If(count_last):
                    bit = total >= threshold if direction > 0 else total <= threshold
                    m.d.sync += [self.o.payload[c].eq(bit), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(total)
        return m
