"""Variable-length rows (``variable_length=True``) of the row blocks: the golden models' per-row
semantics, the over-long-row rule, and cycles against row length in amaranth.sim."""

import dataclasses
import math

import pytest
import torch

from qarith.golden.attn_v import AttnVConfig, attn_v
from qarith.golden.common.ragged import by_length, cut_rows, pad_rows
from qarith.golden.ilayernorm import RESCALE_BITS, ILayerNormConfig, float_layernorm, ilayernorm, length_rescale
from qarith.golden.log_softmax_int import LogSoftmaxIntConfig
from qarith.golden.shiftmax import ShiftmaxConfig, shiftmax
from qarith.golden.softmax_lut import SoftmaxLutConfig, softmax_lut
from qarith.hdl.common.rows import output_pass_starts
from qarith.registry import BLOCKS
from qarith.sim.common.bench import Vectors, full_run, run_amaranth
from qarith.sim.common.rows import ragged_vectors
from qarith.sim.log_softmax_int import row_records

FULL = full_run()

#: The element-wise row blocks (one output per input element) and a variable-length config of each.
ROW_BLOCKS = {
    "softmax_lut": (SoftmaxLutConfig(n=16, variable_length=True), softmax_lut),
    "shiftmax": (ShiftmaxConfig(n=16, variable_length=True), shiftmax),
    "log_softmax_int": (LogSoftmaxIntConfig(n=16, variable_length=True), row_records),
    "ilayernorm": (ILayerNormConfig(channels=16, variable_length=True), ilayernorm),
}


