import pytest
import torch

from qarith.golden.lut_unary import FUNCTIONS, LutUnaryConfig, lut_table, lut_unary
from qarith.registry import BLOCKS
from qarith.sim.lut_unary import vectors

from tiers import fast_tier, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"function": "erf"}, r"^Function must be one of gelu, exp, sigmoid, tanh, silu or a callable, not 'erf'$"),
        ({"in_width": 11}, r"^Input width must be between 1 and 10 for a direct table, not 11$"),
        ({"in_width": 0}, r"^Input width must be between 1 and 10 for a direct table, not 0$"),
        ({"out_width": 17}, r"^Output width must be between 2 and 16, not 17$"),
        ({"in_frac_bits": 17}, r"^Input fraction bits must be between -16 and 16, not 17$"),
        ({"out_frac_bits": -17}, r"^Output fraction bits must be between -16 and 24, not -17$"),
        ({"function": "exp", "in_frac_bits": -8},
         r"^Function exp is not finite over the input range \[-32768\.0, 32512\.0\]$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            LutUnaryConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"function": 3}, r"^Function must be a name or a callable, not 3$"),
        ({"in_width": 8.0}, r"^in_width must be an integer, not 8\.0$"),
        ({"out_signed": "yes"}, r"^out_signed must be a bool, not 'yes'$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            LutUnaryConfig(**kwargs)

    def test_table_bytes(self):
        assert LutUnaryConfig(in_width=10, out_width=12).table_bytes == 2048
        assert BLOCKS["lut_unary"].interface(LutUnaryConfig()).table_bytes == 256


class TestGolden:
    @pytest.mark.parametrize("name", list(FUNCTIONS))
    def test_within_half_a_step_where_not_saturated(self, name):
        cfg = LutUnaryConfig(function=name, in_frac_bits=5, out_width=12, out_frac_bits=6)
        table = lut_table(cfg)
        exact = cfg.function_values() * 2 ** cfg.out_frac_bits
        inside = (table > cfg.out_min) & (table < cfg.out_max)
        assert bool(inside.any())
        assert float((table[inside] - exact[inside]).abs().max()) <= 0.5
        assert bool((table[exact >= cfg.out_max] == cfg.out_max).all())

    def test_values_worked_by_hand(self):
        cfg = LutUnaryConfig(function="tanh", in_width=4, in_frac_bits=2, out_frac_bits=6)
        # Address 0b1100 is code -4, x = -1.0: tanh(-1) * 64 = -48.74 -> -49. Address 2: x = 0.5,
        # tanh(0.5) * 64 = 29.59 -> 30.
        assert lut_unary(cfg, torch.tensor([-4, 2])).tolist() == [-49, 30]
        assert lut_table(cfg)[0b1100] == -49

    def test_callable(self):
        cfg = LutUnaryConfig(function=lambda x: x * x, in_width=4, in_frac_bits=0, out_width=8, out_frac_bits=0)
        assert lut_unary(cfg, torch.arange(-8, 8)).tolist() == [min(v * v, 127) for v in range(-8, 8)]


@pytest.mark.parametrize("config_name", list(BLOCKS["lut_unary"].configs))
def test_fast_tier_exhaustive(config_name):
    block = BLOCKS["lut_unary"]
    cfg = block.configs[config_name]
    case, result = fast_tier("lut_unary", config_name, vectors)["exhaustive"]
    assert len(case.beats) == cfg.depth
    assert result.out_cycles[0] - result.in_cycles[0] == block.interface(cfg).latency


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("lut_unary"))
def test_cocotb(config_name, simulator):
    slow_tier("lut_unary", config_name, simulator)
