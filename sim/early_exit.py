"""Test bench of the ``early_exit`` block: every top-2 margin (with both signs for two classes), samples
of many layers whose class holds, flips and ties, and the named edges, against
:func:`qarith.golden.early_exit.early_exit`."""

import cocotb
import torch

from ..golden.early_exit import early_exit
from ..hdl.early_exit import EarlyExit
from .common.bench import Vectors, slow_modes
from .common.cocotb_bench import run_stream_test

__all__ = ["vectors", "layer_vectors", "margin_logits"]


def layer_vectors(cfg, name, logits, first):
    """Vectors for ``logits (L, C)`` and ``first (L,)``: one beat and one expected decision per layer."""
    logits = torch.as_tensor(logits, dtype=torch.int64)
    first = torch.as_tensor(first, dtype=torch.bool)
    decision = early_exit(cfg, logits, first)
    beats = [{"z": z, "first": int(f)} for z, f in zip(logits.tolist(), first.tolist())]
    expected = [{key: int(decision[key][n]) for key in ("exit", "confident", "label", "run")}
                for n in range(len(beats))]
    return Vectors(name, beats, expected, origin=[[n] for n in range(len(beats))])


def margin_logits(cfg, gen, gaps, labels):
    """One layer per ``gap``: the top logit at class ``label``, the runner-up exactly ``gap`` codes below it,
    the other classes at random codes below the runner-up; placed at random inside the code range."""
    rows = []
    for gap, label in zip(gaps.tolist(), labels.tolist()):
        second = int(torch.randint(cfg.logit_min, cfg.logit_max - gap + 1, (1,), generator=gen))
        row = torch.randint(cfg.logit_min, second + 1, (cfg.classes,), generator=gen)
        runner = int(torch.randint(0, cfg.classes - 1, (1,), generator=gen))
        runner = runner + (runner >= label)
        row[runner], row[label] = second, second + gap
        rows.append(row)
    return torch.stack(rows)


def vectors(cfg, seed=1):
    """Named cases:

    * ``every_margin``: every top-2 margin from 0 to the largest, each on a sample's first layer, with the
      top at a random class (both signs of ``d`` for two classes);
    * ``windows``: samples of 1 to ``3 N`` layers whose leading class holds for a random stretch, then
      flips, ties or drops below the margin, with margins around ``T`` and ``M``;
    * ``steady``: one sample of ``2 N + 3`` layers all voting for one class below ``T`` (the window fills,
      exits at layer ``N`` and the counter saturates), and ``ties``: every logit equal, all layers;
    * ``extremes``: the largest and smallest codes (the largest margin).
    """
    gen = torch.Generator().manual_seed(seed)
    gaps = torch.arange(0, cfg.gap_max + 1)
    labels = torch.randint(0, cfg.classes, (len(gaps),), generator=gen)
    cases = [layer_vectors(cfg, "every_margin", margin_logits(cfg, gen, gaps, labels),
                           torch.ones(len(gaps), dtype=torch.bool))]

    around = sorted({0, 1, cfg.margin_codes, cfg.margin_codes + 1, cfg.entropy_codes, cfg.entropy_codes + 1})
    around = torch.tensor([g for g in around if g <= cfg.gap_max])
    logits, first = [], []
    for _ in range(60):
        length = int(torch.randint(1, 3 * cfg.patience + 1, (1,), generator=gen))
        label = int(torch.randint(0, cfg.classes, (1,), generator=gen))
        hold = int(torch.randint(0, length + 1, (1,), generator=gen))
        sample_labels = torch.full((length,), label)
        sample_labels[hold:] = torch.randint(0, cfg.classes, (length - hold,), generator=gen)
        pick = torch.randint(0, 2, (length,), generator=gen).bool()
        below = min(cfg.entropy_codes, cfg.gap_max)
        sample_gaps = torch.where(pick, around[torch.randint(0, len(around), (length,), generator=gen)],
                                  torch.randint(0, below + 1, (length,), generator=gen))
        logits.append(margin_logits(cfg, gen, sample_gaps, sample_labels))
        first += [True] + [False] * (length - 1)
    cases.append(layer_vectors(cfg, "windows", torch.cat(logits), first))

    steady_gap = max(cfg.margin_codes + 1, 0)
    if steady_gap <= min(cfg.entropy_codes, cfg.gap_max):
        length = 2 * cfg.patience + 3
        steady = margin_logits(cfg, gen, torch.full((length,), steady_gap), torch.full((length,), cfg.classes - 1))
        cases.append(layer_vectors(cfg, "steady", steady, [True] + [False] * (length - 1)))
    equal = torch.full((cfg.patience + 2, cfg.classes), 3 if cfg.logit_max >= 3 else 0)
    cases.append(layer_vectors(cfg, "ties", equal, [True] + [False] * (len(equal) - 1)))
    top, bottom = cfg.logit_max, cfg.logit_min
    extremes = torch.full((4, cfg.classes), bottom)
    extremes[0, 0] = top
    extremes[1, -1] = top
    extremes[2, :] = top
    extremes[3, 1] = top
    cases.append(layer_vectors(cfg, "extremes", extremes, [True, False, True, True]))
    return cases


@cocotb.test()
@cocotb.parametrize(mode=slow_modes())
async def stream(dut, mode):
    """Every case through the emitted Verilog, in every stream mode."""
    await run_stream_test(dut, EarlyExit, vectors, mode)
