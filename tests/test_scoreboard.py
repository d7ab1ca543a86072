"""The scoreboard, the stream-rule checks and the seeds of both tiers, proved on faulty shells.

Each shell of :mod:`qarith.sim.common.mutants` wraps the real ``requant`` block (config ``int8_x4``) and
breaks its output stream in one way; both tiers must reject each of them with the message of that kind of
fault, in the modes where the fault shows (two of them need backpressure, and pass without it).
"""

import copy
import re
from xml.etree import ElementTree

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring

from qarith.hdl.requant import Requant
from qarith.registry import BLOCKS
from qarith.sim import requant as requant_bench
from qarith.sim.common import bench, runner
from qarith.sim.common.bench import (
    MODES,
    StreamRules,
    Vectors,
    case_seed,
    drain_cycles,
    longest_stall,
    run_amaranth,
    seed_base,
)
from qarith.sim.common.mutants import MutantShell, shell
from tiers import FULL

CFG = BLOCKS["requant"].configs["int8_x4"]
CASES = requant_bench.vectors(CFG)
FIRST = CASES[0]

#: Per mutant: shell parameters and the failure expected in each slow-tier mode (None: the run passes).
MISSING = r"realistic: output beat 3 is missing \(beat 4 came in its place\)"
DUPLICATE = r"realistic: output beat \d+ is a duplicate of beat \d+"
EXTRA = r"realistic: an extra output beat( \(offered\))? at cycle \d+, 1 cycle after the last expected one"
UNSTABLE = r"stream rule broken on port o at cycle \d+: payload changed while valid was high and ready low"
FLIP = r"realistic: output beat 2 differs from the golden model"
MUTANTS = {
    "drop": ({}, {"plain": MISSING, "both": MISSING}),
    "duplicate": ({}, {"plain": None, "both": DUPLICATE}),
    "extra": ({"after": len(FIRST.expected)}, {"plain": EXTRA, "both": EXTRA}),
    "unstable": ({}, {"plain": None, "both": UNSTABLE}),
    "flip": ({}, {"plain": FLIP, "both": FLIP}),
}
SEED_NOTE = r"\[seed 0x[0-9a-f]{16}; QARITH_SEED=\d+ repeats this run\]"


def mutant(kind):
    params, _ = MUTANTS[kind]
    return shell(kind, Requant, **params)


class TestFastTier:
    @pytest.mark.parametrize("mode", ["plain", "both"])
    @pytest.mark.parametrize("kind", MUTANTS)
    def test_mutant(self, kind, mode):
        message = MUTANTS[kind][1][mode]
        if message is None:
            run_amaranth(mutant(kind)(CFG), FIRST, *MODES[mode])
            return
        with pytest.raises(AssertionError, match=message) as info:
            run_amaranth(mutant(kind)(CFG), FIRST, *MODES[mode])
        assert re.search(SEED_NOTE, str(info.value))

    @pytest.mark.parametrize("mode", ["plain", "both"])
    def test_one_expected_beat_removed(self, mode):
        """The issue's example: the real block, one beat fewer expected than it makes."""
        case = copy.deepcopy(FIRST)
        del case.expected[-1], case.origin[-1]
        with pytest.raises(AssertionError, match=r"realistic: an extra output beat( \(offered\))? at cycle \d+"
                                                 r", \d+ cycles? after the last expected one: expected 63 output "
                                                 r"beats, no more\n  extra:    \[") as info:
            run_amaranth(Requant(CFG), case, *MODES[mode])
        assert f"extra:    {FIRST.expected[-1]}" in str(info.value)

    def test_missing_beats_are_named(self):
        case = copy.deepcopy(FIRST)
        case.expected += [case.expected[0], case.expected[1]]
        with pytest.raises(AssertionError, match=r"realistic: timed out at cycle 1240: expected 66 output beats, "
                                                 r"got 64\n  missing beats 64\.\.65; the first of them: "):
            run_amaranth(Requant(CFG), case)


    def test_input_never_accepted_is_named(self):
        """A block that stops taking input: the timeout names the input beat it never took."""
        class StopsAfterTen(MutantShell):
            block, config_class = Requant, Requant.config_class

            def elaborate(self, platform):
                m = Module()
                m.submodules.block = block = Requant(self.cfg)
                for name in ("output_offset", "act_min", "act_max"):
                    m.d.comb += getattr(block, name).eq(getattr(self, name))
                count = Signal(range(11))
                with m.If(self.i.valid & self.i.ready):
                    m.d.sync += count.eq(count + 1)
                m.d.comb += [block.i.valid.eq(self.i.valid & (count != 10)), block.i.payload.eq(self.i.payload),
                             self.i.ready.eq(block.i.ready & (count != 10))]
                wiring.connect(m, block.o, wiring.flipped(self.o))
                return m

        with pytest.raises(AssertionError, match=r"realistic: timed out at cycle 1224: expected 64 output beats, "
                                                 r"got 10\n  missing beats 10\.\.63; the first of them: .*\n  the "
                                                 r"input took 10 of 64 beats; input beat 10 was never accepted\n"):
            run_amaranth(StopsAfterTen(CFG), FIRST)


