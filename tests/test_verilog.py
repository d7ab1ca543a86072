import json

import pytest

from qarith.hdl.common.verilog import emit
from qarith.manifest import write_all
from qarith.registry import BLOCKS


def test_make_verilog_output_is_reproducible_and_described(tmp_path):
    """make verilog's output, written once in one test (so on one xdist worker: 124 s of CPU): every
    config's Verilog and the manifest, a second emission byte-identical, the manifest's ports and timing."""
    first = tmp_path / "verilog"
    first.mkdir()
    check_manifest_describes_ports_and_timing(first, write_all(first))
    names = sorted(p.name for p in first.iterdir())
    expected = {f"{b.name}__{c}.v" for b in BLOCKS.values() for c in b.configs} | {"manifest.json"}
    assert set(names) == expected
    # A second emission of each block's first config gives the same bytes.
    for block in BLOCKS.values():
        config_name, cfg = next(iter(block.configs.items()))
        name = f"{block.name}__{config_name}"
        emit(block.generator, cfg, name, tmp_path)
        assert (tmp_path / f"{name}.v").read_bytes() == (first / f"{name}.v").read_bytes(), name


def check_manifest_describes_ports_and_timing(tmp_path, manifest):
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    entry = manifest["mac_array__int8_4x4"]
    ports = {p["name"]: (p["direction"], p["width"]) for p in entry["ports"]}
    assert ports["i__payload"] == ("input", 4 * 8 + 4 * 8 + 1)
    assert ports["o__payload"] == ("output", 4 * 24 + 1)
    assert ports["o__ready"] == ("input", 1)
    assert entry["throughput"] == 16
    text = (tmp_path / "mac_array__int8_4x4.v").read_text()
    for name, (direction, width) in ports.items():
        declaration = f"{direction} {name};" if width == 1 else f"{direction} [{width - 1}:0] {name};"
        assert declaration in text, declaration
    requant = manifest["requant__int8"]
    from qarith.golden.requant import RequantConfig
    from qarith.hdl.common.component import interface
    from qarith.hdl.requant import Requant
    assert requant["latency"] == interface(Requant, RequantConfig()).latency == 10
    assert requant["parameters"]["rounding"] == "double"
