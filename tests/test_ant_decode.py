import pytest
import torch

from qarith.golden.ant_decode import AntDecodeConfig, ant_decode
from qarith.golden.common.ant import (ALPHA_STEPS, CODES, KINDS, ant_quantize, code_values, decode, decode_fields,
                                      dequantize, grid, nearest_codes, quantize, search_scale, select_type)
from qarith.registry import BLOCKS
from qarith.sim.ant_decode import TYPES, vectors

from tiers import fast_tier, slow_tier, slow_tier_params

ALL_TYPES = [(kind, signed) for kind in KINDS for signed in (False, True)]


class TestGrids:
    def test_grids_as_the_paper_lists_them(self):
        assert grid("int", False).tolist() == list(range(16))
        assert grid("int", True).tolist() == list(range(-8, 8))
        assert grid("pot", False).tolist() == [0] + [2 ** e for e in range(15)]
        assert grid("pot", True).tolist() == sorted({0} | {s * 2 ** e for e in range(7) for s in (1, -1)})
        assert grid("flint", False).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 24, 32, 64]
        magnitudes = [0, 1, 2, 3, 4, 6, 8, 16]
        assert grid("flint", True).tolist() == sorted(set(magnitudes) | {-v for v in magnitudes})

    @pytest.mark.parametrize("kind, signed", ALL_TYPES)
    def test_decoder_fields_give_the_grid_table_for_every_code(self, kind, signed):
        # Two derivations: the decoder's bit rule (leading ones, mantissa, shift) and the grid lists with
        # monotone codes. Every one of the 16 codes, for each of the six types.
        sign, mantissa, shift = decode_fields(kind, signed, torch.tensor(CODES))
        assert torch.equal((1 - 2 * sign) * (mantissa << shift), code_values(kind, signed))
        assert int(mantissa.max()) <= 15 and int(shift.max()) <= 14

    def test_flint_codes_worked_by_hand(self):
        fields = lambda signed, code: tuple(int(f) for f in decode_fields("flint", signed, torch.tensor([code])))
        # Unsigned: 0abc = abc; 10mm = (4 + mm) << 1; 110m = (2 + m) << 3; 1110 = 32; 1111 = 64.
        assert fields(False, 0b0101) == (0, 5, 0)
        assert fields(False, 0b1010) == (0, 6, 1)      # 12
        assert fields(False, 0b1101) == (0, 3, 3)      # 24
        assert fields(False, 0b1110) == (0, 1, 5)      # 32
        assert fields(False, 0b1111) == (0, 1, 6)      # 64
        # Signed, 3 magnitude bits: 0ab = ab; 10m = (2 + m) << 1; 110 = 8; 111 = 16.
        assert fields(True, 0b0101) == (0, 3, 1)       # 6
        assert fields(True, 0b1110) == (1, 1, 3)       # -8
        assert fields(True, 0b1111) == (1, 1, 4)       # -16
        # flint's unsigned fields: mantissa <= 7 and shift in {0, 1, 3, 5, 6}, as the paper's PE needs.
        _, mantissa, shift = decode_fields("flint", False, torch.tensor(CODES))
        assert int(mantissa.max()) == 7 and set(shift.tolist()) == {0, 1, 3, 5, 6}

    def test_ties_go_to_the_larger_point(self):
        assert decode("flint", False, nearest_codes("flint", False, torch.tensor([9.0, 20.0, 48.0, 11.0]))).tolist() \
            == [10, 24, 64, 12]
        assert decode("pot", False, nearest_codes("pot", False, torch.tensor([1.5, 3.0, 12288.0]))).tolist() \
            == [2, 4, 16384]
        # Towards +inf also for negative ties (the reference scans the signed grid in ascending order).
        assert decode("int", True, nearest_codes("int", True, torch.tensor([2.5, -2.5, -7.5]))).tolist() == [3, -2, -7]
        assert decode("flint", True, nearest_codes("flint", True, torch.tensor([5.0, -5.0, -12.0]))).tolist() \
            == [6, -4, -8]

    @pytest.mark.parametrize("kind, signed", ALL_TYPES)
    def test_nearest_matches_the_reference_scan(self, kind, signed):
        # The reference kernel's rule written out: scan the grid ascending, keep a point whose distance
        # is <= the best so far. Dense values including every midpoint and points beyond both ends.
        points = grid(kind, signed).double()
        values = torch.cat([torch.linspace(float(points[0]) - 3, float(points[-1]) + 3, 4001, dtype=torch.float64),
                            (points[1:] + points[:-1]) / 2, points])
        best = torch.full_like(values, torch.inf)
        nearest = torch.zeros_like(values)
        for point in points:
            distance = (values - point).abs()
            closer = distance <= best
            best = torch.where(closer, distance, best)
            nearest = torch.where(closer, point, nearest)
        assert torch.equal(decode(kind, signed, nearest_codes(kind, signed, values)).double(), nearest)

    def test_saturation(self):
        # Beyond the grid's ends the nearest point is the end (the reference would return 0 beyond a
        # distance of 102400; the clipping search never gets there, and saturating is the safe choice).
        x = torch.tensor([1e9, -1e9, 200.0, -200.0])
        assert decode("flint", False, nearest_codes("flint", False, x)).tolist() == [64, 0, 64, 0]
        assert decode("pot", True, nearest_codes("pot", True, x)).tolist() == [64, -64, 64, -64]
        assert decode("int", True, nearest_codes("int", True, x)).tolist() == [7, -8, 7, -8]

    def test_int4_minus_eight_is_minus_eight_sevenths_alpha(self):
        # int4's scale is alpha / 7, so -8 means -8 alpha / 7, one step beyond -alpha.
        alpha = 0.7
        codes = quantize("int", True, torch.tensor([-0.8, -0.75, -0.7, 0.7, 0.8]), alpha)
        assert codes.tolist() == [8, 8, 9, 7, 7]
        assert dequantize("int", True, codes, alpha).tolist() == pytest.approx([-0.8, -0.8, -0.7, 0.7, 0.7])

    @pytest.mark.parametrize("kind", ["pot", "flint"])
    def test_minus_zero(self, kind):
        # Code 1000 of the sign-magnitude types: sign 1, mantissa 0, value 0; the quantizer never emits it.
        assert [int(f) for f in decode_fields(kind, True, torch.tensor([0b1000]))] == [1, 0, 0]
        assert decode(kind, True, torch.tensor([0b1000])).tolist() == [0]
        assert nearest_codes(kind, True, torch.tensor([-0.0, -0.1, -0.49, 0.0])).tolist() == [0, 0, 0, 0]

    def test_bad_types_and_codes(self):
        with pytest.raises(ValueError, match=r"^ANT kind must be one of int, pot, flint, not 'float'$"):
            grid("float", True)
        with pytest.raises(TypeError, match=r"^signed must be a bool, not 1$"):
            grid("int", 1)
        with pytest.raises(ValueError, match=r"^ANT codes must lie in \[0, 15\]$"):
            decode("int", True, torch.tensor([16]))
        with pytest.raises(ValueError, match=r"^Cannot quantize NaN$"):
            nearest_codes("int", True, torch.tensor([float("nan")]))
        with pytest.raises(ValueError, match=r"^Scale alpha must be positive and finite$"):
            quantize("int", True, torch.tensor([1.0]), 0.0)


