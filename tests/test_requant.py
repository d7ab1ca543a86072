import pytest
import torch

from qarith.golden.requant import (
    INT32_MAX,
    INT32_MIN,
    RequantConfig,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rdbpot,
    requantize,
    srdhm,
)
from qarith.registry import BLOCKS
from qarith.sim.requant import vectors

from tiers import fast_tier, slow_tier, slow_tier_params

T = torch.tensor


class TestConfig:
    def test_defaults(self):
        cfg = RequantConfig()
        assert (cfg.out_min, cfg.out_max) == (-128, 127)
        assert (RequantConfig(out_signed=False).out_min, RequantConfig(out_signed=False).out_max) == (0, 255)

    @pytest.mark.parametrize("kwargs, message", [
        ({"lanes": 0}, r"^Lane count must be between 1 and 64, not 0$"),
        ({"acc_width": 33}, r"^Accumulator width must be between 2 and 32, not 33$"),
        ({"out_width": 1}, r"^Output width must be between 2 and 16, not 1$"),
        ({"rounding": "nearest"}, r"^Rounding must be one of double, single, not 'nearest'$"),
        ({"multiplier": "ice40"}, r"^Multiplier must be one of fabric, ecp5, ecp5_reg, not 'ice40'$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            RequantConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"lanes": 2.0}, r"^lanes must be an integer, not 2\.0$"),
        ({"out_signed": 1}, r"^out_signed must be a bool, not 1$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            RequantConfig(**kwargs)

    def test_generator_rejects_other_configs(self):
        from qarith.hdl.requant import Requant
        with pytest.raises(TypeError, match=r"^Configuration must be a RequantConfig, not 3$"):
            Requant(3)


class TestGolden:
    """Values worked by hand from the gemmlowp/TFLite definitions."""

    def test_srdhm(self):
        assert srdhm(T(INT32_MIN), T(INT32_MIN)).item() == INT32_MAX
        assert srdhm(T(3), T(1 << 30)).item() == 2      # 1.5 -> 2
        assert srdhm(T(-3), T(1 << 30)).item() == -1    # -1.5 -> -1: the nudge is 1 - 2^30
        assert srdhm(T(INT32_MIN), T(INT32_MAX)).item() == -(1 << 31) + 1

    def test_rdbpot_rounds_half_away_from_zero(self):
        assert rdbpot(T(5), T(1)).item() == 3
        assert rdbpot(T(-5), T(1)).item() == -3
        assert rdbpot(T(-6), T(2)).item() == -2
        assert rdbpot(T(6), T(2)).item() == 2
        assert rdbpot(T(-1), T(32)).item() == 0

    def test_multiplier(self):
        assert multiply_by_quantized_multiplier(100, 1 << 30, 0).item() == 50
        assert multiply_by_quantized_multiplier(100, 1 << 30, 1).item() == 100
        assert multiply_by_quantized_multiplier(100, 1 << 30, -2).item() == 13   # 12.5 -> 13
        assert multiply_by_quantized_multiplier(-100, 1 << 30, -2).item() == -13
        # (3 * 2^29) * 4 wraps to INT32_MIN in int32; then INT32_MIN * 0.5 = -2^30.
        assert multiply_by_quantized_multiplier(3 << 29, 1 << 30, 2).item() == -(1 << 30)
        assert multiply_by_quantized_multiplier(1 << 30, 1 << 30, 2).item() == 0       # 2^32 wraps to 0
        assert multiply_by_quantized_multiplier(-3, 1 << 30, 0, "single").item() == -1
        assert multiply_by_quantized_multiplier(3, 1 << 30, 0, "single").item() == 2

    def test_quantize_multiplier(self):
        assert quantize_multiplier(0.5) == (1 << 30, 0)
        assert quantize_multiplier(1.0) == (1 << 30, 1)
        assert quantize_multiplier(0.1) == (1717986918, -3)
        assert quantize_multiplier(1 - 2 ** -40) == (1 << 30, 1)
        assert quantize_multiplier(2 ** -40) == (0, 0)
        with pytest.raises(ValueError, match=r"^Real multiplier must be positive and finite, not -1\.0$"):
            quantize_multiplier(-1.0)

    def test_error_against_real_multiplication(self):
        """Requantization approximates x * M; double rounding stays within one output step."""
        gen = torch.Generator().manual_seed(3)
        x = torch.randint(-(1 << 24), 1 << 24, (4096,), generator=gen)
        for real in (0.9, 0.01, 3.7e-4, 1.5, 2.0 ** -12):
            m0, shift = quantize_multiplier(real)
            for rounding in ("double", "single"):
                got = multiply_by_quantized_multiplier(x, m0, shift, rounding).to(torch.float64)
                error = (got - x.to(torch.float64) * real).abs().max().item()
                assert error <= 1.0 + abs(real) * 1e-6 * (1 << 24), (real, rounding, error)

    def test_clamp_and_offset(self):
        cfg = RequantConfig()
        out = requantize(cfg, T([1000, -1000, 0]), 0, 1 << 30, 0, 10, -5, 100)
        assert out.tolist() == [100, -5, 10]


@pytest.mark.parametrize("config_name", list(BLOCKS["requant"].configs))
def test_fast_tier(config_name):
    results = fast_tier("requant", config_name, vectors)
    component = BLOCKS["requant"].interface(BLOCKS["requant"].configs[config_name])
    case, result = results["realistic"]
    assert result.out_cycles[0] - result.in_cycles[0] == component.latency
    # One beat per cycle: consecutive inputs are accepted on consecutive cycles.
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("requant"))
def test_cocotb(config_name, simulator):
    slow_tier("requant", config_name, simulator)
