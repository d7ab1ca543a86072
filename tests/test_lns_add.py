import math
import re

import pytest
import torch
from amaranth.back import rtlil

from qarith.golden.common.lns import decode, encode, join, lns_words
from qarith.golden.lns_add import (
    DB_DIRECT_OCTAVES,
    LnsAddConfig,
    error_bound,
    float_add,
    gaussian_offsets,
    gaussian_table,
    lns_add,
    lns_add_error,
    lns_add_rom,
)
from qarith.registry import BLOCKS
from qarith.sim.lns_add import vectors

from tiers import fast_tier, slow_tier, slow_tier_params

W8 = LnsAddConfig(width=8, frac_bits=3)                                        # direct, t = 0
W8_INTERP = LnsAddConfig(width=8, frac_bits=3, interp_bits=2, table_frac_bits=3)
#: Configs whose every distance is checked against the derived bounds (registered ones and variants).
BOUND_CONFIGS = [
    W8, W8_INTERP,
    LnsAddConfig(width=8, frac_bits=3, table_frac_bits=2),
    LnsAddConfig(width=8, frac_bits=3, interp_bits=3),
    LnsAddConfig(width=6, frac_bits=1, interp_bits=1, table_frac_bits=1),
    LnsAddConfig(width=12, frac_bits=6),
    LnsAddConfig(width=12, frac_bits=6, interp_bits=3, table_frac_bits=4),
    LnsAddConfig(width=12, frac_bits=6, interp_bits=4, table_frac_bits=4),
    LnsAddConfig(width=12, frac_bits=6, interp_bits=6, table_frac_bits=8),
    LnsAddConfig(width=16, frac_bits=8, interp_bits=5, table_frac_bits=6),
]


def word(cfg, sign, exp):
    return int(join(cfg, torch.tensor(sign), torch.tensor(exp)))


