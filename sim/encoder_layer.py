"""Test bench of the ``encoder_layer`` block: sequences of int8 tokens through the RTL's phases
(``rtl_phases``), its tap stream compared beat for beat with the integer layer model's taps (``q``,
``k``, ``v``; then ``scores``, ``probs``, ``ctx``, ``attn_out``, ``res1``; then ``ln1``, ``hidden``,
``gelu`` with ``gelu_q``, ``ffn_out``, ``res2`` and the output).

Cases: random tokens at every sequence length from 1 to ``max_seq`` (so the partial row and column tiles,
the softmax's variable-length rows and the proportional cycle counts are exercised), the extreme codes
(all -128, all 127, alternating, and one token), and real activations: the input tokens of the tiny
digits transformer (:func:`qarith.golden.encoder_layer.digits_model`), quantized at the layer's input
scale and cut to the config's dimensions.
"""

import cocotb
import torch

from ..golden.encoder_layer import RTL_PHASES, config_params, digits_model, encoder_layer
from ..hdl.encoder_layer import EncoderLayer
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "sequence_vectors", "qkv_order", "tap_order", "digits_tokens"]


def _column_tiles(cfg, tensor):
    """Beats of a ``(seq, channels)`` tensor: column tiles of ``cols`` channels, each tile's tokens in order."""
    return [tensor[token, ct * cfg.cols:(ct + 1) * cfg.cols].tolist()
            for ct in range(tensor.shape[1] // cfg.cols) for token in range(tensor.shape[0])]


def _head_tiles(cfg, per_head):
    """Beats of per-head ``(seq, width)`` tensors in the array's tile order: head, row tile, column tile,
    row; a last column tile wider than the tensor is padded with zeros."""
    beats = []
    for tensor in per_head:
        seq, width = tensor.shape
        tiles = -(-width // cfg.cols)
        tensor = torch.nn.functional.pad(tensor, (0, tiles * cfg.cols - width))
        for rt in range(-(-seq // cfg.rows)):
            for ct in range(tiles):
                for i in range(rt * cfg.rows, min(seq, (rt + 1) * cfg.rows)):
                    beats.append(tensor[i, ct * cfg.cols:(ct + 1) * cfg.cols].tolist())
    return beats


def qkv_order(cfg, taps):
    """The hardware's ``qkv`` beats of one sequence from the golden taps: the fused ``Q|K|V`` channels in
    column tiles of ``cols``, each tile's tokens in order."""
    return _column_tiles(cfg, torch.cat([taps["q"], taps["k"], taps["v"]], dim=1))


def _one_code(cfg, tensor):
    """Beats of a ``(seq, channels)`` tensor one code at a time, token by token, in lane 0."""
    return [[int(v)] + [0] * (cfg.cols - 1) for v in tensor.reshape(-1).tolist()]


def tap_order(cfg, taps):
    """The hardware's tap stream of one sequence from the golden taps: ``(phase code, lanes)`` per beat,
    the phases of ``cfg.rtl_phases`` in order (``hdl.encoder_layer`` module docstring)."""
    dh = cfg.d_head
    order = {
        "qkv": lambda: qkv_order(cfg, taps),
        "scores": lambda: _head_tiles(cfg, taps["scores"]),
        "probs": lambda: _one_code(cfg, taps["probs"]),
        "ctx": lambda: _head_tiles(cfg, [taps["ctx"][:, h * dh:(h + 1) * dh] for h in range(cfg.heads)]),
        "attn_out": lambda: _column_tiles(cfg, taps["attn_out"]),
        "res1": lambda: _column_tiles(cfg, taps["res1"]),
        "ln1": lambda: _one_code(cfg, taps["ln1"]),
        "hidden": lambda: _column_tiles(cfg, taps["hidden"]),
        "gelu": lambda: [[int(g), int(q)] + [0] * (cfg.cols - 2)
                         for g, q in zip(taps["gelu"].reshape(-1).tolist(), taps["gelu_q"].reshape(-1).tolist())],
        "ffn_out": lambda: _column_tiles(cfg, taps["ffn_out"]),
        "res2": lambda: _column_tiles(cfg, taps["res2"]),
        "out": lambda: _one_code(cfg, taps["out"]),
    }
    return [(code, lanes) for code, phase in enumerate(RTL_PHASES[cfg.rtl_phases]) for lanes in order[phase]()]


def sequence_vectors(cfg, name, sequences):
    """Vectors for a list of ``(seq, d_model)`` int8 token sequences, played back to back."""
    params = config_params(cfg)
    beats, expected, origin = [], [], []
    for tokens in sequences:
        first = len(beats)
        for t, token in enumerate(tokens.tolist()):
            beats.append({"token": token, "last": int(t == len(tokens) - 1)})
        rows = tap_order(cfg, encoder_layer(params, tokens))
        for j, (phase, row) in enumerate(rows):
            expected.append({"phase": phase, "data": row, "last": int(j == len(rows) - 1)})
            origin.append(list(range(first, len(beats))))
    return Vectors(name, beats, expected, {}, origin)


def digits_tokens(cfg, count=4):
    """Real activations: the digits transformer's held-out input tokens, quantized at the layer's input
    scale, cut to ``d_model`` channels and ``max_seq`` tokens. The transformer is trained at the
    config's own dimensions, so the tokens are exactly what its layer sees."""
    params = config_params(cfg)
    _, _, test, _ = digits_model(cfg.d_model, cfg.heads, cfg.d_ff, cfg.seed)
    codes = torch.round(test[:count, :cfg.max_seq, :cfg.d_model].to(torch.float64) / params.scales["x"])
    return [c for c in codes.clamp(-128, 127).to(torch.int64)]


def vectors(cfg, seed=1):
    """Named cases: random lengths 1..max_seq, extreme codes, and (for a digits-trained config) real
    activations."""
    generator = torch.Generator().manual_seed(seed)
    random = [torch.randint(-128, 128, (n, cfg.d_model), generator=generator) for n in range(1, cfg.max_seq + 1)]
    full = (cfg.max_seq, cfg.d_model)
    alternating = torch.where(torch.arange(cfg.d_model) % 2 == 0, 127, -128).expand(*full).clone()
    extreme = [torch.full(full, -128), torch.full(full, 127), alternating, torch.full((1, cfg.d_model), -128)]
    cases = [sequence_vectors(cfg, "random_lengths", random), sequence_vectors(cfg, "extreme_codes", extreme)]
    if cfg.source == "digits":
        cases.append(sequence_vectors(cfg, "digits_activations", digits_tokens(cfg)))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, EncoderLayer, vectors, mode)
