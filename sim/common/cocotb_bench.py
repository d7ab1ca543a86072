"""cocotb side of the benches: a test bench class with stream driver, stream monitor, scoreboard and
stream-rule checks, the same checks as the fast tier (:mod:`qarith.sim.common.bench`).

Signals are driven on the falling clock edge and sampled in the ``ReadOnly`` phase after it, so the
values seen are the ones the next rising edge acts on, on Icarus and Verilator alike. The monitor runs
from reset to the end of the test, every cycle: it drives ``o.ready`` from the mode, checks the stream
rules on ``o`` and hands every beat (or a beat offered after the case's last one) to the case's
:class:`~qarith.sim.common.bench.Scoreboard`.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from ...hdl.common.component import interface
from .bench import MODES, Scoreboard, StreamRules, case_seed, drain_cycles, pack, played, seed_note, unpack
from .runner import bench_config, bench_run

__all__ = ["StreamDriver", "StreamMonitor", "TB", "run_stream_test"]


class _StreamPort:
    """The ``<name>__valid/__ready/__payload`` handles of an Amaranth stream port, its payload layout,
    the clock, a random source for idles or backpressure (seeded per case) and the port's
    :class:`~qarith.sim.common.bench.StreamRules`; :attr:`violation` keeps the first one broken."""

    def __init__(self, dut, name, layout, probability, describe):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk = dut.clk
        self.layout, self.probability, self.rng = layout, probability, random.Random(0)
        self.rules = StreamRules(name, describe)
        self.violation = None

    def check(self, cycle, valid, ready, payload):
        violation = self.rules.check(cycle, valid, ready, payload)
        if violation is not None and self.violation is None:
            self.violation = violation


class StreamDriver(_StreamPort):
    """Drives an Amaranth stream sink, inserting an idle cycle before a beat with probability ``idle``.
    The stream rules are checked on what it drives (the beat index stands for the payload), so a bench
    that withdrew or changed a beat it offered would fail too."""

    def __init__(self, dut, name, layout, idle=0.0):
        super().__init__(dut, name, layout, idle, lambda index: f"input beat {index}")
        self.accepted_cycles = []

    async def send(self, clock_cycles, beats):
        """Send ``beats``; ``clock_cycles()`` gives the current cycle number for the record."""
        self.valid.value = 0
        for index, beat in enumerate(beats):
            await FallingEdge(self.clk)
            while self.rng.random() < self.probability:
                self.valid.value = 0
                await FallingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = pack(self.layout, beat)
            while True:
                await ReadOnly()
                ready = self.ready.value == 1
                self.check(clock_cycles(), True, ready, index)
                if ready:
                    self.accepted_cycles.append(clock_cycles())
                    break
                await FallingEdge(self.clk)
        await FallingEdge(self.clk)
        self.valid.value = 0


class StreamMonitor(_StreamPort):
    """Watches an Amaranth stream source every cycle, holding ``ready`` low in a cycle with probability
    ``backpressure``; beats go to :attr:`board`, the current case's scoreboard."""

    def __init__(self, dut, name, layout, backpressure=0.0):
        super().__init__(dut, name, layout, backpressure, lambda bits: str(unpack(layout, bits)))
        self.board = None
        self.port = name

    async def run(self, clock_cycles):
        while True:
            await FallingEdge(self.clk)
            ready = self.rng.random() >= self.probability
            self.ready.value = int(ready)
            await ReadOnly()
            cycle, valid = clock_cycles(), self.valid.value
            if not valid.is_resolvable:
                if self.violation is None:
                    self.violation = f"port {self.port} at cycle {cycle}: valid is {valid}, not 0 or 1"
                continue
            valid = valid == 1
            bits = None
            if valid:
                payload = self.payload.value
                if not payload.is_resolvable:
                    if self.violation is None:
                        self.violation = f"port {self.port} at cycle {cycle}: valid beat with payload {payload}"
                    continue
                bits = payload.to_unsigned()
            self.check(cycle, valid, ready, bits)
            board = self.board
            if valid and board is not None:
                if ready:
                    board.deliver(cycle, unpack(self.layout, bits))
                elif board.complete:
                    board.offer(cycle, unpack(self.layout, bits))
            elif valid and self.violation is None:
                self.violation = f"port {self.port} at cycle {cycle}: a beat before the first case started"


