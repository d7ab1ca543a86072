import dataclasses
from fractions import Fraction

import pytest
import torch

from qarith.fpga.accuracy.winograd import winograd_error
from qarith.golden.common.config import from_text, to_text
from qarith.golden.common.winograd import (
    DIRECT_MULTS_PER_OUTPUT,
    input_transform,
    matrices,
    output_transform,
    tap_scales,
    weight_transform,
)
from qarith.golden.wino_conv import (
    WinoConvConfig,
    assemble_tiles,
    direct_conv_int,
    direct_conv_tiles,
    feature_map_tiles,
    seeded_conv_config,
    wino_accumulate,
    wino_conv,
    wino_conv2d,
    winograd_layer,
)
from qarith.registry import BLOCKS
from qarith.sim.common.bench import MODES, run_amaranth
from qarith.sim.wino_conv import vectors

from tiers import fast_tier, played, slow_tier, slow_tier_params

#: An F4 layer with two output channels (the registered F4 config has one; its Verilog is slow to simulate),
#: for the golden checks and one fast-tier run.
# F4 with two output lanes, each with its own tap exponents (per tap and output channel): too slow on
# Icarus for make test, so amaranth.sim only.
F4_TWO_LANES = seeded_conv_config(tile=4, in_channels=3, out_channels=2, seed=2, scales="tap_channel")
CONFIGS = {**BLOCKS["wino_conv"].configs, "f4_c3_o2": F4_TWO_LANES}


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"tile": 3}, r"^Tile must be 2 \(F\(2x2,3x3\)\) or 4 \(F\(4x4,3x3\)\), not 3$"),
        ({"kernel": 5}, r"^Kernel must be 3 \(3x3\) for F\(2x2,3x3\), not 5$"),
        ({"in_channels": 0}, r"^Input channels must be between 1 and 1024, not 0$"),
        ({"tile": 4, "out_channels": 5},
         r"^Output channels must be between 1 and 4 for F\(4x4,3x3\) \(the requantizer's 64 lanes\), not 5$"),
        ({"in_width": 9}, r"^Input width must be between 2 and 8, not 9$"),
        ({"weight_width": 1}, r"^Weight width must be between 2 and 16, not 1$"),
        ({"scales": "channel"}, r"^Scales must be one of tap, tap_channel, layer, not 'channel'$"),
        ({"weights": (1,) * 35}, r"^weights must hold 36 values, not 35$"),
        ({"in_channels": 1, "out_channels": 1, "weights": (128,) + (0,) * 8},
         r"^Weights must be int8 codes in \[-128, 127\], not 0\.\.128$"),
        ({"bias": (0, 1 << 31)}, r"^Bias must be int32, not 0\.\.2147483648$"),
        ({"multiplier": (0.5, 0.0)}, r"^Multipliers must be positive and finite, not \(0\.5, 0\.0\)$"),
        ({"output_offset": 128}, r"^Output offset must be between -128 and 127, not 128$"),
        ({"act_min": 5, "act_max": 4},
         r"^Clamp bounds must satisfy -128 <= act_min <= act_max <= 127, not 5 and 4$"),
        ({"tile": 4, "in_channels": 8, "weight_width": 16},
         r"^A\^T M A needs 36 bits for this layer \(bound \d+\), more than the requantizer's 32-bit input$"),
        # bias 2**30 carried to the Winograd scale 2**3 of these weights is 2**33, which would wrap in int32.
        ({"tile": 2, "in_channels": 1, "out_channels": 1, "weights": (7,) * 9, "bias": (1 << 30,),
          "multiplier": (1e-7,)},
         r"^Bias scaled to the Winograd domain \(up to 8589934592\) plus the accumulator bound \d+ exceeds int32$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            WinoConvConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"tile": None}, r"^tile must be an integer, not None$"),
        ({"in_channels": 2.0}, r"^in_channels must be an integer, not 2\.0$"),
        ({"weights": "abc"}, r"^weights must be a tuple of integers, not 'abc'$"),
        ({"multiplier": (1, "x")}, r"^multiplier must be a tuple of numbers, not \(1, 'x'\)$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            WinoConvConfig(**kwargs)

    def test_text_round_trip_and_lists_rejected(self):
        cfg = BLOCKS["wino_conv"].configs["f2_c4_o1"]
        again = from_text(WinoConvConfig, to_text(cfg))
        assert again == cfg and isinstance(again.weights, tuple)
        with pytest.raises(TypeError, match=r"^weights must be a tuple of integers, not \["):
            dataclasses.replace(cfg, weights=list(cfg.weights))


def test_generator_rejects_other_configs():
    from qarith.hdl.wino_conv import WinoConv
    with pytest.raises(TypeError, match=r"^Configuration must be a WinoConvConfig, not None$"):
        WinoConv(None)


def test_all_zero_weights():
    # Every accumulator is zero: the layer still builds (narrowest requantizer input) and outputs the
    # requantized bias.
    from qarith.hdl.wino_conv import WinoConv
    cfg = WinoConvConfig(tile=2, in_channels=1, out_channels=1, weights=(0,) * 9)
    assert winograd_layer(cfg).acc_bound == 0
    run_amaranth(WinoConv(cfg), vectors(cfg)[0])


def _fraction_transform(tile, g):
    G = matrices(tile).G
    gg = [[sum(G[i][k] * g[k][l] for k in range(3)) for l in range(3)] for i in range(len(G))]
    return [[sum(gg[i][l] * G[j][l] for l in range(3)) for j in range(len(G))] for i in range(len(G))]


def _rounding_bound(cfg, tiles):
    """Bound on ``|Y - 2**s_c direct|`` per output pixel of input tiles ``(T, C_in, n, n)``: with
    ``U_q = U 2**s + delta`` (``|delta| <= 1/2``) and each tap shift adding at most 1/2,
    ``sum_t |a_t| (2**-e_t sum_c |V_ct| / 2 + [e_t > 0] / 2)``."""
    layer = winograd_layer(cfg)
    v = input_transform(cfg.tile, tiles).abs().sum(dim=1, keepdim=True).double()     # (T, 1, n, n)
    per_tap = v / 2 * 2.0 ** -layer.shifts.double() + (layer.shifts > 0).double() / 2
    at = torch.tensor(matrices(cfg.tile).AT).abs().double()
    return at @ per_tap @ at.T


class TestGolden:
    @pytest.mark.parametrize("tile", [2, 4])
    def test_weight_transform_is_exact(self, tile):
        gen = torch.Generator().manual_seed(tile)
        g = torch.randint(-128, 128, (3, 3), generator=gen)
        numerators, denominator = weight_transform(tile, g)
        assert denominator == {2: 4, 4: 576}[tile]
        expected = _fraction_transform(tile, g.tolist())
        assert [[Fraction(int(x), denominator) for x in row] for row in numerators] == expected

    @pytest.mark.parametrize("tile", [2, 4])
    def test_winograd_identity(self, tile):
        # A^T [(D G g G^T D) (.) (B^T d B)] A = D^2 (d correlated with g), exactly in integers.
        gen = torch.Generator().manual_seed(10 + tile)
        n = tile + 2
        d = torch.randint(-128, 128, (50, 1, n, n), generator=gen)
        g = torch.randint(-128, 128, (1, 1, 3, 3), generator=gen)
        numerators, denominator = weight_transform(tile, g[0, 0])
        y = output_transform(tile, numerators * input_transform(tile, d))
        direct = torch.nn.functional.conv2d(d.double(), g.double()).round().long()
        assert torch.equal(y, denominator * direct)

    def test_tap_scale_rule(self):
        cfg = dataclasses.replace(F4_TWO_LANES, scales="tap")
        layer = winograd_layer(cfg)
        numerators, denominator = weight_transform(cfg.tile, cfg.kernels)
        peak = numerators.abs().amax(dim=(0, 1)).double() / denominator          # max |U| per tap
        s = layer.exponents[0].double()
        assert bool((peak * 2 ** s <= 127).all()) and bool((peak * 2 ** (s + 1) > 127).all())
        assert int(layer.weights.abs().max()) <= 127
        assert bool((layer.weights.abs().amax(dim=(0, 1)) >= 64).all())        # every tap uses its 8 bits
        assert torch.equal(layer.shifts, layer.exponents - layer.common.view(-1, 1, 1))
        single, common = tap_scales(cfg.tile, cfg.kernels, 8, "layer")
        assert bool((single == common.view(-1, 1, 1)).all()) and bool((single <= layer.exponents).all())
        per_channel, _ = tap_scales(cfg.tile, cfg.kernels, 8, "tap_channel")
        assert bool((per_channel >= layer.exponents).all())

    @pytest.mark.parametrize("tile", [2, 4])
    def test_exact_when_weights_are_representable(self, tile):
        # Kernels that are multiples of 4 (F2) or 9 (F4) make U dyadic (denominators 1 and 64); small
        # enough ones get tap exponents that make every U 2**s an integer, so nothing rounds anywhere
        # and Y = 2**s_c * direct.
        gen = torch.Generator().manual_seed(3)
        step = {2: 4, 4: 9}[tile]
        weights = torch.randint(-2, 3, (2 * 3 * 9,), generator=gen) * step
        cfg = WinoConvConfig(tile=tile, in_channels=3, out_channels=2, weight_width=12,
                             weights=tuple(weights.tolist()))
        layer = winograd_layer(cfg)
        numerators, denominator = weight_transform(tile, cfg.kernels)
        scaled = torch.bitwise_left_shift(numerators, layer.exponents.unsqueeze(1))
        assert int(layer.exponents.min()) >= 0 and bool((scaled % denominator == 0).all())
        x = torch.randint(-128, 128, (3, 8, 8), generator=gen)
        y = assemble_tiles(cfg, wino_accumulate(cfg, feature_map_tiles(cfg, x)), 8, 8)
        _, acc = direct_conv_int(cfg, x)
        assert torch.equal(y, acc * 2 ** layer.common.view(-1, 1, 1))

    @pytest.mark.parametrize("config_name", list(CONFIGS))
    def test_error_within_rounding_bound(self, config_name):
        cfg = CONFIGS[config_name]
        layer = winograd_layer(cfg)
        gen = torch.Generator().manual_seed(4)
        tiles = torch.randint(-128, 128, (200, cfg.in_channels, cfg.n, cfg.n), generator=gen)
        y = wino_accumulate(cfg, tiles)
        direct = direct_conv_tiles(cfg, tiles).double() * 2.0 ** layer.common.view(1, -1, 1, 1).double()
        error = (y - direct).abs()
        assert bool((error <= _rounding_bound(cfg, tiles)).all())
        assert float(error.max()) > 0                                          # the bound is not vacuous

    def test_feature_map_tiling(self):
        cfg = BLOCKS["wino_conv"].configs["f2_c4_o1"]
        x = torch.randint(-128, 128, (4, 6, 10), generator=torch.Generator().manual_seed(6))
        tiles = feature_map_tiles(cfg, x)
        assert tiles.shape == (15, 4, 4, 4)
        padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
        assert torch.equal(tiles[7], padded[:, 2:6, 4:8])                   # tile row 1, column 2
        out = wino_conv2d(cfg, x)
        assert out.shape == (cfg.out_channels, 6, 10)
        assert torch.equal(out[:, 2:4, 4:6], wino_conv(cfg, tiles[[1 * 5 + 2]])[0])
        with pytest.raises(ValueError, match=r"^Output size 6x9 is not a whole number of 2x2 tiles$"):
            feature_map_tiles(cfg, x[:, :, :9])

    @pytest.mark.parametrize("config_name", list(CONFIGS))
    def test_requantized_close_to_direct_integer_layer(self, config_name):
        # Same int8 codes in, int8 codes out: the outputs differ from the direct layer's by at most the
        # accumulator's rounding bound at the output scale plus one step (each side rounds once by up
        # to half a step; TFLite's double rounding adds less than 2**-30).
        cfg = CONFIGS[config_name]
        layer = winograd_layer(cfg)
        x = (torch.randn(cfg.in_channels, 16, 16, generator=torch.Generator().manual_seed(8)) * 32).round()
        x = x.clamp(-128, 127)
        direct, _ = direct_conv_int(cfg, x)
        diff = (wino_conv2d(cfg, x) - direct).abs()
        scale = torch.tensor(cfg.multiplier).double() * 2.0 ** -layer.common.double()
        tiles = feature_map_tiles(cfg, x)
        bound = assemble_tiles(cfg, _rounding_bound(cfg, tiles), 16, 16) * scale.view(-1, 1, 1) + 1 + 1e-6
        assert bool((diff <= bound).all())
        assert int(diff.max()) >= 1

    def test_error_figures(self):
        rows = winograd_error(tile=4, in_channels=8, out_channels=4, size=8, batch=4)
        assert set(rows) == {"direct int8", "F4 tap-wise", "F4 tap-and-channel", "F4 single-scale"}
        assert rows["direct int8"]["vs_direct_int_max_lsb"] == 0 and rows["direct int8"]["vs_float_max_lsb"] < 2
        tapwise, single = rows["F4 tap-wise"], rows["F4 single-scale"]
        assert tapwise["acc_rel_rms_error"] * 4 < single["acc_rel_rms_error"]
        assert tapwise["vs_float_mean_lsb"] * 4 < single["vs_float_mean_lsb"]
        assert rows["F4 tap-and-channel"]["acc_rel_rms_error"] <= tapwise["acc_rel_rms_error"]


@pytest.mark.parametrize("config_name", ["f2_c4_o1", "f4_c2_o1"])  # one per tile: each converts to RTLIL
def test_multiplications_per_output(config_name):
    block = BLOCKS["wino_conv"]
    cfg = block.configs[config_name]
    component = block.interface(cfg)
    assert component.multipliers == cfg.out_channels * cfg.n ** 2
    expected = {2: (4.0, 2.25), 4: (2.25, 4.0)}[cfg.tile]
    assert (component.mults_per_output, DIRECT_MULTS_PER_OUTPUT / component.mults_per_output) == expected


@pytest.mark.parametrize("config_name", list(BLOCKS["wino_conv"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["wino_conv"]
    cfg = block.configs[config_name]
    results = fast_tier("wino_conv", config_name, vectors)
    assert set(results) == {"random_tiles", "extreme_tiles", "extreme_outputs", "short_tiles", "feature_map_8x8",
                            "feature_map_16x16"}
    case, result = results["feature_map_16x16"]
    assert result.out_cycles[0] - result.in_cycles[case.origin[0][-1]] == block.interface(cfg).latency
    # One input beat per cycle: tiles leave every in_channels cycles.
    assert result.out_cycles[-1] - result.out_cycles[0] == (len(result.out_cycles) - 1) * cfg.in_channels


def test_fast_tier_f4_two_lanes():
    block = BLOCKS["wino_conv"]
    for case in vectors(F4_TWO_LANES):
        for mode in ("plain", "both"):
            result = run_amaranth(block.elaborate(F4_TWO_LANES), played(case, mode), *MODES[mode], seed=len(mode))
            if mode == "plain":
                latency = result.out_cycles[0] - result.in_cycles[case.origin[0][-1]]
                assert latency == block.interface(F4_TWO_LANES).latency


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("wino_conv"))
def test_cocotb(config_name, simulator):
    slow_tier("wino_conv", config_name, simulator)


@pytest.mark.parametrize("config_name", list(BLOCKS["wino_conv"].configs))
def test_extreme_output_tiles_reach_further_than_random(config_name):
    # The bench's extreme_outputs tiles maximise each output pixel's linear part, so no random tile may
    # drive the accumulator further, up to the tap shifts' roundings: at most 1/2 per tap, times the
    # output transform's coefficients, sum_ij |A_pi A_qj| / 2.
    from qarith.sim.wino_conv import extreme_output_tiles
    cfg = BLOCKS["wino_conv"].configs[config_name]
    extreme = wino_accumulate(cfg, extreme_output_tiles(cfg))
    random = wino_accumulate(cfg, torch.randint(-128, 128, (500, cfg.in_channels, cfg.n, cfg.n),
                                                generator=torch.Generator().manual_seed(0)))
    slack = float(torch.tensor(matrices(cfg.tile).AT).abs().sum(dim=1).max()) ** 2 / 2
    assert extreme.abs().amax(dim=0).ge(random.abs().amax(dim=0) - slack).all()
