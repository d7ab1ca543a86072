"""Shared verification machinery: vectors, payload packing, seeds, the scoreboard, the stream-rule
checker and the fast (amaranth.sim) tier.

Every block's bench module (``qarith.sim.<block>``) turns a config into named :class:`Vectors` (stimulus
plus the golden model's expected output) and the code here plays them against the hardware, with
optional random idle cycles on the input and random backpressure on the output, in the style of
verilog-axis's ``idle_inserter`` / ``backpressure_inserter``. Both tiers (this module's
:func:`run_amaranth` and :mod:`qarith.sim.common.cocotb_bench`) use the same three checks:

* :class:`Scoreboard`: the output beats in order, all of them and no more. After the last expected beat
  the output is watched for a drain window (:func:`drain_cycles`) with the input idle; a beat offered in
  it (``valid`` high, whether or not ``ready`` is) is an extra beat. A run that ends short names the beats
  still missing.
* :class:`StreamRules`: Amaranth's stream rules on every stream port (``docs/stdlib/stream.rst``): once
  ``valid`` is high it stays high, with the payload unchanged, until a cycle with ``ready`` high.
* Seeds: every random choice (idle and backpressure cycles) comes from :func:`case_seed`, a hash of the
  run's base seed ``QARITH_SEED`` (default 0; ``random`` draws one per process) and the case's identity
  (test, block, config, case, mode), so each case gets its own stall pattern and every failure message
  ends with the seed and the ``QARITH_SEED`` value that repeats it.
"""

import hashlib
import math
import os
import random
import dataclasses
from dataclasses import dataclass, field

from amaranth.hdl import Shape, Value
from amaranth.lib import data

__all__ = ["Vectors", "vectors_prefix", "played", "full_run", "MODES", "slow_modes", "pack", "unpack", "to_python", "run_amaranth", "StreamResult",
           "mismatch_report", "Scoreboard", "StreamRules", "drain_cycles", "longest_stall", "seed_base",
           "case_seed", "seed_note", "SEED_VARIABLE"]

#: Stream conditions every bench runs under: (input idle probability, output backpressure probability).
MODES = {
    "plain": (0.0, 0.0),
    "idle": (0.3, 0.0),
    "backpressure": (0.0, 0.4),
    "both": (0.3, 0.4),
}

#: The environment variable holding the base seed: an integer (decimal or ``0x`` hex), or ``random``.
SEED_VARIABLE = "QARITH_SEED"
#: A run of stall cycles longer than :func:`longest_stall` has at most this probability.
STALL_TAIL = 1e-6
#: Cycles of the drain window beyond the block's latency (the register between a block's last stage and
#: its port, and one cycle of slack for a block that raises ``valid`` a cycle late).
DRAIN_MARGIN = 2

_random_base = None


def slow_modes():
    """The stream modes the cocotb tier runs: ``QARITH_MODES`` (comma-separated names of :data:`MODES`),
    by default ``plain,both`` (without and with idles and backpressure together, as the fast tier);
    ``QARITH_MODES=plain,idle,backpressure,both`` runs all four."""
    names = tuple(name.strip() for name in os.environ.get("QARITH_MODES", "plain,both").split(",") if name.strip())
    unknown = [name for name in names if name not in MODES]
    if unknown or not names:
        raise ValueError(f"QARITH_MODES must list some of {', '.join(MODES)}, not {os.environ.get('QARITH_MODES')!r}")
    return names


def seed_base():
    """The run's base seed from ``QARITH_SEED``: an integer, 0 when unset; ``random`` draws a fresh one,
    once per process (so every failure of the run names the same value).

    Raises
    ------
    ValueError
        If ``QARITH_SEED`` is neither an integer nor ``random``.
    """
    global _random_base
    text = os.environ.get(SEED_VARIABLE, "").strip()
    if text == "":
        return 0
    if text == "random":
        if _random_base is None:
            _random_base = random.SystemRandom().getrandbits(32)
        return _random_base
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"{SEED_VARIABLE} must be an integer or 'random', not {text!r}") from None


