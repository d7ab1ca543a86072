"""Accuracy and cycles of ``lut_gemv``: 1-4-bit BCQ against RTN weights on a small trained network, and
cycles per matrix-vector product against ``linear_int8``.

The network: a 64-64-10 ReLU MLP trained on scikit-learn's 8x8 digits (1797 images shipped inside the
package, nothing downloaded; seeded split of 1297 training and 500 test images, 300 full-batch Adam steps,
one thread, a few seconds). Its two weight matrices are quantized weight-only, per row and scale group,
three ways: RTN (uniform asymmetric, :func:`~qarith.golden.lut_gemv.rtn_quantize`), BCQ greedy (0 rounds)
and BCQ alternating (15 rounds, :func:`~qarith.golden.lut_gemv.bcq_quantize`). Each is evaluated twice:
with the rebuilt float weights, and through the integer block (:func:`~qarith.golden.lut_gemv.lut_gemv`,
bit-exact with the RTL): pixel values 0..16 are the first layer's int8 codes as they are (scale 1), the
hidden layer is quantized to int8 per tensor (absmax of the training set / 127), alphas (and RTN's
offsets, converted exactly to BCQ) to 12-bit codes with one power-of-two exponent per layer; biases are
added in float.
"""

import torch
from torch import nn

from ...golden.lut_gemv import (LutGemvConfig, bcq_quantize, lut_gemv, pack_bits, quantize_alphas, rtn_quantize,
                                rtn_to_bcq, with_offset)

__all__ = ["train_digits_mlp", "quantize_layer", "lut_gemv_accuracy", "lut_gemv_markdown", "gemv_cycles_table",
           "PAPER_FIGURES"]

#: The papers' own headline figures (abstracts): speed and energy on GPUs, not accuracy on this task.
PAPER_FIGURES = [
    ("nuQmm (arXiv 2206.09557)", "GPT-3 175B inference about 14.4x faster and 93 % less energy than fp16 "
                                 "(with binary-coded weights and nuQmm kernels)"),
    ("LUT-GEMM (ICLR 2024)", "OPT-175B with 3-bit weights on one GPU 2.1x faster than OPTQ"),
]


def train_digits_mlp(seed=0, hidden=64, steps=300):
    """A seeded 64-``hidden``-10 MLP trained on the digits: ``(model, (x_train, y_train), (x_test, y_test))``
    with pixel values 0..16 as float64 inputs."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float64)
    y = torch.tensor(digits.target, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=gen)
    train, test = order[:1297], order[1297:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)).to(torch.float64)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(x[train] / 16), y[train])
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    # Fold the input scaling into the first layer, so that it takes the raw pixel codes.
    with torch.no_grad():
        model[0].weight /= 16
    return model, (x[train], y[train]), (x[test], y[test])


def quantize_layer(weight, bits, group_size, method):
    """``weight (M, K)`` quantized by ``method`` (``"rtn"``, ``"bcq_greedy"``, ``"bcq"``): returns the
    rebuilt float weights and the block's operands ``(cfg, byte, alpha_codes, exponent)``."""
    weight = weight.detach().to(torch.float64)
    rows, k = weight.shape
    cfg = LutGemvConfig(mu=8, bits=bits, offset=method == "rtn", group_size=group_size, max_k=k, x_width=8,
                        alpha_width=12)
    if method == "rtn":
        scale, zero, q = rtn_quantize(weight, bits, group_size)
        alpha, b, z = rtn_to_bcq(scale, zero, q, bits, group_size)
        rebuilt = scale.repeat_interleave(group_size, 1) * (q - zero.repeat_interleave(group_size, 1))
    else:
        alpha, b = bcq_quantize(weight, bits, group_size, rounds=0 if method == "bcq_greedy" else 15)
        rebuilt = (alpha.repeat_interleave(group_size, 2) * b.permute(0, 2, 1)).sum(1)
    byte = pack_bits(cfg, b.permute(0, 2, 1))
    if method == "rtn":
        byte, alpha = with_offset(cfg, byte, alpha, z)
    codes, exponent = quantize_alphas(cfg, alpha)
    return rebuilt, (cfg, byte, codes, exponent)


def _int_layer(operands, x_codes, x_scale, bias):
    cfg, byte, codes, exponent = operands
    return lut_gemv(cfg, x_codes, byte, codes).to(torch.float64) * x_scale * 2.0 ** exponent + bias


