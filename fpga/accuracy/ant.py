"""Accuracy of ANT's adaptive 4-bit types: quantization MSE of the selected type against int4, PoT4 and
flint4 alone, on Gaussian, Laplace and trained weight tensors, and a small trained network's accuracy
with each weight quantization.

Every quantizer is :mod:`qarith.golden.common.ant` (the same grids and decoder the ``ant_decode`` and
``ant_mac`` blocks are checked against), with the reference code's clipping-scale search per output
channel; "ANT" is the per-tensor type selection among int, flint and PoT (Guo et al., "ANT", MICRO
2022, the adaptive framework). The trained tensors come from a two-layer MLP fitted to scikit-learn's bundled
8x8 digits (1797 images, no download) in a few seconds, seeded.
"""

import torch

from ...golden.common.ant import dequantize, quantize, search_scale, select_type

__all__ = ["PAPER_FIGURES", "digits_mlp", "tensor_mse", "ant_accuracy", "ant_markdown"]

#: The paper's headline figures (4-bit quantization-aware training, top-1 on ImageNet, int -> ANT) and
#: its accelerator gains; they are not measured here and not comparable with a post-training MSE.
PAPER_FIGURES = {
    "top1_int4_to_ant": {"ResNet-18": (66.28, 67.86), "ResNet-50": (73.04, 74.83), "ViT": (72.19, 78.33)},
    "speedup": 2.8,
    "energy": 2.5,
}

#: The single types compared with the selection.
SINGLE_TYPES = ("int", "pot", "flint")


def digits_mlp(hidden=64, epochs=300, seed=0):
    """A 64-``hidden``-10 ReLU MLP trained full-batch with Adam on 1437 of the digits (the other 360
    held out); returns ``(model, (x_train, y_train), (x_test, y_test))`` in float64."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float64) / 16
    y = torch.tensor(digits.target, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=gen)
    train, test = order[:1437], order[1437:]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)).double()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(epochs):
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[train]), y[train])
            loss.backward()
            optimiser.step()
    return model, (x[train], y[train]), (x[test], y[test])


def _quantized(kind, signed, w, alpha):
    return dequantize(kind, signed, quantize(kind, signed, w, alpha), alpha)


def tensor_mse(name, w, per_channel=True, signed=None):
    """MSE of ``w`` under each single type and under ANT's selection, each with its own scale search;
    also relative to the tensor's mean square (``nmse``)."""
    w = torch.as_tensor(w, dtype=torch.float64)
    choice = select_type(w, signed=signed, per_channel=per_channel)
    rows = w.shape[0] if per_channel else 1
    record = {"tensor": name, "shape": list(w.shape), "signed": choice.signed, "ant_type": choice.kind}
    power = float(w.square().mean())
    for kind in SINGLE_TYPES:
        _, mse = search_scale(kind, choice.signed, w, per_channel)
        record[f"{kind}_mse"] = mse / rows
        record[f"{kind}_nmse"] = mse / rows / power
    record["ant_mse"] = choice.mse / rows
    record["ant_nmse"] = choice.mse / rows / power
    return record


def _laplace(gen, shape):
    u = torch.rand(*shape, generator=gen, dtype=torch.float64) - 0.5
    return -u.sign() * torch.log1p(-2 * u.abs())


def ant_accuracy(seed=0, shape=(64, 256), epochs=300):
    """MSE rows (:func:`tensor_mse`) for Gaussian and Laplace tensors of ``shape`` (per output channel),
    the trained MLP's two weight matrices (per output channel) and its hidden activations (unsigned, per
    tensor); and the MLP's held-out accuracy with float weights, each single 4-bit type and ANT."""
    gen = torch.Generator().manual_seed(seed)
    model, _, (x_test, y_test) = digits_mlp(epochs=epochs, seed=seed)
    first, second = model[0].weight.detach(), model[2].weight.detach()
    with torch.no_grad():
        hidden = model[1](model[0](x_test))
    rows = [
        tensor_mse("gaussian", torch.randn(*shape, generator=gen, dtype=torch.float64)),
        tensor_mse("laplace", _laplace(gen, shape)),
        tensor_mse("mlp.fc1.weight", first),
        tensor_mse("mlp.fc2.weight", second),
        tensor_mse("mlp.hidden (activations)", hidden, per_channel=False),
    ]

    def accuracy(weights):
        with torch.no_grad():
            out = torch.nn.functional.linear(x_test, weights[0], model[0].bias)
            out = torch.nn.functional.linear(out.relu(), weights[1], model[2].bias)
        return float((out.argmax(dim=1) == y_test).double().mean())

    network = {"float": accuracy((first, second))}
    for kind in SINGLE_TYPES:
        network[kind] = accuracy([_quantized(kind, True, w, search_scale(kind, True, w, True)[0])
                                  for w in (first, second)])
    chosen = [select_type(w, signed=True, per_channel=True) for w in (first, second)]
    network["ant"] = accuracy([_quantized(c.kind, True, w, c.alpha) for c, w in zip(chosen, (first, second))])
    network["ant_types"] = [c.kind for c in chosen]
    return {"mse": rows, "mlp_accuracy": network, "paper": PAPER_FIGURES}


def ant_markdown(result):
    lines = ["## ANT 4-bit types: quantization MSE (per-channel scale search; nMSE = MSE / mean square)", "",
             "| tensor | shape | signed | ANT picks | ANT nMSE | int4 nMSE | PoT4 nMSE | flint4 nMSE |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for r in result["mse"]:
        lines.append(f"| {r['tensor']} | {'x'.join(map(str, r['shape']))} | {r['signed']} | {r['ant_type']} | "
                     f"{r['ant_nmse']:.4f} | {r['int_nmse']:.4f} | {r['pot_nmse']:.4f} | {r['flint_nmse']:.4f} |")
    net = result["mlp_accuracy"]
    lines += ["", "Digits MLP, held-out accuracy with 4-bit weights (post-training, activations float): "
              f"float {net['float']:.3f}, int4 {net['int']:.3f}, PoT4 {net['pot']:.3f}, "
              f"flint4 {net['flint']:.3f}, ANT {net['ant']:.3f} (types {', '.join(net['ant_types'])}).", ""]
    return "\n".join(lines) + "\n"
