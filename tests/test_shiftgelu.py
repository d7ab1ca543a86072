import pytest
import torch
from shift_exp_bounds import shift_exp_interval

from qarith.golden.common.shift_exp import shift_exp
from qarith.golden.shiftgelu import (
    IBERT_ERF,
    IBERT_SQRT2,
    ShiftGeluConfig,
    gelu_reference,
    ibert_gelu_constants,
    shiftgelu,
)
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
        # Found by the config fuzz: I-BERT's sf**2 overflowed in the generator at 1e300; from 1.769 * 1.4142
        # on b = floor(-1.769 / sf) is -1.
        ({"method": "ibert", "scale": 1e300},
         r"^Scale 1e\+300 makes I-BERT's b = floor\(-1\.769 / \(scale / 1\.4142\)\) -1; use a scale below "
         r"2\.5017\d*$"),
        ({"method": "ibert", "scale": 2.6}, r"^Scale 2\.6 makes I-BERT's b = "),
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
    @pytest.mark.parametrize("exp_shift", [15, 23])
    def test_error_against_gelu(self, factor, exp_shift):
        # Every int8 code against GELU, within a bound derived from the roundings (y = x * floor(e1 f /
        # 2**(32 - w)), sigmoid value sigma = code / 2**(w - 1)):
        # * y: exactly x ("scale"), or x + (x >> 1) + (x >> 3) + (x >> 4) in [1.6875 x - 2.3125, 1.6875 x];
        # * e1 / e(0) and e2 / e(0): one of them is 1 (the exponential of 0), the other within
        #   shift_exp_interval of its input, so R = e1 / (e1 + e2) lies in [R_lo, R_hi];
        # * f = floor(N / s), N = 2**31 - 1: R N / 2**31 - e(0) / 2**31 < e1 f / 2**31 <= R N / 2**31, and the
        #   output floor takes up to 2**-(w - 1) off;
        # * the float function x sigmoid(1.702 x) differs from GELU by its own (computed) amount.
        cfg = ShiftGeluConfig(factor=factor, exp_shift=exp_shift)
        x = cfg.codes
        xf = x.to(torch.float64)
        if factor == "scale":
            y_low = y_high = xf
        else:
            y_low, y_high = 1.6875 * xf - 2.3125, 1.6875 * xf
        positive = x >= 0
        # x >= 0: e1 = e(0), e2 = e(-y); x < 0: e1 = e(y), e2 = e(0).
        other_low, other_high = shift_exp_interval(torch.where(positive, -y_high, y_low),
                                                   torch.where(positive, (-y_low).clamp(max=0), y_high),
                                                   cfg.x0, cfg.exp_shift)
        r_low = torch.where(positive, 1 / (1 + other_high), other_low / (other_low + 1))
        r_high = torch.where(positive, 1 / (1 + other_low), other_high / (other_high + 1))
        n = 2.0 ** 31 - 1
        sigma_low = r_low * n / 2 ** 31 - cfg.e_max / 2 ** 31 - 2.0 ** -(cfg.sig_width - 1)
        sigma_high = r_high * n / 2 ** 31
        value = xf * cfg.scale
        gelu = gelu_reference(cfg, x)
        bound = torch.maximum((value * sigma_low - gelu).abs(), (value * sigma_high - gelu).abs()) + 1e-12
        error = (shiftgelu(cfg, x).to(torch.float64) * cfg.out_scale - gelu).abs()
        assert bool((error <= bound).all())
        if exp_shift == 15:
            # No looser than the measured limit it replaces: the 8-bit sigmoid's own step at x = -8 is
            # 8 / 128 = 0.0625, the other terms add about 0.002.
            assert float(bound.max()) < 0.07

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

    def test_ibert_error_within_the_derived_bound(self):
        # i-GELU is x S / 2 (1 + L(x S / sqrt 2)), L(v) = sign(v) (a (min(|v|, -b') + b')**2 + 1); the integer
        # form differs from that float polynomial only by the floors of its constants (erf_shift = 0, so
        # no shift rounds): with sf = S / 1.4142 and w = min(|v|, -b') + b' in [b', 0],
        # * b = floor(b' / sf) moves w by less than sf: |a| |w_int**2 - w**2| <= |a| sf (2 |w| + sf);
        # * c = floor(1 / (a sf**2)) and h = floor(1 / s_erf), s_erf = a sf**2, each add less than |a| sf**2.
        # The output is off by |x S / 2| times their sum, plus the polynomial's own (computed) error.
        cfg = ShiftGeluConfig(method="ibert")
        a, b_real, _ = IBERT_ERF
        sf = cfg.scale / IBERT_SQRT2
        x = cfg.codes
        v = x.to(torch.float64) * sf
        w = torch.minimum(v.abs(), torch.tensor(-b_real, dtype=torch.float64)) + b_real
        polynomial = torch.sign(v) * (a * w ** 2 + 1)
        gelu = gelu_reference(cfg, x)
        half = x.to(torch.float64) * cfg.scale / 2
        constants = abs(a) * sf * (2 * w.abs() + sf) + 2 * abs(a) * sf ** 2
        bound = half.abs() * constants + (half * (1 + polynomial) - gelu).abs() + 1e-12
        error = (shiftgelu(cfg, x).to(torch.float64) * cfg.out_scale - gelu).abs()
        assert bool((error <= bound).all())
        assert float(bound.max()) < 0.03      # no looser than the measured limit it replaces

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
