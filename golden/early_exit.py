"""ELBERT's confidence-window early exit, in integer logit comparisons (the function of the
``early_exit`` block).

Source: Xie et al., "ELBERT: Fast ALBERT with Confidence-Window Based Early Exit" (ICASSP 2021),
section 2. After each layer ``l`` a shared classifier gives logits ``z``, ``p = softmax(z)``, and the
sample exits

1. if the normalised entropy ``H = sum_c p_c ln p_c / ln(1 / C)`` (in ``[0, 1]``) is below ``tau``, or
2. else, if the prediction has been the same class, with margin, for the last ``N`` layers (the
   confidence window, ``N = patience``): for two classes, the last ``N`` values of ``p_0`` all above
   ``0.5 + m`` or all below ``0.5 - m``.

:func:`elbert_exit_float` is that rule on float logits. The block works on integer logit codes
(real logit = code * ``scale``) and replaces each test by one comparison of a logit difference with
an integer threshold:

* **two classes.** ``H`` depends on ``d = z_0 - z_1`` only, falls as ``|d|`` grows, and
  ``H < tau  <=>  |d| scale > t``, where ``t = ln(p / (1 - p))`` for the ``p > 1/2`` with
  ``H_2(p) = tau`` (binary entropy in bits; ``t = 4.3307`` for ``tau = 0.1``, ``3.4381`` for 0.2).
  For integer ``d``: ``|d| > T = floor(t / scale)`` (:attr:`EarlyExitConfig.entropy_codes`). Likewise
  ``p_0 > 0.5 + m  <=>  d > M = floor(ln((0.5 + m) / (0.5 - m)) / scale)``
  (:attr:`EarlyExitConfig.margin_codes`); with ``m = 0``, ``M = 0``: ``d > 0``, and ``d = 0`` (``p_0 =
  0.5``) is on neither side, so it breaks the window. The block and :func:`elbert_exit_float` agree
  exactly (tests check every ``d``);
* **more classes** (our choice, where the paper fixes nothing in integers): the same two tests on the
  **top-2 margin** ``g = z_(1) - z_(2)`` (largest minus second largest logit): exit if ``g > T``, and the
  layer votes for the argmax class (the lowest index among equal maxima) only if ``g > M``. For two
  classes ``g = |d|``, so this is the rule above; for ``C > 2`` it is the two-class entropy of the two
  leading classes renormalised, ``H_2(sigmoid(g scale)) < tau``: a different
  test from the C-class ``H``, which also counts the trailing classes (:func:`elbert_exit_float` keeps
  the paper's ``H``; the tests measure how often the two disagree).

The window is a run counter: ``run = run + 1`` if the layer votes for the same class as the layer
before (which also voted), ``1`` if it votes otherwise, ``0`` if it does not vote; the counter
restarts on a sample's first layer and saturates at ``N``. Exit when ``g > T`` or ``run >= N``.
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import code_range, require_integers

__all__ = ["EarlyExitConfig", "early_exit", "elbert_exit_float", "entropy_logit", "normalised_entropy"]


def entropy_logit(tau):
    """The logit difference ``t = ln(p / (1 - p))`` at which the two-class normalised entropy is
    ``tau``: ``H_2(p) = tau`` for ``1/2 < p < 1`` (by bisection, to double precision)."""
    low, high = 0.5, 1.0
    for _ in range(200):
        middle = (low + high) / 2
        entropy = -(middle * math.log2(middle) + (1 - middle) * math.log2(1 - middle))
        if entropy > tau:
            low = middle
        else:
            high = middle
    return math.log(low / (1 - low))


@dataclass(frozen=True)
class EarlyExitConfig:
    """Configuration of the ``early_exit`` block.

    Parameters
    ----------
    classes : int
        Logits per layer ``C`` (2..16).
    logit_width : int
        Signed logit code width (2..24).
    scale : float
        Real logit per code (positive, finite).
    tau : float
        Entropy threshold (``0 < tau < 1``; the paper's 0.1).
    patience : int
        Confidence window ``N`` (1..255; the paper's 8).
    margin : float
        ``m`` (``0 <= m < 0.5``; the paper's 0).
    """
    classes: int = 2
    logit_width: int = 8
    scale: float = 1 / 16
    tau: float = 0.1
    patience: int = 8
    margin: float = 0.0

    def __post_init__(self):
        require_integers(self, ("classes", "logit_width", "patience"))
        for name in ("scale", "tau", "margin"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"{name} must be a number, not {value!r}")
        if not 2 <= self.classes <= 16:
            raise ValueError(f"Classes must be between 2 and 16, not {self.classes}")
        if not 2 <= self.logit_width <= 24:
            raise ValueError(f"Logit width must be between 2 and 24, not {self.logit_width}")
        if not (math.isfinite(self.scale) and self.scale >= 2.0 ** -24 and self.scale <= 2.0 ** 24):
            raise ValueError(f"Scale must be a finite number between 2**-24 and 2**24, not {self.scale}")
        if not 0.001 <= self.tau <= 0.999:
            raise ValueError(f"Entropy threshold must be between 0.001 and 0.999, not {self.tau}")
        if not 1 <= self.patience <= 255:
            raise ValueError(f"Patience must be between 1 and 255 layers, not {self.patience}")
        if not 0 <= self.margin <= 0.499:
            raise ValueError(f"Margin must be between 0 and 0.499, not {self.margin}")

    @property
    def logit_min(self):
        return code_range(self.logit_width, True)[0]

    @property
    def logit_max(self):
        return code_range(self.logit_width, True)[1]

    @property
    def gap_max(self):
        """Largest top-2 margin in codes."""
        return self.logit_max - self.logit_min

    @property
    def entropy_codes(self):
        """``T = floor(t / scale)``: the layer is confident when its margin exceeds ``T`` codes."""
        return math.floor(entropy_logit(self.tau) / self.scale)

    @property
    def margin_codes(self):
        """``M = floor(ln((0.5 + m) / (0.5 - m)) / scale)``: the layer votes when its margin exceeds ``M``."""
        return math.floor(math.log((0.5 + self.margin) / (0.5 - self.margin)) / self.scale)

    @property
    def run_width(self):
        return max(1, self.patience.bit_length())

    @property
    def class_width(self):
        return max(1, (self.classes - 1).bit_length())


def _check_logits(cfg, logits):
    logits = torch.as_tensor(logits)
    if logits.dtype.is_floating_point or logits.dtype == torch.bool:
        raise TypeError(f"Early exit takes integer logit codes, not {logits.dtype}")
    logits = logits.to(torch.int64)
    if logits.ndim != 2 or logits.shape[1] != cfg.classes:
        raise ValueError(f"Logits must be (layers, {cfg.classes}), not {tuple(logits.shape)}")
    if bool((logits < cfg.logit_min).any()) or bool((logits > cfg.logit_max).any()):
        raise ValueError(f"Logits must be {cfg.logit_width}-bit signed codes")
    return logits


def early_exit(cfg, logits, first):
    """The block, layer by layer: ``logits (L, C)`` integer codes of consecutive layers, ``first (L,)``
    true on each sample's first layer. Returns ``exit``, ``confident`` (``g > T``), the argmax
    ``label`` and the window ``run`` per layer, each ``(L,)``.

    The margin and the comparisons are vectorised; the run counter is a recurrence over the layers (one
    step per layer, as in the block)."""
    logits = _check_logits(cfg, logits)
    first = torch.as_tensor(first, dtype=torch.bool)
    top = logits.amax(dim=1)
    # The lowest index among equal maxima.
    label = (logits == top.unsqueeze(1)).to(torch.int64).argmax(dim=1)
    others = logits.masked_fill(torch.nn.functional.one_hot(label, cfg.classes).bool(), cfg.logit_min)
    gap = top - others.amax(dim=1)
    confident = gap > cfg.entropy_codes
    votes = gap > cfg.margin_codes
    runs, run, previous = [], 0, -1
    for layer_first, vote, layer_label in zip(first.tolist(), votes.tolist(), label.tolist()):
        if layer_first:
            run, previous = 0, -1
        if not vote:
            run, previous = 0, -1
        else:
            run = min(run + 1, cfg.patience) if layer_label == previous else 1
            previous = layer_label
        runs.append(run)
    run = torch.tensor(runs, dtype=torch.int64)
    return {"exit": confident | (run >= cfg.patience), "confident": confident, "label": label, "run": run}


def normalised_entropy(z):
    """``H = sum_c p_c ln p_c / ln(1 / C)`` of ``p = softmax(z)`` over the last dimension (float64)."""
    z = torch.as_tensor(z, dtype=torch.float64)
    log_p = torch.log_softmax(z, dim=-1)
    return (log_p.exp() * log_p).sum(dim=-1) / math.log(1 / z.shape[-1])


def elbert_exit_float(logits, tau, patience, margin=0.0):
    """The paper's two-class rule on float logits ``(L, 2)`` of one sample's layers, layer by layer:
    exit at layer ``l`` (1-based) if ``H < tau``, or if ``l >= N`` and the last ``N`` values of ``p_0`` are
    all above ``0.5 + m`` or all below ``0.5 - m``."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    entropy = normalised_entropy(logits)
    p0 = torch.softmax(logits, dim=-1)[:, 0]
    exits = []
    for layer in range(len(logits)):
        window = p0[max(0, layer - patience + 1):layer + 1]
        steady = layer + 1 >= patience and (bool((window > 0.5 + margin).all())
                                            or bool((window < 0.5 - margin).all()))
        exits.append(bool(entropy[layer] < tau) or steady)
    return torch.tensor(exits)
