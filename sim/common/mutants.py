"""Faulty shells around a real block: verification fixtures, not hardware.

Each shell has exactly the ports of the block it wraps (the same signature, ``config_class`` and
``latency``), passes the input stream and the static ports straight through and breaks the output stream
in one way. Built from the wrapped block's config, a shell runs in both tiers with the wrapped block's own
vectors and bench module, so ``tests/test_scoreboard.py`` can show that each tier rejects each kind of
stream bug, and with which message.

========================  =================================================================  ==============
shell                     fault                                                              caught by
========================  =================================================================  ==============
:class:`DropBeat`         output beat ``at`` is taken from the block and never offered       scoreboard
:class:`DuplicateBeat`    after a stalled cycle the beat is delivered and also kept, so the  scoreboard
                          sink gets it twice (only under backpressure)
:class:`ExtraBeat`        after output beat ``after`` (counted from 1) the beat is offered   drain window
                          once more
:class:`UnstablePayload`  bit 0 of the payload is inverted while ``o.ready`` is low; every   stream rules
                          beat transferred is right (only under backpressure)
:class:`FlipBit`          bit 0 of output beat ``at`` is inverted                            scoreboard
========================  =================================================================  ==============

:func:`shell` makes the class for one fault, wrapped block and parameters.
"""

from functools import lru_cache

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import wiring

from ...hdl.common.component import BlockComponent, interface

__all__ = ["MutantShell", "DropBeat", "DuplicateBeat", "ExtraBeat", "UnstablePayload", "FlipBit", "MUTANTS",
           "shell"]


class MutantShell(BlockComponent):
    """The wrapped block ``block`` with its signature; subclasses drive ``o`` from the block's ``o`` in
    :meth:`fault`.

    Parameters
    ----------
    cfg : block.config_class
    """

    block = None

    def __init__(self, cfg):
        self.cfg = cfg
        self._model = interface(self.block, cfg)
        super().__init__(self._model.signature)

    @property
    def latency(self):
        return self._model.latency

    @property
    def sim_sources(self):
        return self._model.sim_sources

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = block = self.block(self.cfg)
        for name, member in self.signature.members.items():
            if name in ("i", "o"):
                continue
            if member.flow == wiring.In:
                m.d.comb += getattr(block, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(block, name))
        wiring.connect(m, wiring.flipped(self.i), block.i)
        self.fault(m, block.o)
        return m

    def fault(self, m, inner):
        raise NotImplementedError

    def _transfers(self, m, stream, limit):
        """A counter of the beats ``stream`` transfers, saturating at ``limit``."""
        count = Signal(range(limit + 1))
        with m.If(stream.valid & stream.ready & (count != limit)):
            m.d.sync += count.eq(count + 1)
        return count


class DropBeat(MutantShell):
    """Output beat number ``at`` (from 0) is consumed from the block and never offered."""

    at = 3

    def fault(self, m, inner):
        count = self._transfers(m, inner, self.at + 1)
        drop = count == self.at
        m.d.comb += [
            self.o.valid.eq(inner.valid & ~drop),
            self.o.payload.eq(inner.payload),
            inner.ready.eq(self.o.ready | drop),
        ]


class DuplicateBeat(MutantShell):
    """A wrong ``ready`` to the block: in the cycle after a stall the beat the sink takes is not taken
    from the block, so the sink gets it again."""

    def fault(self, m, inner):
        stalled = Signal()
        m.d.sync += stalled.eq(self.o.valid & ~self.o.ready)
        m.d.comb += [
            self.o.valid.eq(inner.valid),
            self.o.payload.eq(inner.payload),
            inner.ready.eq(self.o.ready & ~stalled),
        ]


class ExtraBeat(MutantShell):
    """Once ``after`` output beats have been transferred, the last of them is offered once more."""

    after = 1

    def fault(self, m, inner):
        count = self._transfers(m, self.o, self.after + 1)
        last = Signal.like(Value.cast(inner.payload))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += last.eq(self.o.payload)
        extra = count == self.after
        m.d.comb += [
            self.o.valid.eq(Mux(extra, 1, inner.valid)),
            self.o.payload.eq(Mux(extra, last, inner.payload)),
            inner.ready.eq(self.o.ready & ~extra),
        ]


class UnstablePayload(MutantShell):
    """Bit 0 of the payload is inverted while ``o.ready`` is low: what a sink takes is right, what it is
    shown while it waits is not."""

    def fault(self, m, inner):
        m.d.comb += [
            self.o.valid.eq(inner.valid),
            self.o.payload.eq(Value.cast(inner.payload) ^ ~self.o.ready),
            inner.ready.eq(self.o.ready),
        ]


class FlipBit(MutantShell):
    """Bit 0 of output beat number ``at`` (from 0) is inverted."""

    at = 2

    def fault(self, m, inner):
        count = self._transfers(m, self.o, self.at + 1)
        m.d.comb += [
            self.o.valid.eq(inner.valid),
            self.o.payload.eq(Value.cast(inner.payload) ^ (count == self.at)),
            inner.ready.eq(self.o.ready),
        ]


#: The five shells by the name tests use.
MUTANTS = {"drop": DropBeat, "duplicate": DuplicateBeat, "extra": ExtraBeat, "unstable": UnstablePayload,
           "flip": FlipBit}


@lru_cache(maxsize=None)
def shell(kind, block, **params):
    """The class of mutant ``kind`` (a :data:`MUTANTS` key) around generator ``block``, with class
    attributes ``params`` (``at``, ``after``); the same arguments give the same class."""
    base = MUTANTS[kind]
    suffix = "".join(f"_{name}{value}" for name, value in sorted(params.items()))
    return type(f"{base.__name__}_{block.__name__}{suffix}", (base,),
                {"block": block, "config_class": block.config_class, **params})