class TestConfig:
    @pytest.mark.parametrize("kwargs, message", [
        ({"lanes": 0}, r"^Lanes must be between 1 and 32, not 0$"),
        ({"lanes": 33}, r"^Lanes must be between 1 and 32, not 33$"),
        ({"interp_bits": 4}, r"^Interpolation bits must be between 0 and 3 \(segments of at most one octave\), "
                             r"not 4$"),
        ({"interp_bits": -1}, r"^Interpolation bits must be between 0 and 3 \(segments of at most one octave\), "
                              r"not -1$"),
        ({"table_frac_bits": 9}, r"^Table fraction bits must be between 0 and 8, not 9$"),
        ({"table_frac_bits": -1}, r"^Table fraction bits must be between 0 and 8, not -1$"),
        ({"width": 17}, r"^LNS word width must be between 3 and 16, not 17$"),
        ({"frac_bits": 6}, r"^Fraction bits must be between 0 and 5 for 8-bit LNS words \(one integer exponent "
                           r"bit besides the sign\), not 6$"),
        # 13-bit words, b = 10, direct: d_max = 4094 codes = 4 octaves, where sb and db are still about
        # 90 codes from zero, so each table spans every distance: 2 * 4095 entries.
        ({"width": 13, "frac_bits": 10}, r"^The sb and db tables would hold 8190 entries, more than 4096$"),
    ])
    def test_bad_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            LnsAddConfig(**kwargs)

    @pytest.mark.parametrize("kwargs, message", [
        ({"lanes": 2.0}, r"^lanes must be an integer, not 2\.0$"),
        ({"interp_bits": True}, r"^interp_bits must be an integer, not True$"),
        ({"table_frac_bits": "3"}, r"^table_frac_bits must be an integer, not '3'$"),
    ])
    def test_bad_types(self, kwargs, message):
        with pytest.raises(TypeError, match=message):
            LnsAddConfig(**kwargs)

    def test_generator_wants_its_config(self):
        with pytest.raises(TypeError, match=r"^Configuration must be a LnsAddConfig, not 3$"):
            BLOCKS["lns_add"].generator(3)

    def test_bad_operands(self):
        with pytest.raises(ValueError, match=r"^sub must be 0 or 1$"):
            lns_add(W8, 0, 0, 2)
        with pytest.raises(ValueError, match=r"^LNS words must be bit patterns between 0 and 255$"):
            lns_add(W8, 256, 0)
        with pytest.raises(ValueError, match=r"^Function must be one of sb, db, not 'exp'$"):
            gaussian_table(W8, "exp", 0)

    def test_table_lengths_worked_by_hand(self):
        # b = 3, t = 0: 8 sb(36/8) = 8 log2(1 + 2**-4.5) = 0.4991 rounds to 0, 8 sb(35/8) = 0.543 to 1;
        # 8 db(36/8) = -0.522 rounds to -1, 8 db(37/8) = -0.477 to 0; 8 * 2.5431 = 20.34 -> 21 direct.
        assert (W8.sb_end, W8.db_end, W8.db_direct) == (36, 37, 21)
        # b = 3, k = 2: points 4 codes apart; the direct db region rounds 20.34 up to 24.
        assert W8_INTERP.db_direct == 24

    def test_table_bytes(self):
        # sb: 36 entries and the zero entry; db: 21 direct entries, points 21..36 and the zero entry: 75
        # entries of 6 bits (8 sb(0) = 8 down to T_db(1) = -29), 450 bits.
        assert W8.table_depth == 37 + 38
        assert lns_add_rom(W8).word_bits == 6
        assert W8.table_bytes == 57

    @pytest.mark.parametrize("config_name", list(BLOCKS["lns_add"].configs))
    def test_table_bytes_counted_in_the_netlist(self, config_name):
        # The ROM as the generator instantiates it, read from the RTLIL rather than from lns_add_rom: one
        # copy per lane, all alike, counted once (width x depth bits).
        block = BLOCKS["lns_add"]
        cfg = block.configs[config_name]
        text = rtlil.convert(block.elaborate(cfg), name="lns_add", emit_src=False)
        roms = re.findall(r"^ *memory width (\d+) size (\d+) \\table(\d+)$", text, re.M)
        assert sorted(int(lane) for _, _, lane in roms) == list(range(cfg.lanes))
        assert len({(width, size) for width, size, _ in roms}) == 1
        width, size = int(roms[0][0]), int(roms[0][1])
        assert block.interface(cfg).table_bytes == math.ceil(width * size / 8)


