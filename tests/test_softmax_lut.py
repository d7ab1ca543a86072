import math
from dataclasses import replace

import pytest
import torch
from tiers import fast_tier, fixed_configs, slow_tier, slow_tier_params, variable_configs, variable_fast_tier

from qarith.golden.common.scores import KINDS, score_rows
from qarith.golden.softmax_lut import (
    HLS4ML_TABLE_BYTES,
    SoftmaxLut,
    SoftmaxLutConfig,
    accuracy,
    error_bound,
    exp_table,
    float_softmax,
    hls4ml_softmax,
    normalise,
    recip_table,
    softmax_lut,
)
from qarith.hdl.common.rows import BUFFER_READ_EXTRA
from qarith.registry import BLOCKS
from qarith.sim.common.bench import run_amaranth
from qarith.sim.common.rows import row_vectors
from qarith.sim.softmax_lut import vectors


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"n": 0}, r"^Row length must be between 1 and 4096, not 0$"),
        ({"n": 4097}, r"^Row length must be between 1 and 4096, not 4097$"),
        ({"method": "div"}, r"^Method must be one of recip, log, not 'div'$"),
        ({"in_width": 17}, r"^Input width must be between 2 and 16, not 17$"),
        ({"scale": 0.0}, r"^Scale must be a positive finite number, not 0\.0$"),
        ({"scale": math.inf}, r"^Scale must be a positive finite number, not inf$"),
        ({"out_width": 1}, r"^Output width must be between 2 and 16, not 1$"),
        ({"exp_width": 17}, r"^Exp table width must be between 2 and 16, not 17$"),
        ({"norm_bits": 0}, r"^Normalisation bits must be between 1 and 10, not 0$"),
        ({"recip_width": 19}, r"^Reciprocal width must be between 2 and 18, not 19$"),
        ({"log_frac_bits": 5}, r"^Log fraction bits must be between 0 and 4, not 5$"),
        ({"memory": "bram"}, r"^Memory must be one of fabric, ecp5, not 'bram'$"),
        ({"multiplier": "dsp"}, r"^Multiplier must be one of fabric, ecp5, not 'dsp'$"),
        ({"method": "log", "multiplier": "ecp5"},
         r"^Multiplier 'ecp5' needs method 'recip': the log method has no multiplier$"),
        ({"exp_width": 4, "recip_width": 5, "out_width": 8},
         r"^Reciprocal width 5 is too small for exp width 4 and output width 8: "
         r"need exp_width \+ recip_width >= out_width \+ 2$"),
        # 255 exp(-d / 1000) < 1/2 from d > 1000 ln 510 = 6234.4: entries 0..6235.
        ({"in_width": 16, "scale": 0.001},
         r"^Exp table would need 6236 entries for scale 0\.001; at most 4096 are supported "
         r"\(use a coarser scale\)$"),
        # Index (d << 2) + L reaches 255 * 4 + ceil(ln(64) * 4 / 0.005) + 1 = 4349 before the table's
        # values reach zero: entries 0..4349.
        ({"method": "log", "scale": 0.005},
         r"^Output table would need 4350 entries for scale 0\.005; at most 4096 are supported "
         r"\(use a coarser scale\)$"),
        # Finer still, the log table's search limit ((255 << 2) + ln(64) * 4 / 1e-12) is 10**13 entries: the
        # search stops at 16 x 4096.
        ({"method": "log", "scale": 1e-12},
         r"^Output table would need more than 65536 entries for scale 1e-12; at most 4096 are supported "
         r"\(use a coarser scale\)$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            SoftmaxLutConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"n": 8.0}, r"^n must be an integer, not 8\.0$"),
        ({"scale": "1/16"}, r"^scale must be a number, not '1/16'$"),
        ({"mask_min": 1}, r"^mask_min must be a bool, not 1$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            SoftmaxLutConfig(**kwargs)

    def test_generator_rejects_other_configs(self):
        with pytest.raises(TypeError, match=r"^Configuration must be a SoftmaxLutConfig, not 3$"):
            BLOCKS["softmax_lut"].generator(3)

    def test_table_bytes(self):
        cfg = SoftmaxLutConfig()
        # exp: 255 exp(-d/16) first rounds to 0 at d = 100 (d > 16 ln 510 = 99.75): 101 entries of 8 bits.
        # recip: R[0] = round(1024 / (1 + 0.5/128)) = 1020 needs 10 bits: 128 entries of 10 bits = 160 bytes.
        assert len(exp_table(cfg)) == 101 and int(recip_table(cfg)[0]) == 1020
        assert cfg.table_bytes == 101 + 160
        # The block's exp ROM holds every 8-bit d (the last entry repeated, so its index needs no
        # clamp): 155 more 8-bit entries than the table.
        assert BLOCKS["softmax_lut"].interface(cfg).table_bytes == cfg.table_bytes + (256 - 101)
        # Up to 1024 entries (in_width 10): n256_recip_s10's 401 8-bit entries become 1024. Past that the
        # table stays as it is and the index is clamped.
        s10 = BLOCKS["softmax_lut"].configs["n256_recip_s10"]
        assert (s10.in_width, len(exp_table(s10)), int(exp_table(s10).max()).bit_length()) == (10, 401, 8)
        assert BLOCKS["softmax_lut"].interface(s10).table_bytes == s10.table_bytes + (1024 - 401)
        s11 = SoftmaxLutConfig(in_width=11, n=256, scale=1 / 64)
        assert len(exp_table(s11)) < 2048
        assert BLOCKS["softmax_lut"].interface(s11).table_bytes == s11.table_bytes
        # The budget for the default configuration, and the peer's tables for scale.
        assert cfg.table_bytes <= 700 and SoftmaxLutConfig(method="log").table_bytes <= 700
        assert HLS4ML_TABLE_BYTES == 4608


class TestGolden:
    def test_worked_by_hand(self):
        cfg = SoftmaxLutConfig(n=2, scale=0.5)
        # Scores [2, 0]: d = [0, 2]; E = [255, round(255 e^-1) = 94]; s = 349 = 2^8 * 1.36...: p = 8,
        # j = (349 >> 1) - 128 = 46; R[46] = round(1024 / (1 + 46.5/128)) = 751; shift 8 + 10 - 8 = 10:
        # (255 * 751 + 512) >> 10 = 187, (94 * 751 + 512) >> 10 = 69 (float: 187.2 and 68.8).
        p, j = normalise(cfg, torch.tensor([349]))
        assert (p.tolist(), j.tolist()) == ([8], [46])
        assert int(recip_table(cfg)[46]) == 751
        assert softmax_lut(cfg, torch.tensor([[2, 0]])).tolist() == [[187, 69]]

    def test_normalise_short_and_masked_sums(self):
        cfg = SoftmaxLutConfig(norm_bits=3, exp_width=2)      # A = 3, p_min = 1
        # 5 = 0b101: p = 2, the three bits after the leading one are 010 (zero-filled) -> 2.
        # 0 (an all-masked row) counts as 2^p_min = 2 = 0b10: p = 1, j = 0.
        p, j = normalise(cfg, torch.tensor([5, 0, 3]))
        assert (p.tolist(), j.tolist()) == ([2, 1, 1], [2, 0, 4])

    def test_masked_scores(self):
        cfg = SoftmaxLutConfig(n=4)
        low = -128
        assert softmax_lut(cfg, torch.tensor([[low] * 4])).tolist() == [[0] * 4]
        one = softmax_lut(cfg, torch.tensor([[low, -100, low, low]])).tolist()
        assert one == [[0, 255, 0, 0]]                      # 1.0 clamps to the top code
        unmasked = SoftmaxLutConfig(n=4, mask_min=False)
        assert softmax_lut(unmasked, torch.tensor([[low] * 4])).tolist() == [[64] * 4]

    @pytest.mark.parametrize("config_name", list(BLOCKS["softmax_lut"].configs))
    def test_within_derived_bound(self, config_name):
        cfg = BLOCKS["softmax_lut"].configs[config_name]
        for kind in KINDS:
            x, keep = score_rows(cfg, kind, 64, cfg.n)
            reference = float_softmax(cfg, x, keep)
            error = (softmax_lut(cfg, x).to(torch.float64) * 2.0 ** -cfg.out_width - reference).abs()
            assert bool((error <= error_bound(cfg, reference)).all()), kind

    @pytest.mark.parametrize("method", ["recip", "log"])
    def test_largest_score_gets_largest_output(self, method):
        cfg = SoftmaxLutConfig(n=64, method=method)
        for kind in KINDS:
            x, keep = score_rows(cfg, kind, 200, cfg.n)
            out = softmax_lut(cfg, x)
            top = out.gather(-1, x.argmax(dim=-1, keepdim=True)).squeeze(-1)
            assert bool((top == out.amax(dim=-1)).all()), kind
            # Monotone: sorting a row by score sorts its outputs.
            order = x.argsort(dim=-1)
            assert bool((out.gather(-1, order).diff(dim=-1) >= 0).all()), kind

    def test_drop_in_module(self):
        cfg = SoftmaxLutConfig(n=16)
        scores = torch.randn(4, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
        codes = torch.round(scores / cfg.scale).clamp(-128, 127).to(torch.int64)
        got = SoftmaxLut(cfg)(scores)
        assert torch.equal(got, softmax_lut(cfg, codes).to(torch.float64) / 256)
        # Against the float softmax of the scores themselves: error_bound on the quantized rows, plus the
        # input rounding. No score saturates, so each moves by at most scale / 2 and each probability by a
        # factor within exp(+-scale): |softmax(codes * scale) - softmax(scores)| <= p (exp(scale) - 1).
        assert float((scores / cfg.scale).abs().max()) < 127.5
        exact = torch.softmax(scores, dim=-1)
        bound = error_bound(cfg, float_softmax(cfg, codes)) + exact * math.expm1(cfg.scale)
        assert bool(((got - exact).abs() <= bound).all())

    def test_wrong_row_length(self):
        with pytest.raises(ValueError, match=r"^Rows must have 64 elements, not 3$"):
            softmax_lut(SoftmaxLutConfig(), torch.zeros(2, 3, dtype=torch.int64))


class TestPeer:
    def test_hls4ml_worked_by_hand(self):
        cfg = SoftmaxLutConfig(n=2)
        # Scores 1.0 and 0.0 in ap_fixed<16,6>: raw 1024 and 0; x - max = [0, -1024].
        # Top 10 bits: 0 and 0xFC00 >> 6 = 1008 (-1.0); exp in ap_fixed<18,8>: 1024 and
        # floor(e^-1 * 1024 + 0.5) = 377. Sum 1401; top 10 of 18 bits: 1401 >> 8 = 5, i.e. 1.25;
        # 1/1.25 = 0.8 -> 819. Products >> 10: 1024 * 819 >> 10 = 819, 377 * 819 >> 10 = 301.
        got = hls4ml_softmax(cfg, torch.tensor([[16, 0]]))
        assert got.tolist() == [[819 / 1024, 301 / 1024]]

    def test_accuracy_metrics(self):
        reference = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2]], dtype=torch.float64)
        approx = torch.tensor([[0.25, 0.5, 0.25], [0.375, 0.5, 0.125]], dtype=torch.float64)
        result = accuracy(reference, approx, lsb=0.125)
        assert result["max_abs"] == 0.25 and result["argmax_flips"] == 1 and result["argmax_agree"] == 0.5
        assert result["top_kept"] == 0.5
        kl = 0.5 * math.log(0.5 / 0.25) + 0.3 * math.log(0.3 / 0.5) + 0.2 * math.log(0.2 / 0.25)
        kl += 0.4 * math.log(0.4 / 0.375) + 0.4 * math.log(0.4 / 0.5) + 0.2 * math.log(0.2 / 0.125)
        assert result["kl"] == pytest.approx(kl / 2)


