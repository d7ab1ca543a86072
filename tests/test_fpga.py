"""The report flow end to end on a small array (Yosys + nextpnr, about a minute)."""

import json

import pytest

from qarith.fpga.report import DEVICES, _markdown, implement
from qarith.registry import BLOCKS


@pytest.mark.synthesis
@pytest.mark.parametrize("device", list(DEVICES))
def test_place_and_route_small_array(tmp_path, device):
    record = implement(BLOCKS["mac_array"], "int8_2x3_u8s8", DEVICES[device], seeds=1, workdir=tmp_path)
    assert record.status == "ok", record.note
    assert record.fmax_mhz > 10
    dsp = {"ice40-up5k": "ICESTORM_DSP", "ecp5-85f": "MULT18X18D"}[device]
    assert record.utilisation[dsp]["used"] == 6          # every product in a DSP block
    if device == "ice40-up5k":
        assert record.io == "pin wrapper"
        assert record.wrapper_cells["ff"] >= 2 * 8 + 3 * 8  # the ring covers every input bit
        assert record.wrapper_cells["dsp"] == 0
    else:
        assert record.io == "out-of-context" and record.wrapper_cells is None
    report = {"command": "test", "tools": {}, "seeds": 1, "records": [json.loads(json.dumps(record.__dict__))]}
    assert f"| mac_array | int8_2x3_u8s8 | {device} | ok |" in _markdown(report)
