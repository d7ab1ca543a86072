"""The report flow end to end on a small array (Yosys + nextpnr, about a minute)."""

import json

import pytest

from qarith.fpga.report import DEVICES, _markdown, implement
from qarith.registry import BLOCKS


@pytest.mark.synthesis
@pytest.mark.parametrize("device", list(DEVICES))
def test_place_and_route_small_array(tmp_path, device):
    record = implement(BLOCKS["mac_array"], "int8_2x3_u8s8", DEVICES[device], seeds=1, workdir=tmp_path)
    assert record.status == "ok", record.note
    assert record.fmax_mhz > 10
    dsp = {"ice40-up5k": "ICESTORM_DSP", "ecp5-85f": "MULT18X18D"}[device]
    assert record.utilisation[dsp]["used"] == 6          # every product in a DSP block
    if device == "ice40-up5k":
        assert record.io == "pin wrapper"
        assert record.wrapper_cells["ff"] >= 2 * 8 + 3 * 8  # the ring covers every input bit
        assert record.wrapper_cells["dsp"] == 0
    else:
        assert record.io == "out-of-context" and record.wrapper_cells is None
    report = {"command": "test", "tools": {}, "seeds": 1, "records": [json.loads(json.dumps(record.__dict__))]}
    assert f"| mac_array | int8_2x3_u8s8 | {device} | ok |" in _markdown(report)


@pytest.mark.synthesis
def test_static_placer_reaches_nextpnr(tmp_path):
    record = implement(BLOCKS["mac_array"], "int8_2x3_u8s8", DEVICES["ecp5-85f"], seeds=1, workdir=tmp_path,
                       placer="static")
    assert record.status == "ok", record.note
    assert record.utilisation["MULT18X18D"]["used"] == 6
    command = (tmp_path / "mac_array__int8_2x3_u8s8" / "ecp5-85f" / "nextpnr_seed1.cmd").read_text()
    assert "--placer static" in command
    log = (tmp_path / "mac_array__int8_2x3_u8s8" / "ecp5-85f" / "nextpnr_seed1.log").read_text()
    assert "Running Static placer" in log and "Running main analytical placer" not in log


def test_multiply_driven_nets_are_found():
    """The check that sends a design to the classic-ABC flow: a net with two driving cell outputs (as Yosys
    0.70's default ECP5 flow produced for wino_output f2_i16), not a net with one driver and two loads."""
    from qarith.fpga.report import multiply_driven_nets
    ff = {"type": "TRELLIS_FF", "port_directions": {"DI": "input", "Q": "output"}}
    netlist = {"modules": {"top": {
        "cells": {"a": {**ff, "connections": {"DI": [2], "Q": [5]}},
                  "b": {**ff, "connections": {"DI": [3], "Q": [5]}},
                  "c": {**ff, "connections": {"DI": [5], "Q": [6]}}},
        "netnames": {"o": {"bits": [5, 6]}, "d": {"bits": [2, 3]}}}}}
    assert multiply_driven_nets(netlist, "top") == ["o[0]"]
    netlist["modules"]["top"]["cells"]["b"]["connections"]["Q"] = [7]
    assert multiply_driven_nets(netlist, "top") == []
