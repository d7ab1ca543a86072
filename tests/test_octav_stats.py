import pytest
import torch

from qarith.golden.octav_stats import (OctavStatsConfig, mse, octav_clip, octav_clip_float, octav_density_clip,
                                       octav_stats, octav_step)
from qarith.registry import BLOCKS
from qarith.sim.common.bench import Vectors, run_amaranth
from qarith.sim.octav_stats import tensor_vectors, vectors

from tiers import fast_tier, slow_tier, slow_tier_params

#: Sakr et al. (ICML 2022), figure 1 and section 3: MSE-optimal clips of N(0, 1) and of Laplace(b = 1).
GAUSSIAN = {2: 1.7388, 3: 2.1611, 4: 2.5621, 8: 3.9241}
LAPLACE_4 = 5.0341


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"in_width": 1}, r"^Input width must be between 2 and 32, not 1$"),
        ({"in_width": 33}, r"^Input width must be between 2 and 32, not 33$"),
        ({"max_n": 0}, r"^Longest tensor must be between 1 and 16777216 elements, not 0$"),
        ({"bits": 0}, r"^Quantizer bits must be between 1 and 16, not 0$"),
        ({"bits": 17}, r"^Quantizer bits must be between 1 and 16, not 17$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            OctavStatsConfig(**kwargs)

    def test_bad_types(self):
        with pytest.raises(TypeError, match=r"^bits must be an integer, not 4\.0$"):
            OctavStatsConfig(bits=4.0)
        with pytest.raises(TypeError, match=r"^in_signed must be a bool, not 1$"):
            OctavStatsConfig(in_signed=1)

    def test_widths(self):
        cfg = OctavStatsConfig(in_width=8, max_n=256)
        # |-128| = 128; clips 0..129 need 8 bits; 256 * 128 = 2**15 needs 16; counts up to 256 need 9.
        assert (cfg.max_magnitude, cfg.clip_width, cfg.sum_width, cfg.count_width) == (128, 8, 16, 9)
        unsigned = OctavStatsConfig(in_width=8, in_signed=False, max_n=256, bits=2)
        assert (unsigned.max_magnitude, unsigned.clip_width, unsigned.sum_width) == (255, 9, 16)
        assert (cfg.k, unsigned.k) == (3 * 256, 12 * 16)

    def test_bad_tensors(self):
        cfg = OctavStatsConfig(in_width=8, max_n=4)
        with pytest.raises(TypeError, match=r"^OCTAV statistics take an integer tensor, not torch\.float32$"):
            octav_stats(cfg, torch.ones(3), 1)
        with pytest.raises(ValueError, match=r"^Tensor of 5 elements is longer than max_n = 4$"):
            octav_stats(cfg, torch.ones(5, dtype=torch.int64), 1)
        with pytest.raises(ValueError, match=r"^Elements must be 8-bit signed codes, between -128 and 127$"):
            octav_stats(cfg, torch.tensor([128]), 1)
        with pytest.raises(ValueError, match=r"^OCTAV statistics need a tensor of at least one element$"):
            octav_stats(cfg, torch.zeros(0, dtype=torch.int64), 1)
        with pytest.raises(ValueError, match=r"^Clip must be a non-negative integer$"):
            octav_stats(cfg, torch.tensor([1]), -1)


class TestGolden:
    def test_worked_by_hand(self):
        cfg = OctavStatsConfig(in_width=8, max_n=8, bits=1)
        x = torch.tensor([0, 1, -2, 3, -4, 5])
        # clip 3: clipped side |x| >= 3 is {3, 4, 5}: S = 12, N_out = 3; N_in = 3 (0, 1, 2).
        assert [int(t) for t in octav_stats(cfg, x, 3)] == [12, 3, 3]
        # k = 3 * 4 = 12: floor(12 * 12 / (12 * 3 + 3)) = floor(144 / 39) = 3.
        assert int(octav_step(cfg, 12, 3, 3)) == 3
        # Batched, one clip per tensor.
        sums, outs, ins = octav_stats(cfg, torch.stack([x, -x]), torch.tensor([0, 6]))
        assert (sums.tolist(), outs.tolist(), ins.tolist()) == ([15, 0], [6, 0], [0, 6])

    @pytest.mark.parametrize("bits, expected", sorted(GAUSSIAN.items()))
    def test_gaussian_density_clips(self, bits, expected):
        assert round(octav_density_clip("gaussian", bits), 4) == expected

    def test_laplace_density_clip(self):
        assert round(octav_density_clip("laplace", 4), 4) == LAPLACE_4

    @pytest.mark.parametrize("bits, expected", sorted(GAUSSIAN.items()))
    def test_integer_recursion_on_gaussian_quantiles(self, bits, expected):
        # 2**16 quantiles of N(0, 1) (2**18 for B = 8) at 2**12 codes per unit: the integer recursion, from s = 1, lands within
        # 0.2 % of the density's clip (the grid truncates the tails beyond 4.3 or 4.6 sigma). B <= 4 converges in
        # the reference's 10 passes; B = 8 needs 14 (from s = 1 the first steps are short) and is 2.6 %
        # short after 10.
        unit, n = 1 << 12, 1 << (18 if bits == 8 else 16)
        grid = torch.special.ndtri((torch.arange(n, dtype=torch.float64) + 0.5) / n)
        cfg = OctavStatsConfig(in_width=16, max_n=n, bits=bits)
        codes = (grid * unit).round().to(torch.int64)
        clip, passes = octav_clip(cfg, codes, iterations=20)
        assert abs(int(clip) / unit - expected) <= 2e-3 * expected
        assert (passes <= 10) == (bits <= 4)
        if bits == 8:
            short, _ = octav_clip(cfg, codes)
            assert 0.02 < 1 - int(short) / int(clip) < 0.04

    def test_integer_recursion_on_laplace_quantiles(self):
        unit, n = 1 << 10, 1 << 16
        p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        grid = -torch.sign(p - 0.5) * torch.log1p(-2 * (p - 0.5).abs())
        cfg = OctavStatsConfig(in_width=16, max_n=n, bits=4)
        clip, _ = octav_clip(cfg, (grid * unit).round().to(torch.int64))
        assert abs(int(clip) / unit - LAPLACE_4) <= 5e-3 * LAPLACE_4

    def test_clip_minimises_the_mse(self):
        gen = torch.Generator().manual_seed(3)
        x = torch.randn(20000, generator=gen, dtype=torch.float64)
        for bits in (2, 4, 6):
            clip = float(octav_clip_float(x, bits))
            best = mse(x, clip, bits)
            assert best < mse(x, 0.9 * clip, bits) and best < mse(x, 1.1 * clip, bits)
            assert best < mse(x, float(x.abs().max()), bits)

    def test_constant_tensor_is_a_fixed_point(self):
        # |x| = c: with the clipped side |x| >= s, s = c gives S = N c, N_in = 0, s' = c. (With |x| > s it
        # would give N_in = N, S = 0, s' = 0, then s' = c again: an oscillation.)
        cfg = OctavStatsConfig(in_width=8, max_n=16, bits=4)
        x = torch.tensor([37, -37] * 8)
        clip, passes = octav_clip(cfg, x)
        assert int(clip) == 37 and passes == 2
        assert int(octav_step(cfg, *octav_stats(cfg, x, 37))) == 37

    def test_all_zero_tensor(self):
        cfg = OctavStatsConfig(in_width=8, max_n=16)
        clip, _ = octav_clip(cfg, torch.zeros(16, dtype=torch.int64))
        assert int(clip) == 0
        assert [int(t) for t in octav_stats(cfg, torch.zeros(16, dtype=torch.int64), 0)] == [0, 16, 0]

    def test_one_outlier_is_clipped(self):
        # A Gaussian bulk (sigma 500 codes) and one element at the top code. Max calibration takes 32767;
        # the bulk alone would take 2.56 sigma. The MSE counts the outlier's clipping error too, so the
        # clip lands between the two, well below the outlier, and is a minimum of the MSE.
        gen = torch.Generator().manual_seed(5)
        x = (torch.randn(4095, generator=gen) * 500).round().to(torch.int64)
        x = torch.cat([x, torch.tensor([32767])])
        clip, passes = octav_clip(OctavStatsConfig(in_width=16, max_n=4096, bits=4), x)
        clip = int(clip)
        assert 2.56 * 500 < clip < 32767 / 4 and passes < 10
        best = mse(x, clip, 4)
        assert all(best < mse(x, other, 4) for other in (0.9 * clip, 1.1 * clip, 2.56 * 500, 32767))

    def test_unsigned_factor(self):
        # Non-negative data, unsigned quantizer (4**-B / 12): the clip of |N(0,1)| is larger than the
        # signed one (a quarter of the quantization noise per level at the same clip).
        unit, n = 1 << 12, 1 << 15
        half = torch.special.ndtri(0.5 + 0.5 * (torch.arange(n, dtype=torch.float64) + 0.5) / n)
        codes = (half * unit).round().to(torch.int64)
        signed_clip, _ = octav_clip(OctavStatsConfig(in_width=16, max_n=n, bits=4), codes)
        unsigned_clip, _ = octav_clip(OctavStatsConfig(in_width=16, in_signed=False, max_n=n, bits=4), codes)
        assert int(unsigned_clip) > int(signed_clip)
        # And it is the float recursion's clip with the unsigned factor.
        reference = float(octav_clip_float(half, 4, is_signed=False))
        assert abs(int(unsigned_clip) / unit - reference) <= 1e-3 * reference


@pytest.mark.parametrize("config_name", list(BLOCKS["octav_stats"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["octav_stats"]
    cfg = block.configs[config_name]
    results = fast_tier("octav_stats", config_name, vectors)
    case, result = results["random"]
    # One element per cycle without idles or backpressure; the statistics 2 cycles after the last one.
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))
    last_beats = [origin[-1] for origin in case.origin]
    latency = block.interface(cfg).latency
    assert [out - result.in_cycles[beat] for out, beat in zip(result.out_cycles, last_beats)] == \
        [latency] * len(last_beats)


def test_host_iterates_the_hardware():
    # The host loop of the paper's recursion with the block in amaranth.sim doing every pass: the same
    # clips, pass by pass, as the golden model's iteration.
    from qarith.hdl.octav_stats import OctavStats
    cfg = OctavStatsConfig(in_width=12, max_n=200, bits=3)
    gen = torch.Generator().manual_seed(7)
    x = (torch.randn(200, generator=gen) * 300).round().to(torch.int64)
    clip, history = 1, []
    for _ in range(10):
        case = tensor_vectors(cfg, f"pass{len(history)}", [x], clip)
        result = run_amaranth(OctavStats(cfg), case)
        following = int(octav_step(cfg, *(result.outputs[0][key] for key in ("sum_out", "n_out", "n_in"))))
        history.append(following)
        if following == clip:
            break
        clip = following
    golden_clip, passes = octav_clip(cfg, x)
    assert (clip, len(history)) == (int(golden_clip), passes)
    assert abs(clip / 300 - octav_density_clip("gaussian", 3)) < 0.2


def test_scoreboard_catches_a_wrong_count():
    from qarith.hdl.octav_stats import OctavStats
    cfg = OctavStatsConfig(in_width=8, max_n=16)
    case = tensor_vectors(cfg, "one", [torch.tensor([1, 2, 3])], 2)
    wrong = dict(case.expected[0], n_in=case.expected[0]["n_in"] + 1)
    with pytest.raises(AssertionError):
        run_amaranth(OctavStats(cfg), Vectors(case.name, case.beats, [wrong], case.static, case.origin))


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("octav_stats"))
def test_cocotb(config_name, simulator):
    slow_tier("octav_stats", config_name, simulator)


class TestLinearInt8Calibration:
    def test_bad_method(self):
        from torch import nn

        from qarith.golden.linear_int8 import quantize_linear
        with pytest.raises(ValueError, match=r"^Calibration method must be 'max' or 'octav', not 'mse'$"):
            quantize_linear(nn.Linear(4, 2), torch.randn(8, 4), calibration_method="mse")

    def test_max_is_the_default_and_octav_clips(self):
        from torch import nn

        from qarith.golden.linear_int8 import quantize_linear
        torch.manual_seed(0)
        linear = nn.Linear(64, 4)
        # Heavy-tailed inputs (Student t, 3 degrees of freedom): max calibration spends its range on the tails.
        calibration = torch.randn(256, 64) / ((torch.randn(3, 256, 64) ** 2).sum(0) / 3).sqrt()
        default, by_max = quantize_linear(linear, calibration), quantize_linear(linear, calibration,
                                                                                calibration_method="max")
        octav = quantize_linear(linear, calibration, calibration_method="octav")
        assert default.input_scale == by_max.input_scale and torch.equal(default.weight, by_max.weight)
        # The input range becomes [max(min, -s), min(max, s)] with s the 8-bit clip of the calibration
        # values, inside the tails (at 8 bits only just: the quantization noise is small beside the
        # clipping error of the few largest values).
        clip = float(octav_clip_float(calibration.reshape(-1), 8))
        low, high = max(float(calibration.min()), -clip), min(float(calibration.max()), clip)
        assert clip < float(calibration.abs().max())
        assert octav.input_scale == pytest.approx((high - low) / 255, rel=1e-12)
        assert octav.input_scale < by_max.input_scale
        # Weights: per channel, the clip over 127.
        expected = octav_clip_float(linear.weight.detach().double(), 8) / 127
        assert torch.allclose(octav.weight_scale, expected, rtol=1e-12)
        assert bool((octav.weight_scale <= by_max.weight_scale).all())

    def test_accuracy_table(self):
        # make bench's OCTAV rows: the integer clips match the paper's to 0.2 % once converged; the
        # layer's error moves by a few per cent either way at 8 bits (the measured table is in the README).
        from qarith.fpga.accuracy.octav import octav_linear
        row = octav_linear("laplace", 64)
        assert 0 < row["octav_rel_rms"] < 0.05 and 0 < row["max_rel_rms"] < 0.05
        assert abs(row["change"]) < 0.2
