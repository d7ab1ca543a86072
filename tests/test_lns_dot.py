import dataclasses

import pytest
import torch

from qarith.golden.common.lns import join
from qarith.golden.lns_dot import LnsDotConfig, lns_dot, lns_dot_bound, lns_dot_error, lns_dot_float, table_error
from qarith.hdl.lns_dot import LnsDot, signed_digits
from qarith.registry import BLOCKS
from qarith.sim.common.bench import MODES, run_amaranth
from qarith.sim.lns_dot import random_words, vectors

from tiers import fast_tier, played, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"method": "log"}, r"^Method must be one of table, mitchell, not 'log'$"),
        ({"accumulate": "tree"}, r"^Accumulation must be one of remainders, linear, not 'tree'$"),
        ({"width": 10, "frac_bits": 6},
         r"^Fraction bits must be between 0 and 5 for lns_dot \(one partial sum per exponent remainder\), not 6$"),
        ({"lanes": 0}, r"^Lanes must be between 1 and 32, not 0$"),
        ({"lanes": 33}, r"^Lanes must be between 1 and 32, not 33$"),
        ({"max_k": 0}, r"^Maximum vector length must be between 1 and 65536, not 0$"),
        ({"acc_frac_bits": 17},
         r"^Accumulator fraction bits must be between 0 and 16 for 8-bit words with 3 fraction bits, not 17$"),
        ({"acc_frac_bits": -1},
         r"^Accumulator fraction bits must be between 0 and 16 for 8-bit words with 3 fraction bits, not -1$"),
        ({"table_frac_bits": 0}, r"^Table fraction bits must be between 1 and 24, not 0$"),
        ({"method": "mitchell", "table_frac_bits": 2},
         r"^Mitchell's 1 \+ r/gamma needs at least 3 table fraction bits, not 2$"),
        ({"out_width": 1}, r"^Output width must be between 2 and 64, not 1$"),
        ({"out_frac_bits": 17},
         r"^Output fraction bits must be between -16 and 16 \(acc_frac_bits \+ table_frac_bits\), not 17$"),
        ({"max_k": 65536, "acc_frac_bits": 16, "table_frac_bits": 20},
         r"^Sum width must be at most 62 bits, not 69 \(max_k=65536, acc_frac_bits=16, table_frac_bits=20\)$"),
        ({"width": 2}, r"^LNS word width must be between 3 and 16, not 2$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            LnsDotConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"lanes": 4.0}, r"^lanes must be an integer, not 4\.0$"),
        ({"max_k": True}, r"^max_k must be an integer, not True$"),
        ({"method": 1}, r"^method must be a string, not 1$"),
        ({"accumulate": None}, r"^accumulate must be a string, not None$"),
        ({"width": "8"}, r"^width must be an integer, not '8'$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            LnsDotConfig(**kwargs)

    def test_generator_rejects_other_configs(self):
        with pytest.raises(TypeError, match=r"^Configuration must be a LnsDotConfig, not 3$"):
            LnsDot(3)

    def test_widths_worked_by_hand(self):
        cfg = LnsDotConfig()   # 8-bit words, b = 3, max_k = 256, acc_frac_bits = 8, table_frac_bits = 8
        # emax = 63, so e <= 126: q <= 15 for r = 0..6 (126 - 6 = 120 = 15 * 8) and q <= 14 for r = 7.
        # P[r] holds +-256 * 2**(15 + 8) = +-2**31: 32 magnitude bits and a sign; r = 7 one bit less.
        assert cfg.acc_widths == (33,) * 7 + (32,)
        # Four lanes of +-2**23: +-2**25 per beat, 27 bits.
        assert cfg.inc_widths == (27,) * 7 + (26,)
        # |S| <= 256 * max(2**23 * T[6], 2**22 * T[7]) = 2**31 * 431 < 2**40: 41 bits.
        assert cfg.table[6:] == (431, 470)
        assert cfg.sum_bound == 2 ** 31 * 431 and cfg.sum_width == 41
        # The linear accumulation's largest converted product: 2**23 * T[6] (above 2**22 * T[7] = 2**23 * 235).
        assert cfg.term_product_bound == 2 ** 23 * 431
        # emin = -63: e >= -126, q >= -16, so 16 fraction bits keep every product.
        assert cfg.exact_acc_frac_bits == 16
        assert cfg.macs == 4 and cfg.table_bytes == 16

    @pytest.mark.parametrize("config_name", list(BLOCKS["lns_dot"].configs))
    def test_widths_are_the_smallest_that_hold_max_k_terms(self, config_name):
        cfg = BLOCKS["lns_dot"].configs[config_name]
        for r, width in enumerate(cfg.acc_widths):
            bound = cfg.max_k * cfg.term_bound(r)
            assert -(1 << (width - 1)) <= -bound and bound <= (1 << (width - 1)) - 1
            assert bound > (1 << (width - 2)) - 1

    def test_interface_properties(self):
        block = BLOCKS["lns_dot"]
        cfg = block.configs["w8_b3_x4_table"]
        component = block.interface(cfg)
        assert (component.throughput, component.macs, component.sim_sources) == (4, 4, [])
        assert component.latency == 6
        # Linear: decode, convert, sign, two tree levels for four lanes, accumulate, round.
        assert block.interface(block.configs["w8_b3_x4_linear"]).latency == 7

    @pytest.mark.parametrize("config_name, table_bytes", [
        # gamma = 8 constants of t = 8 fraction bits, the largest T[7] = floor(2**(7/8) * 256 + 1/2) =
        # floor(470.006) = 470 (Mitchell: (1 + 7/8) * 256 = 480): 9 bits, two bytes each.
        ("w8_b3_x4_table", 8 * 2), ("w8_b3_x4_mitchell", 8 * 2),
        # gamma = 4, t = 8: T[3] = floor(2**(3/4) * 256 + 1/2) = 431, 9 bits: two bytes each.
        ("w8_b2_x1_exact", 4 * 2),
    ])
    def test_table_bytes_worked_by_hand(self, config_name, table_bytes):
        block = BLOCKS["lns_dot"]
        assert block.interface(block.configs[config_name]).table_bytes == table_bytes


def test_signed_digits():
    # 431 = 0b110101111 = 512 - 64 - 16 - 1 (four digits, three adders; binary has seven ones).
    assert signed_digits(431) == [(0, -1), (4, -1), (6, -1), (9, 1)]
    for constant in range(1, 600):
        digits = signed_digits(constant)
        assert sum(digit << position for position, digit in digits) == constant
        positions = [position for position, _ in digits]
        assert all(b - a >= 2 for a, b in zip(positions, positions[1:]))


def word(cfg, sign, exp):
    return int(join(cfg, torch.tensor(sign), torch.tensor(exp)))


class TestGolden:
    def test_worked_by_hand(self):
        cfg = LnsDotConfig(lanes=1, max_k=4, acc_frac_bits=2, table_frac_bits=8, out_width=16, out_frac_bits=4)
        # T[r] = floor(2**(r/8) * 256 + 1/2): T[4] = floor(362.04 + 0.5) = 362, T[7] = floor(469.5 + 0.5) = 470.
        # (+2**(10/8)) * (-2**(5/8)): e = 15 = 1 * 8 + 7, term -2**(1 + 2) = -8, times T[7]: -3760.
        # (+2**(-20/8)) * (+2**(-3/8)): e = -23 = -3 * 8 + 1, q + 2 = -1 < 0: truncated to 0.
        # (+2**(-4/8)) * (+2**0): e = -4 = -1 * 8 + 4, term 2**(-1 + 2) = 2, times T[4]: 724.
        # zero * (+2**(7/8)): 0.
        # S = -3036 with 2 + 8 = 10 fraction bits; output 4 fraction bits: -3036 / 64 = -47.4375,
        # floor(-47.4375 + 0.5) = -47 (the kept products sum to -2.9609 = -47.37 / 16; the float dot product, with the
        # truncated 2**(-23/8) = 0.136, is -2.8246).
        a = [word(cfg, 0, 10), word(cfg, 0, -20), word(cfg, 0, -4), cfg.zero_word]
        b = [word(cfg, 1, 5), word(cfg, 0, -3), word(cfg, 0, 0), word(cfg, 0, 7)]
        assert (cfg.table[4], cfg.table[7]) == (362, 470)
        assert lns_dot(cfg, torch.tensor([a]), torch.tensor([b])).tolist() == [-47]

    def test_round_half_up(self):
        cfg = LnsDotConfig(lanes=1, max_k=1, acc_frac_bits=0, table_frac_bits=8, out_width=8, out_frac_bits=-1)
        # 2**0 * 2**0: e = 0, term 1, times T[0] = 256; the output shift is 0 + 8 + 1 = 9: 256 / 512 = 0.5
        # rounds up to 1, and -0.5 rounds up to 0.
        one, minus_one = word(cfg, 0, 0), word(cfg, 1, 0)
        assert lns_dot(cfg, torch.tensor([[one], [minus_one]]), torch.tensor([[one], [one]])).tolist() == [1, 0]

    def test_saturation(self):
        cfg = LnsDotConfig(width=4, frac_bits=1, lanes=2, max_k=2, acc_frac_bits=0, table_frac_bits=2,
                           out_width=5, out_frac_bits=0)
        # emax = 3: 2**(3/2) squared is e = 6 = 3 * 2 + 0, term 2**3 = 8, times T[0] = 4: 32 each, S = 64,
        # shifted by 2: 16, above 15, saturates; -64 / 4 = -16 is the lowest code itself.
        top, bottom = word(cfg, 0, 3), word(cfg, 1, 3)
        assert lns_dot(cfg, torch.tensor([[top, top], [top, top]]),
                       torch.tensor([[top, top], [bottom, bottom]])).tolist() == [15, -16]

    def test_largest_sum_is_exact_at_max_k(self):
        cfg = BLOCKS["lns_dot"].configs["w8_b2_x1_exact"]
        assert cfg.out_shift == 0 and cfg.out_width == cfg.sum_width
        # 8-bit words, b = 2: e = 126 = 31 * 4 + 2, term 2**(31 + 4), T[2] = floor(1.41421 * 256 + 1/2) = 362;
        # 64 of them: 64 * 2**35 * 362, which is the sum bound.
        top = torch.full((1, 64), word(cfg, 0, cfg.emax))
        assert lns_dot(cfg, top, top).tolist() == [64 * 2 ** 35 * 362] == [cfg.sum_bound]

    def test_rejects_bad_shapes(self):
        cfg = LnsDotConfig(max_k=2)
        with pytest.raises(ValueError, match=r"^Vector length must be between 1 and max_k=2, not 3$"):
            lns_dot(cfg, torch.zeros(1, 3), torch.zeros(1, 3))
        with pytest.raises(ValueError, match=r"^Expected word tensors a and b of one shape"):
            lns_dot(cfg, torch.zeros(1, 2), torch.zeros(2, 2))


class TestErrorBound:
    def test_table_constants_within_half_a_step(self):
        for tf in (4, 8, 12):
            assert table_error(LnsDotConfig(table_frac_bits=tf)) <= 2.0 ** -(tf + 1)

    @pytest.mark.parametrize("kwargs", [
        {},
        {"acc_frac_bits": 2, "out_frac_bits": 0},
        {"method": "mitchell"},
        {"frac_bits": 2, "acc_frac_bits": 5, "table_frac_bits": 6, "out_frac_bits": 11, "out_width": 64},
        {"width": 6, "frac_bits": 1, "acc_frac_bits": 0, "table_frac_bits": 4, "out_frac_bits": -2},
    ])
    def test_bound_holds(self, kwargs):
        cfg = LnsDotConfig(**kwargs)
        gen = torch.Generator().manual_seed(5)
        for length in (1, 7, cfg.max_k):
            a = random_words(cfg, gen, (300, length))
            b = random_words(cfg, gen, (300, length))
            codes = lns_dot(cfg, a, b)
            error = (codes.to(torch.float64) * 2.0 ** -cfg.out_frac_bits - lns_dot_float(cfg, a, b)).abs()
            inside = (codes > cfg.out_min) & (codes < cfg.out_max)
            assert int(inside.sum()) > 100
            assert bool((error[inside] <= lns_dot_bound(cfg, a, b)[inside] * (1 + 1e-12)).all())

    def test_truncation_bound_is_reached(self):
        # With acc_frac_bits = 4 (gamma = 8) the largest truncated exponent is e = -33 = -16 + -17: each
        # product 2**(-33/8) = 2**(-4 - 1/8) is dropped whole, exactly the bound's per-term figure; the
        # output keeps every fraction bit (no rounding), so error == bound.
        cfg = LnsDotConfig(lanes=1, max_k=16, acc_frac_bits=4, out_frac_bits=12)
        a = torch.full((1, 16), word(cfg, 0, -16))
        b = torch.full((1, 16), word(cfg, 0, -17))
        assert lns_dot(cfg, a, b).tolist() == [0]
        bound = float(lns_dot_bound(cfg, a, b)[0])
        assert bound == pytest.approx(16 * 2 ** (-4 - 1 / 8), rel=1e-12)
        assert float(lns_dot_float(cfg, a, b)[0]) == pytest.approx(bound, rel=1e-12)

    def test_gaussian_error_figures(self):
        figures = lns_dot_error(vectors=300)
        assert set(figures) == {"k64", "k256"}
        for by_method in figures.values():
            for method in ("lns", "int8"):
                for stats in by_method[method].values():
                    assert 0 < stats["median"] <= stats["p99"]
            # Each LNS word is within a factor 2**(1/16) of its value (b = 3, round to nearest in the log
            # domain), so a product is within 2**(1/8) and |error| <= (2**(1/8) - 1) sum |a_i b_i|
            # <= 0.0906 ||a|| ||b||, apart from the few smallest values that flush to zero (below
            # 2**(-126/8) of the largest magnitude) and the dropped products, both far too small to count.
            assert by_method["lns"]["normalised"]["p99"] < 2 ** (1 / 8) - 1


def rtl_vectors(cfg):
    """Every case of the bench in amaranth.sim, plain and with idles and backpressure (as
    :func:`tiers.played` cuts them)."""
    results = {}
    for case in vectors(cfg):
        for mode in ("plain", "both"):
            run = played(case, mode)
            result = run_amaranth(LnsDot(cfg), run, *MODES[mode], seed=len(mode))
            if mode == "plain":
                results[case.name] = (run, result)
    return results


def check_timing(component, results):
    """Declared latency for every output, and back-to-back vectors without bubbles."""
    for case, result in results.values():
        first = case.origin[0][-1]
        assert result.out_cycles[0] - result.in_cycles[first] == component.latency
    case, result = results["back_to_back"]
    # One- and two-beat vectors, every beat accepted on consecutive cycles, each result `latency`
    # cycles after its vector's last beat.
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))
    assert [result.out_cycles[j] - result.in_cycles[beats[-1]] for j, beats in enumerate(case.origin)] \
        == [component.latency] * len(case.expected)


