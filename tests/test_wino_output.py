import pytest
import torch

from qarith.golden.common.winograd import matrices, output_transform_range, round_shift
from qarith.golden.wino_output import WinoOutputConfig, wino_output
from qarith.registry import BLOCKS
from qarith.sim.common.bench import MODES, run_amaranth
from qarith.sim.wino_input import extreme_tiles
from qarith.sim.wino_output import vectors

from tiers import fast_tier, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"tile": 8}, r"^Tile must be 2 \(F\(2x2,3x3\)\) or 4 \(F\(4x4,3x3\)\), not 8$"),
        ({"tile": 4, "kernel": 5}, r"^Kernel must be 3 \(3x3\) for F\(4x4,3x3\), not 5$"),
        ({"in_width": 33}, r"^Input width must be between 2 and 32, not 33$"),
        ({"shift": -1}, r"^Shift must be between 0 and 24, not -1$"),
        ({"shift": 25}, r"^Shift must be between 0 and 24, not 25$"),
        ({"tile": 4, "out_width": 20},
         r"^Output width must be between 25 \(the exact growth of F\(4x4,3x3\)'s A\^T M A for 16-bit values, "
         r"shifted by 0\) and 48, not 20$"),
        ({"tile": 2, "in_width": 20, "shift": 4, "out_width": 19},
         r"^Output width must be between 20 \(the exact growth of F\(2x2,3x3\)'s A\^T M A for 20-bit values, "
         r"shifted by 4\) and 48, not 19$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            WinoOutputConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"tile": 2.0}, r"^tile must be an integer, not 2\.0$"),
        ({"shift": "4"}, r"^shift must be an integer, not '4'$"),
        ({"out_width": False}, r"^out_width must be an integer, not False$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            WinoOutputConfig(**kwargs)


def test_generator_rejects_other_configs():
    from qarith.hdl.wino_output import WinoOutput
    with pytest.raises(TypeError, match=r"^Configuration must be a WinoOutputConfig, not 3$"):
        WinoOutput(3)


class TestGolden:
    def test_growth_pinned(self):
        # Sum of |coefficients| of pixel (i, j) is r_i r_j, r_i = sum_k |A^T[i, k]|.
        assert torch.tensor(matrices(2).AT).abs().sum(dim=1).tolist() == [3, 3]
        assert torch.tensor(matrices(4).AT).abs().sum(dim=1).tolist() == [5, 6, 10, 19]
        assert WinoOutputConfig(tile=2, in_width=16).transform_range == (-9 * 32768, 9 * 32768 - 3)
        low, high = WinoOutputConfig(tile=4, in_width=16).transform_range
        assert (low, high) == (-361 * 32768 + 180, 361 * 32768 - 181)
        assert WinoOutputConfig(tile=2, in_width=16).exact_width == 20
        assert WinoOutputConfig(tile=4, in_width=16).exact_width == 25
        assert WinoOutputConfig(tile=4, in_width=24, shift=8).exact_width == 25

    @pytest.mark.parametrize("tile", [2, 4])
    def test_range_reached(self, tile):
        low, high = output_transform_range(tile, 12)
        y = wino_output(WinoOutputConfig(tile=tile, in_width=12), extreme_tiles(matrices(tile).AT, 12))
        assert torch.equal(y.amin(dim=0), low) and torch.equal(y.amax(dim=0), high)

    def test_values_worked_by_hand(self):
        # F2, M = all ones: A^T 1 has rows 3 and -1 in every column, so Y = [[9, -3], [-3, 1]].
        assert wino_output(WinoOutputConfig(tile=2), torch.ones(4, 4)).tolist() == [[9, -3], [-3, 1]]
        # F4, a single 1 at tap (3, 4): Y = outer(A^T[:, 3], A^T[:, 4]) = outer((1, 2, 4, 8), (1, -2, 4, -8)).
        m = torch.zeros(6, 6, dtype=torch.int64)
        m[3, 4] = 1
        assert wino_output(WinoOutputConfig(tile=4), m)[3].tolist() == [8, -16, 32, -64]

    def test_rounding_half_up(self):
        x = torch.tensor([5, 6, -6, -5, -7, 2, -2, 7, -10])
        assert round_shift(x, 2).tolist() == [1, 2, -1, -1, -2, 1, 0, 2, -2]
        assert round_shift(x, 0).tolist() == x.tolist()
        cfg = WinoOutputConfig(tile=2, in_width=20, shift=4)
        m = torch.zeros(3, 4, 4, dtype=torch.int64)
        m[:, 0, 0] = torch.tensor([24, -24, -8])          # 1.5, -1.5, -0.5 output steps
        assert wino_output(cfg, m)[:, 0, 0].tolist() == [2, -1, 0]


@pytest.mark.parametrize("config_name", list(BLOCKS["wino_output"].configs))
def test_no_multipliers(config_name):
    block = BLOCKS["wino_output"]
    assert block.interface(block.configs[config_name]).multipliers == 0


@pytest.mark.parametrize("config_name", list(BLOCKS["wino_output"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["wino_output"]
    cfg = block.configs[config_name]
    results = fast_tier("wino_output", config_name, vectors)
    assert set(results) == {"random", "extremes"} | ({"rounding_ties"} if cfg.shift else set())
    _, result = results["random"]
    assert result.out_cycles[0] - result.in_cycles[0] == block.interface(cfg).latency
    assert result.out_cycles[-1] - result.out_cycles[0] == len(result.out_cycles) - 1


def test_fast_tier_f2_with_shift():
    # A config outside the registry (kept out of the slow tier's time budget): F2 with a rounding shift.
    cfg = WinoOutputConfig(tile=2, in_width=20, shift=4)
    cases = vectors(cfg)
    assert [case.name for case in cases] == ["random", "extremes", "rounding_ties"]
    for case in cases:
        for mode in ("plain", "both"):
            result = run_amaranth(BLOCKS["wino_output"].elaborate(cfg), case, *MODES[mode], seed=len(mode))
            if mode == "plain":
                assert result.out_cycles[0] - result.in_cycles[0] == BLOCKS["wino_output"].interface(cfg).latency


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("wino_output"))
def test_cocotb(config_name, simulator):
    slow_tier("wino_output", config_name, simulator)
