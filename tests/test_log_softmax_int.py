import math

import pytest
import torch

from qarith.golden.common.scores import KINDS, score_rows
from qarith.golden.common.shift_exp import ibert_exp
from qarith.golden.log_softmax_int import LogSoftmaxIntConfig, log_round, log_softmax_int
from qarith.registry import BLOCKS
from qarith.sim.log_softmax_int import vectors

from tiers import fast_tier, fixed_configs, slow_tier, slow_tier_params, variable_configs, variable_fast_tier


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"n": 0}, r"^Row length must be between 1 and 4096, not 0$"),
        ({"in_width": 17}, r"^Input width must be between 2 and 16, not 17$"),
        ({"bits": 5}, r"^Code width must be between 1 and 4, not 5$"),
        ({"scale": 0.5}, r"^Scale 0\.5 makes x0 = floor\(-ln 2 / scale\) -1 or less precise than one step; "
                         r"use a scale below 0\.34655$"),
        # c = floor(2.79 / S**2) << 30 grows as 1/S**2: at S = 1/1024 the comparisons need 73 bits.
        ({"scale": 1 / 1024}, r"^Scale 0\.0009765625 and row length 64 make the exponentials too wide "
                              r"\(more than 62 bits in the comparisons\); use a coarser scale or a shorter row$"),
        # At 2**-16 or finer e(0) has 64 bits or more; refused before it is computed (2.79 / S**2 divides by
        # zero at 1e-300, -ln 2 / 5e-324 overflows).
        ({"scale": 1e-300}, r"^Scale 1e-300 and row length 64 make the exponentials too wide "),
        ({"scale": 5e-324}, r"^Scale 5e-324 and row length 64 make the exponentials too wide "),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            LogSoftmaxIntConfig(**kwargs)

    def test_bad_types(self):
        with pytest.raises(TypeError, match=r"^bits must be an integer, not 4\.0$"):
            LogSoftmaxIntConfig(bits=4.0)


class TestGolden:
    def test_log_round_against_the_float_formula(self):
        v = list(range(1, 70000))
        expected = []
        for value in v:
            f = math.floor(math.log2(value))
            expected.append(f + (1 if value - 2 ** f >= 2 ** (f - 1) else 0))
        assert log_round(torch.tensor(v)).tolist() == expected

    def test_worked_by_hand(self):
        cfg = LogSoftmaxIntConfig(n=2)
        # Scores [16, 0] at 1/16: e = [714 << 30, 558 << 29] (I-BERT i-exp, see test_shiftmax); s / e =
        # 1 + 558/1428 = 1.39 -> 1 -> code 0; and 1428/558 + 1 = 3.56 -> 4 -> log2 rounds to 2.
        e = ibert_exp(torch.tensor([0, -16]), 1 / 16)
        assert e.tolist() == [714 << 30, 558 << 29]
        code, zero = log_softmax_int(cfg, torch.tensor([[16, 0]]))
        assert code.tolist() == [[0, 2]] and zero.tolist() == [[0, 0]]

    def test_zero_beyond_the_codes(self):
        # A score far below the maximum: s / e is huge, the rounded log2 passes 2**bits - 1: weight 0.
        cfg = LogSoftmaxIntConfig(n=2)
        code, zero = log_softmax_int(cfg, torch.tensor([[127, -128]]))
        assert zero.tolist() == [[0, 1]] and code.tolist() == [[0, 15]]

    @pytest.mark.parametrize("config_name", list(BLOCKS["log_softmax_int"].configs))
    def test_weights_against_the_exact_ratio(self, config_name):
        # With a = s / e, v = round(a) and code k: v lies in [1.5 2**(k-1), 1.5 2**k) (k >= 1) or is 1, and
        # |a - v| <= 1/2, so the weight over the ratio, a / 2**k, lies in [0.625, 1.5] (k = 2, v = 3,
        # a = 2.5 gives 0.625). A zero weight means the rounded log2 reached levels = 2**bits, i.e.
        # v >= 1.5 * 2**(levels - 1), so e / s <= 1 / (0.75 * 2**levels - 1/2).
        cfg = BLOCKS["log_softmax_int"].configs[config_name]
        for kind in KINDS:
            x, _ = score_rows(cfg, kind, 50, cfg.n)
            e = ibert_exp(x - x.amax(dim=-1, keepdim=True), cfg.scale).to(torch.float64)
            ratio = e / e.sum(dim=-1, keepdim=True)
            code, zero = log_softmax_int(cfg, x)
            weight = 2.0 ** -code.to(torch.float64)
            kept = zero == 0
            assert bool((weight[kept] / ratio[kept] <= 1.5).all())
            assert bool((weight[kept] / ratio[kept] >= 0.625).all())
            assert bool((ratio[~kept] <= 1 / (0.75 * 2 ** cfg.levels - 0.5)).all())



@pytest.mark.parametrize("config_name", fixed_configs("log_softmax_int"))
def test_fast_tier(config_name):
    block = BLOCKS["log_softmax_int"]
    cfg = block.configs[config_name]
    case, result = fast_tier("log_softmax_int", config_name, vectors)["uniform_back_to_back"]
    latency = block.interface(cfg).latency
    assert result.out_cycles[0] - result.in_cycles[cfg.n - 1] == latency
    rows = len(case.beats) // cfg.n
    assert result.out_cycles[-1] - result.in_cycles[0] == (cfg.n - 1) + latency + rows * cfg.n - 1


@pytest.mark.parametrize("config_name", variable_configs("log_softmax_int"))
def test_fast_tier_variable_length(config_name):
    """Variable-length rows (causal, banded, random lengths, edge rows cut short, over-long rows),
    bit-exact with per-row lengths checked through ``last``."""
    variable_fast_tier("log_softmax_int", config_name, vectors)


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("log_softmax_int"))
def test_cocotb(config_name, simulator):
    slow_tier("log_softmax_int", config_name, simulator)
