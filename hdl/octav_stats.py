"""OCTAV statistics: one pass over a tensor at a given clip, for the host's Newton step.

Computes :func:`qarith.golden.octav_stats.octav_stats`: for a tensor streamed one element per beat (its
final beat marked by ``last``) and the quasi-static ``clip`` port, the sum ``S_out`` of the magnitudes
on the clipped side ``|x| >= clip`` and the counts ``N_out`` (clipped) and ``N_in`` (``|x| < clip``).
The host divides (:func:`qarith.golden.octav_stats.octav_step`) and streams the tensor again with the
new clip until it stops changing.

Two stages, the whole pipeline stalling while ``o.ready`` is low (``i.ready`` is ``~o.valid |
o.ready``):

1. ``magnitude``: ``|x|`` and the comparison ``|x| >= clip``, registered;
2. ``accumulate``: ``S_out += |x|`` and ``N_out += 1`` on the clipped side, ``N_in += 1`` otherwise; on
   the tensor's last element the totals go to the output register and the accumulators restart from
   zero, so tensors follow each other without a bubble.

Latency 2 cycles from a tensor's last element to its statistics; one element per cycle; one output beat
per tensor. ``clip`` must hold still while a tensor is in flight.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.octav_stats import OctavStatsConfig
from .common.component import BlockComponent

__all__ = ["OctavStats", "beat_layout", "stats_layout"]


def beat_layout(cfg):
    """One input beat: an element and the tensor's ``last`` flag."""
    return data.StructLayout({"x": signed(cfg.in_width) if cfg.in_signed else unsigned(cfg.in_width),
                              "last": 1})


def stats_layout(cfg):
    """One output beat: the pass's ``sum_out``, ``n_out`` and ``n_in``."""
    return data.StructLayout({"sum_out": unsigned(cfg.sum_width), "n_out": unsigned(cfg.count_width),
                              "n_in": unsigned(cfg.count_width)})


class OctavStats(BlockComponent):
    """Streaming OCTAV pass statistics.

    Parameters
    ----------
    cfg : OctavStatsConfig

    Members
    -------
    i : In(stream.Signature(beat_layout(cfg)))
    o : Out(stream.Signature(stats_layout(cfg)))
    clip : In(unsigned(clip_width))
    """

    config_class = OctavStatsConfig

    latency = 2
    throughput = 1  # elements per cycle
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(beat_layout(cfg))),
            "o": Out(stream.Signature(stats_layout(cfg))),
            "clip": In(unsigned(cfg.clip_width)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        # 1. magnitude and comparison
        x = self.i.payload.x
        magnitude = Signal(unsigned(cfg.in_width))  # |x| of a signed code fits in_width bits unsigned
        valid1, last1, clipped1 = Signal(), Signal(), Signal()
        magnitude1 = Signal.like(magnitude)
        m.d.comb += magnitude.eq(Mux(x < 0, -x, x) if cfg.in_signed else x)
        with m.If(advance):
            m.d.sync += [valid1.eq(self.i.valid), last1.eq(self.i.payload.last),
                         magnitude1.eq(magnitude), clipped1.eq(magnitude >= self.clip)]

        # 2. accumulate; the last element's totals go straight to the output register
        sum_out = Signal(unsigned(cfg.sum_width))
        n_out = Signal(unsigned(cfg.count_width))
        n_in = Signal(unsigned(cfg.count_width))
        next_sum = Mux(clipped1, sum_out + magnitude1, sum_out)
        next_out = Mux(clipped1, n_out + 1, n_out)
        next_in = Mux(clipped1, n_in, n_in + 1)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid1 & last1)
            with m.If(valid1):
                with m.If(last1):
                    m.d.sync += [self.o.payload.sum_out.eq(next_sum), self.o.payload.n_out.eq(next_out),
                                 self.o.payload.n_in.eq(next_in), sum_out.eq(0), n_out.eq(0), n_in.eq(0)]
                with m.Else():
                    m.d.sync += [sum_out.eq(next_sum), n_out.eq(next_out), n_in.eq(next_in)]
        return m
