import pytest
import torch
from torch import nn

from qarith.golden.linear_int8 import LinearInt8Config, error_bound, float_error, linear_int8_hw, quantize_linear
from qarith.registry import BLOCKS
from qarith.sim.linear_int8 import calibrated_layer, vectors

from tiers import fast_tier, slow_tier, slow_tier_params


class TestConfig:
    def test_derived_configs(self):
        cfg = LinearInt8Config(rows=2, cols=8, max_k=256)
        assert (cfg.mac.rows, cfg.mac.cols, cfg.mac.acc_bits) == (2, 8, 24)
        assert (cfg.requant.lanes, cfg.requant.acc_width) == (8, 24)

    def test_deepest_config_fits_int32(self):
        assert LinearInt8Config(max_k=65536).mac.acc_bits == 32

    def test_rejects_bad_array(self):
        with pytest.raises(ValueError, match=r"^Array cols must be between 1 and 32, not 0$"):
            LinearInt8Config(cols=0)

    def test_quantizer_needs_a_linear(self):
        with pytest.raises(TypeError, match=r"^Expected a torch\.nn\.Linear, not"):
            quantize_linear(nn.Conv1d(1, 1, 1), torch.zeros(1, 1))


def test_generator_rejects_other_configs():
    from qarith.hdl.linear_int8 import LinearInt8
    with pytest.raises(TypeError, match=r"^Configuration must be a LinearInt8Config, not None$"):
        LinearInt8(None)


class TestGolden:
    @pytest.mark.parametrize("activation", ["none", "relu", "relu6"])
    def test_hardware_form_equals_tflite_reference(self, activation):
        cfg = LinearInt8Config(rows=4, cols=8, max_k=64)
        _, calibration, qlinear = calibrated_layer(cfg, 64, 7, activation)
        x_q = qlinear.quantize_input(calibration[:32])
        reference = qlinear.forward_int(x_q)
        hardware = linear_int8_hw(cfg, x_q.reshape(8, 4, 64), qlinear.weight, qlinear.folded_bias(),
                                  qlinear.multiplier, qlinear.shift, qlinear.output_zero_point,
                                  qlinear.act_min, qlinear.act_max)
        assert torch.equal(hardware.reshape(32, 8), reference)

    @pytest.mark.parametrize("depth", [16, 64, 256])
    @pytest.mark.parametrize("activation", ["none", "relu6"])
    def test_float_error_within_rounding_bound(self, depth, activation):
        cfg = LinearInt8Config(rows=4, cols=16, max_k=256)
        linear, calibration, qlinear = calibrated_layer(cfg, depth, 0, activation)
        with torch.no_grad():
            reference = linear(calibration)
            if activation == "relu6":
                reference = reference.clamp(0, 6)
            error = (qlinear(calibration) - reference).abs()
        assert bool((error <= error_bound(qlinear, linear, calibration)).all())
        assert float_error(qlinear, linear, calibration)["mean_lsb"] < 0.5

    def test_drop_in_module(self):
        cfg = LinearInt8Config(cols=4)
        linear, calibration, qlinear = calibrated_layer(cfg, 32, 1)
        assert qlinear(calibration[:5]).shape == linear(calibration[:5]).shape


@pytest.mark.parametrize("config_name", list(BLOCKS["linear_int8"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["linear_int8"]
    component = block.interface(block.configs[config_name])
    case, result = fast_tier("linear_int8", config_name, vectors)["calibrated_none"]
    first_last = next(n for n, beat in enumerate(case.beats) if beat["last"])
    assert result.out_cycles[0] - result.in_cycles[first_last] == component.latency


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("linear_int8"))
def test_cocotb(config_name, simulator):
    slow_tier("linear_int8", config_name, simulator)
