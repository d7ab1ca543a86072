import pytest
import torch

from qarith.golden.mac_array import MacArrayConfig, mac_tiles
from qarith.registry import BLOCKS
from qarith.sim.mac_array import vectors

from qarith.sim.common.runner import SIMULATORS, run_cocotb

from tiers import FULL, fast_tier, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, width", [
        ({}, 24),                                              # int8 x int8, K = 256: [-4161536, 4194304]
        ({"a_signed": False, "max_k": 64}, 22),                # uint8 x int8, K = 64: [-2088960, 2072640]
        ({"a_width": 4, "b_width": 4, "max_k": 16}, 12),       # int4 x int4, K = 16: [-896, 1024]
        ({"a_signed": False, "b_signed": False, "max_k": 1}, 16),  # uint8 x uint8: [0, 65025]
        ({"a_width": 16, "b_width": 16, "max_k": 1024}, 42),   # int16: max 2^30 * 2^10 = 2^40
    ])
    def test_accumulator_width(self, kwargs, width):
        assert MacArrayConfig(**kwargs).acc_bits == width

    @pytest.mark.parametrize("kwargs, message", [
        ({"rows": 0}, r"^Array rows must be between 1 and 32, not 0$"),
        ({"cols": 33}, r"^Array cols must be between 1 and 32, not 33$"),
        ({"a_width": 1}, r"^Operand width a_width must be between 2 and 16, not 1$"),
        ({"b_width": 17}, r"^Operand width b_width must be between 2 and 16, not 17$"),
        ({"max_k": 0}, r"^Maximum reduction depth must be between 1 and 65536, not 0$"),
        ({"acc_width": 23}, r"^Accumulator width 23 could overflow for max_k=256: at least 24 bits are needed$"),
        ({"acc_width": 49}, r"^Accumulator width must be at most 48, not 49$"),
        ({"multiplier": "lut"}, r"^Multiplier must be one of fabric, ice40_dual, ecp5_reg, ecp5_pipe, not 'lut'$"),
        ({"multiplier": "ecp5_reg", "mult_reg": False},
         r"^The ecp5_reg multiplier registers its products: set mult_reg$"),
        ({"multiplier": "ice40_dual", "b_width": 9},
         r"^The ice40_dual multiplier takes operands of at most 8 bits, not 8 and 9$"),
        ({"multiplier": "ice40_dual", "mult_reg": False},
         r"^The ice40_dual multiplier registers its products: set mult_reg$"),
        ({"acc_split": 24}, r"^acc_split must be 0 \(one adder\) or a bit position between 1 and 23 "
                            r"\(the accumulator has 24 bits\), not 24$"),
        ({"acc_split": -1}, r"^acc_split must be 0 \(one adder\) or a bit position between 1 and 23 "
                            r"\(the accumulator has 24 bits\), not -1$"),
        ({"readout": "tree"}, r"^Readout must be one of lut_or, set_or, not 'tree'$"),
        ({"readout": "set_or", "acc_split": 12},
         r"^The set_or readout does not take a split accumulator: set acc_split to 0$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            MacArrayConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"rows": "4"}, r"^rows must be an integer, not '4'$"),
        ({"a_signed": 1}, r"^a_signed must be a bool, not 1$"),
        ({"acc_width": 24.0}, r"^acc_width must be an integer or None, not 24\.0$"),
        ({"acc_split": True}, r"^acc_split must be an integer, not True$"),
        ({"readout": 1}, r"^readout must be a string, not 1$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            MacArrayConfig(**kwargs)


def test_generator_rejects_other_configs():
    from qarith.hdl.mac_array import MacArray
    with pytest.raises(TypeError, match=r"^Configuration must be a MacArrayConfig, not 'int8'$"):
        MacArray("int8")


def test_ice40_dual_uses_one_dsp_per_two_macs():
    from amaranth.back import rtlil

    from qarith.hdl.mac_array import MacArray
    for rows, cols, dsps in ((4, 4, 8), (3, 3, 5)):
        text = rtlil.convert(MacArray(MacArrayConfig(rows=rows, cols=cols, multiplier="ice40_dual")))
        assert text.count("cell \\SB_MAC16 ") == dsps


def test_ecp5_reg_uses_registered_mult18x18d():
    from amaranth.back import rtlil

    from qarith.hdl.mac_array import MacArray
    cfg = MacArrayConfig(rows=2, cols=3, multiplier="ecp5_reg")
    text = rtlil.convert(MacArray(cfg))
    assert text.count("cell \\MULT18X18D ") == 6
    assert 'parameter \\REG_INPUTA_CLK "CLK0"' in text and 'parameter \\REG_OUTPUT_CLK "CLK0"' in text
    assert cfg.product_latency == 2 and cfg.family == "ecp5"


def test_ecp5_pipe_uses_pipelined_mult18x18d_and_block_ram_queue():
    from amaranth.back import rtlil

    from qarith.hdl.mac_array import MacArray
    cfg = MacArrayConfig(rows=2, cols=2, multiplier="ecp5_pipe")
    text = rtlil.convert(MacArray(cfg))
    assert text.count("cell \\MULT18X18D ") == 4
    assert text.count('parameter \\REG_PIPELINE_CLK "CLK0"') == 4
    assert cfg.product_latency == 4 and cfg.family == "ecp5"
    assert 'attribute \\ram_style "block"' in text
    assert 'ram_style' not in rtlil.convert(MacArray(MacArrayConfig(rows=2, cols=2)))
    # Reads never meet the write's address: Yosys is told so, and drops its per-bit collision bypass.
    assert text.count("attribute \\no_rw_check 1") == 1


def test_set_or_reads_two_rows_out_through_a_set():
    """With two rows, each column's OR is one register whose synchronous set is the other row's
    drain: the set_or array has one two-input OR per column fewer than the lut_or one."""
    from amaranth.back import rtlil

    from qarith.hdl.mac_array import MacArray
    counts = {readout: rtlil.convert(MacArray(MacArrayConfig(rows=2, cols=3, readout=readout))).count("cell $or ")
              for readout in ("lut_or", "set_or")}
    assert counts["lut_or"] - counts["set_or"] == 3


class TestGolden:
    def test_matches_float_matmul(self):
        cfg = MacArrayConfig(rows=3, cols=5, max_k=40)
        gen = torch.Generator().manual_seed(0)
        a = torch.randint(-128, 128, (6, 3, 40), generator=gen)
        b = torch.randint(-128, 128, (6, 40, 5), generator=gen)
        assert torch.equal(mac_tiles(cfg, a, b), torch.bmm(a.double(), b.double()).long())

    def test_rejects_out_of_range_codes(self):
        cfg = MacArrayConfig(rows=1, cols=1, a_signed=False)
        with pytest.raises(ValueError, match=r"^A codes must lie in \[0, 255\] for a 8-bit unsigned operand$"):
            mac_tiles(cfg, torch.tensor([[[-1]]]), torch.tensor([[[1]]]))

    def test_rejects_deep_tiles(self):
        cfg = MacArrayConfig(rows=1, cols=1, max_k=2)
        with pytest.raises(ValueError, match=r"^Reduction depth must be between 1 and max_k=2, not 3$"):
            mac_tiles(cfg, torch.zeros(1, 1, 3), torch.zeros(1, 3, 1))


@pytest.mark.parametrize("config_name", list(BLOCKS["mac_array"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["mac_array"]
    cfg = block.configs[config_name]
    component = block.interface(cfg)
    results = fast_tier("mac_array", config_name, vectors)
    case, result = results["k_equals_rows"]
    # Back-to-back tiles with K = rows: every step accepted on consecutive cycles, one row out per
    # cycle once the pipeline is full.
    assert result.in_cycles == list(range(result.in_cycles[0], result.in_cycles[0] + len(case.beats)))
    assert result.out_cycles == list(range(result.out_cycles[0], result.out_cycles[0] + len(case.expected)))
    first_last = next(n for n, beat in enumerate(case.beats) if beat["last"])
    assert result.out_cycles[0] - result.in_cycles[first_last] == component.latency
    # Tiles shorter than the drain are held back, never corrupted (checked by the scoreboard); they
    # cost rows cycles per tile.
    case, result = results["k_one"]
    gaps = [b - a for a, b in zip(result.in_cycles, result.in_cycles[1:])]
    assert gaps == [cfg.rows] * (len(case.beats) - 1)


# The ecp5_pipe configs (and ecp5_setor, the same multipliers) are 64 and 144 instances of the DSP model:
# minutes on either simulator. make test runs a 2x3 ecp5_pipe array instead (test_cocotb_ecp5_pipe_small);
# make test-full runs them whole.
HEAVY = ("int8_8x8_ecp5_pipe", "int8_12x12_ecp5_pipe", "int8_8x8_ecp5_setor")


@pytest.mark.parametrize("config_name, simulator",
                         [p for p in slow_tier_params("mac_array") if FULL or p.values[0] not in HEAVY])
def test_cocotb(config_name, simulator):
    slow_tier("mac_array", config_name, simulator)


@pytest.mark.cocotb
def test_cocotb_ecp5_pipe_small():
    from qarith.hdl.mac_array import MacArray
    from qarith.sim import mac_array as bench
    cfg = MacArrayConfig(rows=2, cols=3, max_k=16, multiplier="ecp5_pipe")
    run_cocotb(MacArray, bench, cfg, SIMULATORS[0], "mac_array__ecp5_pipe_2x3")
