"""Operation counts (qarith.fpga.operations): every registered block has one, and the counts agree with
derivations made apart from the count functions: the papers' multiply counts, hand counts of the
arithmetic, and the ``$mul`` cells of the blocks' netlists as Amaranth builds them."""

import dataclasses

import pytest
from tiers import FULL

from qarith.fpga.operations import COUNTS, Operations, energy_pj, operations, units_per_cycle
from qarith.fpga.sweep import energy_proxy
from qarith.golden.encoder_layer import config_params
from qarith.hdl.common.winograd import count_multipliers
from qarith.registry import BLOCKS

DIRECT_MACS_PER_OUTPUT = 9        # a 3 x 3 filter

# make test: each block's first config; make test-full (QARITH_FULL=1): every config.
EVERY_CONFIG = [(block, name) for block in BLOCKS for name in list(BLOCKS[block].configs)[:None if FULL else 1]]


def test_every_registered_block_has_an_operation_count():
    missing = [name for name in BLOCKS if name not in COUNTS]
    assert not missing, (f"no operation count for {', '.join(missing)}: add a function per block to "
                         "qarith/fpga/operations.py (COUNTS), read off the block's RTL")


def test_no_count_for_an_unregistered_block():
    assert sorted(set(COUNTS) - set(BLOCKS)) == []
    assert operations("no_such_block", None) is None


@pytest.mark.parametrize("block, config", EVERY_CONFIG)
def test_every_config_counts(block, config):
    ops = operations(block, BLOCKS[block].configs[config])
    assert isinstance(ops, Operations)
    assert ops.unit
    assert ops.mult_count + ops.add_count + ops.read_count + ops.access_count > 0
    assert all(n > 0 and a > 0 and b > 0 for a, b, n in ops.mults)
    assert all(n > 0 and w > 0 for w, n in ops.adds)
    summary = ops.as_dict()
    assert summary["mults"] == pytest.approx(ops.mult_count, abs=1e-6)
    pj, detail = energy_proxy(block, BLOCKS[block].configs[config])
    assert pj == energy_pj(ops) > 0 and detail["operations"] == summary


@pytest.mark.parametrize("config", list(BLOCKS["mac_array"].configs))
def test_mac_array_one_multiply_and_one_add_per_mac(config):
    cfg = BLOCKS["mac_array"].configs[config]
    ops = operations("mac_array", cfg)
    assert ops.unit == "MAC"
    assert ops.mults == ((cfg.a_width, cfg.b_width, 1),)
    assert ops.adds == ((cfg.acc_bits, 1),)


@pytest.mark.parametrize("config, per_tile, direct, gain", [
    ("f2_c4_o1", 16, 36, 2.25),      # F(2x2, 3x3): (2 + 3 - 1)**2 products for 2 * 2 * 9 MACs
    ("f4_c2_o1", 36, 144, 4.0),      # F(4x4, 3x3): (4 + 3 - 1)**2 for 4 * 4 * 9
])
def test_wino_conv_multiplies_per_direct_mac(config, per_tile, direct, gain):
    """The tap-wise quantization paper's abstract: F2 needs 2.25x fewer MACs than a direct 3x3
    convolution, F4 4x fewer."""
    cfg = BLOCKS["wino_conv"].configs[config]
    ops = operations("wino_conv", cfg)
    assert ops.unit == "MAC"
    # Besides the taps, the requantizer's four 16 x 16 partial products per output pixel, once per
    # in_channels x 9 direct MACs.
    requant = 4 / (DIRECT_MACS_PER_OUTPUT * cfg.in_channels)
    assert ops.mult_count == pytest.approx(per_tile / direct + requant)
    assert per_tile / direct == pytest.approx(1 / gain)