class TestSearch:
    def test_scale_is_the_best_candidate(self):
        gen = torch.Generator().manual_seed(3)
        x = torch.randn(500, generator=gen, dtype=torch.float64)
        alpha, mse = search_scale("flint", True, x)
        top = float(x.abs().max())
        scores = []
        for step in ALPHA_STEPS:
            candidate = top * step / 100
            scores.append(float((dequantize("flint", True, quantize("flint", True, x, candidate), candidate) - x)
                                .square().mean()))
        assert mse == min(scores)
        assert alpha == pytest.approx(top * ALPHA_STEPS[scores.index(min(scores))] / 100)

    def test_per_channel_scales_are_independent(self):
        gen = torch.Generator().manual_seed(4)
        w = torch.randn(5, 64, generator=gen, dtype=torch.float64) * torch.tensor([[0.1], [1], [3], [0.01], [10]])
        alpha, mse = search_scale("int", True, w, per_channel=True)
        rows = [search_scale("int", True, row) for row in w]
        assert alpha.tolist() == pytest.approx([a for a, _ in rows])
        assert mse == pytest.approx(sum(m for _, m in rows))

    @pytest.mark.parametrize("kind", KINDS)
    def test_data_on_a_grid_selects_that_grid(self, kind):
        # Values that are exactly one type's grid (times a scale) quantize with zero error at i = 100
        # (int4 without -8: its scale is alpha / 7, so -8 is not at i = 100).
        points = grid(kind, True).double()
        points = points[points >= -points.max()]
        x = points.repeat(8) * 0.375
        choice = select_type(x)
        assert (choice.kind, choice.signed, choice.mse) == (kind, True, 0.0)
        assert choice.alpha == pytest.approx(float(points.abs().max()) * 0.375)
        assert all(mse > 0 for name, mse in choice.candidates.items() if name != kind)

    def test_ties_prefer_int_then_flint_then_pot(self):
        # 0 and +-m lie on every signed grid: all three kinds quantize it exactly.
        x = torch.tensor([0.0, 1.0, -1.0, 1.0, 0.0])
        assert select_type(x).kind == "int"
        assert select_type(x, kinds=("flint", "pot")).kind == "flint"
        assert select_type(x, kinds=("pot",)).kind == "pot"
        assert set(select_type(x).candidates.values()) == {0.0}

    def test_signedness_follows_the_minimum(self):
        assert select_type(torch.tensor([0.0, 1.0, 2.0])).signed is False
        assert select_type(torch.tensor([-0.1, 1.0, 2.0])).signed is True

    def test_ant_quantize_round_trip(self):
        gen = torch.Generator().manual_seed(5)
        u = torch.rand(8, 32, generator=gen, dtype=torch.float64) - 0.5
        w = -u.sign() * torch.log1p(-2 * u.abs())         # Laplace(0, 1) by the inverse CDF
        codes, choice = ant_quantize(w, per_channel=True)
        error = (dequantize(choice.kind, choice.signed, codes, choice.alpha) - w).square().mean(dim=1).sum()
        assert float(error) == pytest.approx(choice.mse)
        assert choice.mse == min(choice.candidates.values())


