"""Model conversion: :func:`integerize` replaces a PyTorch model's ``nn.Linear``, ``nn.Conv2d``, softmax, GELU
and ``nn.LayerNorm`` with the drop-ins of :mod:`qarith.golden.common.modules`, every scale calibrated from
data, following a recipe that says which block implements each operator and at which widths.

Two model shapes are handled:

* ``nn.Sequential`` (a CNN): converted layer by layer, each layer calibrated on the outputs of the already
  converted ones. A layer whose input comes from a converted layer through code-preserving layers only
  (``ReLU``, ``MaxPool2d``, ``Flatten``, ``Dropout``, ``Identity``: each maps ``q S`` to ``q' S`` with
  integer ``q'``) takes that layer's output scale and zero point, so the codes pass unchanged and no
  rescale sits between them: from the first quantizer to the last dequantizer the path is integer.
* Hugging Face-style transformers: every ``nn.Linear``, ``nn.LayerNorm`` and GELU module is replaced in
  place, calibrated on the float model's activations; each self-attention is wrapped in a module that
  computes eager attention with an :class:`~qarith.golden.common.modules.IntSoftmax`: BERT's layout (a
  module with ``query``/``key``/``value`` linears, :class:`IntSelfAttention`) and the projection layout of
  ViT and most newer models (``q_proj``/``k_proj``/``v_proj``/``o_proj``, ``head_dim``, ``scaling``:
  :class:`IntProjectionAttention`).

The result's ``integer_report`` attribute lists the replaced modules and every place a float rescale
remains (a quantizer fed by float values; in attention, the score and context products and the residual
adds, which run on dequantized values).
"""

import copy
import math
from collections import Counter

import torch
from torch import nn

from .modules import IntConv2d, IntGelu, IntLayerNorm, IntLinear, IntLinearOutlier, IntSoftmax

__all__ = ["RECIPES", "CODE_PRESERVING", "IntSelfAttention", "IntProjectionAttention", "integerize", "recipe_with"]

#: Recipes as data: per operator the drop-in's options, or ``None`` to keep the float operator.
#: ``calibration`` is ``"max"``, ``"percentile"`` or ``"octav"`` (the MSE-optimal clip).
_LINEAR = {"in_width": 12, "out_width": 16}
_LAYERNORM = {"in_width": 12, "out_width": 16, "ptf": True}
RECIPES = {
    "ivit": {"linear": _LINEAR, "conv": {"method": "direct"},
             "softmax": {"method": "shiftmax", "in_width": 12, "out_width": 12},
             "gelu": {"method": "shiftgelu", "in_width": 12, "out_width": 16},
             "layernorm": _LAYERNORM, "calibration": "max"},
    "ibert": {"linear": _LINEAR, "conv": {"method": "direct"},
              "softmax": {"method": "ibert", "in_width": 12, "out_width": 12},
              "gelu": {"method": "igelu", "in_width": 12, "out_width": 16},
              "layernorm": _LAYERNORM, "calibration": "max"},
    "lut": {"linear": _LINEAR, "conv": {"method": "direct"},
            "softmax": {"method": "lut", "in_width": 8, "out_width": 12},
            "gelu": {"method": "lut", "in_width": 10, "out_width": 16},
            "layernorm": _LAYERNORM, "calibration": "max"},
    "pwl": {"linear": _LINEAR, "conv": {"method": "direct"},
            "softmax": {"method": "lut", "in_width": 8, "out_width": 12},
            "gelu": {"method": "pwl", "in_width": 12, "out_width": 16, "pwl_entries": 16, "pwl_method": "irnn"},
            "layernorm": _LAYERNORM, "calibration": "max"},
}

OPERATORS = ("linear", "conv", "softmax", "gelu", "layernorm")

#: Layers that map codes ``q`` at scale ``S`` (zero point ``Z``) to integer codes at the same scale.
CODE_PRESERVING = (nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Identity)


def recipe_with(base, **operators):
    """``base`` (a name in :data:`RECIPES` or a dict) with only the given operators' entries kept
    (``only=("gelu",)``) or replaced (``gelu={...}``)."""
    recipe = dict(RECIPES[base] if isinstance(base, str) else base)
    only = operators.pop("only", None)
    if only is not None:
        recipe.update({op: None for op in OPERATORS if op not in only})
    recipe.update(operators)
    return recipe


def _is_gelu(module):
    return isinstance(module, nn.GELU) or type(module).__name__ in ("GELUActivation", "NewGELUActivation")


def _is_self_attention(module):
    return all(isinstance(getattr(module, name, None), nn.Linear) for name in ("query", "key", "value")) \
        and hasattr(module, "attention_head_size")