@pytest.mark.parametrize("config_name", fixed_configs("softmax_lut"))
def test_fast_tier(config_name):
    block = BLOCKS["softmax_lut"]
    cfg = block.configs[config_name]
    results = fast_tier("softmax_lut", config_name, vectors)
    case, result = results["uniform_back_to_back"]
    latency = block.interface(cfg).latency
    assert result.out_cycles[0] - result.in_cycles[cfg.n - 1] == latency
    # Full rate: with every row back to back, the last output leaves one cycle after the one before it
    # all the way from the first output.
    rows = len(case.beats) // cfg.n
    assert result.out_cycles[-1] - result.in_cycles[0] == (cfg.n - 1) + latency + rows * cfg.n - 1


@pytest.mark.parametrize("config_name", [name for name in fixed_configs("softmax_lut") if name.endswith("_ecp5")])
def test_ecp5_latencies(config_name):
    """``memory="ecp5"`` adds the DP16KD output registers: a cycle per ROM read in the sum tail (exp and
    reciprocal / logarithm ROMs, and for "log" the registered logarithm word) and one in the output pass,
    and the row buffer's (``buffer="ecp5"``) a cycle in each pass, the reduce pass's in the sum tail;
    ``multiplier="ecp5"`` changes no latency. The cocotb tier checks these against the Verilog
    (``latency`` and, in ``sim/softmax_lut.py``'s ``schedule`` test, ``row_outputs``)."""
    block = BLOCKS["softmax_lut"]
    cfg = block.configs[config_name]
    fabric, ecp5 = (block.interface(replace(cfg, memory=memory, multiplier="fabric")) for memory in ("fabric", "ecp5"))
    assert (fabric.buffer, ecp5.buffer) == ("inferred", "ecp5")
    tail = (2 if cfg.method == "recip" else 3) + BUFFER_READ_EXTRA["ecp5"]
    assert ecp5.sum_tail == fabric.sum_tail + tail and ecp5.output_gap == ecp5.sum_tail
    assert ecp5.reduce_tail == ecp5.sum_tail + 1
    assert ecp5.row_latency(5) == fabric.row_latency(5) + tail + 1 + BUFFER_READ_EXTRA["ecp5"]
    assert ecp5.latency == ecp5.row_latency(cfg.n)
    assert block.interface(cfg).latency == ecp5.latency
    assert block.interface(cfg).sim_sources == \
        ["qarith:DP16KD"] + (["qarith:MULT18X18D"] if cfg.multiplier == "ecp5" else [])