class TestRagged:
    def test_cut_rows(self):
        assert cut_rows([[1, 2, 3, 4, 5], [6], [7, 8]], 2) == [[1, 2], [3, 4], [5], [6], [7, 8]]
        with pytest.raises(ValueError, match=r"^A row must have at least one element$"):
            cut_rows([[1], []], 2)

    def test_pad_rows_and_lengths(self):
        x, lengths = pad_rows([[1, 2], [3]], 3)
        assert x.tolist() == [[1, 2, 0], [3, 0, 0]] and lengths.tolist() == [2, 1]
        with pytest.raises(ValueError, match=r"^Row lengths must be between 1 and 3, not \[4\]$"):
            pad_rows([[1, 2, 3, 4]], 3)
        with pytest.raises(ValueError, match=r"^Row lengths must be between 1 and 4, not \[0, 2\]$"):
            softmax_lut(SoftmaxLutConfig(n=4), torch.zeros(2, 4, dtype=torch.int64), torch.tensor([0, 2]))
        with pytest.raises(ValueError, match=r"^Row lengths must have the rows' shape \(2,\), not \(3,\)$"):
            shiftmax(ShiftmaxConfig(n=4), torch.zeros(2, 4, dtype=torch.int64), torch.tensor([1, 2, 3]))
        with pytest.raises(ValueError, match=r"^Padded rows must have 4 elements, not 3$"):
            shiftmax(ShiftmaxConfig(n=4), torch.zeros(2, 3, dtype=torch.int64), torch.tensor([1, 2]))

    def test_by_length_ignores_padding(self):
        x = torch.tensor([[3, 1, 7], [2, 9, 9]])
        got = by_length(lambda rows: rows * 10, 3, torch.tensor([1, 2]), x)
        assert got.tolist() == [[30, 0, 0], [20, 90, 0]]

    @pytest.mark.parametrize("block_name", ["softmax_lut", "shiftmax", "log_softmax_int"])
    def test_row_of_length_l_is_the_softmax_over_l(self, block_name):
        """A row of length L through the variable-length model equals the fixed-length model of an
        ``n = L`` config on those L elements (the padding never enters the max, the sum or the output)."""
        cfg, _ = ROW_BLOCKS[block_name]
        golden = BLOCKS[block_name].golden
        gen = torch.Generator().manual_seed(3)
        lengths = torch.tensor([1, 2, 5, 15, 16, 7])
        x = torch.randint(-128, 128, (len(lengths), cfg.n), generator=gen)
        x[x.shape[0] - 1, 3:] = 127                       # padding above the row's own maximum
        got = golden(cfg, x, lengths)
        got = got if isinstance(got, tuple) else (got,)
        for row, length in enumerate(lengths.tolist()):
            short = dataclasses.replace(cfg, n=length, variable_length=False)
            want = golden(short, x[row:row + 1, :length])
            want = want if isinstance(want, tuple) else (want,)
            for g, w in zip(got, want):
                assert g[row, :length].tolist() == w[0].tolist()
                assert g[row, length:].tolist() == [0] * (cfg.n - length)

    def test_ilayernorm_full_rows_are_the_fixed_function(self):
        cfg = ILayerNormConfig(channels=8, ptf=(0, 1, 2, 3, 0, 1, 2, 3), gamma=tuple(0.5 + c / 8 for c in range(8)),
                               beta=tuple(c / 16 - 0.25 for c in range(8)), variable_length=True)
        x = torch.randint(-128, 128, (20, 8), generator=torch.Generator().manual_seed(4))
        assert ilayernorm(cfg, x, torch.full((20,), 8)).tolist() == ilayernorm(cfg, x).tolist()
        assert length_rescale(cfg)[-1] == 1 << RESCALE_BITS

    def test_ilayernorm_row_of_length_l_worked_by_hand(self):
        # C = 4, L = 2, x = [3, 0]: s1 = 3, mu = round(3/2) = 2 (1.5 to even); var = 1 + 4 = 5, std = 2;
        # f = floor((2**31 - 1) / 2) = 2**30 - 1; z = ((x - mu) f) >> 1 = [2**29 - 1, -2**30 + 1];
        # R_2 = round(sqrt(1/2) 2**24) = 11863283; z' = (z R_2 + 2**23) >> 24 = [32 R_2 - 1, -64 R_2 + 1] =
        # [379625055, -759250111] (z R_2 / 2**24 = 32 R_2 - 0.71 and -64 R_2 + 0.71, plus one half, floored).
        # M = sqrt(4) / 2**30 / (1/32) = 2**-24: out = round(z' / 2**24) = [23, -45].
        cfg = ILayerNormConfig(channels=4, variable_length=True)
        assert length_rescale(cfg)[1] == 11863283
        assert (((1 << 29) - 1) * 11863283 + (1 << 23)) >> 24 == 379625055
        got = ilayernorm(cfg, torch.tensor([[3, 0, 99, -99]]), torch.tensor([2]))
        assert got.tolist() == [[23, -45, 0, 0]]

    def test_ilayernorm_short_rows_against_float_layernorm(self):
        """A row of L channels against ``layer_norm`` over those L (mean and variance over L): the fixed
        block's bound with L for C (the rescale's rounding adds far below a step)."""
        cfg = ILayerNormConfig(channels=16, variable_length=True)
        x = torch.randint(-128, 128, (16, 16), generator=torch.Generator().manual_seed(8))
        lengths = torch.arange(1, 17)
        got = ilayernorm(cfg, x, lengths)
        for row, length in enumerate(lengths.tolist()):
            xs = x[row, :length].to(torch.float64)
            reference = torch.nn.functional.layer_norm(xs, (length,)) / cfg.out_scale
            var = ((xs - xs.mean().round()) ** 2).sum()
            std = max(math.isqrt(int(var.round())), 1)
            bound = reference.abs() / std + 0.5 * math.sqrt(length) / std / cfg.out_scale + 1
            error = (got[row, :length].to(torch.float64) - reference).abs()
            inside = reference.abs() < cfg.out_max
            assert bool((error <= bound)[inside].all()), length
        assert float_layernorm(cfg, x).shape == x.shape

    def test_attn_v_row_sums_over_its_length(self):
        cfg = AttnVConfig(n=4, variable_length=True)
        code = torch.tensor([[0, 1, 2, 3], [15, 0, 0, 0]])
        zero = torch.tensor([[0, 0, 1, 0], [0, 1, 1, 1]])
        v = torch.tensor([[4, 8, 100, -16], [-128, 5, 5, 5]])
        # exact: V << (15 - code): 4 << 15 + 8 << 14 (the zero term and the padding drop out); -128 << 0.
        assert attn_v(cfg, code, zero, v, torch.tensor([2, 1])).tolist() == [(4 << 15) + (8 << 14), -128]
        assert attn_v(cfg, code, zero, v, torch.tensor([4, 1])).tolist()[0] == (4 << 15) + (8 << 14) - (16 << 12)

    @pytest.mark.parametrize("config_class", [SoftmaxLutConfig, ShiftmaxConfig, LogSoftmaxIntConfig, AttnVConfig,
                                              ILayerNormConfig])
    def test_flag_must_be_a_bool(self, config_class):
        with pytest.raises(TypeError, match=r"^variable_length must be a bool, not 1$"):
            config_class(variable_length=1)


def _single_rows(cfg, model, lengths):
    gen = torch.Generator().manual_seed(5)
    return [ragged_vectors(cfg, f"row_{length}", [torch.randint(-128, 128, (length,), generator=gen).tolist()],
                           model) for length in lengths]