def case_seed(*identity):
    """The seed of one case: a 64-bit hash of :func:`seed_base` and ``identity`` (strings and numbers
    naming the test, block, config, case and mode). The same identity and base give the same seed on
    every machine; different cases get unrelated stall patterns."""
    text = repr((seed_base(), *identity)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def seed_note(seed):
    """The end of every failure message: the case's seed and how to repeat the run."""
    return f"[seed {seed:#018x}; {SEED_VARIABLE}={seed_base()} repeats this run]"


def current_test():
    """The pytest node id of the running test ('' outside pytest), part of a fast-tier case's identity."""
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]


def longest_stall(probability):
    """The longest run of stall cycles (idle or backpressure) a mode with per-cycle ``probability``
    makes, taken as the shortest run whose probability, ``probability ** n``, is at most
    :data:`STALL_TAIL`: 0 for 0, 12 for 0.3, 16 for 0.4."""
    if probability <= 0:
        return 0
    return math.ceil(math.log(STALL_TAIL) / math.log(probability))


def drain_cycles(latency, backpressure):
    """Cycles the output is watched after the last expected beat (and the last input beat), with the
    input idle and ``ready`` following the mode.

    The rule: ``ceil((latency + DRAIN_MARGIN) / (1 - backpressure)) + longest_stall(backpressure)``. A
    beat still inside the block comes out within ``latency`` cycles in which the output moves; under
    backpressure those take ``1 / (1 - backpressure)`` times as long on average, and the longest stall the
    mode makes is added on top. Input idles do not count: the input is idle throughout the drain. With
    ``latency`` 10: 12 cycles plain, 36 under backpressure 0.4.
    """
    return math.ceil((latency + DRAIN_MARGIN) / (1 - backpressure)) + longest_stall(backpressure)


@dataclass
class Vectors:
    """One named test case: input beats, the static port values and the expected output beats.

    ``origin[j]`` lists the input beat indices that produced expected beat ``j`` (for error reports).
    ``timeout``, if set, replaces the default cycle limit of both tiers (for blocks whose beats take many
    cycles each, such as ``lut_gemv``'s table builds). ``exhaustive`` marks a case that plays every input
    of the block (``make test`` cuts it later than other cases: :data:`EXHAUSTIVE_PLAIN_BEATS`).
    """
    name: str
    beats: list
    expected: list
    static: dict = field(default_factory=dict)
    origin: list | None = None
    timeout: int | None = None
    exhaustive: bool = False


def vectors_prefix(vectors, max_beats):
    """The leading part of a :class:`Vectors` case: the expected beats whose inputs
    (``origin``) all lie in the first ``max_beats`` input beats, and the input beats they need."""
    if vectors.origin is None:
        raise ValueError(f"Case {vectors.name!r} has no origin, so it cannot be cut")
    keep = 0
    while keep < len(vectors.expected) and max(vectors.origin[keep]) < max_beats:
        keep += 1
    needed = max((max(o) for o in vectors.origin[:keep]), default=-1) + 1
    return dataclasses.replace(vectors, beats=vectors.beats[:needed], expected=vectors.expected[:keep],
                               origin=vectors.origin[:keep])


#: Input beats of a case that ``make test`` plays under stalls (``STRESS_BEATS``) and without
#: (``PLAIN_BEATS``), in both tiers; ``make test-full`` (``QARITH_FULL=1``) plays every case whole.
STRESS_BEATS = 512
PLAIN_BEATS = 2048
#: Plain-mode beats of an exhaustive case in ``make test``: every input of a 12-bit unary block or of an
#: 8-bit pair block at 16 lanes is played whole.
EXHAUSTIVE_PLAIN_BEATS = 4096


def full_run():
    """Whether this is ``make test-full`` (``QARITH_FULL=1``): every case played whole."""
    return os.environ.get("QARITH_FULL") == "1"


def played(case, mode):
    """``case`` as ``make test`` plays it in ``mode``: its first :data:`STRESS_BEATS` (stall modes) or
    :data:`PLAIN_BEATS` (``plain``; :data:`EXHAUSTIVE_PLAIN_BEATS` for an exhaustive case) input beats when
    it is longer and can be cut (its expected beats name
    their inputs), else whole; always whole under ``make test-full``."""
    limit = STRESS_BEATS if mode != "plain" else EXHAUSTIVE_PLAIN_BEATS if case.exhaustive else PLAIN_BEATS
    if full_run() or case.origin is None or len(case.beats) <= limit:
        return case
    return vectors_prefix(case, limit)