class TestStreamRules:
    def test_valid_held_until_ready(self):
        rules = StreamRules("o")
        assert rules.check(0, True, False, 5) is None
        assert rules.check(1, True, False, 5) is None
        assert rules.check(2, True, True, 5) is None
        assert rules.check(3, False, False, None) is None
        assert rules.check(4, True, False, 6) is None
        assert rules.check(5, False, True, None) == ("stream rule broken on port o at cycle 5: valid fell before "
                                                     "ready (the beat offered was 6)")

    def test_payload_stable_until_ready(self):
        rules = StreamRules("i", lambda bits: f"{bits:#x}")
        assert rules.check(7, True, False, 0x12) is None
        assert rules.check(8, True, True, 0x13) == ("stream rule broken on port i at cycle 8: payload changed "
                                                    "while valid was high and ready low\n  held:     0x12\n"
                                                    "  now:      0x13")

    def test_payload_may_change_after_transfer(self):
        rules = StreamRules("o")
        assert [rules.check(n, True, True, n) for n in range(4)] == [None] * 4


class TestDrain:
    def test_longest_stall(self):
        assert [longest_stall(p) for p in (0.0, 0.3, 0.4)] == [0, 12, 16]

    def test_window(self):
        assert drain_cycles(10, 0.0) == 12
        assert drain_cycles(10, 0.4) == 20 + 16
        assert drain_cycles(1, 0.4) == 5 + 16


class TestSeeds:
    def test_default_is_fixed_and_per_case(self, monkeypatch):
        monkeypatch.delenv("QARITH_SEED", raising=False)
        assert seed_base() == 0
        assert case_seed("requant", "realistic", "both") == case_seed("requant", "realistic", "both")
        seeds = {case_seed("requant", case.name, mode) for case in CASES for mode in MODES}
        assert len(seeds) == len(CASES) * len(MODES)

    def test_qarith_seed_changes_every_seed(self, monkeypatch):
        monkeypatch.setenv("QARITH_SEED", "0")
        zero = case_seed("requant", "realistic", "both")
        monkeypatch.setenv("QARITH_SEED", "0x2a")
        assert seed_base() == 42 and case_seed("requant", "realistic", "both") != zero

    def test_random_draws_once_per_process(self, monkeypatch):
        monkeypatch.setattr(bench, "_random_base", None)
        monkeypatch.setenv("QARITH_SEED", "random")
        first = seed_base()
        assert seed_base() == first
        draws = set()
        for _ in range(4):
            monkeypatch.setattr(bench, "_random_base", None)
            draws.add(seed_base())
        assert len(draws) > 1

    def test_bad_value(self, monkeypatch):
        monkeypatch.setenv("QARITH_SEED", "often")
        with pytest.raises(ValueError, match=r"^QARITH_SEED must be an integer or 'random', not 'often'$"):
            seed_base()

    def test_same_seed_same_stalls(self, monkeypatch):
        """A run repeats exactly under the same QARITH_SEED, and moves under another."""
        case = Vectors("short", FIRST.beats[:16], FIRST.expected[:16], FIRST.static, FIRST.origin[:16])
        monkeypatch.setenv("QARITH_SEED", "7")
        first = run_amaranth(Requant(CFG), case, *MODES["both"])
        again = run_amaranth(Requant(CFG), case, *MODES["both"])
        assert (first.seed, first.in_cycles, first.out_cycles) == (again.seed, again.in_cycles, again.out_cycles)
        monkeypatch.setenv("QARITH_SEED", "8")
        other = run_amaranth(Requant(CFG), case, *MODES["both"])
        assert other.seed != first.seed and (other.in_cycles, other.out_cycles) != (first.in_cycles, first.out_cycles)

    def test_cases_get_their_own_stalls(self):
        one, two = (Vectors(name, FIRST.beats[:16], FIRST.expected[:16], FIRST.static) for name in ("a", "b"))
        first, second = (run_amaranth(Requant(CFG), case, *MODES["both"]) for case in (one, two))
        assert first.seed != second.seed and first.in_cycles != second.in_cycles


#: The slow-tier mutants of ``make test`` (a missing beat, and a payload that changes under a stall); the
#: fast tier checks every mutant, ``make test-full`` every one on both simulators.
SLOW_MUTANTS = ("drop", "unstable")


def slow_params():
    simulators = runner.SIMULATORS if FULL else ("icarus",)
    return [pytest.param(kind, sim, marks=pytest.mark.cocotb, id=f"{kind}-{sim}") for kind in MUTANTS
            if FULL or kind in SLOW_MUTANTS for sim in simulators]


@pytest.mark.parametrize("kind, simulator", slow_params())
def test_slow_tier_mutant(kind, simulator, monkeypatch):
    """The requant bench module on the shell's Verilog: the cocotb test of each mode fails (or passes) as
    expected, with the expected message in cocotb's results."""
    monkeypatch.setenv("QARITH_MODES", "plain,both")
    top = f"mutant_{kind}__requant_int8_x4"
    expected = MUTANTS[kind][1]
    with pytest.raises(AssertionError, match=rf"^{top} on {simulator}: {sum(m is not None for m in expected.values())}"
                                             rf" of 2 cocotb tests failed \(log: .*; QARITH_SEED=\d+ repeats the run\)\nfirst failure: "):
        runner.run_cocotb(mutant(kind), requant_bench, CFG, simulator, top)
    results = runner.BUILD.resolve() / "sim" / top / simulator / "results.xml"
    outcomes = {}
    for case in ElementTree.parse(results).iter("testcase"):
        failure = case.find("failure")
        outcomes[case.get("name").removeprefix("stream/mode=")] = None if failure is None else failure.get("message")
    assert outcomes.keys() == expected.keys()
    for mode, message in expected.items():
        if message is None:
            assert outcomes[mode] is None, outcomes[mode]
        else:
            assert outcomes[mode] is not None and re.search(message, outcomes[mode]), outcomes[mode]
            assert re.search(SEED_NOTE, outcomes[mode])
