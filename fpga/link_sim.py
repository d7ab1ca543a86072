"""A simulated board on a socket: the :class:`~qarith.fpga.shell.Shell` around a block, emitted as
Verilog and run by cocotb (:mod:`qarith.sim.common.shell`, Verilator or Icarus), its UART pins bridged to a
TCP port on localhost. The host driver connects with ``socket://127.0.0.1:PORT``.
"""

import contextlib
import json
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from amaranth.back import verilog
from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from ..hdl.common.verilog import write_if_changed
from ..sim.common.runner import BUILD, build_lock, prepare_simulator, simulation_model
from .shell import Shell

__all__ = ["simulated_board", "free_port"]


def free_port():
    """A TCP port on localhost that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def simulated_board(generator, cfg, name, clk_hz=12_000_000, baud=1_000_000, simulator="verilator",
                    stats=None):
    """Build the shell around ``generator(cfg)``, start its simulation and yield the URL to open.

    When the ``with`` block ends (the caller must have closed its port), waits for the simulation to
    finish and checks it passed; ``stats`` (a dict), when given, receives the bridge's figures
    (simulated cycles, bytes each way, divisor) and ``clk_hz``.
    """
    prepare_simulator(simulator)
    shell = Shell(generator, cfg, name, clk_hz, baud)
    top = "shell__" + name.replace(":", "__")
    # One build per link rate, so test runs and `qarith run --port sim` do not rebuild each other's.
    build_dir = (BUILD / "sim" / f"{top}__div{shell.divisor}" / simulator).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(simulator)
    # Boards of one config started at once (two processes) build one at a time; each runs in its own folder.
    with build_lock(build_dir):
        source = build_dir / f"{top}.v"
        write_if_changed(source, verilog.convert(shell, name=top, emit_src=False))
        models = [simulation_model(spec, build_dir) for spec in getattr(shell.block, "sim_sources", [])]
        build_args = ["-Wno-fatal", "-Wno-WIDTH"] if simulator == "verilator" else []
        runner.build(sources=[*models, source], hdl_toplevel=top, build_dir=build_dir, timescale=("1ns", "1ps"),
                     build_args=build_args, always=False)
    port = free_port()
    # Each run's files (results, readiness, figures) in its own folder: two boards of one config may run
    # at once (two processes), and one's readiness must never be taken for the other's.
    run_dir = Path(tempfile.mkdtemp(prefix=f"run{port}_", dir=build_dir))
    stats_file = run_dir / "bridge_stats.json"
    ready_file = run_dir / "bridge_listening"
    outcome = {}

    def run():
        try:
            outcome["results"] = runner.test(
                test_module="qarith.sim.common.shell", hdl_toplevel=top, build_dir=build_dir, test_dir=run_dir,
                timescale=("1ns", "1ps"), extra_env={"QARITH_BRIDGE_PORT": str(port), "QARITH_UART_DIVISOR": str(shell.divisor),
                           "QARITH_BRIDGE_STATS": str(stats_file), "QARITH_BRIDGE_READY": str(ready_file)})
        except BaseException as error:      # reported in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _wait_listening(ready_file, thread)
    try:
        yield f"socket://127.0.0.1:{port}"
    finally:
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    tests, failed = get_results(Path(outcome["results"]))
    if tests == 0 or failed:
        raise AssertionError(f"{top}: the simulated board failed (log: {run_dir})")
    if stats is not None:
        stats.update(json.loads(stats_file.read_text()), clk_hz=clk_hz, baud=baud)
    shutil.rmtree(run_dir, ignore_errors=True)


def _wait_listening(ready_file, thread, timeout=300):
    """Wait until the bench listens (it writes ``ready_file`` once the simulator has loaded)."""
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if not thread.is_alive() or time.monotonic() > deadline:
            thread.join(timeout=1)
            raise RuntimeError(f"the simulated board did not start: {ready_file.parent}")
        time.sleep(0.05)