@dataclass
class StreamResult:
    outputs: list
    in_cycles: list
    out_cycles: list
    seed: int = 0


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
    """One-paragraph description of the first mismatch, with the inputs that produced it. When the beat
    is the next expected one (a beat lost) or the previous one again (a beat repeated), the first line
    says so."""
    expected = vectors.expected
    if index + 1 < len(expected) and got == expected[index + 1]:
        headline = f"output beat {index} is missing (beat {index + 1} came in its place)"
    elif index > 0 and got == expected[index - 1]:
        headline = f"output beat {index} is a duplicate of beat {index - 1}"
    else:
        headline = f"output beat {index} differs from the golden model"
    lines = [f"{vectors.name}: {headline}", f"  expected: {expected[index]}", f"  got:      {got}"]
    if vectors.origin is not None:
        for beat in vectors.origin[index]:
            lines.append(f"  input beat {beat}: {vectors.beats[beat]}")
    if vectors.static:
        lines.append(f"  static ports: {vectors.static}")
    return "\n".join(lines)


class Scoreboard:
    """The in-order scoreboard of one case, shared by both tiers.

    The tier calls :meth:`deliver` for every beat the output transfers and :meth:`offer` for every cycle
    in which ``valid`` is high once the case is :attr:`complete`; the first problem is kept in
    :attr:`failure` (a message) and the tier stops there. The count is checked both ways: a beat beyond
    the expected ones, or one merely offered after them, is an extra beat; :meth:`missing` describes a run
    that ended short.
    """

    __slots__ = ("vectors", "outputs", "cycles", "failure")

    def __init__(self, vectors):
        self.vectors = vectors
        self.outputs, self.cycles = [], []
        self.failure = None

    @property
    def complete(self):
        return len(self.outputs) >= len(self.vectors.expected)

    def deliver(self, cycle, beat):
        index = len(self.outputs)
        self.outputs.append(beat)
        self.cycles.append(cycle)
        if self.failure is not None:
            return
        expected = self.vectors.expected
        if index >= len(expected):
            self.failure = self._extra(cycle, beat, "an extra output beat")
        elif beat != expected[index]:
            self.failure = mismatch_report(self.vectors, index, beat)

    def offer(self, cycle, beat):
        """``valid`` is high at ``cycle`` after every expected beat was delivered."""
        if self.failure is None:
            self.failure = self._extra(cycle, beat, "an extra output beat (offered)")

    def _extra(self, cycle, beat, what):
        count = len(self.vectors.expected)
        gap = cycle - self.cycles[count - 1] if count else 0
        last = f", {gap} cycle{'' if gap == 1 else 's'} after the last expected one" if count else ""
        return (f"{self.vectors.name}: {what} at cycle {cycle}{last}: expected {count} output beats, "
                f"no more\n  extra:    {beat}")

    def missing(self, cycle, accepted):
        """The failure of a run that stopped at ``cycle`` with ``accepted`` input beats taken."""
        expected, got = len(self.vectors.expected), len(self.outputs)
        lines = [f"{self.vectors.name}: timed out at cycle {cycle}: expected {expected} output beats, got {got}"]
        if got < expected:
            span = f"beat {got}" if got == expected - 1 else f"beats {got}..{expected - 1}"
            lines.append(f"  missing {span}; the first of them: {self.vectors.expected[got]}")
        if accepted < len(self.vectors.beats):
            lines.append(f"  the input took {accepted} of {len(self.vectors.beats)} beats; "
                         f"input beat {accepted} was never accepted")
        return "\n".join(lines)


class StreamRules:
    """Amaranth's stream rules on one port, fed one cycle at a time by a tier.

    Once ``valid`` is high in a cycle without ``ready``, the next cycle must have ``valid`` high and the
    same payload. :meth:`check` returns ``None`` or the violation, naming the port and the cycle.
    ``payload`` may be any value that compares equal for equal payloads (the raw bits, or a beat index
    for a port the bench drives itself); ``describe`` turns it into text for the message.

    Parameters
    ----------
    port : str
        The port's name in messages (``"i"``, ``"o"``).
    describe : callable
        Turns a payload value into text, called only for a violation.
    """

    __slots__ = ("port", "describe", "stalled", "held")

    def __init__(self, port, describe=str):
        self.port, self.describe = port, describe
        self.stalled, self.held = False, None

    def check(self, cycle, valid, ready, payload):
        violation = None
        if self.stalled:
            if not valid:
                violation = (f"stream rule broken on port {self.port} at cycle {cycle}: valid fell before ready "
                             f"(the beat offered was {self.describe(self.held)})")
            elif payload != self.held:
                violation = (f"stream rule broken on port {self.port} at cycle {cycle}: payload changed while "
                             f"valid was high and ready low\n  held:     {self.describe(self.held)}\n"
                             f"  now:      {self.describe(payload)}")
        self.stalled = bool(valid) and not ready
        self.held = payload
        return violation


