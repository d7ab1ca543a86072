import pytest
import torch

from qarith.golden.common.shift_exp import shift_exp
from qarith.golden.shiftgelu import ShiftGeluConfig, gelu_reference, ibert_gelu_constants, shiftgelu
from qarith.registry import BLOCKS
from qarith.sim.shiftgelu import vectors

from tiers import fast_tier, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"factor": "poly"}, r"^Factor must be one of scale, shift, not 'poly'$"),
        ({"in_width": 17}, r"^Input width must be between 2 and 16, not 17$"),
        ({"scale": 0}, r"^Scale must be a positive finite number, not 0$"),
        ({"exp_shift": 0}, r"^Exp shift must be between 1 and 30, not 0$"),
        ({"sig_width": 1}, r"^Sigmoid width must be between 2 and 16, not 1$"),
        ({"method": "erf"}, r"^Method must be one of shift, ibert, not 'erf'$"),
        ({"erf_shift": 15}, r"^Erf shift must be between 0 and 14, not 15$"),
        # 1.702 / 256: x0 = floor(-150.4) = -151; e(0) = 151 * 2**23, twice that is past 2**31 - 1.
        ({"scale": 1 / 256, "exp_shift": 23},
         r"^Scale 0\.00390625 gives x0 = -151, so e1 \+ e2 can reach 2 \* 1266679808, beyond 31 bits; "
         r"use a coarser scale or a smaller exp_shift$"),
        # 1.702 S <= 2**-29: |x0| >= 2**29, so e1 + e2 reaches 2**31 at exp_shift 1; refused before
        # x0 = floor(-1 / (1.702 S)) is computed (-1 / 5e-324 overflows a float).
        ({"scale": 5e-324}, r"^Scale 5e-324 gives the exponential a scale of 2\*\*-29 or finer, so e1 \+ e2 would "
                            r"overflow 31 bits; use a coarser scale$"),
        ({"scale": 2.0 ** -29, "factor": "shift"},
         r"^Scale 1\.862645149230957e-09 gives the exponential a scale of 2\*\*-29 or finer"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            ShiftGeluConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"in_width": 8.5}, r"^in_width must be an integer, not 8\.5$"),
        ({"scale": "0.1"}, r"^scale must be a number, not '0\.1'$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            ShiftGeluConfig(**kwargs)

    def test_generator_rejects_other_configs(self):
        with pytest.raises(TypeError, match=r"^Configuration must be a ShiftGeluConfig, not 'gelu'$"):
            BLOCKS["shiftgelu"].generator("gelu")

    def test_factor_sets_x0(self):
        # 1.702 / 16 = 0.106375: floor(-9.40) = -10; the shift form keeps the input scale: -16.
        assert ShiftGeluConfig(factor="scale").x0 == -10
        assert ShiftGeluConfig(factor="shift").x0 == -16


class TestGolden:
    def test_worked_by_hand(self):
        cfg = ShiftGeluConfig(exp_shift=15)
        # x = 16 (1.0): y = 16, m = 16; e1 = exp_shift(0) = 10 * 2**15 = 327680. e2 = shift_exp(-16) with
        # x0 = -10: t = -16 - 8 + 1 = -23, q = 2, r = -3; e2 = ((-3 + 20) << 13) >> 1 = 69632.
        # f = floor((2**31 - 1) / 397312) = 5405; sigmoid = (327680 * 5405) >> 24 = 105; out = 16 * 105.
        assert shift_exp(torch.tensor([-16]), -10, 15, "pytorch").tolist() == [69632]
        assert shiftgelu(cfg, torch.tensor([16])).tolist() == [16 * 105]
        # x = -16: y - m = -16, m = 0: e1 = 69632, e2 = 327680: same f, sigmoid = (69632 * 5405) >> 24 = 22.
        assert shiftgelu(cfg, torch.tensor([-16])).tolist() == [-16 * 22]
        # 105/128 = 0.820 and 22/128 = 0.172 against sigmoid(+-1.702) = 0.846 and 0.154.

    def test_shift_factor(self):
        cfg = ShiftGeluConfig(factor="shift")
        # x0 = floor(-16) = -16. y = x + x/2 + x/8 + x/16 with floor shifts: 16 -> 27, -16 -> -27.
        # shift_exp(-27): t = -27 - 14 + 2 = -39, q = floor(39/16) = 2, r = -7, e = ((-7 + 32) << 13) >> 1 = 102400;
        # e(0) = 16 * 2**15 = 524288. f = floor((2**31 - 1) / 626688) = 3426 (626688 * 3426 = 2147033088).
        # x = 16: (524288 * 3426) >> 24 = 107 -> 1712; x = -16: (102400 * 3426) >> 24 = 20 -> -320.
        assert shiftgelu(cfg, torch.tensor([16, -16])).tolist() == [1712, -320]

    @pytest.mark.parametrize("factor", ["scale", "shift"])
    def test_error_against_gelu(self, factor):
        # The float function is x * sigmoid(1.702 x) ~ GELU (|difference| < 0.021 everywhere); the 8-bit
        # sigmoid's step at x: |x| / 128 + the shift-exp's error. Measured over every int8 code at scale
        # 1/16: max 0.062 for both factors with exp_shift = 15.
        cfg = ShiftGeluConfig(factor=factor)
        codes = cfg.codes
        error = (shiftgelu(cfg, codes).to(torch.float64) * cfg.out_scale - gelu_reference(cfg, codes)).abs()
        assert float(error.max()) < 0.07

    def test_reference_exp_shift_is_coarse(self):
        # With the reference's n = 23, f has 5 bits: the sigmoid of large x tops out at 125/128.
        cfg = ShiftGeluConfig(exp_shift=23)
        assert cfg.quotient_width == 5
        assert shiftgelu(cfg, torch.tensor([127])).tolist() == [127 * 125]

    def test_ibert_worked_by_hand(self):
        cfg = ShiftGeluConfig(method="ibert")
        # sf = (1/16) / 1.4142; b = floor(-1.769 / sf) = floor(-40.03) = -41; c = floor(-3.4626 / sf**2) = -1773;
        # s_erf = -0.2888 sf**2 = -5.64e-4, h = floor(1 / s_erf) = floor(-1772.8) = -1773.
        b, c, k, h, s_erf = ibert_gelu_constants(cfg)
        assert (b, c, k, h) == (-41, -1773, 0, -1773)
        # x = 16: min(16, 41) - 41 = -25; y = 625 - 1773 = -1148; out = -(16 (-1148 - 1773)) = 46736;
        # times |s_erf| / 32: 0.8238 (GELU(1.0) = 0.8413). x = -16: y = +1148, out = -(-16 (1148 - 1773)) = -10000:
        # -0.1763 (GELU(-1.0) = -0.1587).
        assert shiftgelu(cfg, torch.tensor([16, -16, 0])).tolist() == [46736, -10000, 0]

    def test_ibert_reference_erf_shift_collapses_on_int8(self):
        # The reference's >> 14 leaves the erf polynomial in {-1, 0} on int8 codes at scale 1/16: h = -1 and
        # every output is -x * (y - 1), so GELU(x) comes out as x * |s_erf| S / 2 * {1, 2}: useless.
        cfg = ShiftGeluConfig(method="ibert", erf_shift=14)
        assert ibert_gelu_constants(cfg)[3] == -1
        error = (shiftgelu(cfg, cfg.codes).to(torch.float64) * cfg.out_scale - gelu_reference(cfg, cfg.codes)).abs()
        assert float(error.max()) > 10
        good = ShiftGeluConfig(method="ibert")
        error = (shiftgelu(good, good.codes).to(torch.float64) * good.out_scale - gelu_reference(good, good.codes)).abs()
        assert float(error.max()) < 0.03      # measured 0.024: the polynomial erf, not the integer steps

    def test_monotone_for_positive_inputs_and_sign(self):
        cfg = ShiftGeluConfig()
        out = shiftgelu(cfg, cfg.codes)
        assert bool((out[cfg.codes >= 0].diff() >= 0).all())
        assert bool((out[cfg.codes < 0] <= 0).all())


@pytest.mark.parametrize("config_name", list(BLOCKS["shiftgelu"].configs))
def test_fast_tier_exhaustive(config_name):
    block = BLOCKS["shiftgelu"]
    cfg = block.configs[config_name]
    case, result = fast_tier("shiftgelu", config_name, vectors)["exhaustive"]
    assert len(case.beats) == 1 << cfg.in_width
    assert result.out_cycles[0] - result.in_cycles[0] == block.interface(cfg).latency
    assert result.out_cycles[-1] - result.out_cycles[0] == len(case.beats) - 1      # one per cycle


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("shiftgelu"))
def test_cocotb(config_name, simulator):
    slow_tier("shiftgelu", config_name, simulator)
