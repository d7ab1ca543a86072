import pytest
import torch

from qarith.golden.dfp_quant import (DfpQuantConfig, Lfsr, dfp_dequantize, dfp_quant, float_words,
                                     word_values)
from qarith.registry import BLOCKS
from qarith.sim.common.bench import Vectors, run_amaranth
from qarith.sim.dfp_quant import tensor_vectors, vectors

from tiers import fast_tier, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"exp_width": 1}, r"^Exponent width must be between 2 and 8, not 1$"),
        ({"man_width": 24}, r"^Fraction width must be between 1 and 23, not 24$"),
        ({"bits": 26}, r"^Code bits must be between 2 and 25 for 23 fraction bits, not 26$"),
        ({"bits": 1}, r"^Code bits must be between 2 and 25 for 23 fraction bits, not 1$"),
        ({"rounding": "floor"}, r"^Rounding must be 'stochastic' or 'nearest', not 'floor'$"),
        ({"lfsr_width": 24}, r"^LFSR width must be 16 or 32, not 24$"),
        ({"rand_bits": 17, "lfsr_width": 16}, r"^Random bits must be between 1 and 16, not 17$"),
        ({"seed": 0}, r"^Seed must be between 1 and 4294967295, not 0$"),
        ({"seed": 1 << 16, "lfsr_width": 16}, r"^Seed must be between 1 and 65535, not 65536$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            DfpQuantConfig(**kwargs)

    def test_bad_types(self):
        with pytest.raises(TypeError, match=r"^bits must be an integer, not 8\.0$"):
            DfpQuantConfig(bits=8.0)
        with pytest.raises(TypeError, match=r"^rounding must be a string, not 1$"):
            DfpQuantConfig(rounding=1)

    def test_bad_words(self):
        cfg = DfpQuantConfig()
        with pytest.raises(TypeError, match=r"^Dynamic fixed point takes word bit patterns \(integers\), not "
                                            r"torch\.float32$"):
            dfp_quant(cfg, [torch.ones(2)])
        with pytest.raises(ValueError, match=r"^Infinities and NaN have no dynamic fixed-point code$"):
            dfp_quant(cfg, [float_words(cfg, torch.tensor([1.0, float("inf")]))])
        with pytest.raises(ValueError, match=r"^A tensor must be a non-empty 1-D tensor of words$"):
            dfp_quant(cfg, [torch.zeros(0, dtype=torch.int64)])
        with pytest.raises(ValueError, match=r"^Words must be 32-bit patterns$"):
            dfp_quant(cfg, [torch.tensor([1 << 32])])


class TestLfsr:
    def test_sixteen_bit_period_is_maximal(self):
        cfg = DfpQuantConfig(lfsr_width=16, rand_bits=1, seed=1)
        lfsr = Lfsr(cfg)
        states = set()
        for _ in range((1 << 16) - 1):
            states.add(lfsr.state)
            lfsr.step()
        assert len(states) == (1 << 16) - 1 and lfsr.state == 1

    def test_steps_worked_by_hand(self):
        cfg = DfpQuantConfig(lfsr_width=16, rand_bits=4, seed=1)
        lfsr = Lfsr(cfg)
        # 1: out 1, 0 ^ 0xB400 = 0xB400; then three zeros out: 0x5A00, 0x2D00, 0x1680. R = 0b0001.
        assert lfsr.draw(1).tolist() == [1] and lfsr.state == 0x1680
        # 0x1680 -> 0x0B40 -> 0x05A0 -> 0x02D0 -> 0x0168 (out bits 0, 0, 0, 0): R = 0.
        assert lfsr.draw(1).tolist() == [0] and lfsr.state == 0x0168

    def test_bits_are_balanced(self):
        cfg = DfpQuantConfig(rand_bits=8)
        draws = Lfsr(cfg).draw(20000).double()
        assert abs(float(draws.mean()) - 127.5) < 2.0


class TestGolden:
    def test_worked_by_hand(self):
        # float32, b = 8: 1.0 (e = 127, m = 2**23), 0.75 (e = 126, m = 1.5 * 2**23), -0.1875 (e = 124).
        # E = 127, base shift 23 + 2 - 8 = 17. 1.0: m / 2**17 = 64; 0.75: 0.75 * 2**23 / 2**17 = 48;
        # -0.1875: 48 / 4 = 12. Round to nearest (no random bits used): 64, 48, -12; value q 2**(E - 127 - 6).
        cfg = DfpQuantConfig(rounding="nearest")
        words = float_words(cfg, torch.tensor([1.0, 0.75, -0.1875]))
        ((codes, shared),) = dfp_quant(cfg, [words])
        assert (codes.tolist(), shared) == ([64, 48, -12], 127)
        assert dfp_dequantize(cfg, codes, shared).tolist() == [1.0, 0.75, -0.1875]

    def test_half_way_rounds_up_and_stochastic_brackets(self):
        # 1.0 and 2**-7 + 2**-8 (= 1.5 codes at b = 8): nearest gives 2; stochastic gives 1 or 2.
        nearest = DfpQuantConfig(rounding="nearest")
        words = float_words(nearest, torch.tensor([1.0, 2.0 ** -6 * 1.5]))
        assert dfp_quant(nearest, [words])[0][0].tolist() == [64, 2]
        stochastic = DfpQuantConfig()
        codes = torch.stack([c for c, _ in dfp_quant(stochastic, [words] * 400)])
        assert set(codes[:, 1].tolist()) == {1, 2}
        assert abs(float(codes[:, 1].double().mean()) - 1.5) < 0.1

    def test_saturation(self):
        # The largest significand at E: (2**24 - 1) / 2**17 = 128 - 2**-17, which rounds to 128 for any
        # u >= 2**-17: saturated to 127.
        cfg = DfpQuantConfig(rounding="nearest")
        largest = float_words(cfg, torch.tensor([1.9999999]))
        assert dfp_quant(cfg, [largest])[0][0].tolist() == [127]
        assert dfp_quant(cfg, [largest | (1 << 31)])[0][0].tolist() == [-127]

    def test_far_below_the_shared_exponent_is_zero_or_one_code(self):
        # 2**-40 beside 1.0: 2**-40 / 2**-6 = 2**-34 codes. Nearest: 0. Stochastic with 8 random bits:
        # floor(m 2**(k - r)) = 0, so 0 as well (the rounding resolves 2**-8 of a code).
        for rounding in ("nearest", "stochastic"):
            cfg = DfpQuantConfig(rounding=rounding)
            words = float_words(cfg, torch.tensor([1.0, 2.0 ** -40, -(2.0 ** -40)]))
            assert dfp_quant(cfg, [words])[0][0].tolist() == [64, 0, 0]

    def test_subnormals_and_all_zero(self):
        cfg = DfpQuantConfig(exp_width=5, man_width=10, bits=12, rounding="nearest")
        # float16 subnormals only: E = 1, base shift 0: the code is the fraction itself.
        words = torch.tensor([1, 2, 1023, 1 | (1 << 15)])
        assert dfp_quant(cfg, [words])[0][0].tolist() == [1, 2, 1023, -1]
        ((codes, shared),) = dfp_quant(cfg, [torch.tensor([0, 1 << 15, 0])])
        assert codes.tolist() == [0, 0, 0] and shared == 1

    @pytest.mark.parametrize("bits", [8, 10, 16])
    def test_error_bound_against_float(self, bits):
        # Each code is within one code step (stochastic) or half a step (nearest) of the float value, plus
        # 2**-k for the k-bit truncation before the rounding; a saturated code within one step.
        gen = torch.Generator().manual_seed(bits)
        values = torch.randn(4096, generator=gen) * torch.exp2(torch.randint(-8, 8, (4096,), generator=gen).float())
        for rounding, bound in (("stochastic", 1.0), ("nearest", 0.5)):
            cfg = DfpQuantConfig(bits=bits, rounding=rounding, rand_bits=16)
            words = float_words(cfg, values)
            ((codes, shared),) = dfp_quant(cfg, [words])
            step = 2.0 ** (shared - cfg.bias - (bits - 2))
            error = (dfp_dequantize(cfg, codes, shared) - word_values(cfg, words)).abs() / step
            saturated = codes.abs() == cfg.code_max
            assert float(error[~saturated].max()) <= bound + 2.0 ** -16
            assert float(error.max()) < 1 + 2.0 ** -16

    def test_stochastic_rounding_is_unbiased(self):
        # One tensor of 256 values each 0.3 codes above a code, quantized 200 times (the LFSR runs on):
        # stochastic rounding's mean error is ~0 (within 2**-8 of a code plus sampling noise); round to
        # nearest's is -0.3 codes, always.
        from qarith.fpga.accuracy.dfp import rounding_bias
        row = rounding_bias(fraction=0.3, draws=200)
        assert abs(row["stochastic_mean_error"]) < 0.02
        assert abs(row["nearest_mean_error"] + 0.3) < 1e-5


@pytest.mark.parametrize("config_name", list(BLOCKS["dfp_quant"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["dfp_quant"]
    cfg = block.configs[config_name]
    results = fast_tier("dfp_quant", config_name, vectors)
    case, result = results["narrow"]
    # Two passes of one word per cycle each, without a bubble; the code 2 cycles after its second-pass word.
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))
    latency = block.interface(cfg).latency
    assert [out - result.in_cycles[beats[0]] for out, beats in zip(result.out_cycles, case.origin)] == \
        [latency] * len(case.origin)


def test_lfsr_runs_on_across_tensors():
    # Two tensors in one case: the second's random bits follow the first's (the hardware and the model
    # agree on a long run), and a case restarted by reseed repeats the first tensor's codes.
    from qarith.hdl.dfp_quant import DfpQuant
    cfg = DfpQuantConfig(exp_width=8, man_width=7, bits=6, lfsr_width=16, rand_bits=8, seed=0x1234)
    gen = torch.Generator().manual_seed(9)
    words = float_words(cfg, torch.randn(100, generator=gen))
    case = tensor_vectors(cfg, "twice", [words, words])
    first, second = case.expected[:100], case.expected[100:]
    assert first != second
    run_amaranth(DfpQuant(cfg), case)


def test_scoreboard_catches_a_wrong_code():
    from qarith.hdl.dfp_quant import DfpQuant
    cfg = DfpQuantConfig(exp_width=8, man_width=7, bits=6, lfsr_width=16, rand_bits=8)
    case = tensor_vectors(cfg, "one", [float_words(cfg, torch.tensor([1.0, 0.3, -0.2]))])
    wrong = [case.expected[0], dict(case.expected[1], q=case.expected[1]["q"] + 1), case.expected[2]]
    with pytest.raises(AssertionError):
        run_amaranth(DfpQuant(cfg), Vectors(case.name, case.beats, wrong, case.static, case.origin))


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("dfp_quant"))
def test_cocotb(config_name, simulator):
    slow_tier("dfp_quant", config_name, simulator)
