"""Shared pytest helpers: the two tiers every block runs."""

import pytest

from qarith.registry import BLOCKS
from qarith.sim.common.bench import MODES, full_run, played, run_amaranth
from qarith.sim.common.runner import SIMULATORS, run_cocotb


FULL = full_run()

def fast_tier(block_name, config_name, make_vectors, modes=("plain", "both")):
    """Every case of ``make_vectors(cfg)`` in amaranth.sim under ``modes``; returns the plain-mode
    results by case name, with the case as played (:func:`qarith.sim.common.bench.played`; the
    scoreboard and stream-rule checks inside raise on the first problem; each case and mode has its own
    seed, :func:`qarith.sim.common.bench.case_seed`)."""
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


def slow_tier_params(block_name, simulator=None):
    """The block's named configs on the simulators, marked as the slow tier. ``make test`` (to stay inside
    its budget) runs the first config on one simulator, Verilator and Icarus alternating from block to
    block in registry order (``simulator`` pins it), and the first config of each set of FPGA-primitive
    models (``sim_sources``: configs that ``amaranth.sim`` cannot run) on one too; the others run in
    ``make test``'s fast tier only. ``make test-full``
    (``QARITH_FULL=1``) runs every config on both simulators."""
    block = BLOCKS[block_name]
    first = simulator or SIMULATORS[list(BLOCKS).index(block_name) % 2]
    params = []
    models = set()
    for index, name in enumerate(block.configs):
        sources = tuple(block.interface(block.configs[name]).sim_sources)
        if FULL:
            simulators = SIMULATORS
        elif index == 0:
            simulators = (first,)
        elif sources and sources not in models:
            simulators = (SIMULATORS[(SIMULATORS.index(first) + index) % 2],)
        else:
            simulators = ()
        models.add(sources)
        params += [pytest.param(name, sim, marks=pytest.mark.cocotb, id=f"{name}-{sim}") for sim in simulators]
    return params


def slow_tier(block_name, config_name, simulator):
    block = BLOCKS[block_name]
    run_cocotb(block.generator, block.bench, block.configs[config_name], simulator, f"{block_name}__{config_name}")


def fixed_configs(block_name):
    """The block's registered configs with fixed-length rows (all of them for a block without the
    ``variable_length`` option)."""
    return [name for name, cfg in BLOCKS[block_name].configs.items() if not getattr(cfg, "variable_length", False)]


def variable_configs(block_name):
    """The block's registered configs with ``variable_length=True``."""
    return [name for name in BLOCKS[block_name].configs if name not in fixed_configs(block_name)]


def variable_fast_tier(block_name, config_name, make_vectors):
    """:func:`fast_tier` for a variable-length config, then its ``causal`` case (rows of lengths 1..n
    back to back, first; under ``make test`` the other families follow in the same case) checked for
    time: the first row's output ``row_latency(1)`` after its one element."""
    block = BLOCKS[block_name]
    cfg = block.configs[config_name]
    results = fast_tier(block_name, config_name, make_vectors)
    case, result = results["causal"]
    assert len(case.origin[0]) == 1
    assert result.out_cycles[0] - result.in_cycles[0] == block.interface(cfg).row_latency(1)
    return results