def _is_projection_attention(module):
    return all(isinstance(getattr(module, name, None), nn.Linear) for name in ("q_proj", "k_proj", "v_proj", "o_proj")) \
        and hasattr(module, "head_dim") and hasattr(module, "scaling")


def _kind(module):
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.LayerNorm):
        return "layernorm"
    if _is_gelu(module):
        return "gelu"
    if isinstance(module, nn.Softmax):
        return "softmax"
    return None


def _convert(kind, module, inputs, options, calibration, input_quant=None):
    options = dict(options)
    if kind == "linear":
        if options.pop("method", "requant") == "llm_int8":
            return IntLinearOutlier.from_float(module, inputs, calibration=calibration, **options)
        return IntLinear.from_float(module, inputs, calibration=calibration, input_quant=input_quant, **options)
    if kind == "conv":
        return IntConv2d.from_float(module, inputs, calibration=calibration, input_quant=input_quant, **options)
    if kind == "layernorm":
        return IntLayerNorm.from_float(module, inputs, calibration=calibration, **options)
    if kind == "gelu":
        return IntGelu.from_float(module, inputs, calibration=calibration, **options)
    return IntSoftmax.from_float(module, inputs, calibration=calibration, **options)


def _run(model, calibration_inputs):
    if isinstance(calibration_inputs, dict):
        return model(**calibration_inputs)
    if isinstance(calibration_inputs, (tuple, list)):
        return model(*calibration_inputs)
    return model(calibration_inputs)


def _attend(attention, scores, v, attention_mask, rows):
    """The rest of eager attention after the scaled scores: the mask (boolean or additive), the scores
    recorded for calibration while ``attention.recorded`` is a list, the (integer or float) softmax and
    ``P V`` with the heads joined again: ``(context (*rows, heads * head_dim), probabilities)``."""
    if attention_mask is not None and attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, -math.inf)
    elif attention_mask is not None:
        scores = scores + attention_mask
    if attention.recorded is not None:
        attention.recorded.append(scores.detach().flatten())
    probs = torch.softmax(scores, dim=-1) if attention.softmax is None else attention.softmax(scores)
    return torch.matmul(probs, v).transpose(1, 2).reshape(*rows, -1), probs


class IntSelfAttention(nn.Module):
    """Eager scaled dot-product attention of a Hugging Face BERT self-attention with its (converted)
    ``query``/``key``/``value`` linears and an integer softmax (``None``: float). ``forward`` takes and
    returns what the wrapped module does (``(context, probabilities)``)."""

    def __init__(self, attention, softmax=None):
        super().__init__()
        self.query, self.key, self.value = attention.query, attention.key, attention.value
        self.num_attention_heads = attention.num_attention_heads
        self.attention_head_size = attention.attention_head_size
        self.softmax = softmax
        self.recorded = None

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        shape = (*hidden_states.shape[:-1], self.num_attention_heads, self.attention_head_size)
        q, k, v = (layer(hidden_states).view(shape).transpose(1, 2) for layer in (self.query, self.key, self.value))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        return _attend(self, scores, v, attention_mask, hidden_states.shape[:-1])


class IntProjectionAttention(nn.Module):
    """Eager scaled dot-product attention of a Hugging Face attention in the projection layout (ViT's
    ``ViTAttention``: ``q_proj``/``k_proj``/``v_proj``/``o_proj`` linears, ``head_dim``, ``scaling``), with
    an integer softmax (``None``: float). ``forward`` takes and returns what the wrapped module does
    (``(output, probabilities)``; the output after ``o_proj``)."""

    def __init__(self, attention, softmax=None):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (attention.q_proj, attention.k_proj, attention.v_proj,
                                                              attention.o_proj)
        self.head_dim, self.scaling = attention.head_dim, attention.scaling
        self.softmax = softmax
        self.recorded = None

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        q, k, v = (layer(hidden_states).view(shape).transpose(1, 2) for layer in (self.q_proj, self.k_proj, self.v_proj))
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scaling
        context, probs = _attend(self, scores, v, attention_mask, hidden_states.shape[:-1])
        return self.o_proj(context), probs


def _parent(model, name):
    parent, _, child = name.rpartition(".")
    return (model.get_submodule(parent) if parent else model), child


def _integerize_sequential(model, x, recipe, calibration):
    report = {"replaced": Counter(), "float_rescales": []}
    chain = None
    with torch.no_grad():
        for index, layer in enumerate(model):
            kind = _kind(layer)
            options = recipe.get(kind) if kind else None
            if options is not None:
                chained = chain if kind in ("linear", "conv") else None
                new = _convert(kind, layer, x, options, calibration, input_quant=chained)
                if chained is None and index > 0:
                    report["float_rescales"].append(f"{index} ({kind} input)")
                model[index] = new
                report["replaced"][type(new).__name__] += 1
                x = new(x)
                chain = getattr(new, "output_quant", None)
            else:
                x = layer(x)
                if chain is not None and not isinstance(layer, CODE_PRESERVING):
                    chain = None
        if chain is None:
            report["float_rescales"].append("output (float layers after the last integer one)")
    return report


