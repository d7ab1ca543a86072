"""``make verilog``: every registered config's Verilog and ``manifest.json``.

One ``<block>__<config>.v`` per named configuration and ``manifest.json`` describing each module: its
block, config name, parameters (and the config's canonical text, which ``qarith verilog BLOCK
--config-file`` reads back), ports, latency, throughput and table sizes. Output is byte-identical across
runs (no source locations, sorted keys).
"""

import json
from pathlib import Path

from .golden.common.config import to_dict, to_text
from .hdl.common.verilog import emit, port_list, write_if_changed
from .registry import BLOCKS

__all__ = ["module_entry", "write_all"]


def module_entry(block, config_name, cfg):
    """The manifest's description of ``block``'s module for ``cfg`` (named ``config_name``)."""
    component = block.interface(cfg)
    entry = {
        "block": block.name,
        "config": config_name,
        "parameters": to_dict(cfg),
        "config_text": to_text(cfg),
        "ports": port_list(component),
        "latency": component.latency,
        "throughput": component.throughput,
    }
    if component.sim_sources:
        # Vendor primitives the module instantiates (simulate with their models).
        entry["primitives"] = [spec.split(":")[1] for spec in component.sim_sources]
    if hasattr(component, "table_bytes"):
        entry["table_bytes"] = component.table_bytes
    return entry


def write_all(directory, blocks=None):
    """Emit the named configs of ``blocks`` (default: every registered block) and the manifest;
    returns the manifest as a reader of the file sees it."""
    directory = Path(directory)
    manifest = {}
    for block in (BLOCKS if blocks is None else blocks).values():
        for config_name, cfg in block.configs.items():
            name = f"{block.name}__{config_name}"
            emit(block.generator, cfg, name, directory)
            manifest[name] = module_entry(block, config_name, cfg)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_if_changed(directory / "manifest.json", text)
    return json.loads(text)