def test_wino_input_f2_adds_by_hand():
    """F(2x2, 3x3)'s B^T has two +-1 entries per row: one add per value in each of the two stages,
    4 x 4 x 2 = 32 adds per tile, no multiply."""
    ops = operations("wino_input", BLOCKS["wino_input"].configs["f2_s8"])
    assert (ops.unit, ops.add_count, ops.mult_count) == ("tile", 32, 0)
    # The column stage adds two 8-bit codes (9 bits), the row stage two of those (10 bits).
    assert ops.adds == ((9, 16), (10, 16))


def test_wino_output_f2_adds_by_hand():
    """F(2x2, 3x3)'s A^T has rows (1, 1, 1, 0) and (0, 1, -1, -1): two adds per value per stage,
    2 x 4 + 2 x 2 values, 24 adds, and a rounding add per output pixel when shifted."""
    ops = operations("wino_output", BLOCKS["wino_output"].configs["f2_i16"])
    assert ops.add_count == 2 * (2 * 4) + 2 * (2 * 2)
    cfg = BLOCKS["wino_output"].configs["f4_i24_sh8"]
    unshifted = operations("wino_output", cfg.__class__(tile=4, in_width=24, shift=0))
    assert operations("wino_output", cfg).add_count == unshifted.add_count + 16


@pytest.mark.parametrize("config", ["n64_recip", "n16_log"])
def test_softmax_lut_reads_per_element(config):
    """The exp table is read twice per element (the reduce pass and the output pass recompute it); the
    reciprocal (or log) table once per row; the log method reads its output table once per element."""
    cfg = BLOCKS["softmax_lut"].configs[config]
    ops = operations("softmax_lut", cfg)
    expected = 2 + 1 / cfg.n if cfg.method == "recip" else 1 + 1 / cfg.n + 1
    assert ops.read_count == pytest.approx(expected)
    assert ops.access_count == 3                   # row buffer: a write and two reads per element
    assert ops.mult_count == (1 if cfg.method == "recip" else 0)


def test_row_work_is_shared_by_the_row():
    """The divider's additions (one per quotient bit) run once per row of n."""
    base = BLOCKS["shiftmax"].configs["n64_pytorch"]
    long = dataclasses.replace(base, n=128)
    difference = operations("shiftmax", base).add_count - operations("shiftmax", long).add_count
    assert difference == pytest.approx(base.quotient_width * (1 / 64 - 1 / 128))


@pytest.mark.parametrize("config", ["w16_k100_c8", "w4_k7_c16"])
def test_xnor_popcount_adds_per_binary_mac(config):
    """A popcount of w bits is w - 1 adders; one accumulator add per word; one threshold comparison
    per vector of ``words`` words."""
    cfg = BLOCKS["xnor_popcount"].configs[config]
    ops = operations("xnor_popcount", cfg)
    w = cfg.word_width
    assert ops.unit == "binary MAC" and ops.mult_count == 0
    assert ops.add_count == pytest.approx((w - 1) / w + 1 / w + 1 / (cfg.words * w))


def test_requant_four_partial_products():
    """The 32 x 32 Q31 multiply as four 16 x 16 partial products (the RTL's DSP-sized split)."""
    ops = operations("requant", BLOCKS["requant"].configs["int8"])
    assert ops.mults == ((16, 16, 4),)


def test_linear_int8_requant_shared_by_the_reduction():
    cfg = BLOCKS["linear_int8"].configs["b4_o4_k64"]
    ops = operations("linear_int8", cfg)
    assert ops.mult_count == pytest.approx(1 + 4 / cfg.mac.max_k)


