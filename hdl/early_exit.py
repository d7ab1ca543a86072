"""ELBERT early-exit decision: per layer's logits, a top-2 margin, two constant comparisons and a run
counter.

Computes :func:`qarith.golden.early_exit.early_exit` (the rule and its integer thresholds are stated
there). Input: one beat per layer, the layer's ``C`` logit codes and ``first`` on a sample's first layer.
Output: one beat per layer, ``exit``, ``confident`` (the entropy test), the argmax ``label`` and the
window ``run``.

Two stages, the whole pipeline stalling while ``o.ready`` is low (``i.ready`` is ``~o.valid |
o.ready``):

1. ``margin``: a tree of ``C - 1`` merge nodes, each keeping the larger top logit with its index (the
   left, lower index on a tie) and the larger of the other three candidates for second place; then the
   margin ``g = top - second`` (for two classes one subtraction and its absolute value), registered;
2. ``decide``: ``g > T`` and ``g > M`` (constant comparisons), the run counter (restarted by ``first``,
   saturating at ``N``), ``exit``, into the output register.

Latency 2 cycles; one layer per cycle.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.early_exit import EarlyExitConfig
from .common.component import BlockComponent

__all__ = ["EarlyExit", "beat_layout", "decision_layout"]


def beat_layout(cfg):
    """One input beat: a layer's logits and the sample's ``first`` flag."""
    return data.StructLayout({"z": data.ArrayLayout(signed(cfg.logit_width), cfg.classes), "first": 1})


def decision_layout(cfg):
    """One output beat: the layer's decision."""
    return data.StructLayout({"exit": 1, "confident": 1, "label": unsigned(cfg.class_width),
                              "run": unsigned(cfg.run_width)})


class EarlyExit(BlockComponent):
    """Streaming ELBERT exit decisions.

    Parameters
    ----------
    cfg : EarlyExitConfig

    Members
    -------
    i : In(stream.Signature(beat_layout(cfg)))
    o : Out(stream.Signature(decision_layout(cfg)))
    """

    config_class = EarlyExitConfig

    latency = 2
    throughput = 1  # layers per cycle
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(beat_layout(cfg))),
            "o": Out(stream.Signature(decision_layout(cfg))),
        })

    def _top_two(self, m, logits):
        """``(top, index, second)`` of ``logits`` by a balanced tree of merges."""
        cfg = self.cfg
        nodes = [(z, index, cfg.logit_min) for index, z in enumerate(logits)]
        level = 0
        while len(nodes) > 1:
            merged = []
            for pair in range(0, len(nodes) - 1, 2):
                (top_a, index_a, second_a), (top_b, index_b, second_b) = nodes[pair], nodes[pair + 1]
                name = f"l{level}n{pair // 2}"
                top = Signal(signed(cfg.logit_width), name=f"top_{name}")
                index = Signal(unsigned(cfg.class_width), name=f"index_{name}")
                second = Signal(signed(cfg.logit_width), name=f"second_{name}")
                left = top_a >= top_b
                m.d.comb += [
                    top.eq(Mux(left, top_a, top_b)),
                    index.eq(Mux(left, index_a, index_b)),
                    # Second place: the loser's top or the winner's own second, whichever is larger.
                    second.eq(Mux(left, Mux(second_a > top_b, second_a, top_b),
                                  Mux(second_b > top_a, second_b, top_a))),
                ]
                merged.append((top, index, second))
            if len(nodes) % 2:
                merged.append(nodes[-1])
            nodes = merged
            level += 1
        return nodes[0]

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        # 1. margin
        beat = self.i.payload
        gap = Signal(unsigned(cfg.logit_width + 1))
        label = Signal(unsigned(cfg.class_width))
        if cfg.classes == 2:
            difference = Signal(signed(cfg.logit_width + 1))
            m.d.comb += [difference.eq(beat.z[0] - beat.z[1]),
                         gap.eq(Mux(difference < 0, -difference, difference)),
                         label.eq(difference < 0)]
        else:
            top, index, second = self._top_two(m, [beat.z[c] for c in range(cfg.classes)])
            m.d.comb += [gap.eq(top - second), label.eq(index)]
        valid1, first1 = Signal(), Signal()
        gap1, label1 = Signal.like(gap), Signal.like(label)
        with m.If(advance):
            m.d.sync += [valid1.eq(self.i.valid), first1.eq(beat.first), gap1.eq(gap), label1.eq(label)]

        # 2. decide
        run = Signal(unsigned(cfg.run_width))
        previous = Signal(unsigned(cfg.class_width))
        # Thresholds past the largest margin never fire; clamping keeps the constants inside the width.
        confident = gap1 > min(cfg.entropy_codes, cfg.gap_max)
        votes = gap1 > min(cfg.margin_codes, cfg.gap_max)
        same = ~first1 & (run != 0) & (previous == label1)
        next_run = Signal.like(run)
        m.d.comb += next_run.eq(Mux(votes, Mux(same, Mux(run == cfg.patience, run, run + 1), 1), 0))
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid1)
            with m.If(valid1):
                m.d.sync += [run.eq(next_run), previous.eq(label1),
                             self.o.payload.exit.eq(confident | (next_run >= cfg.patience)),
                             self.o.payload.confident.eq(confident), self.o.payload.label.eq(label1),
                             self.o.payload.run.eq(next_run)]
        return m
