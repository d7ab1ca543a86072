"""cocotb side of the benches: a test bench class with stream driver, stream monitor and scoreboard.

Signals are driven on the falling clock edge and sampled in the ``ReadOnly`` phase after it, so the
values seen are the ones the next rising edge acts on, on Icarus and Verilator alike.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from ...hdl.common.component import interface
from .bench import MODES, check_outputs, pack, unpack
from .runner import bench_config

__all__ = ["StreamDriver", "StreamMonitor", "TB", "run_stream_test"]


class _StreamPort:
    """The ``<name>__valid/__ready/__payload`` handles of an Amaranth stream port, its payload layout,
    the clock and a seeded random source for idles or backpressure."""

    def __init__(self, dut, name, layout, probability, seed):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk = dut.clk
        self.layout, self.probability, self.rng = layout, probability, random.Random(seed)


class StreamDriver(_StreamPort):
    """Drives an Amaranth stream sink, inserting an idle cycle before a beat with probability ``idle``."""

    def __init__(self, dut, name, layout, idle=0.0, seed=0):
        super().__init__(dut, name, layout, idle, seed)
        self.accepted_cycles = []

    async def send(self, clock_cycles, beats):
        """Send ``beats``; ``clock_cycles()`` gives the current cycle number for the record."""
        self.valid.value = 0
        for beat in beats:
            await FallingEdge(self.clk)
            while self.rng.random() < self.probability:
                self.valid.value = 0
                await FallingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = pack(self.layout, beat)
            while True:
                await ReadOnly()
                if self.ready.value == 1:
                    self.accepted_cycles.append(clock_cycles())
                    break
                await FallingEdge(self.clk)
        await FallingEdge(self.clk)
        self.valid.value = 0


class StreamMonitor(_StreamPort):
    """Collects beats from an Amaranth stream source, holding ``ready`` low in a cycle with probability
    ``backpressure``."""

    def __init__(self, dut, name, layout, backpressure=0.0, seed=1):
        super().__init__(dut, name, layout, backpressure, seed)
        self.beats, self.cycles = [], []

    async def receive(self, clock_cycles, count):
        while len(self.beats) < count:
            await FallingEdge(self.clk)
            ready = self.rng.random() >= self.probability
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value == 1:
                self.beats.append(unpack(self.layout, self.payload.value.to_unsigned()))
                self.cycles.append(clock_cycles())
        await FallingEdge(self.clk)
        self.ready.value = 0


class TB:
    """Clock, reset, a driver on ``i``, a monitor on ``o`` and the in-order scoreboard."""

    def __init__(self, dut, component, idle=0.0, backpressure=0.0, seed=0):
        self.dut, self.component = dut, component
        self.cycle = 0
        self.driver = StreamDriver(dut, "i", component.i.payload.shape(), idle, seed)
        self.monitor = StreamMonitor(dut, "o", component.o.payload.shape(), backpressure, seed + 1)

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def reset(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.i__valid.value = 0
        self.dut.o__ready.value = 0
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        cocotb.start_soon(self._count())

    def apply_static(self, static):
        for name, value in static.items():
            port = getattr(self.component, name)
            getattr(self.dut, name).value = pack(port.shape(), value)

    async def play(self, vectors, timeout_cycles=None):
        """Run one :class:`~qarith.sim.common.bench.Vectors` case; returns (accept cycles, output cycles)."""
        self.apply_static(vectors.static)
        self.driver.accepted_cycles, self.monitor.beats, self.monitor.cycles = [], [], []
        receive = cocotb.start_soon(self.monitor.receive(lambda: self.cycle, len(vectors.expected)))
        await self.driver.send(lambda: self.cycle, vectors.beats)
        limit = timeout_cycles or 200 + 8 * (len(vectors.beats) + len(vectors.expected))
        start = self.cycle
        while not receive.done():
            assert self.cycle - start < limit, \
                f"{vectors.name}: timed out with {len(self.monitor.beats)} of {len(vectors.expected)} beats"
            await RisingEdge(self.dut.clk)
        check_outputs(vectors, self.monitor.beats)
        return self.driver.accepted_cycles, self.monitor.cycles


async def run_stream_test(dut, generator, make_vectors, mode):
    """Play every case of ``make_vectors(cfg)`` through ``dut``, the Verilog of ``generator(cfg)`` for the
    config this cocotb run was started with (:func:`~qarith.sim.common.runner.bench_config`)."""
    cfg = bench_config(generator)
    idle, backpressure = MODES[mode]
    tb = TB(dut, interface(generator, cfg), idle, backpressure, seed=sorted(MODES).index(mode))
    await tb.reset()
    for case in make_vectors(cfg):
        accepted, delivered = await tb.play(case)
        dut._log.info("%s: %d beats in, %d out, bit-exact", case.name, len(case.beats), len(case.expected))
        if mode == "plain" and case.origin is not None:
            # The first output's latency from the last input beat it depends on, as declared.
            measured = delivered[0] - accepted[case.origin[0][-1]]
            assert measured == tb.component.latency, \
                f"{case.name}: first output {measured} cycles after its last input, declared {tb.component.latency}"
            dut._log.info("%s: latency %d cycles, as declared", case.name, measured)