def run_amaranth(dut, vectors, idle=0.0, backpressure=0.0, seed=None, timeout=None):
    """Play ``vectors`` through ``dut`` (a stream component) in ``amaranth.sim`` and check the run.

    The scoreboard (:class:`Scoreboard`) compares the output beats as they arrive, then watches the
    output for :func:`drain_cycles` cycles after the last expected beat; :class:`StreamRules` watches both
    stream ports every cycle. The first problem raises ``AssertionError`` with the case's seed.

    Parameters
    ----------
    idle, backpressure : float
        Probability of an idle input cycle before a beat, and of ``o.ready`` low in a cycle.
    seed : int or None
        Mixed into the case's identity (with the pytest test, the block, the case's name and the mode)
        to give :func:`case_seed`; pass distinct values to give repeated runs of one case distinct
        patterns. ``QARITH_SEED`` changes every seed.
    timeout : int or None
        Cycles before a run that has not finished fails (default ``200 + 8 * (in + out beats)``).

    Returns a :class:`StreamResult`.
    """
    from amaranth.sim import Simulator

    run_seed = case_seed(current_test(), type(dut).__qualname__, vectors.name, idle, backpressure, seed)
    rng = random.Random(run_seed)
    if timeout is None:
        timeout = vectors.timeout or 200 + 8 * (len(vectors.beats) + len(vectors.expected))
    drain = drain_cycles(dut.latency, backpressure)
    layout = dut.i.payload.shape()
    out_shape = dut.o.payload.shape()
    # Payloads are read as raw bits (cheap to compare every cycle) and decoded only when transferred.
    out_bits = Value.cast(dut.o.payload).as_unsigned()
    board = Scoreboard(vectors)
    input_rules = StreamRules("i", lambda index: f"input beat {index}: {vectors.beats[index]}")
    output_rules = StreamRules("o", lambda bits: str(unpack(out_shape, bits)))
    result = StreamResult(board.outputs, [], board.cycles, run_seed)
    failures = []

    async def testbench(ctx):
        for name, value in vectors.static.items():
            port = getattr(dut, name)
            shape = port.shape()
            ctx.set(port, shape.const(value) if isinstance(shape, data.Layout) else value)
        beats = vectors.beats
        next_beat, holding, cycle, drain_left = 0, False, 0, drain
        while board.failure is None and not failures:
            if board.complete and next_beat == len(beats):
                if drain_left == 0:
                    return
                drain_left -= 1
            elif cycle >= timeout:
                failures.append(board.missing(cycle, next_beat))
                return
            if not holding:
                holding = next_beat < len(beats) and rng.random() >= idle
                ctx.set(dut.i.valid, holding)
                if holding:
                    beat = beats[next_beat]
                    ctx.set(dut.i.payload, layout.const(beat) if isinstance(layout, data.Layout) else beat)
            ready = rng.random() >= backpressure
            ctx.set(dut.o.ready, ready)
            _, _, in_ready, out_valid, payload = await ctx.tick().sample(dut.i.ready, dut.o.valid, out_bits)
            for violation in (input_rules.check(cycle, holding, in_ready, next_beat),
                              output_rules.check(cycle, out_valid, ready, payload)):
                if violation is not None:
                    failures.append(violation)
            if holding and in_ready:
                result.in_cycles.append(cycle)
                next_beat += 1
                holding = False
            if out_valid:
                if ready:
                    board.deliver(cycle, unpack(out_shape, payload))
                elif board.complete:
                    board.offer(cycle, unpack(out_shape, payload))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    failure = failures[0] if failures else board.failure
    if failure is not None:
        raise AssertionError(f"{failure}\n  {type(dut).__name__}, idle {idle}, backpressure {backpressure} "
                             f"{seed_note(run_seed)}")
    return result
