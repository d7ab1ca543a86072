"""Rank a placed ECP5 netlist's longest register-to-register paths, before routing.

nextpnr prints a design's estimated Fmax after placement but writes no critical path until the design is
routed, and a large design (the encoder layer's target) may not route in hours. This module reads the
netlist nextpnr writes with ``--no-route --write placed.json`` and walks every path from a flip-flop,
block RAM or DSP to the next, with:

* between cells, nextpnr's own pre-routing estimate (``Arch::estimateDelay`` of its ECP5 architecture at
  speed grade 6: 120 ps x (6 + max(dx - 5, 0) + max(dy - 5, 0) + 2 (min(dx, 5) + min(dy, 5))) over the
  two BELs' tile distance), zero along a carry chain and 0.25 ns inside one tile;
* through cells, round figures: 0.45 ns per logic cell, 0.06 ns per carry step, 5.85 ns clock-to-output
  of a DP16KD without its output register, 2 ns of a MULT18X18D, 0.45 ns of a flip-flop.

The figures are coarse (fanout and the real routing are not modelled, so the worst path comes out longer
than nextpnr's estimate), so the output is a ranking, not an Fmax: which endpoints and which nets (with
their fanout and wire estimate) sit on the longest paths.

``.venv/bin/python -m qarith.fpga.placed_paths placed.json [N]`` prints the N worst endpoint groups
(default 20); ``-v`` adds each path's nets. ``--fanout`` instead lists the N nets with the most loads,
of a placed or a synthesized netlist (``synth.json``).
"""

import collections
import json
import re
import sys

__all__ = ["wire_estimate", "longest_paths", "fanouts"]

#: Cell types whose outputs start and whose inputs end a path.
SEQUENTIAL = {"TRELLIS_FF", "DP16KD", "MULT18X18D", "ALU54B", "TRELLIS_IO"}
CONSTANT_NETS = ("$PACKER_GND_NET", "$PACKER_VCC_NET")


def wire_estimate(a, b):
    """nextpnr's ECP5 pre-routing delay estimate (ns, speed 6) between tiles ``a`` and ``b`` ((x, y))."""
    dx, dy = abs(a[0] - b[0]), abs(a[1] - b[1])
    return 0.120 * (6 + max(dx - 5, 0) + max(dy - 5, 0) + 2 * (min(dx, 5) + min(dy, 5)))


def _clock_to_out(cell):
    return {"DP16KD": 5.85, "MULT18X18D": 2.0}.get(cell["type"], 0.45)


def _write_input(cell, port):
    # A distributed RAM's write side is synchronous: its inputs end paths.
    return (cell["type"] == "TRELLIS_COMB" and cell.get("parameters", {}).get("MODE") in ("DPRAM", "RAMW")
            and port.startswith(("WD", "WAD", "WRE")))


