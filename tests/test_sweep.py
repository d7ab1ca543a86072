"""The sweep engine (qarith.fpga.sweep) and ``qarith sweep``: spec errors, ranges, fronts, the ``--best``
query, the accuracy and energy figures, and two tiny sweeps on Dask (a LocalCluster, and a real
``dask scheduler`` + ``dask worker`` on 127.0.0.1) that must give the same records, the rerun from the cache."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qarith.cli import main
from qarith.fpga.sweep import (TIMING_FIELDS, SpecError, accuracy_metrics, best, energy_proxy, pareto_front,
                               parse_constraints, parse_spec, run_sweep, size_hint)
from qarith.registry import BLOCKS

TINY = """
block = "lns_mul"
base = "w8_b3_x16"
devices = ["ice40-up5k"]
seeds = 1
metrics = ["luts", "ff", "fmax_mhz", "energy_pj"]
[sweep]
lanes = [1, 2]
[[pareto]]
x = "luts"
y = "fmax_mhz"
"""


def spec_text(**changes):
    lines = {"block": '"pwl"', "base": '"gelu16_s8"', "devices": '["ice40-up5k"]'}
    lines.update(changes)
    sweep = lines.pop("sweep", "entries = [8, 16]")
    return "".join(f"{k} = {v}\n" for k, v in lines.items() if v is not None) + f"[sweep]\n{sweep}\n"


@pytest.mark.parametrize("changes, message", [
    ({"block": '"softmax"'}, r"unknown block 'softmax'; blocks: mac_array, "),
    ({"base": '"gelu99"'}, r"unknown base config 'gelu99' for pwl; configs: gelu16_s8, "),
    ({"sweep": "depth = [1, 2]"}, r"unknown field 'depth' in \[sweep\] for pwl; fields: function, "),
    ({"sweep": "entries = []"}, r"sweep.entries: empty range \[\]"),
    ({"sweep": "entries = {from = 32, to = 8, step = 8}"}, r"sweep.entries: empty range"),
    ({"sweep": 'entries = [8, "16"]'}, r"sweep.entries: expected an integer, not '16'"),
    ({"sweep": "entries = {from = 8, to = 32}"}, r"a range is \{from, to, step\} or \{from, to, times\}"),
    ({"sweep": "entries = [8, 100]"}, r"point \{'entries': 100\}: "),
    ({"sweep": "entries = [8]\nmethod = [\"nnlut\", \"irnn\"]", "combine": '"zip"'}, r"combine = \"zip\" needs"),
    ({"devices": '["xc7"]'}, r"unknown device 'xc7'; devices: ice40-up5k, ecp5-85f"),
    ({"seeds": "0"}, r"seeds must be a positive integer, not 0"),
    ({"metrics": '["area"]'}, r"unknown metric 'area'; metrics: luts, "),
    ({"colour": '"red"'}, r"unknown key 'colour'; keys: block, "),
    ({"sweep": ""}, r"\[sweep\] names no field to sweep"),
])
def test_spec_error(changes, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(spec_text(**changes), BLOCKS, source="s.toml")


def test_spec_error_cli(tmp_path, capsys, monkeypatch):
    """A malformed spec stops with one line before any job (no cluster) starts."""
    from qarith.fpga import sweep
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: pytest.fail("a job started"))
    path = tmp_path / "bad.toml"
    path.write_text(spec_text(sweep="entries = [8, true]"))
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"qarith: error: {path}: sweep.entries: expected an integer, not True\n"
    assert main(["sweep", str(tmp_path / "none.toml")]) == 2
    assert "cannot read sweep spec" in capsys.readouterr().err
    path.write_text(spec_text())
    assert main(["sweep", str(path), "--best", "max_error<<1", "--minimize", "luts"]) == 2
    assert "constraint 'max_error<<1': expected METRIC<NUMBER" in capsys.readouterr().err
    assert main(["sweep", str(path), "--best", "max_error<1"]) == 2
    assert capsys.readouterr().err == "qarith: error: --best needs --minimize METRIC or --maximize METRIC\n"


def test_ranges_and_points():
    spec = parse_spec(spec_text(sweep='entries = {from = 8, to = 32, times = 2}\nmethod = ["nnlut", "irnn"]'),
                      BLOCKS)
    assert [p.values for p in spec.points] == [{"entries": e, "method": m} for e in (8, 16, 32)
                                               for m in ("nnlut", "irnn")]
    assert spec.points[2].name == "gelu16_s8"       # a point equal to a named config takes its name
    spec = parse_spec(spec_text(sweep="entries = {from = 8, to = 24, step = 8}\nseed = [1, 2, 3]",
                                combine='"zip"'), BLOCKS)
    assert [p.values for p in spec.points] == [{"entries": 8, "seed": 1}, {"entries": 16, "seed": 2},
                                               {"entries": 24, "seed": 3}]



def test_size_hint_orders_larger_points_first():
    spec = parse_spec(spec_text(sweep='entries = [8, 32, 16]\nmethod = ["nnlut", "irnn"]'), BLOCKS)
    hints = [size_hint(p) for p in spec.points]
    assert hints == [8, 8, 32, 32, 16, 16]              # the string field does not count
    ordered = sorted(spec.points, key=lambda p: -size_hint(p))
    assert [p.values["entries"] for p in ordered] == [32, 32, 16, 16, 8, 8]


def record(luts, error, status="ok"):
    return {"status": status, "values": {"n": luts}, "block": "b", "config": str(luts), "device": "d",
            "metrics": {"luts": luts, "max_error": error, "fmax_mhz": 100.0 + luts}}


def test_pareto_and_best():
    records = [record(10, 0.5), record(20, 0.1), record(30, 0.2), record(40, 0.01), record(5, 0.0, "failed")]
    assert [r["metrics"]["luts"] for r in pareto_front(records, "luts", "max_error")] == [10, 20, 40]
    assert [r["metrics"]["luts"] for r in pareto_front(records, "luts", "fmax_mhz")] == [10, 20, 30, 40]
    assert best(records, parse_constraints("max_error<0.3"), "luts")["metrics"]["luts"] == 20
    assert best(records, parse_constraints("max_error <= 0.2, luts>25"), "fmax_mhz")["metrics"]["luts"] == 40
    assert best(records, parse_constraints("max_error<0.001"), "luts") is None


def test_accuracy_and_energy_figures():
    cfg = BLOCKS["pwl"].configs["gelu16_s8"]
    metrics, note = accuracy_metrics("pwl", cfg)
    assert metrics["max_error"] > 0 and metrics["max_error_lsb"] == metrics["max_error"] * 2 ** cfg.out_frac_bits
    assert "every input code" in note
    assert accuracy_metrics("mac_array", BLOCKS["mac_array"].configs["int8_4x4"])[0] is None
    cfg = BLOCKS["mac_array"].configs["int8_4x4"]
    pj, detail = energy_proxy("mac_array", cfg)
    assert pj == pytest.approx(0.2 + 0.03 + (cfg.acc_bits - 8) * 0.07 / 24, abs=1e-6)
    assert "Horowitz" in detail["source"] and "proxy" in detail["note"]
    assert energy_proxy("no_such_block", cfg) == (None, {"note": "no operation count for no_such_block"})


def comparable(records):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    spec = parse_spec(TINY, BLOCKS)
    return out, run_sweep(spec, out / "run", cache=out / "cache", workers=2, progress=False)


@pytest.mark.synthesis
def test_local_cluster_sweep(local_sweep, capsys):
    out, records = local_sweep
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert [r["values"] for r in records] == [{"lanes": 1}, {"lanes": 2}]
    assert not any(r["cached"] for r in records)
    assert records[0]["metrics"]["luts"] < records[1]["metrics"]["luts"]
    assert records[0]["accuracy_note"].startswith("lns_mul has no standard accuracy metric")
    assert (out / "run" / "pareto_fmax_mhz_vs_luts.png").stat().st_size > 1000
    assert json.loads((out / "run" / "sweep.json").read_text())["records"] == records
    # The rerun (through the CLI, with a query) takes every point from the cache: no cluster starts.
    spec = out / "tiny.toml"
    spec.write_text(TINY)
    assert main(["sweep", str(spec), "-o", str(out / "rerun"), "--cache", str(out / "cache"),
                 "--best", "luts<1000", "--minimize", "luts"]) == 0
    lines = capsys.readouterr().out.splitlines()[-2:]      # after the progress bar
    assert lines[0].startswith("2 points (0 failed, 2 from the cache)")
    assert lines[1].startswith("best (min luts with luts<1000): lns_mul ") and "(lanes=1)" in lines[1]
    rerun = json.loads((out / "rerun" / "sweep.json").read_text())["records"]
    assert all(r["cached"] for r in rerun) and comparable(rerun) == comparable(records)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.synthesis
def test_scheduler_sweep(local_sweep, tmp_path):
    """The same sweep on a real ``dask scheduler`` and ``dask worker`` (subprocesses on 127.0.0.1),
    through ``--scheduler``, with its own cache: the same records."""
    _, expected = local_sweep
    dask = str(Path(sys.executable).parent / "dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = [open(tmp_path / name, "w") for name in ("scheduler.log", "worker.log")]
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], stdout=logs[0], stderr=subprocess.STDOUT)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and scheduler.poll() is None, "the scheduler did not start"
                time.sleep(0.5)
        worker = subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
                                   "--no-dashboard", "--host", "127.0.0.1"], stdout=logs[1],
                                  stderr=subprocess.STDOUT, cwd=tmp_path)
        from distributed import Client
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        records = run_sweep(parse_spec(TINY, BLOCKS), tmp_path / "run", cache=tmp_path / "cache",
                            scheduler=address, progress=False)
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        for log in logs:
            log.close()
    assert not any(r["cached"] for r in records)
    assert comparable(records) == comparable(expected)
