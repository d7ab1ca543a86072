"""Verilog emission and the manifest of every emitted module.

``make verilog`` calls :func:`write_all`: one ``<block>__<config>.v`` per named default configuration and
``manifest.json`` describing each module's parameters, ports, latency, throughput and table sizes.
Output is byte-identical across runs (no source locations, sorted keys).
"""

import dataclasses
import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from .registry import BLOCKS

__all__ = ["emit", "port_list", "write_all", "write_if_changed"]


def write_if_changed(path, text):
    """Write ``text`` unless ``path`` already holds it (simulators, make and the report's incremental
    synthesis then see no new timestamp)."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def emit(block, cfg, name, directory):
    """Write ``<directory>/<name>.v`` (Verilog module ``name``); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.v"
    write_if_changed(path, verilog.convert(block.elaborate(cfg), name=name, emit_src=False))
    return path


def port_list(component):
    """Ports of a component as Amaranth names them in Verilog: name, direction, width."""
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for path, member, _ in component.signature.flatten(component):
        ports.append({
            "name": "__".join(str(part) for part in path),
            "direction": "input" if member.flow == wiring.In else "output",
            "width": Shape.cast(member.shape).width,
        })
    return ports


def write_all(directory):
    """Emit every block's default configs and the manifest; returns the manifest."""
    directory = Path(directory)
    manifest = {}
    for block in BLOCKS.values():
        for config_name, cfg in block.configs.items():
            name = f"{block.name}__{config_name}"
            emit(block, cfg, name, directory)
            component = block.interface(cfg)
            entry = {
                "block": block.name,
                "config": config_name,
                "parameters": dataclasses.asdict(cfg),
                "ports": port_list(component),
                "latency": component.latency,
                "throughput": component.throughput,
            }
            if component.sim_sources:
                # Vendor primitives the module instantiates (simulate with their models).
                entry["primitives"] = [spec.split(":")[1] for spec in component.sim_sources]
            if hasattr(component, "table_bytes"):
                entry["table_bytes"] = component.table_bytes
            manifest[name] = entry
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_if_changed(directory / "manifest.json", text)
    return json.loads(text)             # as a reader of the file sees it (tuples become lists)
