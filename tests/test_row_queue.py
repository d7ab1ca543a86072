"""RowQueue (hdl/mac_array.py), with and without its fabric output register: every row leaves once, in
order, under random writes (credited, never past ``depth``) and a random ``r_ready``; its latency and
its one-row-per-cycle throughput are exact."""

import random

import pytest
from amaranth.sim import Simulator

from qarith.hdl.mac_array import RowQueue


def run_queue(out_reg, depth, write_p, ready_p, rows, seed):
    """Drive ``rows`` rows through a queue; returns (rows read, write cycles, read cycles)."""
    dut = RowQueue(width=12, depth=depth, attrs={"ram_style": "block"}, out_reg=out_reg)
    rng = random.Random(seed)
    got, wrote_at, read_at = [], [], []

    async def bench(ctx):
        credits, sent, cycle = depth, 0, 0
        while len(got) < rows:
            if cycle > 40 * rows + 100:
                raise AssertionError(f"stalled after {len(got)} of {rows} rows")
            write = sent < rows and credits > 0 and rng.random() < write_p
            ready = rng.random() < ready_p
            ctx.set(dut.w_en, write)
            ctx.set(dut.w_data, sent if write else 0xfff)
            ctx.set(dut.r_ready, ready)
            valid, data = ctx.get(dut.r_valid), ctx.get(dut.r_data)
            await ctx.tick()
            if write:
                wrote_at.append(cycle)
                sent += 1
                credits -= 1
            if valid and ready:
                got.append(data)
                read_at.append(cycle)
                credits += 1
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, wrote_at, read_at


@pytest.mark.parametrize("out_reg", [False, True])
@pytest.mark.parametrize("depth", [1, 3, 8])
@pytest.mark.parametrize("write_p, ready_p", [(1.0, 1.0), (0.7, 0.5), (0.3, 0.9), (1.0, 0.2)])
def test_rows_leave_once_in_order(out_reg, depth, write_p, ready_p):
    rows = 200
    got, _, _ = run_queue(out_reg, depth, write_p, ready_p, rows, seed=depth * 7 + int(out_reg))
    assert got == list(range(rows))


@pytest.mark.parametrize("out_reg, latency", [(False, 2), (True, 3)])
def test_latency_and_throughput(out_reg, latency):
    # Always ready, a write every cycle: each row is read `latency` cycles after its write, and the
    # queue never holds more than latency + 1 rows (the credit a read returns is counted a cycle late).
    depth = latency + 1
    got, wrote_at, read_at = run_queue(out_reg, depth, 1.0, 1.0, 50, seed=1)
    assert got == list(range(50))
    assert [r - w for w, r in zip(wrote_at, read_at)] == [latency] * 50
    assert wrote_at == list(range(50))
