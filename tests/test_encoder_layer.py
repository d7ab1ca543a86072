import shutil
import subprocess

import pytest
import torch

from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, Signal

from qarith.fpga.accuracy.encoder import TARGET, encoder_cycles
from qarith.golden.encoder_layer import (RTL_PHASES, TAPS, EncoderLayerConfig, FloatEncoderLayer, config_params, digits_model,
                                         encoder_layer, float_error, integerize_encoder, layer_matmul, seeded_layer)
from qarith.golden.linear_int8 import QuantizedLinear
from qarith.golden.shiftmax import float_softmax, shiftmax
from qarith.golden.softmax_lut import softmax_lut
from qarith.hdl.common.component import interface
from qarith.hdl.encoder_layer import PHASE_STAGES, EncoderLayer
from qarith.registry import BLOCKS
from qarith.sim.common.bench import run_amaranth
from qarith.sim.encoder_layer import digits_tokens, sequence_vectors, vectors

from tiers import FULL, fast_tier, slow_tier, slow_tier_params

TINY = EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=4)


class TestConfig:
    @pytest.mark.parametrize("fields, message", [
        ({"heads": 3}, r"^Head count must divide d_model=8, not 3$"),
        ({"softmax": "exp"}, r"^Softmax must be one of shiftmax, ibert, lut, not 'exp'$"),
        ({"gelu": "relu"}, r"^GELU must be one of shiftgelu, igelu, not 'relu'$"),
        ({"cols": 3}, r"^Array cols must divide d_model=8, not 3$"),
        ({"cols": 64}, r"^Array cols must be between 1 and 32, not 64$"),
        ({"max_seq": 0}, r"^max_seq must be between 1 and 256, not 0$"),
        ({"seed": -1}, r"^Seed must be between 0 and 2\*\*32 - 1, not -1$"),
        ({"source": "imagenet"}, r"^Source must be one of seeded, digits, not 'imagenet'$"),
        ({"rtl_phases": "ffn"}, r"^RTL phases must be one of qkv, attention, layer, not 'ffn'$"),
        ({"rtl_phases": "attention", "heads": 4}, r"^Array cols must divide d_head=2 for the attention phases, not 4$"),
        ({"rtl_phases": "attention", "max_seq": 6, "cols": 2},
         r"^Array rows and cols must divide max_seq=6 for the attention phases, not 4 and 2$"),
        ({"rtl_phases": "layer", "d_ff": 18},
         r"^Array cols must divide d_ff=18 for the FFN phases, not 4$"),
        ({"rtl_phases": "layer", "cols": 1},
         r"^The layer's gelu tap carries two codes a beat: array cols must be at least 2, not 1$"),
    ])
    def test_rejects(self, fields, message):
        with pytest.raises(ValueError, match=message):
            EncoderLayerConfig(**{**TINY.__dict__, **fields})

    def test_rejects_wrong_kind(self):
        with pytest.raises(TypeError, match=r"^d_model must be an integer, not 8\.0$"):
            EncoderLayerConfig(d_model=8.0)

    def test_integerize_needs_the_float_layer(self):
        with pytest.raises(TypeError, match=r"^Expected a FloatEncoderLayer, not"):
            integerize_encoder(torch.nn.Linear(8, 8), torch.zeros(1, 4, 8), TINY)

    def test_integerize_checks_dimensions(self):
        with pytest.raises(ValueError, match=r"^Layer has \(d_model, heads, d_ff\) = \(8, 2, 32\)"):
            integerize_encoder(FloatEncoderLayer(8, 2, 32), torch.zeros(1, 4, 8), TINY)


def test_generator_rejects_other_configs():
    with pytest.raises(TypeError, match=r"^Configuration must be a EncoderLayerConfig, not None$"):
        EncoderLayer(None)


