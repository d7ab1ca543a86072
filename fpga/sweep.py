"""Design-space sweeps: one block, many configs, on Dask.

A sweep spec (TOML) names a block, a base config, the fields to sweep, the devices, the seeds and the
metrics::

    block = "pwl"
    base = "gelu16_s8"                 # a named config (default: the config class's defaults)
    devices = ["ice40-up5k"]           # default: every device of the config's family
    seeds = 1                          # placement seeds 1..N, median Fmax
    combine = "product"                # or "zip": the i-th values of every field together
    metrics = ["luts", "fmax_mhz", "max_error"]     # the columns of sweep.md
    best = "max_error<0.01"            # optional default of --best, with minimize = "luts"

    [set]                              # fixed changes on top of the base config
    in_width = 8

    [sweep]                            # a list, or a range {from, to, step} / {from, to, times}
    entries = {from = 8, to = 32, times = 2}
    method = ["nnlut", "irnn"]

    [[pareto]]                         # one PNG per front: y against x, both minimised unless a
    x = "luts"                         # metric is one of MAXIMIZED (Fmax, throughput)
    y = "max_error"

Every point is validated (the config's own constructor, through the canonical text form of
:mod:`qarith.golden.common.config`) before any job starts; a problem raises :class:`SpecError` with one
line naming it.

Each point runs as a pure job, :func:`run_point` (config text in, a record out): the golden model's
accuracy against the float function on the inputs ``make bench`` uses (:func:`accuracy_metrics`; a block
without such a metric records none and says so), synthesis and place-and-route by
:func:`qarith.fpga.report.implement`, and derived figures: throughput at Fmax, LUTs per throughput, and
an **energy proxy** (:func:`energy_proxy`). Jobs run on a ``dask.distributed`` cluster (a ``LocalCluster``
of one single-threaded worker process per core, or an existing scheduler); records are cached by content
under ``cache/``: the key hashes the config text, block, device, seeds, tool versions and flow options,
so a rerun or an extended sweep computes only new points. A failed point is a record with its status and
reason.

Outputs: ``sweep.json`` (every record), ``sweep.md`` (a table), ``pareto_<y>_vs_<x>.png`` (non-dominated
points marked), and :func:`best` answers "the point minimising M among those satisfying constraints".
"""

import dataclasses
import hashlib
import itertools
import json
import math
import operator
import re
import time
import tomllib
import types
from dataclasses import asdict, dataclass
from pathlib import Path

from ..golden.common.config import config_hash, from_text, to_text
from .operations import ENERGY_PJ_SOURCE, energy_pj, operations, units_per_cycle
from .report import DEVICES, dask_client, implement, tool_versions

__all__ = ["SpecError", "SweepSpec", "Point", "parse_spec", "load_spec", "run_point", "accuracy_metrics",
           "energy_proxy", "energy_pj", "ENERGY_PJ_SOURCE", "cache_key", "run_sweep", "pareto_front", "best",
           "parse_constraints", "check_metric", "describe", "write_outputs", "METRICS", "MAXIMIZED", "TIMING_FIELDS"]

#: Bumped when a record's content changes for the same inputs (it is part of every cache key).
FLOW_VERSION = 2

#: Metrics every record can carry (accuracy metrics are ``None`` where a block has none).
METRICS = {
    "luts": "LUT4 cells of the block (Yosys; iCE40: the pin wrapper's own LUT4s subtracted)",
    "lc": "logic cells placed by nextpnr (iCE40 ICESTORM_LC, with the pin wrapper; ECP5 TRELLIS_COMB)",
    "ff": "flip-flops (Yosys)",
    "dsp": "DSP blocks placed",
    "bram": "block RAMs placed",
    "fmax_mhz": "nextpnr's post-route Fmax, median over the seeds",
    "throughput": "units per second at Fmax (elements, or MACs for MAC blocks)",
    "luts_per_mops": "LUT4 per million units per second (area per throughput)",
    "energy_pj": "energy proxy per unit from operation counts (pJ, Horowitz 45 nm; not a measurement)",
    "table_bytes": "bytes of the block's tables (ROMs), as the config counts them",
    "max_error": "largest error against the float function (block's own units: probability, output value)",
    "mean_error": "mean error against the float function",
    "max_error_lsb": "largest error in output steps",
    "peer_max_error": "the hls4ml-style peer's largest error on the same inputs (softmax_lut)",
    "kl": "mean KL divergence against torch.softmax (softmaxes)",
}
#: Metrics where more is better (Pareto fronts and ``--best`` maximise them).
MAXIMIZED = frozenset({"fmax_mhz", "throughput"})
#: Fields of a record that depend on the run, not on its inputs (left out when two runs are compared).
TIMING_FIELDS = ("seconds", "cached", "worker")