class TestBlock:
    def test_bad_lanes(self):
        with pytest.raises(ValueError, match=r"^Lanes must be between 1 and 64, not 0$"):
            AntDecodeConfig(lanes=0)
        with pytest.raises(TypeError, match=r"^lanes must be an integer, not 2\.0$"):
            AntDecodeConfig(lanes=2.0)

    def test_golden_refuses_the_reserved_kind(self):
        cfg = AntDecodeConfig(lanes=1)
        with pytest.raises(ValueError, match=r"^Kind indices must lie in \[0, 2\] \(int, pot, flint\)$"):
            ant_decode(cfg, torch.tensor([3]), torch.tensor([0]), torch.tensor([[0]]))
        with pytest.raises(ValueError, match=r"^Signedness must be 0 or 1$"):
            ant_decode(cfg, torch.tensor([0]), torch.tensor([2]), torch.tensor([[0]]))

    def test_golden_per_beat_types(self):
        # One beat per type, codes 0b1011 and 0b0111 in two lanes.
        cfg = AntDecodeConfig(lanes=2)
        kind = torch.tensor([k for k, _ in TYPES])
        signed = torch.tensor([s for _, s in TYPES])
        sign, mantissa, shift = ant_decode(cfg, kind, signed, torch.tensor([[0b1011, 0b0111]] * len(TYPES)))
        value = ((1 - 2 * sign) * (mantissa << shift)).tolist()
        # int u: 11, 7; int s: -5, 7; PoT u: 2^10, 2^6; PoT s: -(2^2), 2^6; flint u: 10mm = (4 + 3) << 1, 7;
        # flint s: -(magnitude code 011 = 3), magnitude code 111 = 16.
        assert value == [[11, 7], [-5, 7], [1024, 64], [-4, 64], [14, 7], [-3, 16]]


@pytest.mark.parametrize("config_name", list(BLOCKS["ant_decode"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["ant_decode"]
    results = fast_tier("ant_decode", config_name, vectors)
    case, result = results["exhaustive"]
    assert len(case.beats) == 16 * len(TYPES)
    assert result.out_cycles[0] - result.in_cycles[0] == block.interface(block.configs[config_name]).latency
    # One beat per cycle without idles or backpressure.
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("ant_decode"))
def test_cocotb(config_name, simulator):
    slow_tier("ant_decode", config_name, simulator)