class TestGolden:
    def test_tiled_matmul_is_the_exact_product(self):
        cfg = EncoderLayerConfig(d_model=16, heads=2, d_ff=32, max_seq=8, rows=3, cols=4)
        generator = torch.Generator().manual_seed(0)
        a = torch.randint(-128, 128, (7, 13), generator=generator)
        b = torch.randint(-128, 128, (13, 10), generator=generator)
        assert torch.equal(layer_matmul(cfg, a, b), (a.to(torch.float64) @ b.to(torch.float64)).to(torch.int64))

    def test_projections_equal_the_tflite_reference(self):
        """The q, k, v taps against linear_int8's TFLite formula (zero points 0), an independent path."""
        params = config_params(TINY)
        x = torch.randint(-128, 128, (4, 8), generator=torch.Generator().manual_seed(3))
        taps = encoder_layer(params, x)
        layer, _ = seeded_layer(TINY)
        s = params.scales
        for name, linear in (("q", layer.q), ("k", layer.k), ("v", layer.v)):
            w_scale = linear.weight.detach().to(torch.float64).abs().amax(dim=1) / 127
            reference = QuantizedLinear(params.weights[name], params.requant[name].bias, s["x"], 0, w_scale,
                                        s[name], 0)
            assert torch.equal(taps[name], reference.forward_int(x))

    def test_every_tap_has_its_shape_and_range(self):
        params = config_params(TINY)
        taps = encoder_layer(params, torch.zeros(3, 8, dtype=torch.int64))
        assert set(taps) == set(TAPS)
        assert taps["scores"].shape == taps["probs"].shape == (2, 3, 3)
        assert taps["hidden"].shape == (3, 16) and taps["out"].shape == (3, 8)
        for name in ("q", "k", "v", "scores", "ctx", "attn_out", "ln1", "hidden", "gelu_q", "ffn_out", "out"):
            assert -128 <= int(taps[name].min()) and int(taps[name].max()) <= 127, name
        assert 0 <= int(taps["probs"].min()) and int(taps["probs"].max()) <= 127

    def test_probabilities_follow_the_float_softmax(self):
        params = config_params(TINY)
        taps = encoder_layer(params, torch.randint(-128, 128, (4, 8), generator=torch.Generator().manual_seed(5)))
        reference = float_softmax(params.softmax_config(4), taps["scores"])
        assert float((taps["probs"] / 128 - reference).abs().max()) < 0.1

    def test_rejects_bad_inputs(self):
        params = config_params(TINY)
        with pytest.raises(ValueError, match=r"^Expected \(seq, 8\) token codes with 1 <= seq <= 4, not \(5, 8\)$"):
            encoder_layer(params, torch.zeros(5, 8, dtype=torch.int64))
        with pytest.raises(ValueError, match=r"^Token codes must be int8$"):
            encoder_layer(params, torch.full((2, 8), 128))

    @pytest.mark.parametrize("softmax", ["shiftmax", "ibert", "lut"])
    def test_variable_length_softmax_is_the_per_length_softmax(self, softmax):
        """The hardware's one softmax block (rows of 1..max_seq ended by ``last``) computes, on a row of
        ``L`` scores, what the model's softmax of ``L`` does: the layer model may take either."""
        params = config_params(EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=8, softmax=softmax))
        block = params.softmax_config(8, variable_length=True)
        function = softmax_lut if softmax == "lut" else shiftmax
        generator = torch.Generator().manual_seed(2)
        for length in range(1, 9):
            rows = torch.randint(-128, 128, (64, length), generator=generator)
            padded = torch.nn.functional.pad(rows, (0, 8 - length))
            got = function(block, padded, torch.full((64,), length))
            assert torch.equal(got[:, :length], function(params.softmax_config(length), rows)), length

    @pytest.mark.parametrize("softmax, gelu", [
        ("shiftmax", "shiftgelu"),
        pytest.param("ibert", "igelu", marks=pytest.mark.skipif(not FULL, reason="QARITH_FULL=1 runs it")),
        pytest.param("lut", "shiftgelu", marks=pytest.mark.skipif(not FULL, reason="QARITH_FULL=1 runs it"))])
    def test_float_error_on_the_digits_layer(self, softmax, gelu):
        """The integer layer against the float layer on held-out real activations: the outputs keep the
        float layer's direction (cosine) and stay within a few output steps on average."""
        cfg = EncoderLayerConfig(d_model=16, heads=2, d_ff=32, max_seq=8, softmax=softmax, gelu=gelu,
                                 source="digits")
        layer, _, test, accuracy = digits_model(16, 2, 32, 0)
        assert accuracy > 0.8
        error = float_error(config_params(cfg), layer, test[:8])
        assert error["cosine"] > 0.97 and error["mean_lsb"] < 4, error


@pytest.mark.parametrize("cfg", [
    BLOCKS["encoder_layer"].configs["d8_h2_f16_s4"],
    pytest.param(EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=4, rows=2, cols=8),
                 marks=pytest.mark.skipif(not FULL, reason="QARITH_FULL=1 runs it"))], ids=["rows4", "rows2"])
