
import pytest
import torch

from qarith.golden.lut_gemv import (LutGemvConfig, bcq_quantize, dense_gemv, gray_order, half_index, half_tables,
                                    lut_gemv, lut_tables, pack_bits, quantize_alphas, rebuild_weights,
                                    rtn_quantize, rtn_to_bcq, sign_matrix, unpack_bits, with_offset)
from qarith.hdl.lut_gemv import LutGemv
from qarith.registry import BLOCKS
from qarith.sim.common.bench import run_amaranth
from qarith.sim.lut_gemv import gemv_vectors, random_gemv, rtn_gemv, vectors

from tiers import FULL, fast_tier, slow_tier, slow_tier_params


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"mu": 1}, r"^Table group size mu must be between 2 and 8, not 1$"),
        ({"mu": 9}, r"^Table group size mu must be between 2 and 8, not 9$"),
        ({"lanes": 0}, r"^Lanes must be between 1 and 16, not 0$"),
        ({"bits": 9}, r"^Weight bits must be between 1 and 8, not 9$"),
        ({"max_k": 100}, r"^Maximum input length must be a multiple of mu=8 between 8 and 4096, not 100$"),
        ({"max_k": 4104}, r"^Maximum input length must be a multiple of mu=8 between 8 and 4096, not 4104$"),
        ({"group_size": 12}, r"^Scale group size must be a multiple of mu=8 between 8 and max_k=128, not 12$"),
        ({"group_size": 256}, r"^Scale group size must be a multiple of mu=8 between 8 and max_k=128, not 256$"),
        ({"x_width": 1}, r"^Input width must be between 2 and 16, not 1$"),
        ({"alpha_width": 25}, r"^Alpha width must be between 2 and 24, not 25$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            LutGemvConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"mu": 8.0}, r"^mu must be an integer, not 8\.0$"),
        ({"lanes": True}, r"^lanes must be an integer, not True$"),
        ({"offset": 1}, r"^offset must be a bool, not 1$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            LutGemvConfig(**kwargs)

    def test_generator_rejects_other_configs(self):
        with pytest.raises(TypeError, match=r"^Configuration must be a LutGemvConfig, not 3$"):
            LutGemv(3)

    def test_widths_worked_by_hand(self):
        cfg = LutGemvConfig()   # mu 8, int8 inputs, 12-bit alphas, 3 bits + offset, groups of 64, max_k 128
        # |T| <= 8 * 128 = 1024 (all inputs -128): 12 bits signed. 64 / 8 = 8 tables per scale group:
        # |P| <= 8192, 15 bits. |alpha P| <= 8192 * 2048 = 2**24, 26 bits. Four planes, two scale groups:
        # 2**27, 29 bits.
        assert (cfg.table_bound, cfg.table_width) == (1024, 12)
        assert (cfg.partial_width, cfg.product_width, cfg.acc_width) == (15, 26, 29)
        # 16 tables of 128 stored entries, two bytes each.
        assert (cfg.half, cfg.groups, cfg.table_entries, cfg.table_bytes) == (128, 16, 2048, 4096)

    def test_interface_properties(self):
        block = BLOCKS["lut_gemv"]
        component = block.interface(block.configs["q4_mu4_x4_k64"])
        assert (component.throughput, component.build_cycles, component.latency) == (4, 9, 4)
        # 16 tables, 4 inputs each; 5 chunks of 4 rows, 5 planes: 16 * 9 + 5 * 5 * 16 - 1 + 4.
        assert component.gemv_cycles(17, 64) == 144 + 400 - 1 + 4


class TestGolden:
    def test_table_worked_by_hand(self):
        cfg = LutGemvConfig(mu=2, max_k=4, group_size=2)
        # x = (3, -5): T[p] = (2 bit0 - 1) 3 + (2 bit1 - 1) (-5): T[0] = -3 + 5, T[1] = 3 + 5, T[2] = -3 - 5, T[3] = 3 - 5.
        assert lut_tables(cfg, torch.tensor([3, -5])).tolist() == [[2, 8, -8, -2]]
        assert half_tables(cfg, torch.tensor([3, -5])).tolist() == [[-8, -2]]
        # Bytes 0, 1 are read mirrored (3 - p = 3, 2 -> half entries 1, 0) and negated.
        index, negate = half_index(cfg, torch.arange(4))
        assert index.tolist() == [1, 0, 0, 1] and negate.tolist() == [True, True, False, False]
        # Two rows, one plane, alphas 2 and -1: row 0 reads byte 1 (+3 +5 = 8) * 2; row 1 byte 2 (-8) * -1.
        y = lut_gemv(cfg, torch.tensor([3, -5]), torch.tensor([[[1]], [[2]]]), torch.tensor([[[2]], [[-1]]]))
        assert y.tolist() == [16, 8]

    @pytest.mark.parametrize("mu", [2, 3, 4, 8])
    def test_symmetry_and_half_reads(self, mu):
        cfg = LutGemvConfig(mu=mu, max_k=8 * mu, group_size=mu)
        x = torch.randint(-128, 128, (8 * mu,), generator=torch.Generator().manual_seed(mu))
        full = lut_tables(cfg, x)
        assert torch.equal(full.flip(-1), -full)                     # T[2**mu - 1 - p] = -T[p]
        index, negate = half_index(cfg, torch.arange(1 << mu))
        half = half_tables(cfg, x)[:, index]
        assert torch.equal(torch.where(negate, -half, half), full)

    @pytest.mark.parametrize("mu", [2, 5, 8])
    def test_gray_build_gives_the_half_table(self, mu):
        # The builder's recurrence, step by step: H[gray(0)] = x[mu-1] - sum x[:-1], then each step adds
        # +-2 x_j for the flipped bit j (+ when it turns on).
        cfg = LutGemvConfig(mu=mu, max_k=mu, group_size=mu)
        x = torch.randint(-128, 128, (mu,), generator=torch.Generator().manual_seed(3))
        order = gray_order(cfg).tolist()
        assert sorted(order) == list(range(cfg.half))
        built = {order[0]: int(x[-1] - x[:-1].sum())}
        value = built[order[0]]
        for before, after in zip(order, order[1:]):
            flipped = before ^ after
            assert flipped & (flipped - 1) == 0                       # one bit
            j = flipped.bit_length() - 1
            value += 2 * int(x[j]) if after & flipped else -2 * int(x[j])
            built[after] = value
        assert [built[p] for p in range(cfg.half)] == half_tables(cfg, x)[0].tolist()

    @pytest.mark.parametrize("kwargs, k", [
        ({}, 128), ({}, 61), ({"mu": 4, "group_size": 12, "max_k": 96}, 90), ({"mu": 3, "group_size": 3, "max_k": 30}, 7),
        ({"bits": 1, "offset": False, "x_width": 16, "alpha_width": 24}, 128),
    ])
    def test_equals_dense_gemv_of_rebuilt_weights(self, kwargs, k):
        cfg = LutGemvConfig(**kwargs)
        gen = torch.Generator().manual_seed(k)
        for rows in (1, 5):
            x, byte, alpha = random_gemv(cfg, gen, rows, k)
            assert torch.equal(lut_gemv(cfg, x, byte, alpha), dense_gemv(cfg, x, byte, alpha))

    def test_extremes(self):
        cfg = LutGemvConfig()
        x = torch.full((128,), -128)
        for value, table in ((0x00, 1024), (0xFF, -1024)):
            byte = torch.full((1, 4, 16), value)
            alpha = torch.full((1, 4, 2), -2048)
            # 16 tables of T = +-1024, times -2048, four planes: the accumulator's bound, exactly.
            expected = -2048 * table * 16 * 4
            assert lut_gemv(cfg, x, byte, alpha).tolist() == [expected] == dense_gemv(cfg, x, byte, alpha).tolist()
            assert abs(expected) < 1 << (cfg.acc_width - 1)
            assert abs(expected) >= 1 << (cfg.acc_width - 2)

    def test_pack_bits(self):
        cfg = LutGemvConfig()
        b = torch.tensor([[1, -1, -1, 1, 1, 1, 1, -1, 1]])
        # bits 0, 3, 4, 5, 6 -> 0b01111001 = 0x79; the tenth input pads the second byte with -1 (0 bits).
        assert pack_bits(cfg, b).tolist() == [[0x79, 0x01]]
        assert torch.equal(unpack_bits(cfg, pack_bits(cfg, b))[:, :9], b)
        with pytest.raises(ValueError, match=r"^Binary codes must be -1 or \+1$"):
            pack_bits(cfg, torch.tensor([[1, 0]]))

    def test_input_checks(self):
        cfg = LutGemvConfig(max_k=16, group_size=8)
        x, byte, alpha = torch.zeros(16, dtype=torch.int64), torch.zeros((1, 1, 2)), torch.zeros((1, 1, 2))
        with pytest.raises(ValueError, match=r"^Input codes must lie in \[-128, 127\]$"):
            lut_gemv(cfg, x - 129, byte, alpha)
        with pytest.raises(ValueError, match=r"^Alpha codes must lie in \[-2048, 2047\]$"):
            lut_gemv(cfg, x, byte, alpha + 2048)
        with pytest.raises(ValueError, match=r"^Weight bytes must lie in \[0, 255\]$"):
            lut_gemv(cfg, x, byte + 256, alpha)
        with pytest.raises(ValueError, match=r"^Weight bytes must have shape \(rows, planes, 2\), not \(1, 1, 3\)$"):
            lut_gemv(cfg, x, torch.zeros((1, 1, 3)), alpha)
        with pytest.raises(ValueError, match=r"^Input length 24 exceeds max_k=16$"):
            lut_gemv(cfg, torch.zeros(24, dtype=torch.int64), byte, alpha)


class TestQuantization:
    @pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
    def test_rtn_to_bcq_is_exact(self, bits):
        w = torch.randn(6, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(bits))
        scale, zero, q = rtn_quantize(w, bits, 32)
        alpha, b, z = rtn_to_bcq(scale, zero, q, bits, 32)
        rtn = scale.repeat_interleave(32, 1) * (q - zero.repeat_interleave(32, 1))
        bcq = (alpha.repeat_interleave(32, 2) * b.permute(0, 2, 1)).sum(1) + z.repeat_interleave(32, 1)
        assert torch.allclose(bcq, rtn, rtol=0, atol=1e-12 * float(scale.max()))
        # In integers (s an integer, codes at alpha exponent -1) the conversion is exact.
        s = torch.randint(1, 5, scale.shape, generator=torch.Generator().manual_seed(0)).to(torch.float64)
        alpha, b, z = rtn_to_bcq(s, zero, q, bits, 32)
        bcq = (alpha.repeat_interleave(32, 2) * b.permute(0, 2, 1)).sum(1) + z.repeat_interleave(32, 1)
        assert torch.equal(bcq, s.repeat_interleave(32, 1) * (q - zero.repeat_interleave(32, 1)))

    @pytest.mark.parametrize("config_name", ["q3_k64", "q8_x4_k64"])
    def test_rtn_weights_through_the_table_product(self, config_name):
        cfg = BLOCKS["lut_gemv"].configs[config_name]
        (x, byte, alpha), weights = rtn_gemv(cfg, torch.Generator().manual_seed(1), 5, cfg.max_k)
        assert torch.equal(rebuild_weights(cfg, byte, alpha, cfg.max_k), weights)
        assert torch.equal(lut_gemv(cfg, x, byte, alpha), weights @ x)

    def test_greedy_one_bit(self):
        w = torch.tensor([[0.5, -1.5, 0.0, 2.0]], dtype=torch.float64)
        alpha, b = bcq_quantize(w, 1, 4)
        # alpha = mean |w| = 1; b = sign(w), sign(0) = +1.
        assert alpha.tolist() == [[[1.0]]] and b[..., 0].tolist() == [[1, -1, 1, 1]]

    def test_nearest_ties_to_the_larger_value(self):
        # Alphas (2, 1) represent -3, -1, 1, 3 with midpoints -2, 0, 2: a weight on a midpoint takes the
        # larger neighbour. Refinement recomputes the alphas by least squares: w = (3, 1, -1, -3) keeps them.
        w = torch.tensor([[3.0, 1.0, -1.0, -3.0]], dtype=torch.float64)
        alpha, b = bcq_quantize(w, 2, 4, rounds=3)
        assert torch.allclose(alpha, torch.tensor([[[2.0], [1.0]]], dtype=torch.float64))
        from qarith.golden.lut_gemv import _nearest_codes
        codes = _nearest_codes(torch.tensor([[2.0, 0.0, -2.0, 0.5]], dtype=torch.float64),
                               torch.tensor([[2.0, 1.0]], dtype=torch.float64))
        assert (codes[0] @ torch.tensor([2.0, 1.0], dtype=torch.float64)).tolist() == [3.0, 1.0, -1.0, 1.0]

    @pytest.mark.parametrize("bits", [2, 3, 4])
    def test_refinement_never_worse_than_greedy(self, bits):
        w = torch.randn(16, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(bits))

        def error(rounds):
            alpha, b = bcq_quantize(w, bits, 64, rounds=rounds)
            assert bool((alpha[:, :-1] >= alpha[:, 1:]).all()) and bool((alpha >= 0).all())
            return float(((alpha.repeat_interleave(64, 2) * b.permute(0, 2, 1)).sum(1) - w).pow(2).sum())

        greedy, refined = error(0), error(15)
        assert refined <= greedy
        assert refined < 0.95 * greedy

    def test_quantize_alphas(self):
        cfg = LutGemvConfig(alpha_width=8)
        code, exponent = quantize_alphas(cfg, torch.tensor([0.5, -0.25, 0.001]))
        # 0.5 / 127 = 2**-7.99: exponent -7, codes 0.5 * 2**7 = 64, -0.25 * 2**7 = -32, 0.128 rounds to 0.
        assert exponent == -7 and code.tolist() == [64, -32, 0]
        assert quantize_alphas(cfg, torch.zeros(3))[1] == 0

    def test_with_offset(self):
        cfg = LutGemvConfig(mu=4, max_k=8, group_size=8, bits=1)
        byte, alpha = with_offset(cfg, torch.tensor([[[3, 5]]]), torch.tensor([[[7]]]), torch.tensor([[-2]]))
        assert byte.tolist() == [[[3, 5], [15, 15]]] and alpha.tolist() == [[[7], [-2]]]
        assert sign_matrix(2).tolist() == [[-1, -1], [1, -1], [-1, 1], [1, 1]]


def fast_params():
    """Every config; ``q8_x4_k64`` (nine planes, the slowest to simulate) only under ``QARITH_FULL=1``, for
    ``make test``'s time budget (its golden side, exact int8 RTN weights, is tested here either way)."""
    full = FULL
    return [name for name in BLOCKS["lut_gemv"].configs if full or name != "q8_x4_k64"]


@pytest.mark.parametrize("config_name", fast_params())
def test_fast_tier(config_name):
    block = BLOCKS["lut_gemv"]
    cfg = block.configs[config_name]
    component = block.interface(cfg)
    results = fast_tier("lut_gemv", config_name, vectors)
    case, result = results["random"]
    first_output_beat = case.origin[0][-1]
    assert result.out_cycles[0] - result.in_cycles[first_output_beat] == component.latency


@pytest.mark.parametrize("config_name", ["q3_k64", "q4_mu4_x4_k64"])
def test_gemv_cycles(config_name):
    # One product alone, no stalls: the measured span is the declared one, and weight beats go one per cycle.
    block = BLOCKS["lut_gemv"]
    cfg = block.configs[config_name]
    rows = 2 * cfg.lanes + 1
    case = gemv_vectors(cfg, "one", [random_gemv(cfg, torch.Generator().manual_seed(5), rows, cfg.max_k)])
    result = run_amaranth(block.elaborate(cfg), case)
    assert result.out_cycles[-1] - result.in_cycles[0] == block.interface(cfg).gemv_cycles(rows, cfg.max_k)
    weights = result.in_cycles[cfg.groups:]
    assert weights == list(range(weights[0], weights[0] + len(weights)))


def cocotb_params():
    """``make test``: the first config on both simulators (about a minute of simulation, most of it table
    builds); ``make test-full`` (``QARITH_FULL=1``): every config on both, as :func:`slow_tier_params`."""
    params = slow_tier_params("lut_gemv")
    if FULL:
        return params
    first = next(iter(BLOCKS["lut_gemv"].configs))
    return [param for param in params if param.values[0] == first]


@pytest.mark.parametrize("config_name, simulator", cocotb_params())
def test_cocotb(config_name, simulator):
    slow_tier("lut_gemv", config_name, simulator)


def test_accuracy_bench():
    # make bench's comparison (qarith.fpga.accuracy.lut_gemv), smaller: 1 and 3 bits, per-row alphas.
    from qarith.fpga.accuracy.lut_gemv import gemv_cycles_table, lut_gemv_accuracy, lut_gemv_markdown
    result = lut_gemv_accuracy(bit_widths=(1, 3), group_sizes=(64,), steps=150)
    assert result["float"] > 0.9
    rows = {(row["bits"], row["method"]): row for row in result["rows"]}
    # One bit: BCQ's alpha = mean |w| keeps the network; RTN's two levels (min and max of the row) do not.
    assert rows[1, "bcq"]["accuracy_rebuilt"] > rows[1, "rtn"]["accuracy_rebuilt"] + 0.3
    assert rows[3, "bcq"]["weight_error"] <= rows[3, "bcq_greedy"]["weight_error"]
    for row in result["rows"]:
        # 12-bit alphas and int8 hidden codes move the integer block's accuracy by at most a few images.
        assert abs(row["accuracy_integer"] - row["accuracy_rebuilt"]) <= 0.01
    block = BLOCKS["lut_gemv"]
    cycles = gemv_cycles_table({"q3_k64": block.configs["q3_k64"]}, {"b4_o4_k64": BLOCKS["linear_int8"].configs["b4_o4_k64"]})
    # q3_k64: 8 tables of 129 cycles, 64 rows x 4 planes x 8 groups, latency 4; linear_int8: 16 tiles of 64 steps.
    assert [row["cycles"] for row in cycles] == [8 * 129 + 64 * 4 * 8 - 1 + 4, 16 * 64 + 3 + BLOCKS["linear_int8"].interface(
        BLOCKS["linear_int8"].configs["b4_o4_k64"]).latency]
    assert "| 64 | 3 | bcq |" in lut_gemv_markdown({"accuracy": result, "cycles": cycles})
