"""Cycles against row length for the row blocks' variable-length configs, measured in amaranth.sim.

For each registered config with ``variable_length=True`` and each row length ``L``:

* ``latency``: a lone row of ``L`` elements, cycles from its last input to its first output (the
  block's ``row_latency(L)``, which the tests check exactly);
* ``row_cycles``: twelve rows of ``L`` back to back, with an always-ready output, the cycles between the
  last outputs of successive rows in steady state (``(t_last - t_first) / 11`` over the rows' final
  outputs): ``L`` at full rate, more when a row is too short for the banks to hide the reduce tail.

``make bench`` puts the table in ``bench.md``; alone: ``python -c "from qarith.registry import BLOCKS;
from qarith.fpga.accuracy.varlen import varlen_cycles, varlen_markdown;
print(varlen_markdown(varlen_cycles(BLOCKS)))"``.
"""

import torch

from ...sim.common.bench import Vectors, run_amaranth
from ...sim.common.rows import ragged_vectors

__all__ = ["varlen_cycles", "varlen_markdown"]

#: Rows per back-to-back run.
RUN_ROWS = 12


def _run(block, cfg, lengths, seed):
    gen = torch.Generator().manual_seed(seed)
    if block.name == "attn_v":
        rows = [[{"code": 0, "zero": 0, "v": int(v), "last": int(j == length - 1)}
                 for j, v in enumerate(torch.randint(-8, 8, (length,), generator=gen).tolist())] for length in lengths]
        beats = [beat for row in rows for beat in row]
        ends = torch.cumsum(torch.tensor(lengths), 0).tolist()
        expected = [sum(beat["v"] for beat in row) << (cfg.levels - 1) for row in rows]
        case = Vectors("run", beats, expected, origin=[list(range(e - n, e)) for e, n in zip(ends, lengths)])
        result = run_amaranth(block.elaborate(cfg), case)
        return [e - 1 for e in ends], result.in_cycles, result.out_cycles
    low, high = -(1 << (cfg.in_width - 1)), (1 << (cfg.in_width - 1)) - 1
    rows = [torch.randint(low, high + 1, (length,), generator=gen).tolist() for length in lengths]
    model = block.bench.row_records if block.name == "log_softmax_int" else block.golden
    case = ragged_vectors(cfg, "run", rows, model)
    result = run_amaranth(block.elaborate(cfg), case)
    ends = torch.cumsum(torch.tensor(lengths), 0).tolist()
    return [e - 1 for e in ends], result.in_cycles, result.out_cycles


def varlen_cycles(blocks, lengths=(1, 2, 4, 8, 12, 16), seed=0):
    """Rows of :func:`varlen_markdown`'s table for every variable-length config of ``blocks`` (the
    registry's mapping), at each length ``L <= n`` of ``lengths``."""
    table = []
    for block in blocks.values():
        for name, cfg in block.configs.items():
            if not getattr(cfg, "variable_length", False):
                continue
            for length in (L for L in lengths if L <= cfg.n):
                ends, in_cycles, out_cycles = _run(block, cfg, [length], seed)
                per_row = 1 if block.name == "attn_v" else length
                latency = out_cycles[0] - in_cycles[ends[0]]
                ends, in_cycles, out_cycles = _run(block, cfg, [length] * RUN_ROWS, seed)
                finals = [out_cycles[(r + 1) * per_row - 1] for r in range(RUN_ROWS)]
                table.append({"block": block.name, "config": name, "n": cfg.n, "length": length,
                              "latency": latency, "declared": block.interface(cfg).row_latency(length),
                              "row_cycles": round((finals[-1] - finals[0]) / (RUN_ROWS - 1), 2)})
    return table


def varlen_markdown(table):
    lines = ["## Variable-length rows: cycles against row length (amaranth.sim)", "",
             "| block | config | n | L | latency (measured) | row_latency(L) | cycles per row, back to back |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in table:
        lines.append(f"| `{r['block']}` | `{r['config']}` | {r['n']} | {r['length']} | {r['latency']} | "
                     f"{r['declared']} | {r['row_cycles']} |")
    return "\n".join(lines) + "\n"