def test_shorter_sequences_cost_proportionally_fewer_cycles(cfg):
    """Measured cycles from the last token to the last output equal :meth:`EncoderLayer.finish_cycles`
    at every length: only the row tiles the sequence fills are run (no padding to max_seq)."""
    block = BLOCKS["encoder_layer"]
    component = block.interface(cfg)
    for seq in range(1, cfg.max_seq + 1):
        tokens = torch.randint(-128, 128, (seq, 8), generator=torch.Generator().manual_seed(seq))
        result = run_amaranth(block.elaborate(cfg), sequence_vectors(cfg, f"seq{seq}", [tokens]))
        assert result.out_cycles[-1] - result.in_cycles[-1] == component.finish_cycles(seq), seq
    assert component.cycles(cfg.max_seq) == component.column_tiles * -(-cfg.max_seq // cfg.rows) * cfg.d_model


def check_phase_cycles(component, case, result):
    """Every phase of every sequence of the case ends (its last beat leaves) exactly when
    :meth:`EncoderLayer.phase_cycles` says for its length, counted from that sequence's last token
    (``o`` always ready)."""
    cfg = component.cfg
    ends = [n for n, beat in enumerate(case.beats) if beat["last"]]
    out_ends = [j for j, beat in enumerate(case.expected) if beat["last"]]
    first_token, first_out = 0, 0
    for token_end, out_end in zip(ends, out_ends):
        timing = component.phase_cycles(token_end + 1 - first_token)
        # The input is always valid: the tokens of a sequence are taken at the full input rate.
        tokens = result.in_cycles[first_token:token_end + 1]
        assert tokens[-1] - tokens[0] + 1 == component.load_cycles(len(tokens)), token_end
        beats = list(enumerate(case.expected))[first_out:out_end + 1]
        for code, phase in enumerate(component.phases):
            last = max(j for j, beat in beats if beat["phase"] == code)
            assert result.out_cycles[last] - result.in_cycles[token_end] == timing[phase][1], (phase, token_end)
        first_token, first_out = token_end + 1, out_end + 1
    assert list(timing) == list(RTL_PHASES[cfg.rtl_phases])


@pytest.mark.skipif(not FULL, reason="QARITH_FULL=1 runs it; make test checks the registry config in test_fast_tier")
@pytest.mark.parametrize("rtl_phases", ["attention", "layer"])
def test_phase_cycles_wider(rtl_phases):
    """The cycle formula on another shape: d_model 16, a 2x4 array, 8 tokens (scores of two column tiles,
    P V over two row tiles of probabilities), d_ff 32 (FFN1 of eight column tiles, FFN2 of 32 steps);
    sequences of 8, 5 and 1 tokens."""
    cfg = EncoderLayerConfig(d_model=16, heads=2, d_ff=32, max_seq=8, rows=2, cols=4, rtl_phases=rtl_phases)
    block = BLOCKS["encoder_layer"]
    generator = torch.Generator().manual_seed(7)
    sequences = [torch.randint(-128, 128, (seq, cfg.d_model), generator=generator) for seq in (8, 5, 1)]
    case = sequence_vectors(cfg, "lengths", sequences)
    check_phase_cycles(block.interface(cfg), case, run_amaranth(block.elaborate(cfg), case))


def test_attention_phases_alone():
    """``rtl_phases="attention"`` still stops at the first residual (its last phase carries ``last``),
    bit for bit on a sequence shorter than max_seq and on a full one, with exact phase timing."""
    cfg = EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=4, rtl_phases="attention")
    block = BLOCKS["encoder_layer"]
    generator = torch.Generator().manual_seed(11)
    case = sequence_vectors(cfg, "lengths", [torch.randint(-128, 128, (seq, 8), generator=generator)
                                             for seq in (3, 4)])
    check_phase_cycles(block.interface(cfg), case, run_amaranth(block.elaborate(cfg), case))


@pytest.mark.skipif(not FULL, reason="QARITH_FULL=1 runs it")
@pytest.mark.parametrize("softmax, gelu", [("ibert", "igelu"), ("lut", "shiftgelu")])
def test_layer_other_blocks(softmax, gelu):
    """The whole layer with I-BERT's softmax and i-GELU, and with the table softmax, on a 2x2 array:
    every case, with idles and backpressure."""
    cfg = EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=4, rows=2, cols=2, softmax=softmax, gelu=gelu,
                             rtl_phases="layer")
    block = BLOCKS["encoder_layer"]
    for case in vectors(cfg):
        run_amaranth(block.elaborate(cfg), case)
        run_amaranth(block.elaborate(cfg), case, 0.3, 0.3)


@pytest.mark.skipif(not FULL, reason="QARITH_FULL=1 runs it (trains the digits transformer)")
def test_layer_on_digits_activations():
    """The whole layer on real activations: the digits transformer's own layer (d_model 8, d_ff 16,
    8 tokens, 2x4 array) on its held-out input tokens, bit for bit at every tap, plain and with idles
    and backpressure."""
    cfg = EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=8, rows=2, cols=4, source="digits",
                             rtl_phases="layer")
    block = BLOCKS["encoder_layer"]
    case = sequence_vectors(cfg, "digits_activations", digits_tokens(cfg))
    check_phase_cycles(block.interface(cfg), case, run_amaranth(block.elaborate(cfg), case))
    run_amaranth(block.elaborate(cfg), case, 0.3, 0.3)


