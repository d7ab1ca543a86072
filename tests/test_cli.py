import subprocess
import sys
from pathlib import Path

import pytest

from qarith.cli import DEVICES, SIMULATORS, block_table, main
from qarith.golden.common.config import config_hash, from_text, to_text
from qarith.golden.mac_array import MacArrayConfig
from qarith.registry import BLOCKS


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list(capsys):
    status, out, _ = run(capsys, "list")
    assert status == 0
    for name in ("mac_array", "requant", "linear_int8", "int8_4x4"):
        assert name in out


def test_verilog_custom_config_is_named_by_its_hash(capsys, tmp_path):
    status, out, _ = run(capsys, "verilog", "mac_array", "--set", "rows=2", "--set", "cols=3",
                         "--set", "a_signed=false", "-o", str(tmp_path))
    assert status == 0
    cfg = MacArrayConfig(rows=2, cols=3, a_signed=False)
    name = f"mac_array__{config_hash(cfg)}"
    text = (tmp_path / f"{name}.v").read_text()
    assert out.strip() == str(tmp_path / f"{name}.v")
    assert f"module {name}" in text
    # Two rows of unsigned 8-bit codes and three signed ones, plus last: 2*8 + 3*8 + 1 bits.
    assert "input [40:0] i__payload;" in text


def test_two_custom_configs_do_not_overwrite_each_other(capsys, tmp_path):
    for rows in (2, 3):
        assert run(capsys, "verilog", "mac_array", "--set", f"rows={rows}", "-o", str(tmp_path))[0] == 0
    assert len(list(tmp_path.glob("mac_array__*.v"))) == 2


def test_verilog_name_option(capsys, tmp_path):
    status, _, _ = run(capsys, "verilog", "mac_array", "--set", "rows=2", "--name", "my_array", "-o", str(tmp_path))
    assert status == 0
    assert "module my_array" in (tmp_path / "my_array.v").read_text()


def test_verilog_named_config(capsys, tmp_path):
    status, _, _ = run(capsys, "verilog", "requant", "--config", "int8_x4", "-o", str(tmp_path))
    assert status == 0
    assert (tmp_path / "requant__int8_x4.v").exists()


def test_setting_that_gives_a_named_config_takes_its_name(capsys, tmp_path):
    status, _, _ = run(capsys, "verilog", "requant", "--set", "lanes=4", "--set", "acc_width=24", "-o", str(tmp_path))
    assert status == 0
    assert [p.name for p in tmp_path.iterdir()] == ["requant__int8_x4.v"]


@pytest.mark.parametrize("setting, field, value", [
    ("scale=0.1", "scale", 0.1),
    ("scale=1", "scale", 1.0),
    ("scale=1e-2", "scale", 0.01),
    ("exp_shift=none", "exp_shift", None),
    ("exp_shift=0x8", "exp_shift", 8),
    ("variant=tvm", "variant", "tvm"),
])
def test_set_parses_each_field_type(setting, field, value):
    from qarith.cli import parse_settings
    cfg = parse_settings(BLOCKS["shiftmax"], BLOCKS["shiftmax"].config(), [setting])
    assert getattr(cfg, field) == value and type(getattr(cfg, field)) is type(value)


@pytest.mark.parametrize("text", ["2,0,1", "[2, 0, 1]", "[2,0,1]"])
def test_set_parses_tuples(text):
    from qarith.cli import parse_settings
    block = BLOCKS["ilayernorm"]
    cfg = parse_settings(block, block.config(channels=3), [f"ptf={text}"])
    assert cfg.ptf == (2, 0, 1)
    cfg = parse_settings(block, block.config(channels=3), ["gamma=1.5,0.5,2", "beta=[0, 0.25, -1]"])
    assert cfg.gamma == (1.5, 0.5, 2) and cfg.beta == (0, 0.25, -1)


