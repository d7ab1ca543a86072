"""Verilog emission: one module per generator and config, byte-identical across runs (no source
locations), and the port list as Amaranth names the ports in Verilog."""

from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

__all__ = ["emit", "port_list", "write_if_changed"]


def write_if_changed(path, text):
    """Write ``text`` unless ``path`` already holds it (simulators, make and the report's incremental
    synthesis then see no new timestamp)."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def emit(generator, cfg, name, directory):
    """Write ``<directory>/<name>.v``, the Verilog module ``name`` of ``generator(cfg)``; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.v"
    write_if_changed(path, verilog.convert(generator(cfg), name=name, emit_src=False))
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
