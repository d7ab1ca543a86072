import json

import pytest

from qarith.hdl.common.verilog import emit
from qarith.manifest import write_all
from qarith.registry import BLOCKS


@pytest.fixture
def written(tmp_path_factory):
    """``make verilog``'s output: (folder, manifest)."""
    directory = tmp_path_factory.mktemp("verilog")
    return directory, write_all(directory)


def test_make_verilog_output_is_reproducible_and_described(written, tmp_path):
    """One test, so one xdist worker writes every config once (two tests each wrote it on its own worker:
    124 s of CPU twice)."""
    first, _ = written
    check_manifest_describes_ports_and_timing(written)
    names = sorted(p.name for p in first.iterdir())
    expected = {f"{b.name}__{c}.v" for b in BLOCKS.values() for c in b.configs} | {"manifest.json"}
    assert set(names) == expected
    # A second emission of each block's first config gives the same bytes.
    for block in BLOCKS.values():
        config_name, cfg = next(iter(block.configs.items()))
        name = f"{block.name}__{config_name}"
        emit(block.generator, cfg, name, tmp_path)
        assert (tmp_path / f"{name}.v").read_bytes() == (first / f"{name}.v").read_bytes(), name


def check_manifest_describes_ports_and_timing(written):
    tmp_path, manifest = written
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
    from qarith.hdl.requant import Requant
    assert requant["latency"] == Requant.latency and requant["parameters"]["rounding"] == "double"