def test_config_file_round_trip_gives_the_named_configs_verilog(capsys, tmp_path):
    """The config's text, read back by --config-file, emits the named config's module byte for byte."""
    cfg = BLOCKS["pwl"].configs["recip16_u12"]
    (tmp_path / "recip.toml").write_text(to_text(cfg))
    named, from_file = tmp_path / "named", tmp_path / "file"
    assert run(capsys, "verilog", "pwl", "--config", "recip16_u12", "-o", str(named))[0] == 0
    assert run(capsys, "verilog", "pwl", "--config-file", str(tmp_path / "recip.toml"), "-o", str(from_file))[0] == 0
    assert (named / "pwl__recip16_u12.v").read_bytes() == (from_file / "pwl__recip16_u12.v").read_bytes()


def test_config_file_with_set_on_top(capsys, tmp_path):
    (tmp_path / "c.toml").write_text("rows = 2\ncols = 2\n")
    status, out, _ = run(capsys, "verilog", "mac_array", "--config-file", str(tmp_path / "c.toml"),
                         "--set", "cols=3", "-o", str(tmp_path))
    assert status == 0
    assert out.strip().endswith(f"mac_array__{config_hash(MacArrayConfig(rows=2, cols=3))}.v")


BLOCK_NAMES = ", ".join(BLOCKS)
MAC_KEYS = ("rows, cols, a_width, a_signed, b_width, b_signed, max_k, acc_width, input_reg, mult_reg, output_reg, "
            "multiplier, acc_split, readout")


