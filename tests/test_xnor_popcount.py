import math
from fractions import Fraction

import pytest
import torch

from qarith.golden.xnor_popcount import (XnorPopcountConfig, batchnorm_sign, binarize, binary_dot, bitplane_dot,
                                         fold_batchnorm, pack_words, popcounts, seeded_config, threshold_bits,
                                         unpack_words, xnor_popcount)
from qarith.registry import BLOCKS
from qarith.sim.common.bench import run_amaranth
from qarith.sim.xnor_popcount import vector_case, vectors, words_with_popcounts

from tiers import FULL, fast_tier, slow_tier, slow_tier_params


def exact_bn_bits(k, gamma, beta, mean, std, bias=None):
    """``sign(gamma (s + b - mu) / std + beta) >= 0`` for every popcount 0..K, evaluated directly in
    rationals: (K + 1, channels) 0/1."""
    bias = [0] * len(gamma) if bias is None else bias
    rows = []
    for p in range(k + 1):
        s = 2 * p - k
        rows.append([int(Fraction(g) * (s + Fraction(b) - Fraction(mu)) / Fraction(sigma) + Fraction(bt) >= 0)
                     for g, bt, mu, sigma, b in zip(gamma, beta, mean, std, bias)])
    return torch.tensor(rows)


def folded_bits(k, thresholds, directions):
    """The fold's meaning on every popcount 0..K: ``p >= t`` (direction +1) or ``p <= t`` (-1)."""
    p = torch.arange(k + 1).unsqueeze(1)
    t = torch.tensor(thresholds)
    return torch.where(torch.tensor(directions) > 0, p >= t, p <= t).to(torch.int64)


