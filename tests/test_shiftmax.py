import random

import pytest
import torch
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from shift_exp_bounds import shift_exp_interval

from qarith.golden.common.scores import KINDS, score_rows
from qarith.golden.common.shift_exp import exp_max, ibert_constants, ibert_exp, shift_exp, x0_of
from qarith.golden.shiftmax import INT31_MAX, ShiftmaxConfig, float_softmax, row_exponentials, shiftmax
from qarith.hdl.common.arith import split_divide_stages
from qarith.registry import BLOCKS
from qarith.sim.common.bench import run_amaranth
from qarith.sim.common.rows import row_vectors
from qarith.sim.shiftmax import vectors

from tiers import fast_tier, fixed_configs, slow_tier, slow_tier_params, variable_configs, variable_fast_tier


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"variant": "onnx"}, r"^Variant must be one of pytorch, tvm, ibert, not 'onnx'$"),
        ({"n": 0}, r"^Row length must be between 1 and 4096, not 0$"),
        ({"in_width": 1}, r"^Input width must be between 2 and 16, not 1$"),
        ({"out_width": 17}, r"^Output width must be between 2 and 16, not 17$"),
        ({"scale": -0.5}, r"^Scale must be a positive finite number, not -0\.5$"),
        ({"exp_shift": 31}, r"^Exp shift must be between 1 and 30, not 31$"),
        # x0 = floor(-1 / 1e-5) = -100000; e(0) = 100000 * 2**15 = 3276800000 > 2**31 - 1.
        ({"scale": 1e-5}, r"^Scale 1e-05 gives x0 = -100000, so e\(0\) = -x0 \* 2\*\*15 = 3276800000 overflows "
                          r"31 bits; use a coarser scale or a smaller exp_shift$"),
        # e(0) = 16 * 2**15 = 2**19; 4096 of them make 2**31.
        ({"n": 4096}, r"^Row length 4096 can overflow the 31-bit sum at this scale: at most 4095 elements of "
                      r"e\(0\) = 524288$"),
        # Scales of 2**-30 or finer are refused before x0 = floor(-1 / S) is computed (-1 / 5e-324 overflows a
        # float): |x0| >= 2**30 makes e(0) at least 2**31.
        ({"scale": 2.0 ** -30}, r"^Scale 9\.313225746154785e-10 is 2\*\*-30 or finer, so e\(0\) would overflow 31 bits; "
                                r"use a coarser scale$"),
        ({"scale": 5e-324}, r"^Scale 5e-324 is 2\*\*-30 or finer, so e\(0\) would overflow 31 bits; use a coarser scale$"),
        # I-BERT: e(0) = floor(2.79 / S**2) << 30 (S**2 underflows to zero at 1e-300).
        ({"variant": "ibert", "scale": 1e-300},
         r"^Scale 1e-300 is 2\*\*-30 or finer, so e\(0\) would overflow 62 bits; use a coarser scale$"),
        # I-BERT: 0.35 gives x0 = floor(-1.98) = -2; 1e300 overflowed S**2.
        ({"variant": "ibert", "scale": 0.35},
         r"^Scale 0\.35 makes x0 = floor\(-ln 2 / scale\) -2 or more, too coarse for I-BERT's exponential; "
         r"use a scale below 0\.34655$"),
        ({"variant": "ibert", "scale": 1e300},
         r"^Scale 1e\+300 makes x0 = floor\(-ln 2 / scale\) -2 or more, too coarse for I-BERT's exponential; "
         r"use a scale below 0\.34655$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            ShiftmaxConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"n": "64"}, r"^n must be an integer, not '64'$"),
        ({"exp_shift": 15.0}, r"^exp_shift must be an integer or None, not 15\.0$"),
        ({"scale": None}, r"^scale must be a number, not None$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            ShiftmaxConfig(**kwargs)

    def test_generator_rejects_other_configs(self):
        with pytest.raises(TypeError, match=r"^Configuration must be a ShiftmaxConfig, not None$"):
            BLOCKS["shiftmax"].generator(None)

    def test_derived(self):
        cfg = ShiftmaxConfig()
        assert (cfg.shift, cfg.x0, cfg.e_max) == (15, -16, 16 << 15)
        # f <= (2**31 - 1) / 2**19 < 2**12: 12 quotient bits.
        assert cfg.quotient_width == 12
        assert ShiftmaxConfig(variant="tvm").shift == 16


class TestGolden:
    def test_x0_rules(self):
        # floor(-1/S) against the C cast of -1/S - 1 (truncation toward zero).
        assert (x0_of(0.1, "pytorch"), x0_of(0.1, "tvm")) == (-10, -11)
        assert (x0_of(1 / 16, "pytorch"), x0_of(1 / 16, "tvm")) == (-16, -17)

    def test_shift_exp_worked_by_hand(self):
        # x = -16 at scale 1/16 (-1.0). pytorch, x0 = -16, n = 15: t = -16 - 8 + 1 = -23; q = floor(23/16) = 1;
        # r = -23 + 16 = -7; e = ((-7 + 32) << 14) >> 1 = 25 * 2**13 = 204800 (e(0) = 2**19: 0.39 for e^-1).
        assert shift_exp(torch.tensor([0, -16]), -16, 15, "pytorch").tolist() == [1 << 19, 204800]
        # tvm, x0 = -17, n = 16: q = floor(23/17) = 1, r = -6; e = ((-6 >> 1) + 17) << 15 = 14 * 2**15.
        assert shift_exp(torch.tensor([0, -16]), -17, 16, "tvm").tolist() == [17 << 16, 14 << 15]
        assert exp_max(-17, 16) == 17 << 16

    def test_shift_exp_clamps_at_n_x0(self):
        # Every x at or below the clamp gives the same e: q = n, r = 0.
        e = shift_exp(torch.tensor([-200, -255, -1000]), -16, 15, "pytorch")
        assert e.tolist() == [(32 << 0) >> 1] * 3

    def test_shiftmax_worked_by_hand(self):
        cfg = ShiftmaxConfig(n=2)
        # e = [2**19, 204800], s = 729088; f = floor((2**31 - 1) / 729088) = 2945 (729088 * 2945 =
        # 2147164160, remainder 319487); (524288 * 2945) >> 24 = 92, (204800 * 2945) >> 24 = 35
        # (float: 93.6 and 34.4 at scale 2**-7).
        assert shiftmax(cfg, torch.tensor([[16, 0]])).tolist() == [[92, 35]]

    @pytest.mark.parametrize("config_name", list(BLOCKS["shiftmax"].configs))
    def test_invariants(self, config_name):
        cfg = BLOCKS["shiftmax"].configs[config_name]
        for kind in KINDS:
            x, _ = score_rows(cfg, kind, 100, cfg.n)
            out = shiftmax(cfg, x)
            s = row_exponentials(cfg, x).sum(dim=-1)
            total = out.sum(dim=-1)
            # sum_i e_i f <= numerator (2**31 - 1 or 2**32), and each floor loses less than one step.
            assert bool((total <= cfg.out_max + 1).all())
            assert bool((total >= (cfg.numerator + 1 - s) / 2 ** (32 - cfg.out_width) - cfg.n - 1).all())
            # The largest score gets the largest output; a larger score never a smaller one.
            top = out.gather(-1, x.argmax(dim=-1, keepdim=True)).squeeze(-1)
            assert bool((top == out.amax(dim=-1)).all())
            assert bool((out.gather(-1, x.argsort(dim=-1)).diff(dim=-1) >= 0).all())

    def test_ibert_exp_worked_by_hand(self):
        # Scale 1/16: x0 = floor(-0.6931 * 16) = -12, b = floor(2.7073 * 16) = 43, c = floor(2.7921 * 256) = 714.
        assert ibert_constants(1 / 16) == (-12, 43, 714)
        # x = -16: q = floor(16/12) = 1, r = -4; z = -4 * 39 + 714 = 558; e = 558 << 29.
        assert ibert_exp(torch.tensor([0, -16]), 1 / 16).tolist() == [714 << 30, 558 << 29]
        cfg = ShiftmaxConfig(n=2, variant="ibert")
        # e(0) = 714 * 2**30 has 40 bits: >> 24 keeps 16. e = [45696, 17856]; s = 63552;
        # f = floor(2**32 / 63552) = 67581; (45696 f) >> 24 = 184, (17856 f) >> 24 = 71 (float: 187.2, 68.8).
        assert cfg.ibert_requant_shift == 24 and cfg.e_max == 45696
        assert shiftmax(cfg, torch.tensor([[16, 0]])).tolist() == [[184, 71]]
        # A row of one element would be 256/256: it clamps to the top code.
        assert shiftmax(ShiftmaxConfig(n=1, variant="ibert"), torch.tensor([[3]])).tolist() == [[255]]

    @pytest.mark.parametrize("variant", ["pytorch", "tvm"])
    def test_float_error_within_the_derived_bound(self, variant):
        # Every probability of realistic rows within a bound derived from the roundings. With d_j = x_j - max:
        # * e_j / e(0) lies in shift_exp_interval(d_j) (the shift-exp's floors and its linear 2**-f; the
        #   TVM variant's r >> 1 floors r / 2 - x0 = u (1 - f/2) > u / 2 by at most 1/2, a factor of at least
        #   1 - 1/u with u = -x0: folded into the low end);
        # * so R_i = e_i / s lies in [lo_i / (lo_i + sum_(j != i) hi_j), hi_i / (hi_i + sum_(j != i) lo_j)];
        # * f = floor(N / s), N = 2**31 - 1: R_i N / 2**31 - e(0) / 2**31 < e_i f / 2**31 <= R_i N / 2**31, and
        #   the output's floor takes up to 2**-(out_width - 1) off.
        # The float softmax's distance to that interval is the bound (it holds the approximation of exp
        # by shifts: 1.4375 for log2 e, x0 for -1 / scale).
        cfg = ShiftmaxConfig(variant=variant)
        x, _ = score_rows(cfg, "gauss2", 200, cfg.n)
        d = x - x.amax(dim=-1, keepdim=True)
        low, high = shift_exp_interval(d, d, cfg.x0, cfg.shift)
        if variant == "tvm":
            low = low * (1 + 1 / cfg.x0)
        others_low = low.sum(dim=-1, keepdim=True) - low
        others_high = high.sum(dim=-1, keepdim=True) - high
        n = 2.0 ** 31 - 1
        p_low = low / (low + others_high) * n / 2 ** 31 - cfg.e_max / 2 ** 31 - 2.0 ** -(cfg.out_width - 1)
        p_high = high / (high + others_low) * n / 2 ** 31
        reference = float_softmax(cfg, x)
        bound = torch.maximum((p_low - reference).abs(), (p_high - reference).abs()) + 1e-12
        error = (shiftmax(cfg, x).to(torch.float64) / 128 - reference).abs()
        assert bool((error <= bound).all())


def _divider_cases():
    """(numerator, quotient width, divisor width) of every named shiftmax and shiftgelu config's divider."""
    cases = {}
    for name, cfg in BLOCKS["shiftmax"].configs.items():
        cases[f"shiftmax-{name}"] = (cfg.numerator, cfg.quotient_width, cfg.sum_width)
    for name, cfg in BLOCKS["shiftgelu"].configs.items():
        if cfg.method == "shift":
            cases[f"shiftgelu-{name}"] = (INT31_MAX, cfg.quotient_width, cfg.e_max.bit_length() + 1)
    return [pytest.param(*case, id=name) for name, case in cases.items()]


@pytest.mark.parametrize("numerator, quotient_width, divisor_width", _divider_cases())
def test_split_divider(numerator, quotient_width, divisor_width):
    """``split_divide_stages`` gives ``floor(numerator / divisor)`` ``2 quotient_width`` cycles after each
    divisor, a new divisor every cycle: the range's ends (the least divisor whose quotient fits, the
    widest divisor), the quotient's steps (divisors at and beside ``numerator // q``) and random ones."""
    low, high = (numerator >> quotient_width) + 1, (1 << divisor_width) - 1
    rng = random.Random(quotient_width * 64 + divisor_width)
    steps = [numerator // q + k for q in (1, 2, 3, (1 << quotient_width) - 1) for k in (-1, 0, 1)]
    divisors = [low, low + 1, high, high - 1] + [d for d in steps if low <= d <= high]
    divisors += [rng.randint(low, high) for _ in range(200)]
    m = Module()
    divisor = Signal(divisor_width)

    def register(target, value):
        m.d.sync += target.eq(value)

    quotient, stages = split_divide_stages(m, numerator, divisor, quotient_width, register)
    assert stages == 2 * quotient_width
    got = []

    async def testbench(ctx):
        for cycle in range(len(divisors) + stages):
            ctx.set(divisor, divisors[cycle] if cycle < len(divisors) else 0)
            await ctx.tick()
            if cycle >= stages - 1 and len(got) < len(divisors):
                got.append(ctx.get(quotient))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert got == [numerator // d for d in divisors]


@pytest.mark.parametrize("config_name", fixed_configs("shiftmax"))
def test_fast_tier(config_name):
    block = BLOCKS["shiftmax"]
    cfg = block.configs[config_name]
    case, result = fast_tier("shiftmax", config_name, vectors)["uniform_back_to_back"]
    latency = block.interface(cfg).latency
    assert result.out_cycles[0] - result.in_cycles[cfg.n - 1] == latency
    rows = len(case.beats) // cfg.n
    assert result.out_cycles[-1] - result.in_cycles[0] == (cfg.n - 1) + latency + rows * cfg.n - 1


@pytest.mark.parametrize("kwargs", [{"n": 1}, {"n": 3, "variant": "tvm"}])
def test_short_rows(kwargs):
    """Rows shorter than the divider's pipeline get more banks and keep the full rate."""
    cfg = ShiftmaxConfig(**kwargs)
    dut = BLOCKS["shiftmax"].elaborate(cfg)
    gen = torch.Generator().manual_seed(1)
    case = row_vectors(cfg, "short", torch.randint(-128, 128, (40, cfg.n), generator=gen), shiftmax)
    result = run_amaranth(dut, case)
    assert result.out_cycles[-1] - result.in_cycles[0] == (cfg.n - 1) + dut.latency + 40 * cfg.n - 1
    run_amaranth(BLOCKS["shiftmax"].elaborate(cfg), case, idle=0.3, backpressure=0.5, seed=2)


@pytest.mark.parametrize("config_name", variable_configs("shiftmax"))
def test_fast_tier_variable_length(config_name):
    """Variable-length rows (causal, banded, random lengths, edge rows cut short, over-long rows),
    bit-exact with per-row lengths checked through ``last``."""
    variable_fast_tier("shiftmax", config_name, vectors)


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("shiftmax"))
def test_cocotb(config_name, simulator):
    slow_tier("shiftmax", config_name, simulator)
