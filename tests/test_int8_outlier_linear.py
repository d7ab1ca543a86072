from fractions import Fraction

import pytest
import torch

from qarith.golden.int8_outlier_linear import (Int8OutlierLinearConfig, dequantize, int8_outlier_linear,
                                               llm_int8_matmul, quantize_rows, quantize_weights,
                                               round_half_even_ratio, tile_parts, vector_quantize)
from qarith.registry import BLOCKS
from qarith.sim.common.bench import MODES, played, run_amaranth
from qarith.sim.int8_outlier_linear import EDGE_CASES, activation_tile, back_to_back, tile_vectors, vectors

from tiers import slow_tier, slow_tier_params

BLOCK = BLOCKS["int8_outlier_linear"]
CFG = Int8OutlierLinearConfig()


class TestConfig:
    def test_threshold_codes(self):
        assert CFG.threshold_code == 1536 and CFG.scale_max == 1535 and CFG.scale_bits == 11
        assert Int8OutlierLinearConfig(in_width=8, frac_bits=4).threshold_code == 96
        # |X| >= 6.001 on a 2**-8 grid is |x| >= 1537 (6.001 * 256 = 1536.256).
        assert Int8OutlierLinearConfig(threshold=6.001).threshold_code == 1537
        off = Int8OutlierLinearConfig(threshold=0.0)
        assert off.threshold_code == 32769 and off.scale_max == 32768
        assert Int8OutlierLinearConfig(threshold=1000.0).threshold_code == 32769

    def test_derived_arrays(self):
        assert (CFG.int8_mac.a_width, CFG.int8_mac.b_width, CFG.int8_mac.acc_bits) == (8, 8, 20)
        assert (CFG.side_mac.a_width, CFG.side_mac.b_width, CFG.side_mac.acc_bits) == (16, 8, 28)
        # 1535 * 127 * 128 * 16 + 127 * 32768 * 128 * 16 = 8,922,073,088, between 2**33 and 2**34.
        assert CFG.out_bits == 35

    @pytest.mark.parametrize("kwargs, error, message", [
        ({"in_width": 17}, ValueError, r"^Activation width in_width must be between 2 and 16, not 17$"),
        ({"frac_bits": -1}, ValueError, r"^Fraction bits frac_bits must be between 0 and 24, not -1$"),
        ({"threshold": -1.0}, ValueError, r"^Threshold must be finite and at least 0 \(0 turns it off\), not -1\.0$"),
        ({"threshold": float("nan")}, ValueError, r"^Threshold must be finite and at least 0 \(0 turns it off\), not nan$"),
        ({"threshold": "6"}, TypeError, r"^threshold must be a number, not '6'$"),
        ({"threshold": None}, TypeError, r"^threshold must be a number, not None$"),
        ({"max_k": 2.0}, TypeError, r"^max_k must be an integer, not 2\.0$"),
        ({"cols": 0}, ValueError, r"^Array cols must be between 1 and 32, not 0$"),
    ])
    def test_rejects(self, kwargs, error, message):
        with pytest.raises(error, match=message):
            Int8OutlierLinearConfig(**kwargs)

    def test_generator_rejects_other_configs(self):
        with pytest.raises(TypeError, match=r"^Configuration must be a Int8OutlierLinearConfig, not None$"):
            BLOCK.generator(None)


