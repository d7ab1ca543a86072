"""The verification machinery itself: a wrong expectation must be caught and reported."""

import copy

import pytest

from qarith.registry import BLOCKS
from qarith.sim.common.bench import run_amaranth
from qarith.sim.mac_array import vectors


def test_scoreboard_reports_first_mismatch_with_inputs():
    block = BLOCKS["mac_array"]
    cfg = block.configs["int8_2x3_u8s8"]
    case = copy.deepcopy(vectors(cfg)[0])
    case.expected[3]["acc"][1] += 1
    with pytest.raises(AssertionError, match=r"random_depths: output beat 3 differs") as info:
        run_amaranth(block.elaborate(cfg), case)
    assert "input beat" in str(info.value)


def test_missing_outputs_are_reported():
    block = BLOCKS["requant"]
    cfg = block.configs["int8"]
    from qarith.sim.requant import vectors as requant_vectors
    case = copy.deepcopy(requant_vectors(cfg)[0])
    case.expected.append(case.expected[-1])
    with pytest.raises(AssertionError, match=r"expected 257 output beats, got 256"):
        run_amaranth(block.elaborate(cfg), case, timeout=400)


def test_slow_modes(monkeypatch):
    from qarith.sim.common.bench import slow_modes
    monkeypatch.delenv("QARITH_MODES", raising=False)
    assert slow_modes() == ("plain", "both")
    monkeypatch.setenv("QARITH_MODES", "plain, idle,backpressure,both")
    assert slow_modes() == ("plain", "idle", "backpressure", "both")
    monkeypatch.setenv("QARITH_MODES", "plain,stall")
    with pytest.raises(ValueError, match=r"^QARITH_MODES must list some of plain, idle, backpressure, both, "
                                         r"not 'plain,stall'$"):
        slow_modes()


@pytest.mark.cocotb
def test_cocotb_all_four_modes(monkeypatch):
    """The slow tier runs plain and both; one small block runs idles alone and backpressure alone too."""
    from xml.etree import ElementTree

    from qarith.sim.common.runner import run_cocotb
    monkeypatch.setenv("QARITH_MODES", "plain,idle,backpressure,both")
    block = BLOCKS["lut_unary"]
    results = run_cocotb(block.generator, block.bench, block.configs["gelu_s8"], "icarus", "lut_unary__all_modes")
    names = [case.get("name") for case in ElementTree.parse(results).iter("testcase")]
    assert len(names) == 4 and all("stream" in name for name in names)


def test_build_lock_is_one_holder_at_a_time(tmp_path):
    """Two holders of one build folder (two xdist workers in make test) take turns: the second waits
    until the first lets go."""
    import threading

    from qarith.sim.common.runner import build_lock
    entered = threading.Event()

    def second():
        with build_lock(tmp_path / "top"):
            entered.set()

    with build_lock(tmp_path / "top"):
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.3)
    assert entered.wait(10)
    thread.join()