class TB:
    """Clock, reset, a driver on ``i``, a monitor on ``o``, the in-order scoreboard and the drain window
    (:func:`~qarith.sim.common.bench.drain_cycles` from ``component.latency`` and the backpressure)."""

    def __init__(self, dut, component, idle=0.0, backpressure=0.0):
        self.dut, self.component = dut, component
        self.cycle = 0
        self.idle, self.backpressure = idle, backpressure
        self.drain = drain_cycles(component.latency, backpressure)
        self.driver = StreamDriver(dut, "i", component.i.payload.shape(), idle)
        self.monitor = StreamMonitor(dut, "o", component.o.payload.shape(), backpressure)

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
        cocotb.start_soon(self.monitor.run(lambda: self.cycle))

    def apply_static(self, static):
        for name, value in static.items():
            port = getattr(self.component, name)
            getattr(self.dut, name).value = pack(port.shape(), value)

    async def play(self, vectors, seed=0, timeout_cycles=None):
        """Run one :class:`~qarith.sim.common.bench.Vectors` case with stall patterns from ``seed``; raise
        ``AssertionError`` on the first problem (mismatch, missing or extra beat, broken stream rule).
        Returns (accept cycles, output cycles)."""
        self.apply_static(vectors.static)
        self.driver.rng.seed(2 * seed)
        self.monitor.rng.seed(2 * seed + 1)
        self.driver.accepted_cycles = []
        board = self.monitor.board = Scoreboard(vectors)
        send = cocotb.start_soon(self.driver.send(lambda: self.cycle, vectors.beats))
        limit = timeout_cycles or vectors.timeout or 200 + 8 * (len(vectors.beats) + len(vectors.expected))
        start, drain_left = self.cycle, self.drain
        while True:
            await RisingEdge(self.dut.clk)
            failure = self.monitor.violation or self.driver.violation or board.failure
            if failure is not None:
                break
            if board.complete and send.done():
                if drain_left == 0:
                    break
                drain_left -= 1
            elif self.cycle - start >= limit:
                failure = board.missing(self.cycle, len(self.driver.accepted_cycles))
                break
        if failure is not None:
            send.cancel()
            raise AssertionError(f"{failure}\n  idle {self.idle}, backpressure {self.backpressure} "
                                 f"{seed_note(seed)}")
        return self.driver.accepted_cycles, board.cycles


async def run_stream_test(dut, generator, make_vectors, mode):
    """Play every case of ``make_vectors(cfg)`` through ``dut``, the Verilog of ``generator(cfg)`` for the
    config this cocotb run was started with (:func:`~qarith.sim.common.runner.bench_config`). Each case's
    seed is :func:`~qarith.sim.common.bench.case_seed` of the run (module and simulator), the mode and the
    case's name, and is logged. ``make test`` plays long cases' first beats
    (:func:`~qarith.sim.common.bench.played`), ``make test-full`` every case whole."""
    cfg = bench_config(generator)
    idle, backpressure = MODES[mode]
    tb = TB(dut, interface(generator, cfg), idle, backpressure)
    await tb.reset()
    for case in make_vectors(cfg):
        case = played(case, mode)
        seed = case_seed(bench_run(), mode, case.name)
        dut._log.info("%s: mode %s, %s", case.name, mode, seed_note(seed))
        accepted, delivered = await tb.play(case, seed)
        dut._log.info("%s: %d beats in, %d out, bit-exact, no extra beats in %d drain cycles", case.name,
                      len(case.beats), len(case.expected), tb.drain)
        if mode == "plain" and case.origin is not None:
            # The first output's latency from the last input beat it depends on, as declared.
            measured = delivered[0] - accepted[case.origin[0][-1]]
            # A block with variable-length rows declares the latency of a row of each length.
            row_latency = getattr(tb.component, "row_latency", None)
            declared = tb.component.latency if row_latency is None else row_latency(len(case.origin[0]))
            assert measured == declared, \
                (f"{case.name}: first output {measured} cycles after its last input, declared "
                 f"{declared} {seed_note(seed)}")
            dut._log.info("%s: latency %d cycles, as declared", case.name, measured)