@pytest.mark.parametrize("argv, message", [
    (["verilog", "softmax"], f"unknown block 'softmax'; blocks: {BLOCK_NAMES}"),
    (["verilog", "mac_array", "--set", "depth=4"], f"unknown key 'depth' for mac_array; keys: {MAC_KEYS}"),
    (["verilog", "mac_array", "--set", "rows=four"], "rows=four: expected an integer"),
    (["verilog", "mac_array", "--set", "acc_width=wide"], "acc_width=wide: expected an integer or none"),
    (["verilog", "mac_array", "--set", "a_signed=maybe"], "a_signed=maybe: expected true or false"),
    (["verilog", "shiftmax", "--set", "scale=small"], "scale=small: expected a number"),
    (["verilog", "shiftmax", "--set", "scale=true"], "scale=true: expected a number"),
    (["verilog", "shiftmax", "--set", "scale=-0.5"], "Scale must be a positive finite number, not -0.5"),
    (["verilog", "shiftmax", "--set", "variant=fast"], "Variant must be one of pytorch, tvm, ibert, not 'fast'"),
    (["verilog", "ilayernorm", "--set", "ptf=1,x,2"], "ptf=1,x,2: expected a list of numbers, e.g. 1,2,3 or [1, 2, 3]"),
    (["verilog", "ilayernorm", "--set", "ptf=[1, 2"], "ptf=[1, 2: expected a list of numbers, e.g. 1,2,3 or [1, 2, 3]"),
    (["verilog", "ilayernorm", "--set", "ptf=1,2"], "ptf must have one entry per channel (64), not 2"),
    (["verilog", "mac_array", "--set", "rows"], "--set takes KEY=VALUE, not 'rows'"),
    (["verilog", "mac_array", "--set", "rows=2", "--set", "rows=3"], "--set rows given twice"),
    (["verilog", "mac_array", "--set", "rows=40"], "Array rows must be between 1 and 32, not 40"),
    (["verilog", "requant", "--config", "int4"],
     "unknown config 'int4' for requant; configs: int8, int8_x4, uint8_single, int8_x4_ecp5, uint8_single_ecp5, "
     "int8_x4_ecp5_reg"),
    (["verilog", "requant", "--config", "int8", "--config-file", "x.toml"],
     "give either --config or --config-file, not both"),
    (["verilog", "requant", "--config-file", "missing.toml"],
     "cannot read config file missing.toml: No such file or directory"),
    (["verilog", "requant", "--name", "2fast"],
     "--name '2fast': expected a Verilog identifier (letters, digits, _; not starting with a digit)"),
    (["verilog"], "give a block name or --all"),
    (["verilog", "--all", "requant"],
     "--all emits every named config: give no block, --config, --config-file, --set or --name with it"),
    (["verilog", "--all", "--set", "rows=2"],
     "--all emits every named config: give no block, --config, --config-file, --set or --name with it"),
    (["verilog", "requant", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "argument command: invalid choice: 'frobnicate' (choose from 'list', 'verilog', 'sim', 'report', 'bench', 'bitstream', 'program', 'run', 'formal', 'sweep')"),
    (["sim", "requant", "--sim", "modelsim"], "unknown simulator 'modelsim'; simulators: icarus, verilator"),
    (["report", "--device", "xc7a35t"], "unknown device 'xc7a35t'; devices: ice40-up5k, ecp5-85f"),
    (["report", "--block", "requant", "--config", "int4"], "unknown config 'int4' for requant"),
    (["report", "--block", "nope"], f"unknown block 'nope'; blocks: {BLOCK_NAMES}"),
    (["report", "--set", "lanes=2"], "--config-file and --set report one custom config: give exactly one --block"),
    (["report", "--seeds", "two"], "argument --seeds: invalid int value: 'two'"),
    (["report", "--placer", "sa2"], "argument --placer: invalid choice: 'sa2' (choose from 'heap', 'static')"),
])
def test_errors(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "out"
    status, out, err = run(capsys, *argv, *(["-o", str(out_dir)] if argv[0] in ("verilog", "report") else []))
    assert status == 2
    assert err == f"qarith: error: {message}\n"
    assert not out_dir.exists()


@pytest.mark.parametrize("text, message", [
    ("rows = 2\ndepth = 3\n", "Unknown field 'depth' for MacArrayConfig; fields: " + MAC_KEYS),
    ("rows = \n", "Not a TOML table of MacArrayConfig fields: Invalid value (at line 1, column 8)"),
    ("rows = 2.0\n", "rows must be an integer, not 2.0"),
    ("rows = 0\n", "Array rows must be between 1 and 32, not 0"),
    ('multiplier = "dsp"\n', "Multiplier must be one of fabric, ice40_dual, ecp5_reg, ecp5_pipe, not 'dsp'"),
])
def test_bad_config_files(capsys, tmp_path, text, message):
    (tmp_path / "bad.toml").write_text(text)
    status, _, err = run(capsys, "verilog", "mac_array", "--config-file", str(tmp_path / "bad.toml"),
                         "-o", str(tmp_path / "out"))
    assert (status, err) == (2, f"qarith: error: {message}\n")
    assert not (tmp_path / "out").exists()


def test_config_file_text_is_the_canonical_form():
    text = to_text(BLOCKS["ilayernorm"].configs["c3_i6"])
    assert text == ("channels = 3\nin_width = 6\nout_scale = 0.0625\nout_width = 8\nvariable_length = false\n"
                    "multiplier = \"fabric\"\n")
    assert from_text(BLOCKS["ilayernorm"].config, text) == BLOCKS["ilayernorm"].configs["c3_i6"]


def test_help_lists_blocks_and_simulators(capsys):
    with pytest.raises(SystemExit):
        main(["sim", "--help"])
    out = capsys.readouterr().out
    assert "{icarus,verilator}" in out and "lns_add" in out


def test_cli_constants_match_the_layers():
    """The CLI names simulators and devices without importing cocotb or the FPGA flow at start-up."""
    from qarith.fpga.report import DEVICES as report_devices
    from qarith.sim.common.runner import SIMULATORS as runner_simulators
    assert SIMULATORS == runner_simulators and DEVICES == tuple(report_devices)


def test_console_script_exit_status():
    result = subprocess.run([sys.executable, "-m", "qarith.cli", "verilog", "nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("qarith: error: unknown block 'nope'")


def test_readme_block_table_matches_registry():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert block_table() in readme