class TestGolden:
    def test_rounding_every_8_bit_pair(self):
        """rint(127 x / c), half to even, for every magnitude x <= c <= 128, against exact fractions."""
        c = torch.arange(1, 129).repeat_interleave(129)
        x = torch.arange(129).repeat(128)
        keep = x <= c
        c, x = c[keep], x[keep]
        got = round_half_even_ratio(127 * x, c)
        want = torch.tensor([round(Fraction(127 * a, b)) for a, b in zip(x.tolist(), c.tolist())])
        assert torch.equal(got, want)
        assert int((2 * (127 * x % c) == c).sum()) == 64        # the ties among them

    def test_ties_round_to_even(self):
        # c = 254: 127 x / 254 = x / 2.
        x = torch.tensor([[254, 1, 3, 5, 7, -1, -3, -5]])
        x8, scale, _ = quantize_rows(x, 1536)
        assert scale.tolist() == [254]
        assert x8.tolist() == [[127, 0, 2, 2, 4, 0, -2, -2]]

    def test_integer_quantizer_equals_float_quantizer(self):
        """bitsandbytes' float rule on X = x 2**-8 (float64 division) gives the integer quantizer's codes,
        row scales and outlier columns, ties and |X| = 6.0 included."""
        gen = torch.Generator().manual_seed(3)
        x = torch.cat([activation_tile(CFG, gen, 16, (2, 9), outlier_rows=[1], spread=2.0),
                       activation_tile(CFG, gen, 16, (5,)), torch.tensor([[1536, -1535, 1, 3] * 4]),
                       torch.tensor([[254, 1, 3, 5, -7, 9, 11, -13] * 2])])
        x8, scale, columns = quantize_rows(x, CFG.threshold_code)
        f8, f_scale, f_columns = vector_quantize(x.double() / 256, 6.0)
        assert torch.equal(x8, f8) and torch.equal(columns, f_columns)
        assert torch.equal(scale.double() / 256, f_scale)

    def test_threshold_exact(self):
        """|X| = 6.0 is an outlier (its column leaves the int8 path); 6.0 - 2**-8 is not."""
        x = torch.tensor([[1536, 100, 1535], [3, -1535, 7], [-1536, 5, 0]])
        x8, scale, columns = quantize_rows(x, CFG.threshold_code)
        assert columns.tolist() == [True, False, False]
        assert scale.tolist() == [1535, 1535, 5]
        assert x8[:, 0].tolist() == [0, 0, 0]
        assert x8[1].tolist() == [0, -127, 1]

    def test_all_zero_row(self):
        """c = 0: the row's int8 part is 0, its output the side path's alone."""
        x = torch.zeros(4, 8, dtype=torch.int64)
        x[1, 3] = 2000                                   # column 3 is an outlier from another row
        x[1, 0], x[2, 5], x[3, 7] = 100, -50, 9
        w = torch.randint(-127, 128, (4, 8), generator=torch.Generator().manual_seed(0))
        parts = tile_parts(CFG, x.unsqueeze(0), w)
        assert parts["scale"][0, 0] == 0 and not parts["x8"][0, 0].any()
        assert torch.equal(parts["acc"][0, 0], torch.zeros(4, dtype=torch.int64))
        assert torch.equal(parts["acc"][0, 1], parts["scale"][0, 1] * parts["c32"][0, 1] + 127 * 2000 * w[:, 3])

    def test_all_outlier_row(self):
        """Every element of row 0 is an outlier: c = 0, every column outlier, the whole tile on the side
        path (exact: 127 x W8^T)."""
        gen = torch.Generator().manual_seed(1)
        x = activation_tile(CFG, gen, 8)
        x[0] = torch.tensor([1536, -1536, 4000, -32768, 1600, 2000, -9000, 32767])
        w = torch.randint(-128, 128, (4, 8), generator=gen)
        parts = tile_parts(CFG, x.unsqueeze(0), w)
        assert parts["scale"][0, 0] == 0 and bool(parts["columns"].all()) and not parts["x8"].any()
        assert torch.equal(parts["acc"][0], 127 * x @ w.T)

    def test_no_outliers(self):
        """Below the threshold everywhere: no side path, acc = c X8 W8^T, as plain vector-wise int8."""
        gen = torch.Generator().manual_seed(2)
        x = activation_tile(CFG, gen, 16, spread=1.0).clamp(-1535, 1535)
        w = torch.randint(-127, 128, (4, 16), generator=gen)
        parts = tile_parts(CFG, x.unsqueeze(0), w)
        assert not parts["columns"].any() and not parts["side"].any()
        off = Int8OutlierLinearConfig(threshold=0.0)
        assert torch.equal(int8_outlier_linear(off, x.unsqueeze(0), w), parts["acc"])

    @pytest.mark.parametrize("variant", ["bnb", "paper"])
    def test_integer_model_equals_float_llm_int8(self, variant):
        """The hardware's integer acc, dequantized, is bitsandbytes' float LLM.int8() product (float64);
        the paper's variant differs only by the outlier columns' weight rounding."""
        gen = torch.Generator().manual_seed(4)
        x = activation_tile(CFG, gen, 16, (1, 12), outlier_rows=[2], spread=1.5)
        w = torch.randn(4, 16, generator=gen, dtype=torch.float64) * 0.1
        w8, w_scale = quantize_weights(w)
        hardware = dequantize(CFG, int8_outlier_linear(CFG, x.unsqueeze(0), w8)[0], w_scale)
        bnb = llm_int8_matmul(x.double() / 256, w, 6.0, "bnb")
        assert torch.allclose(hardware, bnb, rtol=1e-12, atol=1e-12)
        if variant == "paper":
            paper = llm_int8_matmul(x.double() / 256, w, 6.0, "paper")
            side = (x.double()[:, [1, 12]] / 256) @ (w[:, [1, 12]] - w8[:, [1, 12]] * w_scale.unsqueeze(1) / 127).T
            assert torch.allclose(paper - bnb, side, rtol=1e-9, atol=1e-12)

    def test_decomposition_helps_with_outliers(self):
        """Planted outliers: the plain vector-wise product loses the row's small values (their codes
        collapse to 0), the decomposed one stays close to float."""
        gen = torch.Generator().manual_seed(5)
        x = torch.randn(64, 64, generator=gen, dtype=torch.float64)
        x[:, [3, 40]] *= 20
        w = torch.randn(16, 64, generator=gen, dtype=torch.float64)
        exact = x @ w.T
        plain = (llm_int8_matmul(x, w, 0.0) - exact).norm() / exact.norm()
        mixed = (llm_int8_matmul(x, w, 6.0) - exact).norm() / exact.norm()
        assert mixed < plain / 2

    def test_rejects_codes_out_of_range(self):
        with pytest.raises(ValueError, match=r"^Activation codes must lie in \[-128, 127\]"):
            int8_outlier_linear(Int8OutlierLinearConfig(in_width=8, frac_bits=4), torch.full((1, 4, 2), 128),
                                torch.zeros(4, 2))
        with pytest.raises(ValueError, match=r"^Expected activations of shape \(T, 4, K\)"):
            int8_outlier_linear(CFG, torch.zeros(1, 3, 2), torch.zeros(4, 2))