@pytest.mark.parametrize("block_name", list(ROW_BLOCKS))
def test_cycles_against_row_length(block_name):
    """A lone row of L elements: its first output ``row_latency(L) = L + c`` cycles after its last input
    (``c`` the block's pipeline, the same for every L), then one output per cycle; a back-to-back run of
    rows of L elements, once ``(banks - 3) L`` covers the reduce tail, at one element per cycle: the last
    output ``(L - 1) + row_latency(L) + rows L - 1`` cycles after the first input."""
    cfg, model = ROW_BLOCKS[block_name]
    block = BLOCKS[block_name]
    # make test: L = 1 in the fast tier (the causal case's first row) and L = n here (the run's first row).
    for case in _single_rows(cfg, model, (1, 2, 3, 8, 15, 16) if FULL else ()):
        dut = block.elaborate(cfg)
        length = len(case.beats)
        result = run_amaranth(dut, case)
        assert result.out_cycles[0] - result.in_cycles[-1] == dut.row_latency(length) == dut.row_latency(1) + length - 1
        assert result.out_cycles[-1] - result.out_cycles[0] == length - 1
    facts = block.interface(cfg)
    gen = torch.Generator().manual_seed(6)
    for length in (cfg.n // 2, cfg.n) if FULL else (cfg.n,):
        if (facts.banks - 3) * length < facts.reduce_tail:
            continue
        rows = [torch.randint(-128, 128, (length,), generator=gen).tolist() for _ in range(12)]
        case = ragged_vectors(cfg, f"run_{length}", rows, model)
        dut = block.elaborate(cfg)
        result = run_amaranth(dut, case)
        assert result.out_cycles[0] - result.in_cycles[length - 1] == dut.row_latency(length)
        assert result.out_cycles[-1] - result.in_cycles[0] == (length - 1) + dut.row_latency(length) + 12 * length - 1


@pytest.mark.parametrize("cfg", [SoftmaxLutConfig(n=8, variable_length=True), ShiftmaxConfig(n=8, variable_length=True),
                                 ShiftmaxConfig(n=8, variant="ibert", variable_length=True)],
                         ids=["softmax_lut", "shiftmax", "shiftmax_ibert"])
def test_short_rows_wait_for_a_bank(cfg):
    """Rows too short to cover the reduce tail with their banks (the encoder layer's score rows on a
    short sequence): every row's first output when :meth:`row_outputs` says, counted from the first
    element taken, rows of one length and rows of mixed lengths back to back (``o`` always ready)."""
    name = "softmax_lut" if isinstance(cfg, SoftmaxLutConfig) else "shiftmax"
    block, model = BLOCKS[name], ROW_BLOCKS[name][1]
    facts = block.interface(cfg)
    gen = torch.Generator().manual_seed(8)
    runs = [[1] * 20, [2] * 20, [5] * 20, [3, 6, 8, 2, 1, 8, 5, 4, 4, 8, 8, 7, 3, 4, 3, 7, 1, 2, 3, 1]]
    limited = 0
    for lengths in runs:
        rows = [torch.randint(-128, 128, (length,), generator=gen).tolist() for length in lengths]
        result = run_amaranth(block.elaborate(cfg), ragged_vectors(cfg, "short", rows, model))
        firsts = [sum(lengths[:j]) for j in range(len(lengths))]
        expected = facts.row_outputs(lengths)
        assert [result.out_cycles[f] - result.in_cycles[0] for f in firsts] == expected, lengths
        # The runs exercise the bank limit: with a bank per row the schedule would be earlier.
        unlimited = output_pass_starts(lengths, len(lengths), facts.output_gap)
        limited += unlimited != output_pass_starts(lengths, facts.banks, facts.output_gap)
    assert limited > 0


@pytest.mark.parametrize("block_name", list(ROW_BLOCKS))
def test_overlong_row_is_cut(block_name):
    """A row of ``n + 5`` elements with ``last`` only on its final one: the block ends a row at the
    ``n``-th element (``last`` out there) and treats the 5 after it as the next row."""
    cfg, model = ROW_BLOCKS[block_name]
    gen = torch.Generator().manual_seed(7)
    row = torch.randint(-128, 128, (cfg.n + 5,), generator=gen).tolist()
    case = ragged_vectors(cfg, "overlong", [row, row[:3]], model)
    assert [beat["last"] for beat in case.expected] == \
        [int(j == cfg.n - 1) for j in range(cfg.n)] + [0, 0, 0, 0, 1] + [0, 0, 1]
    assert [beat["last"] for beat in case.beats] == [0] * (cfg.n + 4) + [1, 0, 0, 1]
    if FULL:        # make test plays the overlong family in the fast tier (tests/test_<block>.py)
        run_amaranth(BLOCKS[block_name].elaborate(cfg), case, idle=0.3, backpressure=0.4, seed=1)


def test_attn_v_cycles_against_row_length():
    """One sum per row, 2 cycles after the row's last term, whatever its length; rows back to back at
    one term per cycle."""
    cfg = AttnVConfig(n=16, variable_length=True)
    lengths = [1, 16, 3, 2, 9, 1, 1, 16]
    terms = [[{"code": 0, "zero": 0, "v": 1 + j, "last": int(j == length - 1)} for j in range(length)]
             for length in lengths]
    beats = [beat for row in terms for beat in row]
    ends = torch.cumsum(torch.tensor(lengths), 0).tolist()
    expected = [sum(1 + j for j in range(length)) << 15 for length in lengths]
    case = Vectors("lengths", beats, expected, origin=[list(range(e - n, e)) for e, n in zip(ends, lengths)])
    dut = BLOCKS["attn_v"].elaborate(cfg)
    result = run_amaranth(dut, case)
    assert [result.out_cycles[r] - result.in_cycles[e - 1] for r, e in enumerate(ends)] == [2] * len(lengths)
    assert result.in_cycles == list(range(len(beats)))
