import pytest
import torch

from qarith.golden.common.winograd import input_transform_range, matrices
from qarith.golden.wino_input import WinoInputConfig, wino_input
from qarith.registry import BLOCKS
from qarith.sim.common.bench import MODES, run_amaranth
from qarith.sim.wino_input import extreme_tiles, vectors

from tiers import fast_tier, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"tile": 3}, r"^Tile must be 2 \(F\(2x2,3x3\)\) or 4 \(F\(4x4,3x3\)\), not 3$"),
        ({"tile": 6}, r"^Tile must be 2 \(F\(2x2,3x3\)\) or 4 \(F\(4x4,3x3\)\), not 6$"),
        ({"kernel": 5}, r"^Kernel must be 3 \(3x3\) for F\(2x2,3x3\), not 5$"),
        ({"in_width": 1}, r"^Input width must be between 2 and 16, not 1$"),
        ({"in_width": 17}, r"^Input width must be between 2 and 16, not 17$"),
        ({"tile": 4, "out_width": 14},
         r"^Output width must be between 15 \(the exact growth of F\(4x4,3x3\)'s B\^T d B for 8-bit codes\) "
         r"and 32, not 14$"),
        ({"out_width": 9},
         r"^Output width must be between 10 \(the exact growth of F\(2x2,3x3\)'s B\^T d B for 8-bit codes\) "
         r"and 32, not 9$"),
        ({"out_width": 33}, r"^Output width must be between 10 .* and 32, not 33$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            WinoInputConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"tile": "2"}, r"^tile must be an integer, not '2'$"),
        ({"kernel": 3.0}, r"^kernel must be an integer, not 3\.0$"),
        ({"in_width": True}, r"^in_width must be an integer, not True$"),
        ({"out_width": 15.0}, r"^out_width must be an integer, not 15\.0$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            WinoInputConfig(**kwargs)

    def test_wider_output_allowed(self):
        assert WinoInputConfig(tile=4, out_width=16).out_width == 16
        assert WinoInputConfig(tile=4).out_width == 15


def test_generator_rejects_other_configs():
    from qarith.hdl.wino_input import WinoInput
    with pytest.raises(TypeError, match=r"^Configuration must be a WinoInputConfig, not None$"):
        WinoInput(None)


class TestGolden:
    def test_growth_pinned(self):
        # Sum of |coefficients| of tap (i, j) is r_i r_j, r_i = sum_k |B^T[i, k]|; times 128 bounds |V|.
        for tile, r in ((2, (2, 2, 2, 2)), (4, (10, 10, 10, 6, 6, 10))):
            bt = torch.tensor(matrices(tile).BT)
            assert bt.abs().sum(dim=1).tolist() == list(r)
            low, high = input_transform_range(tile, 8)
            bound = 128 * torch.outer(torch.tensor(r), torch.tensor(r))
            assert (int(bound.min()), int(bound.max())) == {2: (512, 512), 4: (4608, 12800)}[tile]
            assert bool((-low <= bound).all()) and bool((high < bound).all())
        low, high = input_transform_range(2, 8)
        assert (int(low.min()), int(high.max())) == (-512, 510)
        low, high = input_transform_range(4, 8)
        assert (int(low.min()), int(high.max())) == (-12768, 12750)
        assert (WinoInputConfig(tile=2).exact_width, WinoInputConfig(tile=4).exact_width) == (10, 15)
        assert WinoInputConfig(tile=4, in_width=6).exact_width == 13

    @pytest.mark.parametrize("tile", [2, 4])
    def test_range_reached_and_not_exceeded(self, tile):
        low, high = input_transform_range(tile, 8)
        v = wino_input(WinoInputConfig(tile=tile), extreme_tiles(matrices(tile).BT, 8))
        assert torch.equal(v.amin(dim=0), low) and torch.equal(v.amax(dim=0), high)
        gen = torch.Generator().manual_seed(5)
        n = tile + 2
        random_tiles = torch.randint(-128, 128, (20000, n, n), generator=gen)
        random_tiles[::2] = torch.where(random_tiles[::2] >= 0, 127, -128)
        v = wino_input(WinoInputConfig(tile=tile), random_tiles)
        assert bool((v >= low).all()) and bool((v <= high).all())

    def test_values_worked_by_hand(self):
        # An impulse of 7 at row 2, column 3 of a 6x6 tile: V = 7 * outer(B^T[:, 2], B^T[:, 3]),
        # B^T[:, 2] = (-5, -4, -4, -1, -1, 0), B^T[:, 3] = (0, 1, -1, 2, -2, -5).
        d = torch.zeros(6, 6, dtype=torch.int64)
        d[2, 3] = 7
        v = wino_input(WinoInputConfig(tile=4), d)
        assert v[0, 5] == 7 * 25 and v[1, 3] == -56 and v[3, 4] == 14 and v[5, 0] == 0
        # F2, a tile of ones: B^T 1 has rows (0, 2, 0, 0) in each column, so V is 4 at tap (1, 1) only.
        v = wino_input(WinoInputConfig(tile=2), torch.ones(4, 4, dtype=torch.int64))
        assert v.tolist() == [[0, 0, 0, 0], [0, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]

    def test_against_elementwise_sum(self):
        # The matrix-product model against the definition V[i,j] = sum_kl B^T[i,k] d[k,l] B^T[j,l].
        bt = matrices(4).BT
        gen = torch.Generator().manual_seed(2)
        d = torch.randint(-128, 128, (6, 6), generator=gen).tolist()
        expected = [[sum(bt[i][k] * d[k][l] * bt[j][l] for k in range(6) for l in range(6)) for j in range(6)]
                    for i in range(6)]
        assert wino_input(WinoInputConfig(tile=4), torch.tensor(d)).tolist() == expected


@pytest.mark.parametrize("config_name", list(BLOCKS["wino_input"].configs))
def test_no_multipliers(config_name):
    block = BLOCKS["wino_input"]
    assert block.interface(block.configs[config_name]).multipliers == 0


@pytest.mark.parametrize("config_name", list(BLOCKS["wino_input"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["wino_input"]
    results = fast_tier("wino_input", config_name, vectors)
    assert set(results) == {"random", "extremes", "feature_map_8x8", "feature_map_16x16"}
    _, result = results["random"]
    assert result.out_cycles[0] - result.in_cycles[0] == block.interface(block.configs[config_name]).latency
    # One tile per cycle without idles or backpressure.
    assert result.out_cycles[-1] - result.out_cycles[0] == len(result.out_cycles) - 1


def test_fast_tier_narrow_input_wide_output():
    # A config outside the registry (kept out of the slow tier's time budget): 6-bit codes, output
    # one bit wider than the exact growth (sign extension).
    cfg = WinoInputConfig(tile=4, in_width=6, out_width=16)
    for case in vectors(cfg):
        for mode in ("plain", "both"):
            result = run_amaranth(BLOCKS["wino_input"].elaborate(cfg), case, *MODES[mode], seed=len(mode))
            if mode == "plain":
                assert result.out_cycles[0] - result.in_cycles[0] == BLOCKS["wino_input"].interface(cfg).latency


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("wino_input"))
def test_cocotb(config_name, simulator):
    slow_tier("wino_input", config_name, simulator)