def test_log_sum_register_holds_every_table_sum():
    """L = Lp + Lm can exceed ln(n) in table units by the tables' roundings and half a mantissa interval;
    with 2-bit exp words and 1 mantissa bit it reaches 34 for n = 2: the register must hold it."""
    cfg = SoftmaxLutConfig(n=2, method="log", scale=0.1, norm_bits=1, log_frac_bits=2, exp_width=2)
    assert cfg.log_max == 34
    case = row_vectors(cfg, "wide_log", torch.tensor([[0, 0], [5, -3], [-128, 127], [1, 1]]), softmax_lut)
    run_amaranth(BLOCKS["softmax_lut"].elaborate(cfg), case)


@pytest.mark.parametrize("method", ["recip", "log"])
def test_clamped_exp_index(method):
    """Past 1024 entries the exp ROM is not padded and both passes clamp ``d = max - x`` to the table's
    last entry: rows whose differences run past the table (401 entries, ``d`` up to 2047) are bit-exact."""
    cfg = SoftmaxLutConfig(n=4, in_width=11, scale=1 / 64, method=method)
    dut = BLOCKS["softmax_lut"].elaborate(cfg)
    assert not dut.exp_padded and len(exp_table(cfg)) == 401
    gen = torch.Generator().manual_seed(3)
    rows = torch.cat([torch.tensor([[1023, 1023 - 399, 1023 - 400, 1023 - 401], [1023, -1024, -1023, 0],
                                    [-1024, -1024, -1024, -1024], [600, 200, 199, 201]]),
                      torch.randint(-1024, 1024, (24, 4), generator=gen)])
    case = row_vectors(cfg, "clamped", rows, softmax_lut)
    run_amaranth(dut, case)
    run_amaranth(BLOCKS["softmax_lut"].elaborate(cfg), case, idle=0.3, backpressure=0.5, seed=2)