def longest_paths(netlist):
    """``[(delay_ns, cell, port, chain)]`` for every path endpoint of ``netlist`` (nextpnr's placed JSON),
    longest first; ``chain`` lists ``(net, driver type, fanout, wire_ns, driver tile)`` from the start."""
    top = next((m for m in netlist["modules"].values() if m.get("attributes", {}).get("top")),
               next(iter(netlist["modules"].values())))
    cells = top["cells"]
    names = {}
    for name, net in top["netnames"].items():
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or len(name) < len(names[bit])):
                names[bit] = name
    tile = {}
    for name, cell in cells.items():
        found = re.match(r"X(\d+)/Y(\d+)/", cell.get("attributes", {}).get("NEXTPNR_BEL", ""))
        tile[name] = (int(found.group(1)), int(found.group(2))) if found else None
    drivers, fanout = {}, collections.Counter()
    for name, cell in cells.items():
        for port, direction in cell.get("port_directions", {}).items():
            for bit in cell["connections"].get(port, []):
                if isinstance(bit, int) and names.get(bit) not in CONSTANT_NETS:
                    if direction == "output":
                        drivers[bit] = (name, port)
                    else:
                        fanout[bit] += 1

    def wire(bit, sink, port):
        source = drivers[bit][0]
        if port == "FCI":
            return 0.0
        if tile[source] is None or tile[sink] is None:
            return 0.72
        return 0.25 if tile[source] == tile[sink] else wire_estimate(tile[source], tile[sink])

    ready, via = {}, {}

    def out_time(bit):
        """Arrival at the output net ``bit``, iteratively (paths are thousands of cells deep)."""
        stack = [bit]
        while stack:
            b = stack[-1]
            if b in ready:
                stack.pop()
                continue
            name, port = drivers[b]
            cell = cells[name]
            if cell["type"] in SEQUENTIAL:
                ready[b], via[b] = _clock_to_out(cell), None
                stack.pop()
                continue
            inputs = [(ip, ib) for ip, d in cell.get("port_directions", {}).items()
                      if d == "input" and not _write_input(cell, ip)
                      for ib in cell["connections"].get(ip, []) if isinstance(ib, int) and ib in drivers]
            pending = [ib for _, ib in inputs if ib not in ready and ib not in stack]
            if pending:
                stack.extend(pending)
                continue
            best, best_bit = 0.0, None
            for ip, ib in inputs:
                step = 0.06 if (ip, port) == ("FCI", "FCO") else 0.3 if port == "FCO" else 0.45
                t = ready.get(ib, 0.0) + wire(ib, name, ip) + step
                if t > best:
                    best, best_bit = t, ib
            ready[b], via[b] = best, best_bit
            stack.pop()
        return ready[bit]

    ends = []
    for name, cell in cells.items():
        for port, direction in cell.get("port_directions", {}).items():
            if direction != "input" or port.startswith("CLK"):
                continue
            if cell["type"] not in SEQUENTIAL and not _write_input(cell, port):
                continue
            for bit in cell["connections"].get(port, []):
                if isinstance(bit, int) and bit in drivers:
                    t = out_time(bit) + wire(bit, name, port) + 0.1
                    chain, b, sink = [], bit, name
                    while b is not None:
                        source = drivers[b][0]
                        chain.append((names.get(b, str(b)), cells[source]["type"], fanout[b],
                                      wire(b, sink, None), tile[source]))
                        sink, b = source, via.get(b)
                    ends.append((t, name, port, chain[::-1]))
    ends.sort(key=lambda e: -e[0])
    return ends


def fanouts(netlist):
    """``[(loads, net)]`` of every net of ``netlist`` (placed or only synthesized) but the constants and
    the clock, most loads first."""
    top = next((m for m in netlist["modules"].values() if m.get("attributes", {}).get("top")),
               next(iter(netlist["modules"].values())))
    names, loads = {}, collections.Counter()
    for name, net in top["netnames"].items():
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or len(name) < len(names[bit])):
                names[bit] = name
    for cell in top["cells"].values():
        for port, direction in cell.get("port_directions", {}).items():
            if direction == "input" and not port.startswith("CLK"):
                for bit in cell["connections"].get(port, []):
                    if isinstance(bit, int):
                        loads[bit] += 1
    return sorted(((n, names.get(b, str(b))) for b, n in loads.items()
                   if names.get(b) not in CONSTANT_NETS and names.get(b) != "clk"), key=lambda e: -e[0])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    verbose, by_fanout = "-v" in argv, "--fanout" in argv
    args = [a for a in argv if a not in ("-v", "--fanout")]
    if not args:
        sys.exit("usage: python -m qarith.fpga.placed_paths NETLIST.json [N] [-v | --fanout]")
    with open(args[0]) as f:
        netlist = json.load(f)
    count = int(args[1]) if len(args) > 1 else 20
    if by_fanout:
        for loads, net in fanouts(netlist)[:count]:
            print(f"{loads:7d}  {net[:110]}")
        return
    ends = longest_paths(netlist)
    print(f"{len(ends)} endpoints, {sum(e[0] > 10 for e in ends)} over 10 ns (coarse delays: a ranking)")
    seen = set()
    for t, name, port, chain in ends:
        group = re.sub(r"[0-9]+", "#", name)[:40]
        if group in seen:
            continue
        seen.add(group)
        print(f"{t:6.2f} ns -> {name[:80]} .{port}")
        if verbose:
            for net, kind, fo, w, at in chain:
                print(f"      {kind:12s} fanout {fo:<5d} wire {w:5.2f} ns at {at}: {net[:90]}")
        if len(seen) >= count:
            break


if __name__ == "__main__":
    main()