def _run(config_name, case, mode):
    cfg = BLOCK.configs[config_name]
    return run_amaranth(BLOCK.elaborate(cfg), played(case, mode), *MODES[mode])


def _check_latency(config_name, case, result):
    component = BLOCK.interface(BLOCK.configs[config_name])
    first_last = next(n for n, beat in enumerate(case.beats) if beat["last"])
    assert result.out_cycles[0] - result.in_cycles[first_last] == component.tile_latency(first_last + 1)


@pytest.mark.parametrize("case_name", ["planted_outliers", *EDGE_CASES])
def test_fast_tier_case(case_name):
    """Each case of the default config in amaranth.sim under idles and backpressure (the scoreboard
    raises on a mismatch)."""
    config_name = next(iter(BLOCK.configs))
    case = next(c for c in vectors(BLOCK.configs[config_name]) if c.name == case_name)
    _run(config_name, case, "both")


@pytest.mark.parametrize("config_name", list(BLOCK.configs))
def test_fast_tier(config_name):
    """Every case back to back in one amaranth.sim run, plain (and under stalls for the configs after the
    first, whose cases :func:`test_fast_tier_case` does not run one by one); the first tile's first row
    arrives :meth:`tile_latency` after its last step, for K = max_k and K = 1."""
    cases = vectors(BLOCK.configs[config_name])
    case = back_to_back("all_cases", cases)
    _check_latency(config_name, case, _run(config_name, case, "plain"))
    gen = torch.Generator().manual_seed(6)
    cfg = BLOCK.configs[config_name]
    single = tile_vectors(cfg, "k1", [(activation_tile(cfg, gen, 1, (0,)), torch.tensor([[5], [-7], [127], [-128]][:cfg.cols]))])
    _check_latency(config_name, single, _run(config_name, single, "plain"))
    if config_name != next(iter(BLOCK.configs)):
        _run(config_name, case, "both")


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("int8_outlier_linear"))
def test_cocotb(config_name, simulator):
    slow_tier("int8_outlier_linear", config_name, simulator)


def test_bench_planted_rows():
    """The bench's planted rows: without outliers decomposition changes nothing; with four outlier
    columns it cuts the error against fp32 at least in half, and the block's integer path (Q7.8 codes,
    outlier columns per 4-row tile) stays within 5 % of bitsandbytes' float LLM.int8()."""
    from qarith.fpga.accuracy.llm_int8 import method_errors, planted_sources
    sources = planted_sources(tokens=64, features=128, outputs=32)
    none, every, quarter = (method_errors(name, x, w) for name, x, w in sources)
    assert none["outlier_columns"] == 0
    assert none["errors"]["vector-wise int8"] == none["errors"]["LLM.int8() bnb"]
    for row in (every, quarter):
        errors = row["errors"]
        assert row["outlier_columns"] == 4
        assert errors["LLM.int8() bnb"]["rel"] < errors["vector-wise int8"]["rel"] / 2
        assert errors["block"]["rel"] < 1.05 * errors["LLM.int8() bnb"]["rel"]