@pytest.mark.parametrize("block, config", [
    ("mac_array", "int8_2x3_u8s8"), ("requant", "int8"), ("pwl", "sigmoid8_s8"), ("lut_unary", "gelu_s8"),
    ("shiftgelu", "s8_ibert"), ("attn_v", "n64_exact"), ("ant_mac", "s4_4x2"),
    *[(b, c) for b, c in [("lns_add", "w12_b6_interp"), ("shiftmax", "n8_tvm_o16"), ("shiftgelu", "s8_scale"),
                          ("wino_input", "f2_s8"), ("xnor_popcount", "w4_k7_c16")] if FULL],
])
def test_multiplies_match_the_netlist(block, config):
    """Where a block does no per-row or per-output multiply, the ``$mul`` cells Amaranth builds are the
    count's multiplies times the units per cycle."""
    entry = BLOCKS[block]
    cfg = entry.configs[config]
    per_cycle = units_per_cycle(entry.interface(cfg), cfg)
    assert operations(block, cfg).mult_count * per_cycle == pytest.approx(count_multipliers(entry.elaborate(cfg)))


@pytest.mark.parametrize("block", [name for name in BLOCKS])
def test_memory_bytes_agree_with_the_generator(block):
    """Where a generator declares ``table_bytes``, the count's table (or, for RAM tables, buffer) bytes
    are that figure."""
    entry = BLOCKS[block]
    cfg = next(iter(entry.configs.values()))
    component = entry.interface(cfg)
    if not hasattr(component, "table_bytes"):
        pytest.skip(f"{block} declares no table_bytes")
    ops = operations(block, cfg)
    assert component.table_bytes in (ops.table_bytes, ops.buffer_bytes)


@pytest.mark.parametrize("config", ["r4_c4_k16", "r2_c4_k16_w8"])
def test_int8_outlier_linear_multiplies(config):
    """Per MAC one int8 x int8 and one activation x int8 product (the two arrays); per element the
    numerator ``127 |x|`` (shared by a row's ``cols`` MACs); per output ``c C32`` and ``127 S`` (per
    ``max_k`` MACs). The netlist has each of them: ``2 rows cols`` array multipliers, one numerator per
    row of a replayed step and two multipliers per column of the row that leaves."""
    entry = BLOCKS["int8_outlier_linear"]
    cfg = entry.configs[config]
    mults = operations("int8_outlier_linear", cfg).mults
    assert (8, 8, 1) in mults and (cfg.in_width, 8, 1) in mults
    assert (cfg.in_width, 7, pytest.approx(1 / cfg.cols)) in mults
    assert sorted(n for _, _, n in mults if n < 1 / cfg.cols) == pytest.approx([1 / cfg.max_k] * 2)
    assert count_multipliers(entry.elaborate(cfg)) == 2 * cfg.rows * cfg.cols + cfg.rows + 2 * cfg.cols


def test_encoder_layer_counts_every_phase():
    """The layer's multiplies per MAC: the array's one, four partial products per requantization (the
    matrix outputs, both residuals' x codes and the GELU's outputs), and the softmax, the two
    LayerNorms and the GELU by their own counts, per score, channel and hidden element; the Q/K/V
    projections alone keep one requantization per ``d_model`` MACs."""
    cfg = BLOCKS["encoder_layer"].configs["d8_h2_f16_s4_layer"]
    s, d, f, h = cfg.max_seq, cfg.d_model, cfg.d_ff, cfg.heads
    macs = s * (4 * d * d + 2 * d * f) + 2 * s * s * d
    assert macs == cfg.layer_macs(s)
    requantized = 3 * s * d + h * s * s + s * d + s * d + s * f + s * d + 2 * s * d + s * f
    params = config_params(cfg)
    rows = (operations("shiftmax", params.softmax_config(s, variable_length=True)).mult_count * h * s * s
            + (operations("ilayernorm", params.ln1).mult_count + operations("ilayernorm", params.ln2).mult_count) * s * d
            + operations("shiftgelu", params.gelu).mult_count * s * f)
    assert operations("encoder_layer", cfg).mult_count == pytest.approx(1 + (4 * requantized + rows) / macs)
    qkv = BLOCKS["encoder_layer"].configs["d8_h2_f16_s4"]
    assert operations("encoder_layer", qkv).mult_count == pytest.approx(1 + 4 / qkv.d_model)