def test_golden_threshold_bits_is_the_fold():
    cfg = XnorPopcountConfig(word_width=1, k=6, channels=4, thresholds=(-1, 3, 3, 7), directions=(1, 1, -1, -1))
    p = torch.arange(7).unsqueeze(1).expand(7, 4)
    assert torch.equal(threshold_bits(cfg, p), folded_bits(6, cfg.thresholds, cfg.directions))
    assert threshold_bits(cfg, p)[:, 1].tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert threshold_bits(cfg, p)[:, 2].tolist() == [1, 1, 1, 1, 0, 0, 0]


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"word_width": 0}, r"^Word width must be between 1 and 32, not 0$"),
        ({"word_width": 33}, r"^Word width must be between 1 and 32, not 33$"),
        ({"k": 0}, r"^Vector length K must be between 1 and 65536, not 0$"),
        ({"channels": 65}, r"^Channels must be between 1 and 64, not 65$"),
        ({"channels": 2, "thresholds": (1, 2, 3)},
         r"^thresholds must have one entry per channel \(2\), not 3$"),
        ({"k": 10, "channels": 2, "thresholds": (0, 12)},
         r"^Thresholds must lie in \[-1, K \+ 1\] = \[-1, 11\], not 12$"),
        ({"k": 10, "channels": 1, "thresholds": (-2,)},
         r"^Thresholds must lie in \[-1, K \+ 1\] = \[-1, 11\], not -2$"),
        ({"channels": 2, "directions": (1, 0)}, r"^Directions must be \+1 or -1, not 0$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            XnorPopcountConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"k": 8.0}, r"^k must be an integer, not 8\.0$"),
        ({"word_width": True}, r"^word_width must be an integer, not True$"),
        ({"channels": 1, "thresholds": [3]}, r"^thresholds must be a tuple or None, not \[3\]$"),
        ({"channels": 1, "directions": (True,)}, r"^Each of directions must be an integer, not True$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            XnorPopcountConfig(**kwargs)

    def test_derived(self):
        cfg = XnorPopcountConfig(word_width=16, k=100, channels=3)
        assert (cfg.words, cfg.last_mask, cfg.count_width, cfg.macs) == (7, 0xF, 7, 48)
        # No batch norm: sign(2p - K) = +1 iff p >= K / 2, i.e. p >= ceil(K / 2) (and p = K/2 is s = 0: +1).
        assert cfg.threshold_codes == (50, 50, 50) and cfg.direction_codes == (1, 1, 1)
        assert XnorPopcountConfig(k=7, channels=1).threshold_codes == (4,)
        assert XnorPopcountConfig(word_width=8, k=16).last_mask == 0xFF


class TestGolden:
    def test_worked_by_hand(self):
        # K = 6 in 4-bit words: x = +1 -1 +1 +1 | -1 +1, w = +1 +1 -1 +1 | -1 -1 (bit i = element i).
        cfg = XnorPopcountConfig(word_width=4, k=6, channels=1)
        x = torch.tensor([[0b1101, 0b10]])
        w = torch.tensor([[[0b1011, 0b00]]])
        # Products +1 -1 -1 +1 +1 -1: agreements at elements 0, 3, 4, so p = 3 and s = 2 * 3 - 6 = 0.
        assert popcounts(cfg, x, w).tolist() == [[3]]
        assert binary_dot(cfg, x, w).tolist() == [[0]]
        # s = 0 is sign(0) = +1: threshold ceil(6 / 2) = 3, p = 3 passes.
        assert xnor_popcount(cfg, x, w).tolist() == [[1]]
        # Padding bits (bits 2, 3 of the last word) are ignored whatever they hold.
        assert popcounts(cfg, x | torch.tensor([[0, 0b1100]]), w).tolist() == [[3]]

    def test_binarize_zero_is_plus_one(self):
        assert binarize(torch.tensor([-2.0, -0.0, 0.0, 1e-30, -1e-30, 3.0])).tolist() == [-1, 1, 1, 1, -1, 1]
        # The PyTorch port's torch.sign maps 0 to 0; the paper's (and this model's) convention is +1.
        assert torch.sign(torch.tensor([0.0])).tolist() == [0.0]

    @pytest.mark.parametrize("word_width, k", [(1, 5), (4, 7), (16, 100), (32, 32), (32, 75), (7, 64)])
    def test_dot_equals_integer_dot(self, word_width, k):
        gen = torch.Generator().manual_seed(k * 33 + word_width)
        cfg = XnorPopcountConfig(word_width=word_width, k=k, channels=3)
        a = binarize(torch.randn(50, k, generator=gen))
        b = binarize(torch.randn(50, 3, k, generator=gen))
        x = pack_words((a > 0).to(torch.int64), word_width)
        w = pack_words((b > 0).to(torch.int64), word_width)
        assert torch.equal(unpack_words(x, word_width, k), (a > 0).to(torch.int64))
        assert torch.equal(binary_dot(cfg, x, w), (a.unsqueeze(1) * b).sum(-1))

    def test_word_range_checked(self):
        cfg = XnorPopcountConfig(word_width=4, k=8, channels=1)
        with pytest.raises(ValueError, match=r"^x words must be bit patterns between 0 and 15$"):
            popcounts(cfg, torch.tensor([[16, 0]]), torch.tensor([[[0, 0]]]))
        with pytest.raises(ValueError, match=r"^Expected x of shape \(N, 2\) and w of shape \(N, 1, 2\)"):
            popcounts(cfg, torch.tensor([[1]]), torch.tensor([[[0, 0]]]))

    def test_counts_with_given_popcounts(self):
        cfg = XnorPopcountConfig(word_width=16, k=100, channels=4)
        counts = torch.tensor([[0, 1, 99, 100], [50, 51, 49, 7]])
        x, w = words_with_popcounts(cfg, counts, torch.Generator().manual_seed(0))
        assert torch.equal(popcounts(cfg, x, w), counts)
        assert bool(((x[:, -1] >> 4) != 0).any() | ((w[:, :, -1] >> 4) != 0).any())   # padding is noisy


class TestFold:
    def test_directions_and_constants(self):
        k = 10
        # gamma > 0, tau = 1: p >= ceil(11 / 2) = 6. gamma < 0, tau = 1: p <= floor(5.5) = 5.
        # gamma = 0: sign(beta): beta = 0 -> +1 always (t = 0), beta < 0 -> never (t = K + 1).
        thresholds, directions = fold_batchnorm(k, gamma=[2, -2, 0, 0], beta=[0, 0, 0, -1], mean=[1, 1, 5, 5],
                                                std=[1, 1, 1, 1])
        assert thresholds == (6, 5, 0, 11) and directions == (1, -1, 1, 1)

    def test_integer_tau_is_a_tie(self):
        # tau = 2 (even tau + K): at p = 6, s = 2 and the BN output is exactly 0: +1 both ways.
        assert fold_batchnorm(10, [1], [0], [2], [1]) == ((6,), (1,))
        assert fold_batchnorm(10, [-1], [0], [2], [1]) == ((6,), (-1,))
        # Odd tau + K: the tie falls between popcounts.
        assert fold_batchnorm(10, [1], [0], [3], [1]) == ((7,), (1,))
        assert fold_batchnorm(10, [-1], [0], [3], [1]) == ((6,), (-1,))

    def test_tau_outside_the_range_clamps(self):
        k = 8
        # tau = -100: every s >= tau (gamma > 0: always, t = 0), no s <= tau (gamma < 0: never, t = -1).
        assert fold_batchnorm(k, [1, -1], [0, 0], [-100, -100], [1, 1]) == ((0, -1), (1, -1))
        assert fold_batchnorm(k, [1, -1], [0, 0], [100, 100], [1, 1]) == ((9, 8), (1, -1))
        # tau = +-K exactly: s = K only (p = K), s = -K only (p = 0).
        assert fold_batchnorm(k, [1, -1], [0, 0], [k, -k], [1, 1]) == ((k, 0), (1, -1))

    def test_bias_enters_tau(self):
        # tau = mu - b - beta std / gamma = 3 - 1 - 0 = 2.
        assert fold_batchnorm(10, [1], [0], [3], [1], bias=[1]) == fold_batchnorm(10, [1], [0], [2], [1])

    def test_bad_parameters(self):
        with pytest.raises(ValueError, match=r"^Batch-norm std must be positive, not 0$"):
            fold_batchnorm(4, [1], [0], [0], [0])
        with pytest.raises(ValueError, match=r"^Batch-norm std must be positive, not -1$"):
            fold_batchnorm(4, [1], [0], [0], [-1])
        with pytest.raises(ValueError, match=r"^gamma must be a finite number, not nan$"):
            fold_batchnorm(4, [math.nan], [0], [0], [1])
        with pytest.raises(ValueError, match=r"^mean must be a finite number, not inf$"):
            fold_batchnorm(4, [1], [0], [math.inf], [1])
        with pytest.raises(ValueError, match=r"^gamma, beta, mean, std and bias must have one entry per channel"):
            fold_batchnorm(4, [1, 2], [0], [0], [1])
        with pytest.raises(ValueError, match=r"^Vector length K must be positive, not 0$"):
            fold_batchnorm(0, [1], [0], [0], [1])

    @pytest.mark.parametrize("k", [1, 2, 7, 32, 100, 255])
    def test_fold_equals_exact_bn_on_every_popcount(self, k):
        # 64 random parameter sets per K: gamma 0 (1 in 8), negative (half the rest), rational ties
        # (tau an integer in a third of the channels), tau beyond +-K.
        gen = torch.Generator().manual_seed(k)
        channels = 64
        draw = torch.rand(6, channels, generator=gen, dtype=torch.float64)
        gamma = [0 if d < 0.125 else Fraction(int(e * 9) + 1, 4) * (1 if f < 0.5 else -1)
                 for d, e, f in zip(draw[0].tolist(), draw[1].tolist(), draw[2].tolist())]
        std = [Fraction(int(v * 10) + 1, 3) for v in draw[3].tolist()]
        beta = [Fraction(int(v * 17) - 8, 5) for v in draw[4].tolist()]
        tau = [Fraction(int((v * 3 - 1.5) * k)) + (0 if c % 3 == 0 else Fraction(c % 7 - 3, 7))
               for c, v in enumerate(draw[5].tolist())]
        mean = [t + (bt * s / g if g else 0) for t, bt, s, g in zip(tau, beta, std, gamma)]
        thresholds, directions = fold_batchnorm(k, gamma, beta, mean, std)
        assert torch.equal(folded_bits(k, thresholds, directions), exact_bn_bits(k, gamma, beta, mean, std))
        assert {1, -1} <= set(directions)

    @pytest.mark.parametrize("k", [5, 64, 100])
    def test_fold_equals_float_bn_on_every_popcount(self, k):
        # Float parameters as a trained network has them, evaluated by the float64 reference; 200 sets.
        gen = torch.Generator().manual_seed(1000 + k)
        channels = 200
        gamma = torch.randn(channels, generator=gen, dtype=torch.float64)
        gamma[::9] = 0.0
        gamma[1::9] = -0.0
        beta = torch.randn(channels, generator=gen, dtype=torch.float64)
        mean = torch.randn(channels, generator=gen, dtype=torch.float64) * k / 2
        std = torch.sqrt(torch.rand(channels, generator=gen, dtype=torch.float64) * 4 + 1e-5)
        bias = torch.randn(channels, generator=gen, dtype=torch.float64)
        params = [v.tolist() for v in (gamma, beta, mean, std, bias)]
        thresholds, directions = fold_batchnorm(k, *params[:4], bias=params[4])
        s = (2 * torch.arange(k + 1) - k).unsqueeze(1).expand(k + 1, channels)
        reference = (batchnorm_sign(s, *params[:4], bias=params[4]) > 0).to(torch.int64)
        assert torch.equal(folded_bits(k, thresholds, directions), reference)

    @pytest.mark.parametrize("k", [6, 31, 64])
    def test_fold_equals_float_bn_at_exact_ties(self, k):
        # Power-of-two gammas and stds, beta in eighths and integer tau: the float64 BN is exact, and its
        # output is exactly 0 at s = tau (a popcount when tau + K is even): +1 there, both directions.
        channels = 2 * (2 * k + 1)
        tau = [t for t in range(-k, k + 1) for _ in range(2)]
        gamma = [2.0 ** (c % 3 - 1) * (1 if c % 2 else -1) for c in range(channels)]
        std = [2.0 ** (c % 4 - 2) for c in range(channels)]
        beta = [(c % 11 - 5) / 8 for c in range(channels)]
        mean = [t + bt * s / g for t, bt, s, g in zip(tau, beta, std, gamma)]
        thresholds, directions = fold_batchnorm(k, gamma, beta, mean, std)
        s = (2 * torch.arange(k + 1) - k).unsqueeze(1).expand(k + 1, channels)
        float_bits = (batchnorm_sign(s, gamma, beta, mean, std) > 0).to(torch.int64)
        folded = folded_bits(k, thresholds, directions)
        assert torch.equal(folded, float_bits)
        assert torch.equal(folded, exact_bn_bits(k, gamma, beta, mean, std))
        # Every even tau + K is a tie at p = (tau + K) / 2: the output there is +1 on both sides.
        for c, t in enumerate(tau):
            if (t + k) % 2 == 0:
                assert int(folded[(t + k) // 2, c]) == 1

    def test_float_fold_moves_a_tie(self):
        # tau = mu - beta std / gamma computed in float64 is 4.0 exactly, while the parameters' exact
        # values give tau just above 4: at p = 18 (s = 4) the BN output is a hair below 0, so -1.
        k, gamma, beta, mean, std = 32, 0.7, -0.1, 3.9571428571428573, 0.3
        tau_float = mean - beta * std / gamma
        naive = math.ceil((tau_float + k) / 2)
        thresholds, _ = fold_batchnorm(k, [gamma], [beta], [mean], [std])
        exact = exact_bn_bits(k, [gamma], [beta], [mean], [std])[:, 0]
        assert tau_float == 4.0 and naive == 18
        assert thresholds == (19,)
        assert exact[18] == 0 and exact[19] == 1
        assert torch.equal(folded_bits(k, thresholds, (1,))[:, 0], exact)

    def test_seeded_config(self):
        cfg = seeded_config(word_width=16, k=100, channels=8, seed=1)
        assert cfg.thresholds[:2] == (0, 101)            # gamma = 0 with beta >= 0, with beta < 0
        assert set(cfg.direction_codes) == {1, -1}


class TestBitplanes:
    @pytest.mark.parametrize("signed", [False, True])
    def test_equals_integer_dot(self, signed):
        gen = torch.Generator().manual_seed(int(signed))
        low, high = (-128, 127) if signed else (0, 255)
        x = torch.randint(low, high + 1, (40, 784), generator=gen)
        x[0], x[1] = low, high
        w_bits = torch.randint(0, 2, (10, 784), generator=gen)
        assert torch.equal(bitplane_dot(x, w_bits, signed=signed), x @ (2 * w_bits - 1).T)

    def test_worked_by_hand(self):
        # x = (3, 0, 255) . w = (+1, -1, -1): 3 - 255 = -252. Plane 0: x^0 = (1, 0, 1), 2 * 1 - 2 = 0;
        # plane 1: (1, 0, 1), 0; planes 2..7: (0, 0, 1), 2 * 0 - 1 = -1 each: -(4 + ... + 128) = -252.
        assert bitplane_dot(torch.tensor([[3, 0, 255]]), torch.tensor([[1, 0, 0]])).tolist() == [[-252]]

    def test_range_checked(self):
        with pytest.raises(ValueError, match=r"^Input codes must lie in \[0, 255\] for 8-bit unsigned inputs$"):
            bitplane_dot(torch.tensor([[256]]), torch.tensor([[1]]))
        with pytest.raises(ValueError, match=r"^Weight bits must be 0 or 1$"):
            bitplane_dot(torch.tensor([[1]]), torch.tensor([[2]]))


#: ``make test-full`` also plays the 2^16-pair exhaustive case in amaranth.sim and the 512-MAC area config
#: in amaranth.sim and on both simulators; ``make test`` plays the exhaustive case on Verilator (the slow
#: tier) and smaller exhaustive cases here, and leaves the area config to the FPGA report.
HEAVY_CONFIGS = ("w32_k256_c16",)


@pytest.mark.parametrize("config_name", list(BLOCKS["xnor_popcount"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["xnor_popcount"]
    cfg = block.configs[config_name]
    if config_name in HEAVY_CONFIGS and not FULL:
        pytest.skip("512 binary MACs: make test-full")

    def cases(cfg):
        return [case for case in vectors(cfg) if FULL or case.name != "exhaustive"]

    results = fast_tier("xnor_popcount", config_name, cases)
    case, result = results["every_popcount"]
    if "exhaustive" in results:
        exhaustive, _ = results["exhaustive"]
        assert len(exhaustive.beats) // cfg.words * cfg.channels >= 1 << (2 * cfg.words * cfg.word_width)
    # Latency from a vector's last word to its bits; one word per cycle without idles or backpressure.
    assert result.out_cycles[0] - result.in_cycles[cfg.words - 1] == block.interface(cfg).latency
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))
    assert result.out_cycles == [result.out_cycles[0] + cfg.words * n for n in range(len(case.expected))]


@pytest.mark.parametrize("word_width, k", [(2, 3), (4, 4), (1, 4), (8, 24), (3, 10)])
def test_fast_tier_small_words(word_width, k):
    # Every pair of 2-bit-word vectors of K = 3 (2^8 pairs, padding included), every pair of one-word
    # vectors of K = 4, one-bit words (a vector is K beats, every pair of 4-bit vectors), three full
    # words, and a word width that is not a power of two; kept out of the registry for the slow tier's
    # time budget.
    from qarith.hdl.xnor_popcount import XnorPopcount
    cfg = seeded_config(word_width=word_width, k=k, channels=5, seed=k)
    cases = vectors(cfg)
    if cfg.words * word_width <= 8:
        assert cases[0].name == "exhaustive"
        assert len(cases[0].beats) // cfg.words * cfg.channels >= 1 << (2 * cfg.words * word_width)
    for case in cases:
        run_amaranth(XnorPopcount(cfg), case, 0.3, 0.4)


def test_mask_matters():
    # The same vectors with and without padding noise give the same bits; a model that counted the
    # padding would differ on this case (K = 7 in 4-bit words, every padding bit set).
    cfg = XnorPopcountConfig(word_width=4, k=7, channels=1)
    x = torch.tensor([[0b0000, 0b1000]])
    w = torch.tensor([[[0b1111, 0b1000]]])
    assert popcounts(cfg, x, w).tolist() == [[3]]
    case = vector_case(cfg, "padding", x, w)
    from qarith.hdl.xnor_popcount import XnorPopcount
    run_amaranth(XnorPopcount(cfg), case)


@pytest.mark.parametrize("config_name, simulator", [
    param for param in slow_tier_params("xnor_popcount") if FULL or param.values[0] not in HEAVY_CONFIGS])
def test_cocotb(config_name, simulator):
    slow_tier("xnor_popcount", config_name, simulator)
