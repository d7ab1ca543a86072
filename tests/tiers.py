"""Shared pytest helpers: the two tiers every block runs."""

import os

import pytest

from qarith.registry import BLOCKS
from qarith.sim.common.bench import MODES, run_amaranth
from qarith.sim.common.runner import SIMULATORS, run_cocotb


def fast_tier(block_name, config_name, make_vectors, modes=("plain", "both")):
    """Every case of ``make_vectors(cfg)`` in amaranth.sim under ``modes``; returns the plain-mode
    results by case name (the scoreboard and stream-rule checks inside raise on the first problem; each
    case and mode has its own seed, :func:`qarith.sim.common.bench.case_seed`)."""
    block = BLOCKS[block_name]
    cfg = block.configs[config_name]
    if block.interface(cfg).sim_sources:
        pytest.skip("instantiates FPGA primitives that amaranth.sim cannot run; the cocotb tier covers it")
    results = {}
    for case in make_vectors(cfg):
        for mode in modes:
            result = run_amaranth(block.elaborate(cfg), case, *MODES[mode])
            if mode == "plain":
                results[case.name] = (case, result)
    return results


def slow_tier_params(block_name):
    """The block's named configs on the simulators, marked as the slow tier. ``make test`` runs the first
    config on both simulators and the others on one each, alternating (Verilator, Icarus, ...), to stay
    inside its time budget; ``make test-full`` (``QARITH_FULL=1``) runs every config on both."""
    full = os.environ.get("QARITH_FULL") == "1"
    params = []
    for index, name in enumerate(BLOCKS[block_name].configs):
        simulators = SIMULATORS if full or index == 0 else (SIMULATORS[index % 2],)
        params += [pytest.param(name, sim, marks=pytest.mark.cocotb, id=f"{name}-{sim}") for sim in simulators]
    return params


def slow_tier(block_name, config_name, simulator):
    block = BLOCKS[block_name]
    run_cocotb(block.generator, block.bench, block.configs[config_name], simulator, f"{block_name}__{config_name}")