class SpecError(ValueError):
    """A malformed sweep spec: the message is one line naming the problem."""


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the swept values and the config text (the job's input)."""
    values: dict
    config_text: str
    name: str


@dataclass(frozen=True)
class SweepSpec:
    block: object
    points: tuple
    devices: tuple
    seeds: int
    metrics: tuple
    pareto: tuple
    best: str | None
    minimize: str | None
    source: str

    def jobs(self):
        """``(point, device name)`` pairs, point-major, devices the config's family allows."""
        return [(p, d) for p in self.points for d in self.devices
                if getattr(from_text(self.block.config, p.config_text), "family", None)
                in (None, DEVICES[d].family)]


_SPEC_KEYS = ("block", "base", "devices", "seeds", "combine", "metrics", "set", "sweep", "pareto", "best",
              "minimize")


def _field_types(cls):
    return {f.name: f.type for f in dataclasses.fields(cls)}


def _check_value(where, value, annotation):
    """``value`` (from TOML) as a value of a field annotated ``annotation``, or :class:`SpecError`."""
    options = annotation.__args__ if isinstance(annotation, types.UnionType) else (annotation,)
    options = tuple(getattr(option, "__origin__", option) for option in options)
    if type(None) in options and isinstance(value, str) and value.lower() == "none":
        return None
    if bool in options:
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif int in options:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "an integer"
    elif float in options:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        expected = "a number"
    elif tuple in options:
        if isinstance(value, list):
            return tuple(tuple(v) if isinstance(v, list) else v for v in value)
        expected = "a list"
    else:
        if isinstance(value, str):
            return value
        expected = "a string"
    raise SpecError(f"{where}: expected {expected}, not {value!r}")


def _expand(key, spec):
    """The values of swept field ``key``: a list, or a range table."""
    if isinstance(spec, list):
        values = spec
    elif isinstance(spec, dict):
        unknown = set(spec) - {"from", "to", "step", "times"}
        if unknown or not {"from", "to"} <= set(spec) or ("step" in spec) == ("times" in spec):
            raise SpecError(f"sweep.{key}: a range is {{from, to, step}} or {{from, to, times}}, not {spec}")
        start, stop = spec["from"], spec["to"]
        numbers = (start, stop, spec.get("step", spec.get("times")))
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
            raise SpecError(f"sweep.{key}: range bounds must be numbers, not {spec}")
        values = []
        if "step" in spec:
            if spec["step"] <= 0:
                raise SpecError(f"sweep.{key}: range step must be positive, not {spec['step']}")
            steps = math.floor((stop - start) / spec["step"] + 1e-9)
            values = [start + i * spec["step"] for i in range(steps + 1)]
        else:
            if spec["times"] <= 1 or start <= 0:
                raise SpecError(f"sweep.{key}: a geometric range needs from > 0 and times > 1, not {spec}")
            value = start
            while value <= stop * (1 + 1e-9):
                values.append(value)
                value *= spec["times"]
    else:
        raise SpecError(f"sweep.{key}: expected a list of values or a range table, not {spec!r}")
    if not values:
        raise SpecError(f"sweep.{key}: empty range {spec}")
    return values


def parse_spec(text, blocks, source="spec"):
    """A :class:`SweepSpec` from TOML ``text``; ``blocks`` is the registry's mapping of names to entries.

    Raises
    ------
    SpecError
        Unknown block, base config, field, device or metric; an empty range or list; a value of the wrong
        type; a point the config class rejects. The message names the problem (and the spec's ``source``).
    """
    try:
        return _parse_spec(text, blocks)
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None


def _parse_spec(text, blocks):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"not TOML: {error}") from None
    unknown = [key for key in data if key not in _SPEC_KEYS]
    if unknown:
        raise SpecError(f"unknown key {unknown[0]!r}; keys: {', '.join(_SPEC_KEYS)}")
    if "block" not in data:
        raise SpecError("no block given (block = \"NAME\")")
    if data["block"] not in blocks:
        raise SpecError(f"unknown block {data['block']!r}; blocks: {', '.join(blocks)}")
    block = blocks[data["block"]]
    fields = _field_types(block.config)
    base_name = data.get("base")
    if base_name is None:
        base = block.config()
    elif base_name not in block.configs:
        raise SpecError(f"unknown base config {base_name!r} for {block.name}; configs: {', '.join(block.configs)}")
    else:
        base = block.configs[base_name]

    def checked_fields(table, section):
        if not isinstance(table, dict):
            raise SpecError(f"[{section}] must be a table of fields")
        for key in table:
            if key not in fields:
                raise SpecError(f"unknown field {key!r} in [{section}] for {block.name}; fields: "
                                f"{', '.join(fields)}")
        return table

    fixed = {key: _check_value(f"set.{key}", value, fields[key])
             for key, value in checked_fields(data.get("set", {}), "set").items()}
    swept = checked_fields(data.get("sweep", {}), "sweep")
    if not swept:
        raise SpecError("[sweep] names no field to sweep")
    axes = {key: [_check_value(f"sweep.{key}", v, fields[key]) for v in _expand(key, spec)]
            for key, spec in swept.items()}
    combine = data.get("combine", "product")
    if combine == "product":
        combos = list(itertools.product(*axes.values()))
    elif combine == "zip":
        lengths = {key: len(values) for key, values in axes.items()}
        if len(set(lengths.values())) != 1:
            raise SpecError(f"combine = \"zip\" needs lists of one length, not {lengths}")
        combos = list(zip(*axes.values()))
    else:
        raise SpecError(f"combine must be \"product\" or \"zip\", not {combine!r}")

    points, seen = [], set()
    for combo in combos:
        values = dict(zip(axes, combo))
        try:
            cfg = dataclasses.replace(base, **fixed, **values)
        except (TypeError, ValueError) as error:
            raise SpecError(f"point {values}: {error}") from None
        text_form = to_text(cfg)
        if text_form in seen:
            continue
        seen.add(text_form)
        named = block.config_name(cfg)
        points.append(Point(values, text_form, named if named is not None else config_hash(cfg)))

    devices = data.get("devices", list(DEVICES))
    if not isinstance(devices, list) or not devices:
        raise SpecError("devices must be a non-empty list")
    for device in devices:
        if device not in DEVICES:
            raise SpecError(f"unknown device {device!r}; devices: {', '.join(DEVICES)}")
    seeds = data.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise SpecError(f"seeds must be a positive integer, not {seeds!r}")
    metrics = data.get("metrics", ["luts", "ff", "dsp", "bram", "fmax_mhz", "throughput", "energy_pj",
                                   "max_error"])
    pareto = data.get("pareto", [])
    if not isinstance(pareto, list) or not all(isinstance(p, dict) and set(p) == {"x", "y"} for p in pareto):
        raise SpecError("[[pareto]] entries are tables with x and y metrics")
    named_metrics = [*metrics, *(p[axis] for p in pareto for axis in ("x", "y"))]
    if data.get("minimize"):
        named_metrics.append(data["minimize"])
    for metric in named_metrics:
        check_metric(metric)
    if data.get("best"):
        parse_constraints(data["best"])
    spec = SweepSpec(block, tuple(points), tuple(devices), seeds, tuple(metrics),
                     tuple((p["x"], p["y"]) for p in pareto), data.get("best"), data.get("minimize"), text)
    if not spec.jobs():
        raise SpecError(f"no point can run on {', '.join(devices)} (the configs' family)")
    return spec