def _integerize_modules(model, calibration_inputs, recipe, calibration, samples):
    report = {"replaced": Counter(), "float_rescales": []}
    attentions = [(name, IntSelfAttention if _is_self_attention(m) else IntProjectionAttention)
                  for name, m in model.named_modules() if _is_self_attention(m) or _is_projection_attention(m)]
    if recipe.get("softmax") is not None:
        for name, wrapper in attentions:
            parent, child = _parent(model, name)
            setattr(parent, child, wrapper(getattr(parent, child)))
    targets = [(name, m, _kind(m)) for name, m in model.named_modules()
               if _kind(m) and recipe.get(_kind(m)) is not None and _kind(m) != "softmax"]
    captured = {name: [] for name, _, _ in targets}
    hooks = []
    for name, module, kind in targets:
        def hook(module, args, store=captured[name], rows=kind != "conv"):
            values = args[0].detach()
            store.append(values.reshape(-1, values.shape[-1]) if rows and values.dim() > 2 else values)
        hooks.append(module.register_forward_pre_hook(hook))
    wrappers = [m for m in model.modules() if isinstance(m, (IntSelfAttention, IntProjectionAttention))]
    for wrapper in wrappers:
        wrapper.recorded = []
    with torch.no_grad():
        _run(model, calibration_inputs)
    for handle in hooks:
        handle.remove()
    for name, module, kind in targets:
        inputs = torch.cat(captured[name])[:samples]
        parent, child = _parent(model, name)
        new = _convert(kind, module, inputs, recipe[kind], calibration)
        setattr(parent, child, new)
        report["replaced"][type(new).__name__] += 1
        report["float_rescales"].append(f"{name} ({kind} input)")
    for wrapper in wrappers:
        scores = torch.cat(wrapper.recorded)
        wrapper.softmax = _convert("softmax", None, scores, recipe["softmax"], calibration)
        wrapper.recorded = None
        report["replaced"]["IntSoftmax"] += 1
    names = {id(m): n for n, m in model.named_modules()}
    for wrapper in wrappers:
        name = names[id(wrapper)]
        report["float_rescales"] += [f"{name} (scores Q K^T)", f"{name} (softmax input)", f"{name} (context P V)"]
    # Residual adds: BERT's post-LN output blocks (``dense`` + ``LayerNorm``), one each; a pre-LN layer
    # (``layernorm_before`` / ``layernorm_after``, ViT), two.
    for n, m in model.named_modules():
        if isinstance(getattr(m, "LayerNorm", None), nn.Module) and hasattr(m, "dense"):
            report["float_rescales"].append(f"{n} (residual add)")
        elif hasattr(m, "layernorm_before") and hasattr(m, "layernorm_after"):
            report["float_rescales"] += [f"{n} (attention residual add)", f"{n} (MLP residual add)"]
    return report


def integerize(model, calibration_inputs, recipe="ivit", samples=1 << 16):
    """A copy of ``model`` with its operators replaced by qarith's integer drop-ins.

    Parameters
    ----------
    model : torch.nn.Module
        An ``nn.Sequential`` or a Hugging Face-style transformer (BERT or the projection layout of ViT;
        eager attention).
    calibration_inputs : torch.Tensor, tuple or dict
        What the model is called with (``model(x)``, ``model(*x)`` or ``model(**x)``) to calibrate.
    recipe : str or dict
        A name in :data:`RECIPES` or a dict of the same form.
    samples : int
        At most this many calibration rows per operator (first rows first).

    Returns
    -------
    torch.nn.Module
        The converted copy, in eval mode, with an ``integer_report`` dict: ``replaced`` (drop-in class
        -> count) and ``float_rescales`` (where float values are quantized or combined).
    """
    recipe = dict(RECIPES[recipe]) if isinstance(recipe, str) else dict(recipe)
    calibration = recipe.pop("calibration", "max")
    unknown = set(recipe) - set(OPERATORS)
    if unknown:
        raise ValueError(f"Recipe operators must be among {', '.join(OPERATORS)}, not {sorted(unknown)}")
    converted = copy.deepcopy(model).eval()
    if isinstance(converted, nn.Sequential):
        report = _integerize_sequential(converted, calibration_inputs, recipe, calibration)
    else:
        report = _integerize_modules(converted, calibration_inputs, recipe, calibration, samples)
    report["replaced"] = dict(report["replaced"])
    converted.integer_report = report
    return converted