@pytest.mark.parametrize("config_name", list(BLOCKS["lns_dot"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["lns_dot"]
    cfg = block.configs[config_name]
    results = fast_tier("lns_dot", config_name, vectors)
    check_timing(block.interface(cfg), results)


@pytest.mark.parametrize("kwargs", [
    # gamma = 1 (no remainder bits), every product exact, the sum itself on the output.
    {"width": 5, "frac_bits": 0, "lanes": 3, "max_k": 10, "acc_frac_bits": 14, "table_frac_bits": 1},
    # Mitchell, lanes beyond max_k, a negative output scale.
    {"width": 5, "frac_bits": 2, "lanes": 4, "max_k": 3, "acc_frac_bits": 1, "table_frac_bits": 3,
     "method": "mitchell", "out_width": 6, "out_frac_bits": -1},
    # 32 partial sums.
    {"width": 9, "frac_bits": 5, "lanes": 2, "max_k": 12, "acc_frac_bits": 3, "table_frac_bits": 10,
     "out_width": 20, "out_frac_bits": 6},
    # The linear accumulation: gamma = 1 with the exact sum, and an odd lane count (a tree level with a
    # lone operand) with Mitchell's constants and a negative output scale.
    {"width": 5, "frac_bits": 0, "lanes": 3, "max_k": 10, "acc_frac_bits": 14, "table_frac_bits": 1,
     "accumulate": "linear"},
    {"width": 5, "frac_bits": 2, "lanes": 5, "max_k": 11, "acc_frac_bits": 1, "table_frac_bits": 3,
     "method": "mitchell", "out_width": 6, "out_frac_bits": -1, "accumulate": "linear"},
])
def test_fast_tier_other_shapes(kwargs):
    cfg = LnsDotConfig(**kwargs)
    if cfg.acc_frac_bits == cfg.exact_acc_frac_bits:
        cfg = dataclasses.replace(cfg, out_width=cfg.sum_width, out_frac_bits=cfg.acc_frac_bits + cfg.table_frac_bits)
    check_timing(BLOCKS["lns_dot"].interface(cfg), rtl_vectors(cfg))


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("lns_dot"))
def test_cocotb(config_name, simulator):
    slow_tier("lns_dot", config_name, simulator)