def check_metric(metric):
    if metric not in METRICS:
        raise SpecError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")


def load_spec(path, blocks):
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise SpecError(f"cannot read sweep spec {path}: {error.strerror}") from None
    return parse_spec(text, blocks, source=str(path))


# -- accuracy ---------------------------------------------------------------------------------------------

def accuracy_metrics(block_name, cfg):
    """``(metrics, note)``: the golden model's error against the float function on the inputs of
    ``make bench`` (:mod:`qarith.fpga.accuracy`), or ``(None, reason)`` for a block without one."""
    from .accuracy import lns, pwl, rows
    if block_name == "pwl":
        stats = pwl.error_stats(cfg)
        return ({"max_error": stats["max_error"], "mean_error": stats["mean_error"],
                 "max_error_lsb": stats["max_error_lsb"]}, "every input code against the float function")
    if block_name == "softmax_lut":
        summary = {s["implementation"]: s for s in rows.softmax_summary(rows.softmax_accuracy({"point": cfg}))}
        ours, peer = summary["qarith"], summary[rows.PEER]
        return ({"max_error": ours["max_abs"], "mean_error": ours["mean_abs"], "kl": ours["kl"],
                 "max_error_lsb": ours["max_abs"] * 2 ** cfg.out_width, "peer_max_error": peer["max_abs"],
                 "peer_table_bytes": peer["table_bytes"]},
                f"rows of {', '.join(map(str, rows.SOFTMAX_LENGTHS))} on the bench's score distributions "
                f"against torch.softmax; peer: hls4ml's default softmax on the same codes")
    if block_name == "lns_add":
        record = lns.lns_add_accuracy({"point": cfg})[0]
        return ({"max_error": record["max_rel_error"], "mean_error": record["mean_rel_error"],
                 "max_error_lsb": record["max_code_error"]},
                "every pair of words, a + b and a - b; relative error (max_error_lsb: exponent codes)")
    if block_name in ("shiftmax", "shiftgelu", "ilayernorm", "log_softmax_int", "attn_v"):
        configs = {name: {} for name in ("shiftmax", "shiftgelu", "ilayernorm", "log_softmax_int", "attn_v")}
        configs[block_name] = {"point": cfg}
        records = [r for r in rows.shift_accuracy(configs)[block_name] if r["config"] == "point"]
        key = {"shiftmax": "max_abs", "log_softmax_int": "max_abs", "shiftgelu": "max_abs",
               "ilayernorm": "max_steps", "attn_v": "max_vs_float"}[block_name]
        mean = {"shiftmax": "mean_abs", "log_softmax_int": "mean_abs", "shiftgelu": "mean_abs",
                "ilayernorm": "mean_steps", "attn_v": "mean_vs_float"}[block_name]
        return ({"max_error": max(r[key] for r in records),
                 "mean_error": sum(r[mean] for r in records) / len(records)},
                "the bench's inputs against the float function (make bench's accuracy tables)")
    return None, f"{block_name} has no standard accuracy metric (exact integer arithmetic, or none in make bench)"


