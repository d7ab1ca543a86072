import json

from qarith.hdl.registry import BLOCKS
from qarith.hdl.verilog import write_all


def test_make_verilog_output_is_reproducible(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_all(first)
    write_all(second)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    expected = {f"{b.name}__{c}.v" for b in BLOCKS.values() for c in b.configs} | {"manifest.json"}
    assert set(names) == expected


def test_manifest_describes_ports_and_timing(tmp_path):
    manifest = write_all(tmp_path)
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
