"""Cycles of the encoder layer (``encoder_layer``) against sequence length, from its cycle formula.

The figures are :meth:`~qarith.hdl.encoder_layer.EncoderLayer.phase_cycles`,
:meth:`~qarith.hdl.encoder_layer.EncoderLayer.load_cycles` and
:meth:`~qarith.hdl.encoder_layer.EncoderLayer.mac_utilisation`, which the encoder layer's tests check
beat for beat in amaranth.sim (every phase at every length of the registry's configs). Three tables:

* the Q/K/V projections alone (``rtl_phases="qkv"``): ideal cycles ``3 seq d_model^2 / (rows cols)``
  against the run phase and the whole phase (load, run, pipeline latency);
* the whole layer: ideal cycles ``layer_macs(seq) / (rows cols)`` against the six matrix phases'
  cycles (first step to last beat, summed) and the layer's (last token to last output beat);
* the target layer per phase.

``make bench`` puts them in ``bench.md``; alone: ``python -c "from qarith.fpga.accuracy.encoder import
encoder_cycles, encoder_markdown; print(encoder_markdown(encoder_cycles()))"``.
"""

from ...golden.encoder_layer import EncoderLayerConfig
from ...hdl.common.component import interface
from ...hdl.encoder_layer import GEMM_PHASES, EncoderLayer

__all__ = ["encoder_cycles", "encoder_markdown", "QKV_SHAPES", "LAYER_SHAPES", "TARGET"]

#: ``(d_model, rows, cols, lengths)`` of the projection table.
QKV_SHAPES = ((64, 8, 8, (1, 2, 4, 8, 16, 32, 64)), (8, 4, 4, (1, 2, 4)))
#: ``(d_model, d_ff, rows, cols, lengths)`` of the layer table.
LAYER_SHAPES = ((64, 256, 8, 8, (1, 8, 16, 32, 64)), (32, 64, 4, 4, (1, 4, 8, 16)), (8, 16, 4, 4, (1, 2, 4)))
#: The issue's target layer: d_model 64, 2 heads, d_ff 256, 64 tokens, an 8x8 array.
TARGET = dict(d_model=64, heads=2, d_ff=256, max_seq=64, rows=8, cols=8)


def _layer(rtl_phases, **fields):
    return interface(EncoderLayer, EncoderLayerConfig(rtl_phases=rtl_phases, **fields))


def encoder_cycles():
    """``{"qkv": [...], "layer": [...], "phases": [...]}``: one record per table row."""
    qkv = []
    for d_model, rows, cols, lengths in QKV_SHAPES:
        layer = _layer("qkv", d_model=d_model, heads=2, d_ff=2 * d_model, max_seq=max(lengths), rows=rows,
                       cols=cols)
        for seq in lengths:
            ideal = 3 * seq * d_model * d_model // (rows * cols)
            run, total = layer.cycles(seq), layer.load_cycles(seq) + layer.finish_cycles(seq)
            qkv.append({"d_model": d_model, "array": f"{rows}x{cols}", "seq": seq, "ideal": ideal,
                        "run_cycles": run, "total_cycles": total, "run_utilisation": round(ideal / run, 3),
                        "total_utilisation": round(ideal / total, 3)})
    whole = []
    for d_model, d_ff, rows, cols, lengths in LAYER_SHAPES:
        layer = _layer("layer", d_model=d_model, heads=2, d_ff=d_ff, max_seq=max(lengths), rows=rows, cols=cols)
        for seq in lengths:
            macs = layer.cfg.layer_macs(seq)
            timing = layer.phase_cycles(seq)
            matrix = sum(timing[p][1] - timing[p][0] + 1 for p in GEMM_PHASES)
            cycles = layer.finish_cycles(seq)
            whole.append({"d_model": d_model, "d_ff": d_ff, "array": f"{rows}x{cols}", "seq": seq, "macs": macs,
                          "ideal": macs // (rows * cols), "matrix_cycles": matrix,
                          "matrix_utilisation": round(macs / (matrix * rows * cols), 3), "layer_cycles": cycles,
                          "layer_utilisation": round(macs / (cycles * rows * cols), 3)})
    layer = _layer("layer", **TARGET)
    seq, size = TARGET["max_seq"], TARGET["rows"] * TARGET["cols"]
    timing, utilisation = layer.phase_cycles(seq), layer.mac_utilisation(seq)
    total = layer.finish_cycles(seq)
    phases = []
    for phase, (first, last) in timing.items():
        macs = layer.phase_macs(phase, seq) if phase in GEMM_PHASES else None
        phases.append({"phase": phase, "macs": macs, "ideal": macs // size if macs else None,
                       "cycles": last - first + 1, "utilisation": round(utilisation[phase], 3) if macs else None,
                       "share": round((last - first + 1) / total, 3)})
    return {"qkv": qkv, "layer": whole, "phases": phases}


def encoder_markdown(result):
    def cell(value):
        return "-" if value is None else str(value)
    lines = ["## Encoder layer: Q/K/V projection cycles (`rtl_phases=\"qkv\"`, formula checked in amaranth.sim)", "",
             "| d_model | array | seq | ideal | run cycles | total cycles | run utilisation | total utilisation |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['d_model']} | {r['array']} | {r['seq']} | {r['ideal']} | {r['run_cycles']} | {r['total_cycles']} "
              f"| {r['run_utilisation']:.3f} | {r['total_utilisation']:.3f} |" for r in result["qkv"]]
    lines += ["", "## Encoder layer: whole-layer cycles (`rtl_phases=\"layer\"`)", "",
              "| d_model | d_ff | array | seq | MACs | ideal cycles | matrix cycles | matrix utilisation "
              "| layer cycles | layer utilisation |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['d_model']} | {r['d_ff']} | {r['array']} | {r['seq']} | {r['macs']} | {r['ideal']} "
              f"| {r['matrix_cycles']} | {r['matrix_utilisation']:.3f} | {r['layer_cycles']} "
              f"| {r['layer_utilisation']:.3f} |" for r in result["layer"]]
    lines += ["", "## Encoder layer: the target layer per phase (d_model 64, 2 heads, d_ff 256, 64 tokens, 8x8)", "",
              "| phase | MACs | ideal cycles | phase cycles | MAC utilisation | share of the layer |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['phase']} | {cell(r['macs'])} | {cell(r['ideal'])} | {r['cycles']} | "
              f"{'-' if r['utilisation'] is None else format(r['utilisation'], '.3f')} | {r['share']:.3f} |"
              for r in result["phases"]]
    return "\n".join(lines) + "\n"
