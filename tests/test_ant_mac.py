import pytest
import torch

from qarith.golden.ant_mac import AntMacConfig, ant_mac_tiles, ant_weights
from qarith.golden.common.ant import KINDS, code_values
from qarith.golden.mac_array import MacArrayConfig
from qarith.registry import BLOCKS
from qarith.sim.ant_mac import vectors

from tiers import fast_tier, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, width", [
        ({}, 23),                        # int8 x [-64, 64], K = 256: [-2^21, 2^21]
        ({"a_width": 4, "max_k": 16}, 15),                     # int4: [-8192, 8192]
        # uint4 x [0, 16384] (unsigned PoT), K = 64: max 15 * 2^14 * 64 = 15728640 < 2^24.
        ({"a_width": 4, "a_signed": False, "b_signed": False, "max_k": 64}, 24),
        # int8 x [0, 16384], K = 1: [-2^21, 127 * 2^14].
        ({"b_signed": False, "max_k": 1}, 22),
    ])
    def test_accumulator_width(self, kwargs, width):
        assert AntMacConfig(**kwargs).acc_bits == width

    def test_weight_ranges_and_shifts(self):
        assert (AntMacConfig().weight_range, AntMacConfig().max_shift) == ((-64, 64), 6)
        assert (AntMacConfig(b_signed=False).weight_range, AntMacConfig(b_signed=False).max_shift) == ((0, 16384), 14)

    @pytest.mark.parametrize("kwargs, message", [
        ({"rows": 0}, r"^Array rows must be between 1 and 32, not 0$"),
        ({"cols": 33}, r"^Array cols must be between 1 and 32, not 33$"),
        ({"a_width": 9}, r"^Activation width must be between 2 and 8, not 9$"),
        ({"a_width": 1}, r"^Activation width must be between 2 and 8, not 1$"),
        ({"max_k": 0}, r"^Maximum reduction depth must be between 1 and 65536, not 0$"),
        ({"acc_width": 22}, r"^Accumulator width 22 could overflow for max_k=256: at least 23 bits are needed$"),
        ({"acc_width": 49}, r"^Accumulator width must be at most 48, not 49$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            AntMacConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"rows": "4"}, r"^rows must be an integer, not '4'$"),
        ({"b_signed": 1}, r"^b_signed must be a bool, not 1$"),
        ({"acc_width": 24.0}, r"^acc_width must be an integer or None, not 24\.0$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            AntMacConfig(**kwargs)


def test_generator_rejects_other_configs():
    from qarith.hdl.ant_mac import AntMac
    with pytest.raises(TypeError, match=r"^Configuration must be a AntMacConfig, not 's8_4x4'$"):
        AntMac("s8_4x4")


def test_decoders_sit_at_the_edge_and_pes_multiply_by_the_mantissa():
    # cols decoders in front of the array, and one multiplier per PE whose operands are the (negated)
    # activation, a_width + 1 bits, and the 4-bit mantissa (zero-extended to 5 bits, as Amaranth
    # multiplies signed by unsigned), not an 8-bit weight.
    import re

    from amaranth.back import rtlil

    from qarith.hdl.ant_mac import AntMac
    text = rtlil.convert(AntMac(AntMacConfig(rows=3, cols=2)))
    assert text.count("wire width 9 \\decoded") == 2
    cells = re.findall(r"cell \$mul \S+\n((?:    parameter .*\n)+)", text)
    assert len(cells) == 6
    for parameters in cells:
        assert "\\A_WIDTH 9\n" in parameters and "\\B_WIDTH 5\n" in parameters


class TestGolden:
    def test_matches_float_matmul_of_the_grid_values(self):
        # The decoded weights from the grid tables (code -> value), an independent derivation from the
        # decoder's fields the model uses; the matmul in float64.
        cfg = AntMacConfig(rows=3, cols=5, max_k=40)
        gen = torch.Generator().manual_seed(0)
        a = torch.randint(-128, 128, (6, 3, 40), generator=gen)
        kind = torch.randint(0, 3, (6, 40), generator=gen)
        b = torch.randint(0, 16, (6, 40, 5), generator=gen)
        tables = torch.stack([code_values(name, True) for name in KINDS])
        weights = tables[kind.unsqueeze(2), b]
        assert torch.equal(ant_weights(cfg, kind, b), weights)
        assert torch.equal(ant_mac_tiles(cfg, a, kind, b), torch.bmm(a.double(), weights.double()).long())

    def test_unsigned_weights(self):
        cfg = AntMacConfig(rows=1, cols=2, a_signed=False, b_signed=False, a_width=4, max_k=2)
        # PoT code 15 = 2^14, flint code 15 = 64, int code 15 = 15.
        a = torch.tensor([[[15, 1]]])
        b = torch.tensor([[[15, 1], [15, 0]]])
        assert ant_mac_tiles(cfg, a, torch.tensor([[1, 1]]), b).tolist() == [[[15 * 16384 + 16384, 15]]]
        assert ant_mac_tiles(cfg, a, torch.tensor([[2, 0]]), b).tolist() == [[[15 * 64 + 15, 15]]]

    def test_rejects_bad_inputs(self):
        cfg = AntMacConfig(rows=1, cols=1, a_signed=False, max_k=2)
        with pytest.raises(ValueError, match=r"^A codes must lie in \[0, 255\] for a 8-bit unsigned operand$"):
            ant_mac_tiles(cfg, torch.tensor([[[-1]]]), torch.tensor([[0]]), torch.tensor([[[1]]]))
        with pytest.raises(ValueError, match=r"^Kind indices must lie in \[0, 2\] \(int, pot, flint\)$"):
            ant_mac_tiles(cfg, torch.tensor([[[1]]]), torch.tensor([[3]]), torch.tensor([[[1]]]))
        with pytest.raises(ValueError, match=r"^Expected one kind per step, of shape \(1, 1\), not \(1, 2\)$"):
            ant_mac_tiles(cfg, torch.tensor([[[1]]]), torch.tensor([[0, 0]]), torch.tensor([[[1]]]))
        with pytest.raises(ValueError, match=r"^Reduction depth must be between 1 and max_k=2, not 3$"):
            ant_mac_tiles(cfg, torch.zeros(1, 1, 3), torch.zeros(1, 3), torch.zeros(1, 3, 1))


@pytest.mark.parametrize("config_name", list(BLOCKS["ant_mac"].configs))
def test_fast_tier(config_name):
    from qarith.hdl.common.component import interface
    from qarith.hdl.mac_array import MacArray
    block = BLOCKS["ant_mac"]
    cfg = block.configs[config_name]
    component = block.interface(cfg)
    # The structure is mac_array's: the same latency as a mac_array of the same shape and registers.
    twin = interface(MacArray, MacArrayConfig(rows=cfg.rows, cols=cfg.cols, input_reg=cfg.input_reg,
                                              mult_reg=cfg.mult_reg, output_reg=cfg.output_reg))
    assert component.latency == twin.latency
    results = fast_tier("ant_mac", config_name, vectors)
    case, result = results["k_equals_rows"]
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))
    assert result.out_cycles == list(range(result.out_cycles[0], result.out_cycles[0] + len(case.expected)))
    first_last = next(n for n, beat in enumerate(case.beats) if beat["last"])
    assert result.out_cycles[0] - result.in_cycles[first_last] == component.latency
    case, result = results["k_one"]
    gaps = [b - a for a, b in zip(result.in_cycles, result.in_cycles[1:])]
    assert gaps == [cfg.rows] * (len(case.beats) - 1)


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("ant_mac"))
def test_cocotb(config_name, simulator):
    slow_tier("ant_mac", config_name, simulator)


def test_accuracy_bench_ant_is_the_best_single_type():
    # make bench's ANT table (qarith.fpga.accuracy.ant), small: on every tensor ANT's MSE is the least of
    # the three single types' (the selection searches the same scales), its pick is that type, and the
    # MSEs are those of each type's own scale search.
    from qarith.fpga.accuracy.ant import ant_accuracy
    result = ant_accuracy(shape=(8, 64), epochs=20)
    assert [r["tensor"] for r in result["mse"]] == ["gaussian", "laplace", "mlp.fc1.weight", "mlp.fc2.weight",
                                                   "mlp.hidden (activations)"]
    for row in result["mse"]:
        singles = {kind: row[f"{kind}_mse"] for kind in ("int", "flint", "pot")}
        assert row["ant_mse"] == min(singles.values()) == singles[row["ant_type"]]
    assert result["mse"][-1]["signed"] is False
    assert set(result["mlp_accuracy"]) == {"float", "int", "pot", "flint", "ant", "ant_types"}
