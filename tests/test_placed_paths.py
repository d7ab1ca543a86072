"""fpga/placed_paths.py on a hand-made placed netlist: the path sums, the carry chain, the ranking."""
import pytest

from qarith.fpga.placed_paths import fanouts, longest_paths, wire_estimate


def cell(kind, bel, ports):
    return {"type": kind, "attributes": {"NEXTPNR_BEL": bel}, "parameters": {},
            "port_directions": {p: d for p, (d, _) in ports.items()},
            "connections": {p: bits for p, (_, bits) in ports.items()}}


def test_wire_estimate_is_nextpnrs_ecp5_formula():
    assert wire_estimate((3, 4), (3, 4)) == pytest.approx(0.72)
    assert wire_estimate((0, 0), (2, 1)) == pytest.approx(0.120 * (6 + 2 * 3))
    assert wire_estimate((0, 0), (40, 20)) == pytest.approx(0.120 * (6 + 35 + 15 + 20))


def test_path_through_logic_and_a_carry_chain():
    # ff_a (X0/Y0) -> lut (X10/Y0) -> carry0 -FCO/FCI-> carry1 (X10/Y0) -> ff_b (X10/Y0); ff_a -> ff_c.
    netlist = {"modules": {"top": {"attributes": {"top": 1}, "netnames": {
        "a": {"bits": [2]}, "l": {"bits": [3]}, "c": {"bits": [4]}, "s": {"bits": [5]}}, "cells": {
        "ff_a": cell("TRELLIS_FF", "X0/Y0/SLICEA.FF0", {"Q": ("output", [2])}),
        "lut": cell("TRELLIS_COMB", "X10/Y0/SLICEA.COMB0", {"A": ("input", [2]), "F": ("output", [3])}),
        "carry0": cell("TRELLIS_COMB", "X10/Y0/SLICEB.COMB0", {"A": ("input", [3]), "FCO": ("output", [4])}),
        "carry1": cell("TRELLIS_COMB", "X10/Y0/SLICEB.COMB1", {"FCI": ("input", [4]), "F": ("output", [5])}),
        "ff_b": cell("TRELLIS_FF", "X10/Y0/SLICEB.FF0", {"DI": ("input", [5])}),
        "ff_c": cell("TRELLIS_FF", "X1/Y0/SLICEA.FF1", {"DI": ("input", [2])}),
    }}}}
    ends = longest_paths(netlist)
    assert [(name, port) for _, name, port, _ in ends] == [("ff_b", "DI"), ("ff_c", "DI")]
    far = wire_estimate((0, 0), (10, 0))
    # clock-to-out, the wire to X10, the LUT, one tile, the carry's input to FCO, no wire on FCI, the
    # carry's sum, one tile to the flip-flop, its setup.
    assert ends[0][0] == pytest.approx(0.45 + far + 0.45 + 0.25 + 0.3 + 0.0 + 0.45 + 0.25 + 0.1)
    assert ends[1][0] == pytest.approx(0.45 + wire_estimate((0, 0), (1, 0)) + 0.1)
    assert [net for net, *_ in ends[0][3]] == ["a", "l", "c", "s"]


def test_fanouts_count_loads_but_not_the_clock_or_constants():
    netlist = {"modules": {"top": {"attributes": {"top": 1}, "netnames": {
        "clk": {"bits": [1]}, "a": {"bits": [2]}, "$PACKER_GND_NET": {"bits": [3]}}, "cells": {
        "ff_a": cell("TRELLIS_FF", "", {"CLK": ("input", [1]), "Q": ("output", [2])}),
        "ff_b": cell("TRELLIS_FF", "", {"CLK": ("input", [1]), "DI": ("input", [2]), "LSR": ("input", [3])}),
        "ff_c": cell("TRELLIS_FF", "", {"CLK": ("input", [1]), "DI": ("input", [2]), "CE": ("input", [2])}),
    }}}}
    assert fanouts(netlist) == [(3, "a")]
