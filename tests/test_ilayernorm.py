import math

import pytest
import torch

from qarith.golden.common.config import from_text, to_text
from qarith.golden.ilayernorm import (
    ILayerNormConfig,
    activation_rows,
    float_layernorm,
    ilayernorm,
    isqrt,
    layernorm_params,
    mean_round,
    reference_sqrt,
)
from qarith.golden.requant import quantize_multiplier
from qarith.registry import BLOCKS
from qarith.sim.common.bench import run_amaranth
from qarith.sim.common.rows import row_vectors
from qarith.sim.ilayernorm import vectors

from tiers import fast_tier, fixed_configs, slow_tier, slow_tier_params, variable_configs, variable_fast_tier


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"channels": 0}, r"^Channel count must be between 1 and 4096, not 0$"),
        ({"in_width": 17}, r"^Input width must be between 2 and 16, not 17$"),
        ({"out_width": 1}, r"^Output width must be between 2 and 16, not 1$"),
        ({"out_scale": -1.0}, r"^Output scale must be a positive finite number, not -1\.0$"),
        ({"channels": 2, "ptf": (0, 1, 2)}, r"^ptf must have one entry per channel \(2\), not 3$"),
        ({"channels": 2, "ptf": (0, 4)}, r"^PTF factors must be between 0 and 3, not \[0, 4\]$"),
        ({"channels": 2, "gamma": (1.0, -1.0)},
         r"^gamma must be positive and finite in every channel \(fold a sign into the next layer\)$"),
        ({"channels": 2, "beta": (0.0, math.nan)}, r"^beta must be finite in every channel$"),
        ({"multiplier": "dsp"}, r"^Multiplier must be one of fabric, ecp5, ecp5_reg, not 'dsp'$"),
        # beta / (gamma sqrt(64) / 2**30) = 15 * 2**27 = 2013265920: z + bias could wrap past 2**31.
        ({"channels": 64, "beta": (15.0,) * 64},
         r"^beta 15\.0 over gamma 1\.0 needs a bias of 2013265920; z \+ bias must fit 32 bits with \|z\| up to "
         r"2\*\*30, so \|bias\| must stay below 2\*\*30 at this channel count$"),
        # 1e20 * sqrt(1) / 2**30 * 32 is about 3e12: a shift of 42, beyond the 6-bit shift's 31.
        ({"channels": 1, "gamma": (1e20,)},
         r"^gamma 1e\+20 with output scale 0\.03125 needs a multiplier beyond the requantizer's range$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            ILayerNormConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"channels": 64.0}, r"^channels must be an integer, not 64\.0$"),
        ({"ptf": (0.5,) * 64}, r"^ptf entries must be integers, not 0\.5$"),
        ({"ptf": [0] * 64}, r"^ptf must be a tuple or None, not \[0, "),
        ({"gamma": 1.0}, r"^gamma must be a tuple or None, not 1\.0$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            ILayerNormConfig(**kwargs)

    def test_generator_rejects_other_configs(self):
        with pytest.raises(TypeError, match=r"^Configuration must be a ILayerNormConfig, not 1$"):
            BLOCKS["ilayernorm"].generator(1)

    def test_text_round_trip_keeps_tuples(self):
        cfg = ILayerNormConfig(channels=2, ptf=(0, 1), gamma=(1.0, 2.0))
        again = from_text(ILayerNormConfig, to_text(cfg))
        assert again == cfg and again.ptf == (0, 1) and again.gamma == (1.0, 2.0)


class TestGolden:
    def test_isqrt_converges_for_every_variance(self):
        n = torch.arange(0, 1 << 16)
        assert isqrt(n).tolist() == [math.isqrt(v) for v in range(1 << 16)]
        big = torch.randint(0, 1 << 40, (2000,), generator=torch.Generator().manual_seed(0))
        assert isqrt(big).tolist() == [math.isqrt(int(v)) for v in big]

    def test_reference_ten_iterations_do_not_converge(self):
        # Ten Newton steps from 2**16 halve the start ten times when var / k is 0: 64 for var = 100.
        var = torch.tensor([100, 10_000, 1_000_000, 4_000_000])
        assert reference_sqrt(var).tolist() == [64, 108, 1000, 2000]
        assert isqrt(var).tolist() == [10, 100, 1000, 2000]
        small = torch.arange(1, 4096)
        assert bool((reference_sqrt(small) != isqrt(small)).all())

    def test_mean_rounds_half_to_even(self):
        # 5/2 = 2.5 -> 2, 7/2 = 3.5 -> 4, -5/2 = -2.5 -> -2, 8/3 = 2.67 -> 3, -8/3 -> -3.
        assert mean_round(torch.tensor([5, 7, -5]), 2).tolist() == [2, 4, -2]
        assert mean_round(torch.tensor([8, -8]), 3).tolist() == [3, -3]

    def test_worked_by_hand(self):
        cfg = ILayerNormConfig(channels=2, out_scale=1 / 32)
        # x = [3, -1]: s1 = 2, mu = 1; s2 = 10, var = 10 - 2*1*2 + 2*1 = 8; std = isqrt(8) = 2 (sqrt 2.83
        # floored); f = floor((2**31 - 1) / 2) = 2**30 - 1; z = (+-2 f) >> 1 = +-(2**30 - 1).
        # M = sqrt(2) / 2**30 * 32: z M = +-45.25 -> +-45. The float LayerNorm gives +-1.0 (32 codes): the
        # floored square root of a tiny variance costs 41 % here, 1 / sqrt(var) in general.
        bias, multiplier, shift = layernorm_params(cfg)
        assert bias == [0, 0] and (multiplier[0], shift[0]) == quantize_multiplier(math.sqrt(2) * 32 / 2 ** 30)
        assert ilayernorm(cfg, torch.tensor([[3, -1]])).tolist() == [[45, -45]]

    def test_zero_variance_row(self):
        cfg = ILayerNormConfig(channels=4, beta=(0.5, -0.5, 0.0, 1.0))
        # Equal codes: mu = x, var = 0, std = 1; every z is 0, so each output is beta / out_scale.
        assert ilayernorm(cfg, torch.tensor([[7, 7, 7, 7]])).tolist() == [[16, -16, 0, 32]]

    def test_ptf_shifts_to_a_common_scale(self):
        ptf = ILayerNormConfig(channels=4, ptf=(0, 1, 2, 3))
        plain = ILayerNormConfig(channels=4)
        x = torch.tensor([[5, 3, -2, 1]])
        # x << alpha = [5, 6, -8, 8]: the PTF config on x equals the plain config on the shifted codes.
        assert ilayernorm(ptf, x).tolist() == ilayernorm(plain, torch.tensor([[5, 6, -8, 8]])).tolist()

    @pytest.mark.parametrize("config_name", list(BLOCKS["ilayernorm"].configs))
    def test_error_against_float_layernorm(self, config_name):
        # Error sources, in output steps: the floored square root (relative error below 1 / std), the
        # rounded mean (half an input code: 0.5 sqrt(C) / std normalised units, times gamma / out_scale),
        # the final rounding (half a step) and the floored reciprocal and z (far below a step): so
        # |out - ref| <= |ref| / std + 0.5 sqrt(C) / std * gamma / out_scale + 1, row by row.
        cfg = BLOCKS["ilayernorm"].configs[config_name]
        x = activation_rows(cfg, 200)
        reference = float_layernorm(cfg, x) / cfg.out_scale
        out = ilayernorm(cfg, x).to(torch.float64)
        xp = x << torch.tensor(cfg.alphas)
        var = ((xp - xp.to(torch.float64).mean(dim=-1, keepdim=True).round()) ** 2).sum(dim=-1, keepdim=True)
        std = isqrt(var.round().to(torch.int64)).clamp(min=1).to(torch.float64)
        gamma = max(cfg.gamma) if cfg.gamma is not None else 1.0
        bound = reference.abs() / std + 0.5 * math.sqrt(cfg.channels) / std * gamma / cfg.out_scale + 1
        inside = (reference > cfg.out_min) & (reference < cfg.out_max)
        assert bool(((out - reference).abs() <= bound)[inside].all())
        assert bool((out[reference >= cfg.out_max + bound] == cfg.out_max).all())


@pytest.mark.parametrize("config_name", fixed_configs("ilayernorm"))
def test_fast_tier(config_name):
    block = BLOCKS["ilayernorm"]
    cfg = block.configs[config_name]
    case, result = fast_tier("ilayernorm", config_name, vectors)["uniform_back_to_back"]
    latency = block.interface(cfg).latency
    assert result.out_cycles[0] - result.in_cycles[cfg.channels - 1] == latency
    rows = len(case.beats) // cfg.channels
    assert result.out_cycles[-1] - result.in_cycles[0] == (cfg.channels - 1) + latency + rows * cfg.channels - 1


def test_single_channel():
    """C = 1: every row has zero variance; the full rate holds with the extra banks."""
    cfg = ILayerNormConfig(channels=1, beta=(0.25,))
    dut = BLOCKS["ilayernorm"].elaborate(cfg)
    case = row_vectors(cfg, "single", torch.arange(-128, 128).reshape(-1, 1), ilayernorm)
    assert set(case.expected) == {8}
    result = run_amaranth(dut, case)
    assert result.out_cycles[-1] - result.in_cycles[0] == dut.latency + 256 - 1
    run_amaranth(BLOCKS["ilayernorm"].elaborate(cfg), case, idle=0.3, backpressure=0.5, seed=2)


@pytest.mark.parametrize("config_name", variable_configs("ilayernorm"))
def test_fast_tier_variable_length(config_name):
    """Variable-length rows (causal, banded, random lengths, edge rows cut short, over-long rows),
    bit-exact with per-row lengths checked through ``last``."""
    variable_fast_tier("ilayernorm", config_name, vectors)


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("ilayernorm"))
def test_cocotb(config_name, simulator):
    slow_tier("ilayernorm", config_name, simulator)