# -- energy proxy ------------------------------------------------------------------------------------------

def table_bytes(block_name, cfg):
    """Bytes of the block's tables, as the config (or, for ``pwl``, its fitted tables) counts them."""
    if block_name == "pwl":
        from ..golden.pwl import pwl_tables
        return pwl_tables(cfg).table_bytes
    return getattr(cfg, "table_bytes", None)


def energy_proxy(block_name, cfg):
    """``(pJ per unit, {"operations": ..., "source": ...})`` from the block's operation counts
    (:func:`qarith.fpga.operations.operations`) and the per-operation energies of
    :data:`ENERGY_PJ_SOURCE`; ``(None, reason)`` for a block without an operation count.
    A **proxy**: 45 nm ASIC figures for the arithmetic the block does, not an FPGA power estimate."""
    ops = operations(block_name, cfg)
    if ops is None:
        return None, {"note": f"no operation count for {block_name}"}
    return energy_pj(ops), {"operations": ops.as_dict(), "source": ENERGY_PJ_SOURCE,
                            "note": "energy proxy from operation counts, not a measurement"}


# -- one job -----------------------------------------------------------------------------------------------

def _unit(block, cfg):
    ops = operations(block.name, cfg)
    if ops is not None:
        return ops.unit
    return "MAC" if hasattr(cfg, "macs") or hasattr(cfg, "mac") else "element"


