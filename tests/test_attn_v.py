import pytest
import torch

from qarith.golden.attn_v import AttnVConfig, attn_v
from qarith.registry import BLOCKS
from qarith.sim.attn_v import vectors

from tiers import fast_tier, fixed_configs, slow_tier, slow_tier_params, variable_configs, variable_fast_tier


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"n": 0}, r"^Row length must be between 1 and 4096, not 0$"),
        ({"v_width": 1}, r"^V width must be between 2 and 16, not 1$"),
        ({"bits": 0}, r"^Code width must be between 1 and 5, not 0$"),
        ({"rounding": "nearest"}, r"^Rounding must be one of floor, exact, not 'nearest'$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            AttnVConfig(**kwargs)

    def test_generator_rejects_other_configs(self):
        with pytest.raises(TypeError, match=r"^Configuration must be a AttnVConfig, not 2$"):
            BLOCKS["attn_v"].generator(2)


class TestGolden:
    def test_worked_by_hand(self):
        cfg = AttnVConfig(n=3, bits=2)
        code, zero, v = torch.tensor([[0, 1, 3]]), torch.tensor([[0, 0, 0]]), torch.tensor([[5, -7, 9]])
        # exact: (5 << 3) + (-7 << 2) + (9 << 0) = 40 - 28 + 9 = 21 at scale 2**-3 (5 - 3.5 + 1.125 = 2.625).
        assert attn_v(cfg, code, zero, v).tolist() == [21]
        # floor: 5 + (-7 >> 1) + (9 >> 3) = 5 - 4 + 1 = 2.
        assert attn_v(AttnVConfig(n=3, bits=2, rounding="floor"), code, zero, v).tolist() == [2]
        assert attn_v(cfg, code, torch.tensor([[1, 0, 1]]), v).tolist() == [-28]


def test_bench_takes_five_bit_codes():
    # Found by the config fuzz: attn_v accepts 5-bit codes, Log-Int-Softmax makes at most 4; the bench
    # feeds its 4-bit codes to the 5-bit block and the random and extreme cases span all 32 codes.
    cfg = AttnVConfig(n=8, bits=5)
    cases = {case.name: case for case in vectors(cfg)}
    assert max(beat["code"] for beat in cases["log_int_softmax_codes"].beats) <= 15
    assert max(beat["code"] for beat in cases["extremes"].beats) == 31


@pytest.mark.parametrize("config_name", fixed_configs("attn_v"))
def test_fast_tier(config_name):
    block = BLOCKS["attn_v"]
    cfg = block.configs[config_name]
    results = fast_tier("attn_v", config_name, vectors)
    case, result = results["log_int_softmax_codes"]
    assert result.out_cycles[0] - result.in_cycles[cfg.n - 1] == block.interface(cfg).latency
    # One term per cycle: the last sum leaves latency cycles after the last term, rows * n terms after the first.
    assert result.out_cycles[-1] - result.in_cycles[0] == len(case.beats) - 1 + block.interface(cfg).latency


@pytest.mark.parametrize("config_name", variable_configs("attn_v"))
def test_fast_tier_variable_length(config_name):
    """Variable-length rows (causal, banded, random lengths, edge rows cut short, over-long rows),
    bit-exact with per-row lengths checked through ``last``."""
    variable_fast_tier("attn_v", config_name, vectors)


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("attn_v"))
def test_cocotb(config_name, simulator):
    slow_tier("attn_v", config_name, simulator)