def skip_digits_unless_full(config_name):
    if BLOCKS["encoder_layer"].configs[config_name].source == "digits" and not FULL:
        pytest.skip("trains the digits transformer in each simulator process; QARITH_FULL=1 runs it")


@pytest.mark.parametrize("config_name", list(BLOCKS["encoder_layer"].configs))
def test_fast_tier(config_name):
    skip_digits_unless_full(config_name)
    block = BLOCKS["encoder_layer"]
    component = block.interface(block.configs[config_name])
    make_vectors, modes = vectors, ("plain", "both")
    if component.cfg.rtl_phases == "layer" and not FULL:
        # 2.5 ms a cycle in amaranth.sim: make test plays the random lengths (every phase's timing at
        # every length) in plain mode; the cocotb tier plays every case with idles and backpressure.
        make_vectors, modes = (lambda cfg: vectors(cfg)[:1]), ("plain",)
    case, result = fast_tier("encoder_layer", config_name, make_vectors, modes)["random_lengths"]
    first_last = next(n for n, beat in enumerate(case.beats) if beat["last"])
    assert result.out_cycles[0] - result.in_cycles[first_last] == component.latency
    check_phase_cycles(component, case, result)


@pytest.mark.parametrize("config_name, simulator", slow_tier_params("encoder_layer", "verilator"))
def test_cocotb(config_name, simulator):
    skip_digits_unless_full(config_name)
    slow_tier("encoder_layer", config_name, simulator)


class Ready(Elaboratable):
    """The smallest design with the encoder's former Icarus failure: ``ready`` high in an FSM's first
    state, as a conditional assignment (``in_state``) or as the expression ``fsm.ongoing``."""

    def __init__(self, in_state):
        self.in_state = in_state
        self.go, self.ready = Signal(name="go"), Signal(name="ready")

    def elaborate(self, platform):
        m = Module()
        with m.FSM() as fsm:
            with m.State("idle"):
                if self.in_state:
                    m.d.comb += self.ready.eq(1)
                with m.If(self.go):
                    m.next = "busy"
            with m.State("busy"):
                m.next = "idle"
        if not self.in_state:
            m.d.comb += self.ready.eq(fsm.ongoing("idle"))
        return m


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
@pytest.mark.parametrize("in_state, seen", [(True, "x"), (False, "1")])
def test_icarus_time_zero_reproducer(tmp_path, in_state, seen):
    """Why Icarus once read zero tokens in plain mode. A conditional combinational assignment becomes an
    ``always @*`` process in the emitted Verilog, kicked at time 0 by Yosys's ``dump_module`` register
    initialiser; under ``-g2012`` (the cocotb runner's mode) Icarus sets declaration initialisers before
    any process starts, as IEEE 1800 section 6.8 requires, so nothing wakes the process and its output
    stays ``x`` while its inputs (the FSM state, unchanged by reset) do not move (``-g2005`` would run
    the initialiser as an event and show 1). The encoder's
    ``i.ready`` was such a signal: the first beat after reset wrote with an ``x`` enable (no write) and
    the outputs were the bias alone. A continuous assignment is evaluated at time 0, so the RTL now uses
    the expression."""
    dut = Ready(in_state)
    (tmp_path / "dut.v").write_text(verilog.convert(dut, name="dut", ports=[dut.go, dut.ready],
                                                    emit_src=False))
    (tmp_path / "tb.v").write_text(
        "module tb; reg clk, rst, go; wire ready;\n"
        "  dut dut(.clk(clk), .rst(rst), .go(go), .ready(ready));\n"
        "  initial begin clk = 0; rst = 1; go = 0; #1 clk = 1; #1 rst = 0; #1 $display(\"%b\", ready); end\n"
        "endmodule\n")
    subprocess.run(["iverilog", "-g2012", "-o", "sim", "tb.v", "dut.v"], cwd=tmp_path, check=True)
    assert subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, capture_output=True, text=True,
                          check=True).stdout.split() == [seen]


def test_cycle_tables_cover_the_layer():
    """``make bench``'s encoder tables: the target layer's phases follow one another, PHASE_STAGES
    cycles apart, from the first phase's start to the last beat, and a sequence filling whole row tiles
    keeps the array busy in the projection's run phase."""
    result = encoder_cycles()
    layer = interface(EncoderLayer, EncoderLayerConfig(rtl_phases="layer", **TARGET))
    gaps = PHASE_STAGES * (len(result["phases"]) - 1)
    assert sum(r["cycles"] for r in result["phases"]) + gaps == layer.finish_cycles(64) - layer.start_cycle + 1
    assert [r["phase"] for r in result["phases"]] == list(RTL_PHASES["layer"])
    assert all(r["run_utilisation"] == 1.0 for r in result["qkv"] if r["seq"] % int(r["array"].split("x")[0]) == 0)
