"""Shared verification machinery: vectors, payload packing, the fast (amaranth.sim) tier and the slow
(cocotb) tier's stream driver, monitor and scoreboard.

Every block's bench module (``qarith.sim.<block>``) turns a config into named :class:`Vectors` (stimulus
plus the golden model's expected output) and the code here plays them against the hardware, with
optional random idle cycles on the input and random backpressure on the output, in the style of
verilog-axis's ``idle_inserter`` / ``backpressure_inserter``.
"""

import os
import random
from dataclasses import dataclass, field

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["Vectors", "MODES", "slow_modes", "pack", "to_python", "run_amaranth", "StreamResult", "mismatch_report"]

#: Stream conditions every bench runs under: (input idle probability, output backpressure probability).
MODES = {
    "plain": (0.0, 0.0),
    "idle": (0.3, 0.0),
    "backpressure": (0.0, 0.4),
    "both": (0.3, 0.4),
}




def slow_modes():
    """The stream modes the cocotb tier runs: ``QARITH_MODES`` (comma-separated names of :data:`MODES`),
    by default ``plain,both`` (without and with idles and backpressure together, as the fast tier);
    ``QARITH_MODES=plain,idle,backpressure,both`` runs all four."""
    names = tuple(name.strip() for name in os.environ.get("QARITH_MODES", "plain,both").split(",") if name.strip())
    unknown = [name for name in names if name not in MODES]
    if unknown or not names:
        raise ValueError(f"QARITH_MODES must list some of {', '.join(MODES)}, not {os.environ.get('QARITH_MODES')!r}")
    return names


@dataclass
class Vectors:
    """One named test case: input beats, the static port values and the expected output beats.

    ``origin[j]`` lists the input beat indices that produced expected beat ``j`` (for error reports).
    """
    name: str
    beats: list
    expected: list
    static: dict = field(default_factory=dict)
    origin: list | None = None


@dataclass
class StreamResult:
    outputs: list
    in_cycles: list
    out_cycles: list


def pack(shape, value):
    """Bits of a Python value (int, list or dict) for a port or payload of ``shape``."""
    if isinstance(shape, data.Layout):
        return shape.const(value).as_bits()
    shape = Shape.cast(shape)
    return value & ((1 << shape.width) - 1)


def to_python(value):
    """A simulator payload value (``data.Const`` or int) as nested lists, dicts and ints."""
    if isinstance(value, data.Const):
        layout = value.shape()
        if isinstance(layout, data.ArrayLayout):
            return [to_python(value[index]) for index in range(layout.length)]
        return {name: to_python(value[name]) for name, _ in layout}
    return int(value)


def unpack(shape, bits):
    """Inverse of :func:`pack` for an integer read from a simulator."""
    if isinstance(shape, data.Layout):
        return to_python(shape.from_bits(bits))
    shape = Shape.cast(shape)
    if shape.signed and bits >> (shape.width - 1):
        return bits - (1 << shape.width)
    return bits


def mismatch_report(vectors, index, got):
    """One-paragraph description of the first mismatch, with the inputs that produced it."""
    lines = [f"{vectors.name}: output beat {index} differs from the golden model",
             f"  expected: {vectors.expected[index]}", f"  got:      {got}"]
    if vectors.origin is not None:
        for beat in vectors.origin[index]:
            lines.append(f"  input beat {beat}: {vectors.beats[beat]}")
    if vectors.static:
        lines.append(f"  static ports: {vectors.static}")
    return "\n".join(lines)


def check_outputs(vectors, outputs):
    """Scoreboard: in-order comparison; raises AssertionError naming the first mismatch."""
    for index, (want, got) in enumerate(zip(vectors.expected, outputs)):
        if want != got:
            raise AssertionError(mismatch_report(vectors, index, got))
    if len(outputs) != len(vectors.expected):
        raise AssertionError(f"{vectors.name}: expected {len(vectors.expected)} output beats, "
                             f"got {len(outputs)}")


def run_amaranth(dut, vectors, idle=0.0, backpressure=0.0, seed=0, timeout=None):
    """Play ``vectors`` through ``dut`` (a stream component) in ``amaranth.sim``; returns a
    :class:`StreamResult` and checks it with the scoreboard."""
    from amaranth.sim import Simulator

    rng = random.Random(seed)
    if timeout is None:
        timeout = 200 + 8 * (len(vectors.beats) + len(vectors.expected))
    result = StreamResult([], [], [])

    async def testbench(ctx):
        for name, value in vectors.static.items():
            port = getattr(dut, name)
            shape = port.shape()
            ctx.set(port, shape.const(value) if isinstance(shape, data.Layout) else value)
        layout = dut.i.payload.shape()
        next_beat, holding, cycle = 0, False, 0
        while len(result.outputs) < len(vectors.expected) and cycle < timeout:
            if not holding:
                holding = next_beat < len(vectors.beats) and rng.random() >= idle
            ctx.set(dut.i.valid, holding)
            if holding:
                beat = vectors.beats[next_beat]
                ctx.set(dut.i.payload, layout.const(beat) if isinstance(layout, data.Layout) else beat)
            ready = rng.random() >= backpressure
            ctx.set(dut.o.ready, ready)
            _, _, in_ready, out_valid, payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload)
            if holding and in_ready:
                result.in_cycles.append(cycle)
                next_beat += 1
                holding = False
            if out_valid and ready:
                result.out_cycles.append(cycle)
                result.outputs.append(to_python(payload))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    check_outputs(vectors, result.outputs)
    return result