class TestGolden:
    def test_values_worked_by_hand(self):
        cfg = W8
        zero, negative_zero = 64, 192                      # exponent code -64, either sign bit
        cases = [
            # 1 + 1 = 2: E = 0 + 8 sb(0) = 8.
            (word(cfg, 0, 0), word(cfg, 0, 0), 0, word(cfg, 0, 8)),
            # 2 + 1: d = 8, 8 sb(1) = 8 log2(1.5) = 4.68 -> 5, E = 13 (encode(3) = floor(12.68 + 1/2) = 13).
            (word(cfg, 0, 8), word(cfg, 0, 0), 0, word(cfg, 0, 13)),
            # 2 - 1 = 1 exactly: 8 db(1) = -8.
            (word(cfg, 0, 8), word(cfg, 0, 0), 1, word(cfg, 0, 0)),
            # 1 - 2 = -1: b is larger, its flipped sign wins.
            (word(cfg, 0, 0), word(cfg, 0, 8), 1, word(cfg, 1, 0)),
            # 2**(1/8) - 1: d = 1, T_db(1) = floor(8 log2(1 - 2**-(1/8)) + 1/2) = floor(-28.73 + 0.5) = -29,
            # E = -28 (exact: 8 log2(0.0905) = -27.73).
            (word(cfg, 0, 1), word(cfg, 0, 0), 1, word(cfg, 0, -28)),
            # emax + emax saturates: 63 + 8 -> 63.
            (word(cfg, 0, 63), word(cfg, 0, 63), 0, word(cfg, 0, 63)),
            # d = 1 below the range: -62 - 29 < emin = -63 flushes to zero.
            (word(cfg, 0, -62), word(cfg, 0, -63), 1, zero),
            # Zeros: -0 - 2 = -2; 0 + -0 = 0 (canonical); 2 - 2 = 0; 2 + (-2) = 0.
            (negative_zero, word(cfg, 0, 8), 1, word(cfg, 1, 8)),
            (zero, negative_zero, 0, zero),
            (word(cfg, 1, 5), negative_zero, 1, word(cfg, 1, 5)),
            (word(cfg, 0, 8), word(cfg, 0, 8), 1, zero),
            (word(cfg, 0, 8), word(cfg, 1, 8), 0, zero),
            # d = 37 (db_end): 8 db(37/8) = -0.48 rounds to 0: the larger operand.
            (word(cfg, 1, 40), word(cfg, 0, 3), 0, word(cfg, 1, 40)),
        ]
        a, b, sub, want = (torch.tensor(column) for column in zip(*cases))
        assert lns_add(cfg, a, b, sub).tolist() == want.tolist()

    def test_interpolation_worked_by_hand(self):
        cfg = W8_INTERP                                    # k = 2, t = 3: V has 5 fraction bits
        cases = [
            # d = 6, same signs: q = 1, r = 2. T_sb(4) = floor(64 log2(1 + 2**-0.5) + 1/2) = floor(49.88) = 49,
            # T_sb(8) = floor(64 log2 1.5 + 1/2) = 37; V = 49 * 4 - 12 * 2 = 172; (172 + 16) >> 5 = 5.
            (word(cfg, 0, 6), word(cfg, 0, 0), 0, word(cfg, 0, 11)),
            # d = 1, opposite signs: the direct region, T_db(1) = floor(-229.81 + 0.5) = -230,
            # V = -920, (-920 + 16) >> 5 = -29 (floor of -28.25): E = 1 - 29.
            (word(cfg, 0, 1), word(cfg, 0, 0), 1, word(cfg, 0, -28)),
            # d = 26 >= db_direct = 24, opposite signs: q = 6, r = 2. T_db(24) = floor(64 log2 0.875 + 1/2)
            # = floor(-11.83) = -12, T_db(28) = floor(-8.54 + 0.5) = -9; V = -48 + 3 * 2 = -42,
            # (-42 + 16) >> 5 = -1.
            (word(cfg, 1, 30), word(cfg, 1, 4), 1, word(cfg, 1, 29)),
        ]
        a, b, sub, want = (torch.tensor(column) for column in zip(*cases))
        assert lns_add(cfg, a, b, sub).tolist() == want.tolist()

    @pytest.mark.parametrize("cfg", [W8, W8_INTERP], ids=["direct", "interp"])
    def test_rules_on_every_pair(self, cfg):
        words = lns_words(cfg)
        a, b = words.repeat_interleave(cfg.words), words.repeat(cfg.words)
        sign_bit = 1 << cfg.exp_width
        added = lns_add(cfg, a, b, 0)
        # Subtraction is the addition of b with its sign bit flipped (a zero with either sign is zero).
        assert torch.equal(lns_add(cfg, a, b, 1), lns_add(cfg, a, b ^ sign_bit, 0))
        assert torch.equal(added, lns_add(cfg, b, a, 0))
        # A zero operand gives the other operand, canonical.
        exact = float_add(cfg, a, b, 0)
        either_zero = (decode(cfg, a) == 0) | (decode(cfg, b) == 0)
        assert torch.equal(added[either_zero], encode(cfg, exact)[either_zero])
        assert bool((added[exact == 0] == cfg.zero_word).all())
        # The sign is the larger operand's: never opposite to the exact sum's.
        value = decode(cfg, added)
        assert not bool(((value * exact) < 0).any())

    def test_direct_table_is_correctly_rounded(self):
        # t = 0, k = 0: E = A + floor(gamma f(d) + 1/2) = floor(gamma log2|a +- b| + 1/2), encode's rule.
        words = lns_words(W8)
        a, b = words.repeat_interleave(W8.words).repeat(2), words.repeat(2 * W8.words)
        sub = torch.arange(2).repeat_interleave(W8.words * W8.words)
        assert torch.equal(lns_add(W8, a, b, sub), encode(W8, float_add(W8, a, b, sub)))

    @pytest.mark.parametrize("cfg", BOUND_CONFIGS, ids=str)
    def test_every_distance_within_the_bound(self, cfg):
        # E = A + F(d) and the exact code is A + gamma f(d / gamma): F's error over every distance is the
        # error of every pair that neither saturates nor flushes.
        d = torch.arange(cfg.d_max + 1)
        x = d.to(torch.float64) / cfg.gamma
        sb = cfg.gamma * torch.log2(1 + torch.exp2(-x))
        db = cfg.gamma * torch.log2(1 - torch.exp2(-x[1:]))
        sb_error = (gaussian_offsets(cfg, d, False) - sb).abs()
        db_error = (gaussian_offsets(cfg, d[1:], True) - db).abs()
        assert float(sb_error.max()) <= error_bound(cfg)
        assert float(db_error.max()) <= error_bound(cfg)
        # The cancellation region is a direct table: the rounding terms only.
        direct = db_error[:cfg.db_direct - 1]
        rounding = 0.5 + (2.0 ** -(cfg.table_frac_bits + 1) if cfg.table_frac_bits or cfg.interp_bits else 0)
        assert float(direct.max()) <= rounding

    def test_direct_region_derived(self):
        # db is interpolated from the first segment start where |db''| <= max |sb''| = ln2 / 4.
        def db_curvature(x):
            return math.log(2) * 2 ** -x / (1 - 2 ** -x) ** 2

        assert math.isclose(db_curvature(DB_DIRECT_OCTAVES), math.log(2) / 4)
        for cfg in BOUND_CONFIGS:
            if cfg.db_direct <= cfg.d_max:
                assert db_curvature(cfg.db_direct / cfg.gamma) <= math.log(2) / 4
                assert db_curvature((cfg.db_direct - cfg.segment) / cfg.gamma) > math.log(2) / 4

    @pytest.mark.parametrize("cfg", BOUND_CONFIGS, ids=str)
    def test_table_end_derived(self, cfg):
        # Beyond each table's end the unrestricted interpolation rounds to zero as well, and the point
        # before the end does not.
        k, half = cfg.interp_bits, 1 << (cfg.shift - 1) if cfg.shift else 0
        for function, end, first in (("sb", cfg.sb_end, 0), ("db", cfg.db_end, cfg.db_direct >> k)):
            if end > cfg.q_max:
                continue
            d = torch.arange(end << k, cfg.d_max + 1)
            q, r = d >> k, d & (cfg.segment - 1)
            low, high = gaussian_table(cfg, function, q << k), gaussian_table(cfg, function, (q + 1) << k)
            value = (low << k) + (high - low) * r
            assert bool((((value + half) >> cfg.shift) == 0).all())
            if end > first:
                before = gaussian_table(cfg, function, torch.tensor([(end - 1) << k])) << k
                assert int((before + half) >> cfg.shift) != 0

    @pytest.mark.parametrize("cfg", BOUND_CONFIGS, ids=str)
    def test_rom_reproduces_the_model(self, cfg):
        # The ROM's documented address map and word fields give gaussian_offsets at every distance.
        rom = lns_add_rom(cfg)
        k = cfg.interp_bits
        d = torch.arange(cfg.d_max + 1)
        q, r = d >> k, d & (cfg.segment - 1)
        words = torch.tensor(rom.words)
        sb_address = q.clamp(max=cfg.sb_end)
        db_address = torch.where(d < cfg.db_direct, rom.db_base + d,
                                 rom.db_base + cfg.db_direct + q.clamp(max=cfg.db_end) - (cfg.db_direct >> k))
        for address, opposite in ((sb_address, False), (db_address, True)):
            entry = words[address]
            point = entry & ((1 << rom.point_bits) - 1)
            point = torch.where(point >= 1 << (rom.point_bits - 1), point - (1 << rom.point_bits), point)
            delta = entry >> rom.point_bits
            if rom.delta_bits:
                delta = torch.where(delta >= 1 << (rom.delta_bits - 1), delta - (1 << rom.delta_bits), delta)
            value = (point << k) + delta * r
            offset = (value + (1 << (cfg.shift - 1))) >> cfg.shift if cfg.shift else value
            keep = d > 0 if opposite else d >= 0
            assert torch.equal(offset[keep], gaussian_offsets(cfg, d, opposite)[keep])

    @pytest.mark.parametrize("cfg", [W8, W8_INTERP], ids=["direct", "interp"])
    def test_error_over_all_pairs(self, cfg):
        figures = lns_add_error(cfg)
        assert figures["pairs"] == 2 * 65536
        assert figures["sign_errors"] == 0
        # The bounds worked by hand from the module docstring's terms: the direct table rounds once (1/2);
        # W8_INTERP (b = 3, k = 2, t = 3) adds the points' rounding 2**-4 and the chord error
        # gamma h**2 ln2 / 32 with h = 4 / 8 octave: 8 / 4 * ln2 / 32 = ln2 / 16.
        bound = 0.5 if cfg is W8 else 0.5 + 2 ** -4 + math.log(2) / 16
        assert math.isclose(figures["bound_codes"], bound) and math.isclose(error_bound(cfg), bound)
        assert figures["max_code_error"] <= bound
        assert math.isclose(figures["bound_rel"], 2 ** (bound / 8) - 1)
        assert figures["max_rel_error"] <= 2 ** (bound / 8) - 1
        # The cancellation region is read directly: only the rounding terms remain.
        assert figures["max_code_error_cancellation"] <= 0.5 + (2.0 ** -(cfg.table_frac_bits + 1)
                                                                if cfg.table_frac_bits else 0)
        # Equal magnitudes with opposite signs: 127 nonzero magnitudes, 2 sign pairs, 2 operations.
        assert figures["cancellations"] == 127 * 4

    def test_direct_table_reaches_its_worked_worst_case(self):
        # The direct table is correctly rounded, so its worst error is the largest distance of an exact
        # offset from the nearest integer among the table's points, 0.4991 codes at 8 sb(4.5) worked out
        # above (table lengths). The interpolated configs' figures are measured by make bench, not pinned.
        direct = lns_add_error(W8)
        assert direct["correctly_rounded"] == 1.0
        assert round(direct["max_code_error"], 4) == 0.4991


@pytest.mark.parametrize("config_name", list(BLOCKS["lns_add"].configs))
def test_fast_tier(config_name):
    block = BLOCKS["lns_add"]
    cfg = block.configs[config_name]
    # The exhaustive 8-bit cases (131,072 operations) run whole here under make test-full; make test plays
    # their first beats here and the whole cases (with idles and backpressure) in the cocotb tier.
    if cfg.width <= 8:
        exhaustive = next(case for case in vectors(cfg) if case.name == "exhaustive")
        assert len(exhaustive.beats) * cfg.lanes == 2 * cfg.words ** 2
    results = fast_tier("lns_add", config_name, vectors)
    case, result = results["exhaustive" if cfg.width <= 8 else "every_distance"]
    assert result.out_cycles[0] - result.in_cycles[0] == block.interface(cfg).latency


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("lns_add"))
def test_cocotb(config_name, simulator):
    slow_tier("lns_add", config_name, simulator)
