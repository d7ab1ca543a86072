import math

import pytest
import torch

from qarith.golden.early_exit import (EarlyExitConfig, early_exit, elbert_exit_float, entropy_logit,
                                      normalised_entropy)
from qarith.registry import BLOCKS
from qarith.sim.common.bench import Vectors, run_amaranth
from qarith.sim.early_exit import layer_vectors, vectors

from tiers import fast_tier, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"classes": 1}, r"^Classes must be between 2 and 16, not 1$"),
        ({"classes": 17}, r"^Classes must be between 2 and 16, not 17$"),
        ({"logit_width": 1}, r"^Logit width must be between 2 and 24, not 1$"),
        ({"scale": 0.0}, r"^Scale must be a finite number between 2\*\*-24 and 2\*\*24, not 0\.0$"),
        ({"scale": math.nan}, r"^Scale must be a finite number between 2\*\*-24 and 2\*\*24, not nan$"),
        ({"tau": 1.0}, r"^Entropy threshold must be between 0\.001 and 0\.999, not 1\.0$"),
        ({"patience": 0}, r"^Patience must be between 1 and 255 layers, not 0$"),
        ({"margin": 0.5}, r"^Margin must be between 0 and 0\.499, not 0\.5$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            EarlyExitConfig(**kwargs)

    def test_bad_types(self):
        with pytest.raises(TypeError, match=r"^patience must be an integer, not 8\.0$"):
            EarlyExitConfig(patience=8.0)
        with pytest.raises(TypeError, match=r"^tau must be a number, not '0\.1'$"):
            EarlyExitConfig(tau="0.1")

    def test_bad_logits(self):
        cfg = EarlyExitConfig()
        with pytest.raises(TypeError, match=r"^Early exit takes integer logit codes, not torch\.float32$"):
            early_exit(cfg, torch.zeros(1, 2), [True])
        with pytest.raises(ValueError, match=r"^Logits must be \(layers, 2\), not \(1, 3\)$"):
            early_exit(cfg, torch.zeros(1, 3, dtype=torch.int64), [True])
        with pytest.raises(ValueError, match=r"^Logits must be 8-bit signed codes$"):
            early_exit(cfg, torch.tensor([[128, 0]]), [True])


class TestThresholds:
    def test_entropy_logits_of_the_paper_thresholds(self):
        # H_2(p) = tau at ln(p / (1 - p)) = 4.3307 (tau = 0.1, the paper's) and 3.4381 (0.2).
        assert round(entropy_logit(0.1), 4) == 4.3307
        assert round(entropy_logit(0.2), 4) == 3.4381

    def test_codes_worked_by_hand(self):
        cfg = EarlyExitConfig(scale=1 / 16, tau=0.1, margin=0.1)
        # floor(4.3307 * 16) = floor(69.29) = 69; ln(0.6 / 0.4) * 16 = 6.49 -> 6.
        assert (cfg.entropy_codes, cfg.margin_codes) == (69, 6)
        assert EarlyExitConfig().margin_codes == 0

    @pytest.mark.parametrize("scale, tau", [(1 / 16, 0.1), (1 / 7, 0.2), (0.3, 0.5), (1 / 64, 0.05)])
    def test_entropy_test_is_one_comparison(self, scale, tau):
        # Every difference of two 10-bit logits: H < tau exactly when |d| > T.
        cfg = EarlyExitConfig(logit_width=10, scale=scale, tau=tau)
        d = torch.arange(-1023, 1024)
        logits = torch.stack([d, torch.zeros_like(d)], dim=1).double() * scale
        assert torch.equal(normalised_entropy(logits) < tau, d.abs() > cfg.entropy_codes)


class TestGolden:
    def test_worked_by_hand(self):
        cfg = EarlyExitConfig(scale=1 / 16, tau=0.1, patience=3)
        # T = 69. Layers: class 0 by 5, class 0 by 1, tie, class 1 by 2, class 1, class 1 (window full),
        # class 1 again (saturated), then class 0 by 70 (confident), then a new sample.
        logits = torch.tensor([[5, 0], [1, 0], [4, 4], [0, 2], [-3, 0], [-9, -1], [-9, -1], [70, 0], [0, 2]])
        first = [True] + [False] * 7 + [True]
        decision = early_exit(cfg, logits, first)
        assert decision["run"].tolist() == [1, 2, 0, 1, 2, 3, 3, 1, 1]
        assert decision["label"].tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 1]
        assert decision["confident"].tolist() == [False] * 7 + [True, False]
        assert decision["exit"].tolist() == [False] * 5 + [True, True, True, False]

    def test_first_restarts_the_window(self):
        cfg = EarlyExitConfig(patience=2)
        logits = torch.tensor([[3, 0], [3, 0], [3, 0]])
        assert early_exit(cfg, logits, [True, True, False])["run"].tolist() == [1, 1, 2]

    def test_multi_class_margin_and_lowest_index(self):
        cfg = EarlyExitConfig(classes=4, scale=1 / 8, tau=0.3, patience=2)
        logits = torch.tensor([[1, 9, 9, 2], [0, 5, 1, 30], [-128, -128, -128, 127]])
        decision = early_exit(cfg, logits, [True, False, False])
        # A tie at the top: margin 0, label the lower index (1), no vote.
        assert decision["label"].tolist() == [1, 3, 3] and decision["run"].tolist() == [0, 1, 2]
        # T = floor(entropy_logit(0.3) * 8); 255 > T, 25 is not.
        assert decision["confident"].tolist() == [False, 25 > cfg.entropy_codes, True]

    @pytest.mark.parametrize("margin", [0.0, 0.3])
    def test_two_classes_equal_the_paper_rule(self, margin):
        # Random samples of 24 layers whose logits drift, with held, flipped and tied predictions:
        # the integer block exits at exactly the layers of the paper's float rule.
        cfg = EarlyExitConfig(logit_width=8, scale=1 / 16, tau=0.1, patience=4, margin=margin)
        gen = torch.Generator().manual_seed(11)
        for _ in range(60):
            walk = torch.randint(-12, 13, (24,), generator=gen).cumsum(0).clamp(-127, 127)
            logits = torch.stack([walk, torch.zeros_like(walk)], dim=1)
            logits[torch.randint(0, 24, (3,), generator=gen)] = 0
            ours = early_exit(cfg, logits, [True] + [False] * 23)["exit"]
            paper = elbert_exit_float(logits.double() * cfg.scale, cfg.tau, cfg.patience, margin)
            assert torch.equal(ours, paper)

    def test_multi_class_margin_against_the_entropy(self):
        # C = 4: the top-2 margin test and the paper's C-class entropy test on random logits. Not the same
        # test (documented); they agree on most layers and never disagree for a margin far past T.
        cfg = EarlyExitConfig(classes=4, logit_width=8, scale=1 / 8, tau=0.3)
        gen = torch.Generator().manual_seed(2)
        logits = torch.randint(-128, 128, (20000, 4), generator=gen)
        ours = early_exit(cfg, logits, torch.ones(20000, dtype=torch.bool))["confident"]
        paper = normalised_entropy(logits.double() * cfg.scale) < cfg.tau
        agreement = float((ours == paper).double().mean())
        assert agreement > 0.9
        top2 = logits.topk(2, dim=1).values
        far = (top2[:, 0] - top2[:, 1]) > 2 * cfg.entropy_codes
        assert bool((ours[far] == paper[far]).all())


