import json
import subprocess
import sys

import pytest

from qarith.hdl.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list(capsys):
    status, out, _ = run(capsys, "list")
    assert status == 0
    for name in ("mac_array", "requant", "linear_int8", "int8_4x4"):
        assert name in out


def test_verilog_one_config(capsys, tmp_path):
    status, out, _ = run(capsys, "verilog", "mac_array", "--set", "rows=2", "--set", "cols=3",
                         "--set", "a_signed=false", "-o", str(tmp_path))
    assert status == 0
    text = (tmp_path / "mac_array__custom.v").read_text()
    assert "module mac_array__custom" in text
    # Two rows of unsigned 8-bit codes and three signed ones, plus last: 2*8 + 3*8 + 1 bits.
    assert "input [40:0] i__payload;" in text


def test_verilog_named_config(capsys, tmp_path):
    status, _, _ = run(capsys, "verilog", "requant", "--config", "int8_x4", "-o", str(tmp_path))
    assert status == 0
    assert (tmp_path / "requant__int8_x4.v").exists()


@pytest.mark.parametrize("argv, message", [
    (["verilog", "softmax"], "qarith: error: unknown block 'softmax'; blocks: mac_array, requant, linear_int8, lut_unary, pwl, softmax_lut, shiftmax, shiftgelu, ilayernorm, log_softmax_int, attn_v, lns_mul, lns_to_int, lns_dot, lns_add, wino_input, wino_output, wino_conv\n"),
    (["verilog", "mac_array", "--set", "depth=4"],
     "qarith: error: unknown key 'depth' for mac_array; keys: rows, cols, a_width, a_signed, b_width, "
     "b_signed, max_k, acc_width, input_reg, mult_reg, output_reg, multiplier\n"),
    (["verilog", "mac_array", "--set", "rows=four"], "qarith: error: rows=four: expected an integer\n"),
    (["verilog", "mac_array", "--set", "acc_width=wide"],
     "qarith: error: acc_width=wide: expected an integer or none\n"),
    (["verilog", "mac_array", "--set", "a_signed=maybe"], "qarith: error: a_signed=maybe: expected true or false\n"),
    (["verilog", "mac_array", "--set", "rows"], "qarith: error: --set takes KEY=VALUE, not 'rows'\n"),
    (["verilog", "mac_array", "--set", "rows=40"],
     "qarith: error: Array rows must be between 1 and 32, not 40\n"),
    (["verilog", "requant", "--config", "int4"],
     "qarith: error: unknown config 'int4' for requant; configs: int8, int8_x4, uint8_single\n"),
    (["verilog"], "qarith: error: give a block name or --all\n"),
    (["sim", "requant", "--sim", "modelsim"],
     "qarith: error: unknown simulator 'modelsim'; simulators: icarus, verilator\n"),
    (["report", "--device", "xc7a35t"], "qarith: error: unknown device 'xc7a35t'; devices: ice40-up5k, ecp5-85f\n"),
    (["report", "--block", "requant", "--config", "int4"], "qarith: error: unknown config 'int4' for requant\n"),
])
def test_errors(capsys, tmp_path, argv, message):
    status, out, err = run(capsys, *argv, *(["-o", str(tmp_path)] if argv[0] in ("verilog", "report") else []))
    assert status == 2
    assert err == message
    assert list(tmp_path.iterdir()) == []


def test_console_script_exit_status():
    result = subprocess.run([sys.executable, "-m", "qarith.hdl.cli", "verilog", "nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("qarith: error: unknown block 'nope'")


def test_readme_block_table_matches_registry():
    from pathlib import Path
    from qarith.hdl.cli import block_table
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert block_table() in readme