def cache_key(block_name, config_text, device_name, seeds, versions):
    """The content key of a point: SHA-256 of the config text, block, device (with its flow options),
    seeds, tool versions and :data:`FLOW_VERSION`."""
    data = {"block": block_name, "config": config_text, "device": asdict(DEVICES[device_name]),
            "seeds": seeds, "tools": versions, "flow": FLOW_VERSION}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def run_point(block, config_text, config_name, device_name, seeds, workdir):
    """One sweep job: accuracy, synthesis and place-and-route, derived figures of the config whose text
    is ``config_text`` (of ``block``, a registry entry) on device ``device_name``; returns a record (a
    JSON-ready dict). Tool failures are records with their status, not exceptions."""
    import os
    import socket
    started = time.monotonic()
    cfg = from_text(block.config, config_text)
    record = {"block": block.name, "config": config_name, "config_text": config_text, "device": device_name,
              "seeds": seeds, "status": "ok", "note": ""}
    accuracy, accuracy_note = accuracy_metrics(block.name, cfg)
    seconds = {"accuracy": round(time.monotonic() - started, 3)}
    try:
        implementation = asdict(implement(block, config_name, DEVICES[device_name], seeds, workdir, cfg=cfg))
    except Exception as error:     # a tool error of this point is its result, not the sweep's end
        implementation = {"status": "failed", "note": str(error)[:300], "cells": {}, "utilisation": {}}
    seconds["implementation"] = round(time.monotonic() - started - seconds["accuracy"], 3)
    record["status"], record["note"] = implementation["status"], implementation.get("note", "")
    component = block.interface(cfg)
    units = units_per_cycle(component, cfg)
    energy, energy_detail = energy_proxy(block.name, cfg)
    cells, used = implementation["cells"], {k: v["used"] for k, v in implementation["utilisation"].items()}
    wrapper = implementation.get("wrapper_cells") or {}
    logic_bel, dsp_bel, bram_bel = {"ice40": ("ICESTORM_LC", "ICESTORM_DSP", "ICESTORM_RAM"),
                                    "ecp5": ("TRELLIS_COMB", "MULT18X18D", "DP16KD")}[DEVICES[device_name].family]
    ok = record["status"] == "ok"
    fmax = implementation.get("fmax_mhz") if ok else None
    throughput = units * fmax * 1e6 if fmax else None
    luts = cells.get("lut4", 0) - wrapper.get("lut4", 0) if cells else None
    metrics = {
        "luts": luts, "lc": used.get(logic_bel) if ok else None,
        "ff": cells.get("ff", 0) - wrapper.get("ff", 0) if cells else None,
        "dsp": used.get(dsp_bel, 0) if ok else None, "bram": used.get(bram_bel, 0) if ok else None,
        "fmax_mhz": fmax, "throughput": throughput,
        "luts_per_mops": round(luts / (throughput / 1e6), 4) if throughput and luts is not None else None,
        "energy_pj": energy, "table_bytes": table_bytes(block.name, cfg),
        **{key: None for key in ("max_error", "mean_error", "max_error_lsb", "peer_max_error", "kl")},
        **(accuracy or {}),
    }
    record.update({"metrics": metrics, "unit": _unit(block, cfg), "units_per_cycle": units,
                   "accuracy_note": accuracy_note, "energy": energy_detail, "implementation": implementation,
                   "seconds": seconds, "worker": f"{socket.gethostname()}:{os.getpid()}"})
    return record


# -- the sweep ---------------------------------------------------------------------------------------------

def size_hint(point):
    """A cost guess for scheduling: the product of the point's numeric swept values (table sizes, array
    shapes, widths and entries all grow the netlist). Only the order of the jobs depends on it."""
    size = 1
    for value in point.values.values():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            size *= max(abs(value), 1)
    return size