@pytest.mark.parametrize("kwargs", [{"n": 1}, {"n": 3, "method": "log"}, {"n": 5, "mask_min": False}])
def test_short_rows(kwargs):
    """Rows shorter than the sum stage's tail get more buffer banks and keep the full rate."""
    cfg = SoftmaxLutConfig(**kwargs)
    dut = BLOCKS["softmax_lut"].elaborate(cfg)
    gen = torch.Generator().manual_seed(1)
    case = row_vectors(cfg, "short", torch.randint(-128, 128, (40, cfg.n), generator=gen), softmax_lut)
    result = run_amaranth(dut, case)
    assert result.out_cycles[-1] - result.in_cycles[0] == (cfg.n - 1) + dut.latency + 40 * cfg.n - 1
    run_amaranth(BLOCKS["softmax_lut"].elaborate(cfg), case, idle=0.3, backpressure=0.5, seed=2)


@pytest.mark.parametrize("config_name", variable_configs("softmax_lut"))
def test_fast_tier_variable_length(config_name):
    """Variable-length rows (causal, banded, random lengths, edge rows cut short, over-long rows),
    bit-exact with per-row lengths checked through ``last``."""
    variable_fast_tier("softmax_lut", config_name, vectors)


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("softmax_lut"))
def test_cocotb(config_name, simulator):
    slow_tier("softmax_lut", config_name, simulator)
