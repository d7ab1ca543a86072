import math

import pytest
import torch

from qarith.golden.common.lns import LnsFormat, decode, encode, fields, join, lns_words
from qarith.golden.lns_mul import LnsMulConfig, lns_mul
from qarith.registry import BLOCKS
from qarith.sim.common.bench import run_amaranth
from qarith.sim.lns_mul import vectors

from tiers import fast_tier, slow_tier, slow_tier_params


class TestFormat:
    @pytest.mark.parametrize("kwargs, message", [
        ({"width": 2}, r"^LNS word width must be between 3 and 16, not 2$"),
        ({"width": 17}, r"^LNS word width must be between 3 and 16, not 17$"),
        ({"width": 8, "frac_bits": 6},
         r"^Fraction bits must be between 0 and 5 for 8-bit LNS words \(one integer exponent bit besides the "
         r"sign\), not 6$"),
        ({"frac_bits": -1}, r"^Fraction bits must be between 0 and 5 .*, not -1$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            LnsFormat(**kwargs)

    def test_bad_types(self):
        with pytest.raises(TypeError, match=r"^frac_bits must be an integer, not 3\.0$"):
            LnsFormat(frac_bits=3.0)

    def test_layout_worked_by_hand(self):
        fmt = LnsFormat(width=8, frac_bits=3)
        # 7-bit exponent field: codes -63..63, -64 (0b1000000 = 0x40) reserved for zero.
        assert (fmt.gamma, fmt.emin, fmt.emax, fmt.zero_word) == (8, -63, 63, 0x40)
        # 2.0 = 2**(8/8): E = 8. -0.5 = -2**(-8/8): E = -8 = 0b1111000, with the sign bit 0xF8.
        # 3.0: 8 * log2(3) = 12.68 -> 13.
        assert encode(fmt, torch.tensor([2.0, -0.5, 3.0, 0.0, -0.0])).tolist() == [8, 0xF8, 13, 0x40, 0x40]
        assert decode(fmt, torch.tensor([8, 0xF8, 0x40, 0xC0])).tolist() == [2.0, -0.5, 0.0, 0.0]

    def test_saturate_and_flush(self):
        fmt = LnsFormat(width=8, frac_bits=3)
        top = 2.0 ** (63 / 8)
        words = encode(fmt, torch.tensor([1e6, -math.inf, math.inf, top, 2.0 ** (-63.4 / 8), 2.0 ** (-63.6 / 8)]))
        sign, exp, zero = fields(fmt, words)
        assert exp.tolist() == [63, 63, 63, 63, -63, -64]
        assert sign.tolist() == [0, 1, 0, 0, 0, 0]
        assert zero.tolist() == [False] * 5 + [True]

    def test_nan_and_scale_rejected(self):
        fmt = LnsFormat()
        with pytest.raises(ValueError, match=r"^Cannot encode NaN as an LNS word$"):
            encode(fmt, torch.tensor([1.0, math.nan]))
        with pytest.raises(ValueError, match=r"^Scale must be a positive finite number, not 0$"):
            encode(fmt, torch.tensor([1.0]), scale=0)
        with pytest.raises(ValueError, match=r"^LNS words must be bit patterns between 0 and 255$"):
            decode(fmt, torch.tensor([256]))

    @pytest.mark.parametrize("width, frac_bits", [(8, 0), (8, 3), (8, 5), (12, 6)])
    def test_round_trip_and_half_step(self, width, frac_bits):
        fmt = LnsFormat(width=width, frac_bits=frac_bits)
        words = lns_words(fmt)
        canonical = join(fmt, *fields(fmt, words))
        assert torch.equal(encode(fmt, decode(fmt, words)), canonical)
        # Every float inside the range lands within half an exponent step (in log2 units: 1/(2 gamma)).
        x = torch.exp2(torch.linspace(fmt.emin / fmt.gamma, fmt.emax / fmt.gamma, 10001, dtype=torch.float64))
        error = (torch.log2(decode(fmt, encode(fmt, x))) - torch.log2(x)).abs()
        assert float(error.max()) <= 0.5 / fmt.gamma + 1e-12


class TestGolden:
    def test_bad_lanes(self):
        with pytest.raises(ValueError, match=r"^Lanes must be between 1 and 64, not 0$"):
            LnsMulConfig(lanes=0)

    def test_worked_by_hand(self):
        cfg = LnsMulConfig(width=8, frac_bits=3)
        # 2 * 0.5 = 1 (E: 8 - 8 = 0); -2 * 3 (8 + 13 = 21, sign 1: 0x80 | 21 = 0x95);
        # 2**(40/8) * 2**(30/8) -> E = 70 > 63 saturates to 63; 2**(-40/8) * 2**(-30/8) -> -70 flushes to zero;
        # 0 * 2 = zero; (-zero, 0xC0) * -2: zero, canonical 0x40.
        a = torch.tensor([8, 0x88, 40, (-40) & 0x7F, 0x40, 0xC0])
        b = torch.tensor([0xF8 & 0x7F, 13, 30, (-30) & 0x7F, 8, 0x88])
        assert lns_mul(cfg, a, b).tolist() == [0, 0x95, 63, 0x40, 0x40, 0x40]

    def test_exhaustive_against_float(self):
        # Every pair of 8-bit words: the product is exact (in the log domain) wherever it neither
        # saturates nor flushes, and it is the float product's own encoding everywhere.
        cfg = LnsMulConfig(width=8, frac_bits=3)
        a, b = torch.cartesian_prod(lns_words(cfg), lns_words(cfg)).T
        product = decode(cfg, a) * decode(cfg, b)
        assert torch.equal(lns_mul(cfg, a, b), encode(cfg, product))


@pytest.mark.parametrize("config_name", list(BLOCKS["lns_mul"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["lns_mul"]
    cfg = block.configs[config_name]
    results = fast_tier("lns_mul", config_name, vectors)
    case, result = results["exhaustive" if cfg.width <= 8 else "random"]
    if cfg.width <= 8:
        assert len(case.beats) * cfg.lanes == 1 << (2 * cfg.width)
    assert result.out_cycles[0] - result.in_cycles[0] == block.interface(cfg).latency
    # One beat per cycle without idles or backpressure.
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))


def test_fast_tier_integer_exponents():
    # b = 0 (gamma = 1, exponents are whole octaves), kept out of the registry for the slow tier's time
    # budget: every pair of words in amaranth.sim.
    from qarith.hdl.lns_mul import LnsMul
    cfg = LnsMulConfig(width=8, frac_bits=0, lanes=16)
    for case in vectors(cfg):
        run_amaranth(LnsMul(cfg), case)


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("lns_mul"))
def test_cocotb(config_name, simulator):
    slow_tier("lns_mul", config_name, simulator)


def test_accuracy_bench_mul_errors():
    # make bench's LNS comparison (qarith.fpga.accuracy.lns.lns_errors): each operand is encoded within half a
    # code (a factor 2**(1/16)), the product is exact in the log domain and, with the operands' largest
    # magnitudes at half the largest exponent, never saturates; so every product is within a factor
    # 2**(1/8) of the float product, or flushed to zero (relative error 1).
    from qarith.fpga.accuracy.lns import lns_errors
    errors = lns_errors(samples=20000, lengths=(16,), vectors=50)
    assert set(errors) == {"mul", "add", "dot16"}
    mul = errors["mul"]["lns"]
    inside = mul <= 2 ** (1 / 8) - 1 + 1e-12
    assert bool((inside | (mul == 1)).all())
    assert float(inside.double().mean()) > 0.99
    assert len(errors["dot16"]["lns"]) == len(errors["dot16"]["int8"]) == 50