def run_sweep(spec, output, cache=None, scheduler=None, workers=None, progress=True):
    """Run every job of ``spec`` (a :class:`SweepSpec`) on Dask and write the outputs into ``output``.

    ``scheduler`` is the address of an existing ``dask.distributed`` scheduler; without it a
    ``LocalCluster`` of ``workers`` single-threaded worker processes (default: one per core) runs the
    jobs. Points whose record is in ``cache`` (default ``build/sweep/cache``) are not run again.
    Returns the records in the spec's order."""
    from rich.progress import Progress

    output = Path(output)
    cache = Path(cache or "build/sweep/cache")
    output.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    versions = tool_versions()
    jobs = spec.jobs()
    keys = [cache_key(spec.block.name, point.config_text, device, spec.seeds, versions) for point, device in jobs]
    records = {}
    for key in keys:
        path = cache / f"{key}.json"
        if path.exists():
            records[key] = {**json.loads(path.read_text()), "cached": True}
    pending = [(key, job) for key, job in zip(keys, jobs) if key not in records]
    counts = {"done": 0, "failed": 0, "cached": len(records)}
    with Progress(disable=not progress) as bar:
        task = bar.add_task(_describe(counts), total=len(jobs), completed=len(records))
        if pending:
            from distributed import as_completed
            with dask_client(scheduler, workers) as client:
                futures = {}
                # Largest points first (longest-processing-time order), so that a long job does not start
                # last and leave the other workers idle at the end of the sweep.
                pending.sort(key=lambda item: -size_hint(item[1][0]))
                for key, (point, device) in pending:
                    future = client.submit(run_point, spec.block, point.config_text, point.name, device,
                                           spec.seeds, str((output / "work").resolve()), key=f"point-{key}",
                                           pure=True, priority=size_hint(point))
                    futures[future] = (key, point, device)
                for future in as_completed(futures):
                    key, point, device = futures[future]
                    try:
                        record = future.result()
                    except Exception as error:  # a lost worker or an exception: recorded, not cached
                        record = {"block": spec.block.name, "config": point.name, "config_text": point.config_text,
                                  "device": device, "seeds": spec.seeds, "status": "error",
                                  "note": f"{type(error).__name__}: {error}"[:300], "metrics": {}}
                    else:
                        record["key"] = key
                        (cache / f"{key}.json").write_text(json.dumps(record, indent=1) + "\n")
                    records[key] = {**record, "key": key, "cached": False}
                    counts["done" if record["status"] == "ok" else "failed"] += 1
                    bar.update(task, advance=1, description=_describe(counts))
    ordered = []
    for key, (point, device) in zip(keys, jobs):
        ordered.append({**records[key], "values": point.values})
    write_outputs(spec, ordered, output, versions)
    return ordered


def _describe(counts):
    return f"sweep: {counts['done']} done, {counts['failed']} failed, {counts['cached']} cached"


# -- fronts, queries, outputs ------------------------------------------------------------------------------

def _value(record, metric):
    return record.get("metrics", {}).get(metric)


def pareto_front(records, x, y):
    """The records (status ok, both metrics known) that no other record dominates on ``x`` and ``y``
    (each minimised, or maximised if in :data:`MAXIMIZED`), sorted by ``x``."""
    sign = {m: -1 if m in MAXIMIZED else 1 for m in (x, y)}
    usable = [r for r in records if r["status"] == "ok" and _value(r, x) is not None and _value(r, y) is not None]

    def cost(r):
        return sign[x] * _value(r, x), sign[y] * _value(r, y)
    front = [r for r in usable if not any(
        cost(o)[0] <= cost(r)[0] and cost(o)[1] <= cost(r)[1] and cost(o) != cost(r) for o in usable)]
    return sorted(front, key=lambda r: _value(r, x))


_OPERATORS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "<": operator.lt, ">": operator.gt}
_CONSTRAINT = re.compile(r"\s*([a-z_]+)\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+)\s*\Z")


def parse_constraints(text):
    """``"max_error<0.01, dsp==0"`` as ``[(metric, operator, number), ...]``; :class:`SpecError` if not."""
    constraints = []
    for part in text.split(","):
        found = _CONSTRAINT.match(part)
        if not found:
            raise SpecError(f"constraint {part.strip()!r}: expected METRIC<NUMBER (operators <, <=, >, >=, ==)")
        metric, op, number = found.groups()
        check_metric(metric)
        try:
            constraints.append((metric, op, float(number)))
        except ValueError:
            raise SpecError(f"constraint {part.strip()!r}: {number!r} is not a number") from None
    return constraints


def best(records, constraints, objective, maximize=None):
    """The ok record satisfying every constraint (:func:`parse_constraints`) that minimises ``objective``
    (maximises it if ``maximize``; by default, if it is one of :data:`MAXIMIZED`); ``None`` if none does."""
    check_metric(objective)
    usable = [r for r in records if r["status"] == "ok" and _value(r, objective) is not None and all(
        _value(r, m) is not None and _OPERATORS[op](_value(r, m), n) for m, op, n in constraints)]
    if not usable:
        return None
    sign = -1 if (objective in MAXIMIZED if maximize is None else maximize) else 1
    return min(usable, key=lambda r: sign * _value(r, objective))