@pytest.mark.parametrize("config_name", list(BLOCKS["early_exit"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["early_exit"]
    cfg = block.configs[config_name]
    results = fast_tier("early_exit", config_name, vectors)
    case, result = results["every_margin"]
    assert len(case.beats) == cfg.gap_max + 1
    assert result.out_cycles[0] - result.in_cycles[0] == block.interface(cfg).latency
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))


def test_every_pair_of_two_class_logits():
    # Every pair of 6-bit logits (4096 layers) in random order, a fifth of them a sample's first layer.
    from qarith.hdl.early_exit import EarlyExit
    cfg = EarlyExitConfig(logit_width=6, scale=1 / 4, tau=0.2, patience=3, margin=0.2)
    codes = torch.arange(-32, 32)
    gen = torch.Generator().manual_seed(4)
    pairs = torch.cartesian_prod(codes, codes)[torch.randperm(4096, generator=gen)]
    first = torch.rand(4096, generator=gen) < 0.2
    first[0] = True
    run_amaranth(EarlyExit(cfg), layer_vectors(cfg, "every_pair", pairs, first))


def test_scoreboard_catches_a_wrong_run():
    from qarith.hdl.early_exit import EarlyExit
    cfg = EarlyExitConfig()
    case = layer_vectors(cfg, "two", torch.tensor([[3, 0], [3, 0]]), [True, False])
    wrong = [case.expected[0], dict(case.expected[1], run=1)]
    with pytest.raises(AssertionError):
        run_amaranth(EarlyExit(cfg), Vectors(case.name, case.beats, wrong, case.static, case.origin))


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("early_exit"))
def test_cocotb(config_name, simulator):
    slow_tier("early_exit", config_name, simulator)
