"""Shared pytest helpers: the two tiers every block runs."""

import os

import pytest

from qarith.registry import BLOCKS
from qarith.sim.common.bench import MODES, run_amaranth, vectors_prefix
from qarith.sim.common.runner import SIMULATORS, run_cocotb


FULL = os.environ.get("QARITH_FULL") == "1"

#: Input beats of each case that ``make test``'s amaranth.sim tier plays under stalls (``STRESS_BEATS``)
#: and without (``PLAIN_BEATS``): the cocotb tier plays every case of every named config whole, in both
#: modes, on Icarus or Verilator (or both); ``make test-full`` plays every case whole here too.
STRESS_BEATS = 512
PLAIN_BEATS = 4096


def played(case, mode):
    """``case`` as ``make test``'s amaranth.sim tier plays it in ``mode``: its first :data:`STRESS_BEATS`
    or :data:`PLAIN_BEATS` input beats when it is longer and can be cut (its expected beats name their
    inputs), else whole; always whole under ``make test-full``."""
    limit = PLAIN_BEATS if mode == "plain" else STRESS_BEATS
    if FULL or case.origin is None or len(case.beats) <= limit:
        return case
    return vectors_prefix(case, limit)


def fast_tier(block_name, config_name, make_vectors, modes=("plain", "both")):
    """Every case of ``make_vectors(cfg)`` in amaranth.sim under ``modes``; returns the plain-mode
    results by case name, with the case as played (:func:`played`; the scoreboard and stream-rule checks
    inside raise on the first problem; each case and mode has its own seed,
    :func:`qarith.sim.common.bench.case_seed`)."""
    block = BLOCKS[block_name]
    cfg = block.configs[config_name]
    if block.interface(cfg).sim_sources:
        pytest.skip("instantiates FPGA primitives that amaranth.sim cannot run; the cocotb tier covers it")
    results = {}
    for case in make_vectors(cfg):
        for mode in modes:
            run = played(case, mode)
            result = run_amaranth(block.elaborate(cfg), run, *MODES[mode])
            if mode == "plain":
                results[case.name] = (run, result)
    return results


def slow_tier_params(block_name):
    """The block's named configs on the simulators, marked as the slow tier. ``make test`` runs the first
    config on both simulators, and a config that ``amaranth.sim`` cannot run (FPGA primitives) on one,
    alternating (Verilator, Icarus, ...); the others run in ``make test``'s fast tier only, and on both
    simulators in ``make test-full`` (``QARITH_FULL=1``), which runs every config on both."""
    block = BLOCKS[block_name]
    params = []
    for index, name in enumerate(block.configs):
        if FULL or index == 0:
            simulators = SIMULATORS
        elif block.interface(block.configs[name]).sim_sources:
            simulators = (SIMULATORS[index % 2],)
        else:
            simulators = ()
        params += [pytest.param(name, sim, marks=pytest.mark.cocotb, id=f"{name}-{sim}") for sim in simulators]
    return params


def slow_tier(block_name, config_name, simulator):
    block = BLOCKS[block_name]
    run_cocotb(block.generator, block.bench, block.configs[config_name], simulator, f"{block_name}__{config_name}")