def describe(record):
    """One line naming a record: block, swept values, device and its metrics."""
    values = ", ".join(f"{k}={v}" for k, v in record["values"].items())
    metrics = ", ".join(f"{k}={_format(v)}" for k, v in record["metrics"].items() if v is not None)
    return f"{record['block']} {record['config']} ({values}) on {record['device']}: {metrics}"


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_outputs(spec, records, output, versions):
    """``sweep.json``, ``sweep.md`` and the Pareto PNGs of ``records`` into ``output``."""
    output = Path(output)
    (output / "sweep.json").write_text(json.dumps({
        "spec": spec.source, "block": spec.block.name, "tools": versions, "flow_version": FLOW_VERSION,
        "energy_source": ENERGY_PJ_SOURCE, "records": records}, indent=1) + "\n")
    swept = list(spec.points[0].values)
    lines = [f"# Sweep of {spec.block.name}", "",
             f"{len(records)} points; tools: {', '.join(f'{k} {v}' for k, v in versions.items())}. "
             f"Fmax: median of {spec.seeds} seed(s). `energy_pj` is a **proxy** from operation counts "
             f"(per {records[0].get('unit', 'unit')}; {ENERGY_PJ_SOURCE}), not a power estimate.", ""]
    notes = {r.get("accuracy_note") for r in records if r.get("accuracy_note")}
    lines += [f"Accuracy: {note}." for note in sorted(notes)] + [""]
    header = [*swept, "device", "status", *spec.metrics]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        cells = [_format(r["values"][k]) for k in swept] + [r["device"], r["status"] if r["status"] == "ok"
                                                            else f"{r['status']}: {r['note'][:80]}"]
        cells += [_format(_value(r, m)) if _value(r, m) is not None else "-" for m in spec.metrics]
        lines.append("| " + " | ".join(cells) + " |")
    for x, y in spec.pareto:
        front = pareto_front(records, x, y)
        path = _plot(spec, records, front, x, y, output)
        lines += ["", f"## Pareto front: {y} against {x}", "", f"![{y} vs {x}]({path.name})", "",
                  *[f"* {describe(r)}" for r in front]]
    (output / "sweep.md").write_text("\n".join(lines) + "\n")


def _plot(spec, records, front, x, y, output):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    figure, axes = pyplot.subplots(figsize=(6.4, 4.4))
    swept = list(spec.points[0].values)
    for device in spec.devices:
        mine = [r for r in records if r["device"] == device and r["status"] == "ok"
                and _value(r, x) is not None and _value(r, y) is not None]
        if not mine:
            continue
        axes.scatter([_value(r, x) for r in mine], [_value(r, y) for r in mine], label=device, alpha=0.6)
        for r in mine:
            axes.annotate(",".join(_format(r["values"][k]) for k in swept), (_value(r, x), _value(r, y)),
                          fontsize=6, xytext=(3, 3), textcoords="offset points")
    if front:
        axes.plot([_value(r, x) for r in front], [_value(r, y) for r in front], "k--", linewidth=0.8)
        axes.scatter([_value(r, x) for r in front], [_value(r, y) for r in front], s=80, facecolors="none",
                     edgecolors="k", label="non-dominated")
    peers = [_value(r, "peer_max_error") for r in records if _value(r, "peer_max_error") is not None]
    if y == "max_error" and peers:
        axes.axhline(min(peers), color="tab:red", linewidth=0.8, linestyle=":",
                     label="hls4ml default softmax (best on these inputs)")
    axes.set_xlabel(x + (" (proxy, pJ)" if x == "energy_pj" else ""))
    axes.set_ylabel(y + (" (proxy, pJ)" if y == "energy_pj" else ""))
    if y in ("max_error", "mean_error") and all(_value(r, y) for r in front):
        axes.set_yscale("log")
    axes.set_title(f"{spec.block.name}: {y} vs {x} (labels: {', '.join(swept)})", fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    path = output / f"pareto_{y}_vs_{x}.png"
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path