def lut_gemv_accuracy(seed=0, bit_widths=(1, 2, 3, 4), group_sizes=(64, 16), steps=300):
    """Test accuracy (500 digits) of the float network and of each quantization, with rebuilt float
    weights and through the integer block, plus the first layer's relative weight error
    ``||W - W_q|| / ||W||``. Returns ``{"float": acc, "rows": [...]}``."""
    model, (x_train, _), (x_test, y_test) = train_digits_mlp(seed, steps=steps)
    first, second = model[0], model[2]

    def accuracy(logits):
        return float((logits.argmax(1) == y_test).double().mean())

    with torch.no_grad():
        result = {"float": accuracy(model(x_test)), "rows": []}
        hidden_scale = float(torch.relu(first(x_train)).max()) / 127
        x_codes = x_test.to(torch.int64)                       # pixels 0..16: int8 codes at scale 1
        for group_size in group_sizes:
            for bits in bit_widths:
                for method in ("rtn", "bcq_greedy", "bcq"):
                    w1, ops1 = quantize_layer(first.weight, bits, group_size, method)
                    w2, ops2 = quantize_layer(second.weight, bits, group_size, method)
                    hidden = torch.relu(x_test @ w1.T + first.bias)
                    rebuilt = accuracy(hidden @ w2.T + second.bias)
                    h = torch.relu(_int_layer(ops1, x_codes, 1.0, first.bias))
                    h_codes = torch.round(h / hidden_scale).clamp(0, 127).to(torch.int64)
                    integer = accuracy(_int_layer(ops2, h_codes, hidden_scale, second.bias))
                    error = float((w1 - first.weight).norm() / first.weight.norm())
                    result["rows"].append({"group_size": group_size, "bits": bits, "method": method,
                                           "weight_error": error, "accuracy_rebuilt": rebuilt,
                                           "accuracy_integer": integer})
    return result


def gemv_cycles_table(configs, linear_configs, rows=64):
    """Cycles of one ``rows x max_k`` matrix-vector product (batch 1) on each ``lut_gemv`` config
    (:meth:`~qarith.hdl.lut_gemv.LutGemv.gemv_cycles`, checked against simulation by the tests) and on each
    ``linear_int8`` config: ``ceil(rows / cols)`` tiles of ``K`` steps back to back (one batch row of
    the array's ``rows`` used), plus the tile's drain (``rows - 1``) and the latency."""
    from ...hdl.common.component import interface
    from ...hdl.linear_int8 import LinearInt8
    from ...hdl.lut_gemv import LutGemv
    table = []
    for name, cfg in configs.items():
        component = interface(LutGemv, cfg)
        cycles = component.gemv_cycles(rows, cfg.max_k)
        table.append({"block": "lut_gemv", "config": name, "weight_bits": cfg.bits, "k": cfg.max_k, "rows": rows,
                      "cycles": cycles, "table_cycles": cfg.groups * component.build_cycles})
    for name, cfg in linear_configs.items():
        component = interface(LinearInt8, cfg)
        cycles = -(-rows // cfg.cols) * cfg.max_k + cfg.rows - 1 + component.latency
        table.append({"block": "linear_int8", "config": name, "weight_bits": 8, "k": cfg.max_k, "rows": rows,
                      "cycles": cycles, "table_cycles": 0})
    return table


def lut_gemv_markdown(result):
    """Markdown tables of :func:`lut_gemv_accuracy` (and of :func:`gemv_cycles_table` when present)."""
    accuracy = result["accuracy"]
    lines = ["## lut_gemv: BCQ against RTN weights (digits MLP 64-64-10, 500 test images)", "",
             f"Float network: {accuracy['float']:.3f}.", "",
             "| group | bits | method | weight error | accuracy (rebuilt weights) | accuracy (integer block) |",
             "|---:|---:|---|---:|---:|---:|"]
    for row in accuracy["rows"]:
        lines.append(f"| {row['group_size']} | {row['bits']} | {row['method']} | {row['weight_error']:.3f} | "
                     f"{row['accuracy_rebuilt']:.3f} | {row['accuracy_integer']:.3f} |")
    lines += ["", "Paper figures (abstracts; GPU speed and energy, no accuracy on this task):", ""]
    lines += [f"* {source}: {figure}" for source, figure in PAPER_FIGURES]
    if "cycles" in result:
        lines += ["", "| block | config | weight bits | rows x K | cycles | of which tables |",
                  "|---|---|---:|---|---:|---:|"]
        for row in result["cycles"]:
            lines.append(f"| {row['block']} | {row['config']} | {row['weight_bits']} | {row['rows']} x {row['k']} | "
                         f"{row['cycles']} | {row['table_cycles']} |")
    return "\n".join(lines) + "\n"
