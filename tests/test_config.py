"""The canonical text form of configs (qarith.golden.common.config): lossless for every registered config."""

import dataclasses

import pytest

from qarith.golden.common.config import config_hash, from_dict, from_text, to_dict, to_text
from qarith.golden.lut_unary import LutUnaryConfig
from qarith.registry import BLOCKS

NAMED = [(block.name, name) for block in BLOCKS.values() for name in block.configs]


@pytest.mark.parametrize("block_name, config_name", NAMED, ids=[f"{b}-{c}" for b, c in NAMED])
def test_every_registered_config_round_trips(block_name, config_name):
    block = BLOCKS[block_name]
    cfg = block.configs[config_name]
    back = from_text(block.config, to_text(cfg))
    assert back == cfg
    for f in dataclasses.fields(cfg):                  # same values and the same types, field by field
        assert type(getattr(back, f.name)) is type(getattr(cfg, f.name)), f.name
    assert to_text(back) == to_text(cfg)


def test_text_is_toml_with_exact_floats_and_tuples():
    cfg = BLOCKS["ilayernorm"].configs["c64_ptf_affine"]
    text = to_text(cfg)
    assert text.splitlines()[0] == "channels = 64"
    assert "gamma = [0.75, 0.875, 1.0, 1.125, 1.25, 0.75," in text
    assert from_text(type(cfg), text).gamma == cfg.gamma


def test_none_fields_are_left_out_and_read_back_as_none():
    cfg = BLOCKS["mac_array"].config()
    assert "acc_width" not in to_dict(cfg) and cfg.acc_width is None
    assert from_text(type(cfg), to_text(cfg)).acc_width is None


def test_floats_that_need_all_their_digits_survive():
    cfg = BLOCKS["shiftmax"].config(scale=0.1 + 0.2)
    assert from_text(type(cfg), to_text(cfg)).scale == 0.1 + 0.2


def test_hash_names_the_config():
    a, b = BLOCKS["mac_array"].config(rows=2), BLOCKS["mac_array"].config(rows=3)
    assert config_hash(a) != config_hash(b) and len(config_hash(a)) == 8
    assert config_hash(a) == config_hash(from_text(type(a), to_text(a)))


def test_a_callable_field_has_no_text_form():
    cfg = LutUnaryConfig(function=lambda x: x * 0)
    with pytest.raises(TypeError, match=r"^LutUnaryConfig\.function = <function .*> has no text form"):
        to_text(cfg)


def test_lists_are_not_silently_accepted_by_configs():
    with pytest.raises(TypeError, match=r"^ptf must be a tuple or None, not \[0, 0, 0\]$"):
        BLOCKS["ilayernorm"].config(channels=3, ptf=[0, 0, 0])
    assert from_dict(BLOCKS["ilayernorm"].config, {"channels": 3, "ptf": [0, 0, 0]}).ptf == (0, 0, 0)
