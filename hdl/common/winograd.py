"""Shared hardware of the Winograd blocks: shift-and-add matrix transforms and a multiplier census.

* :func:`shift_add`: ``sum_k c_k x_k`` for small integer constants ``c_k``, as shifted copies of ``x_k``
  added or subtracted (``5 x = (x << 2) + x``); no multiplier;
* :func:`transform_stages`: ``R X R^T`` of a square tile ``X`` in two register stages (columns, then rows),
  every intermediate sized from its exact interval, so nothing wraps and nothing is wider than needed;
* :func:`transform_unit`: the pipeline of ``wino_input`` and ``wino_output``: one tile per beat through
  :func:`transform_stages` (and an optional last stage), stalling as a whole under backpressure;
* :func:`tile_layout`: the ``ArrayLayout`` of a square tile (``payload[i][j]`` is row ``i``, column ``j``);
* :func:`count_multipliers`: the ``$mul`` cells of a design as Amaranth builds it (RTLIL), the ground
  truth for ``multipliers`` and ``mults_per_output``.
"""

import re

from amaranth.back import rtlil
from amaranth.hdl import Cat, Signal
from amaranth.lib import data

from ...golden.common.codes import code_range

__all__ = ["shift_add", "transform_stages", "transform_unit", "tile_layout", "count_multipliers"]


def tile_layout(shape, rows, cols=None):
    """``rows x cols`` (default square) elements of ``shape``, row-major."""
    return data.ArrayLayout(data.ArrayLayout(shape, rows if cols is None else cols), rows)


def shift_add(coefficients, values):
    """``sum c * x`` over ``zip(coefficients, values)``, each ``|c|`` split into its set bits."""
    added, subtracted = [], []
    for coefficient, value in zip(coefficients, values):
        magnitude = abs(coefficient)
        terms = [value << bit for bit in range(magnitude.bit_length()) if (magnitude >> bit) & 1]
        (added if coefficient > 0 else subtracted).extend(terms)
    total = sum(added[1:], added[0]) if added else 0
    for term in subtracted:
        total = total - term
    return total


def _interval(coefficients, ranges):
    low = sum(c * (lo if c > 0 else hi) for c, (lo, hi) in zip(coefficients, ranges))
    high = sum(c * (hi if c > 0 else lo) for c, (lo, hi) in zip(coefficients, ranges))
    return low, high


def _stage(rows, values, ranges, register, name):
    """``T[i][j] = sum_k R[i][k] X[k][j]`` into registers; returns ``(T, ranges)``."""
    out_values, out_ranges = [], []
    for i, row in enumerate(rows):
        value_row, range_row = [], []
        for j in range(len(values[0])):
            column = [values[k][j] for k in range(len(row))]
            low, high = _interval(row, [ranges[k][j] for k in range(len(row))])
            target = Signal(range(low, high + 1), name=f"{name}_{i}_{j}")
            register(target, shift_add(row, column))
            value_row.append(target)
            range_row.append((low, high))
        out_values.append(value_row)
        out_ranges.append(range_row)
    return out_values, out_ranges


def _transpose(rows):
    return [list(column) for column in zip(*rows)]


def transform_stages(matrix, values, ranges, register, name):
    """``R X R^T`` for the integer matrix ``R`` (nested tuples) and the tile ``X`` (nested lists of
    values with ``(low, high)`` ranges), after two ``register(target, value)`` stages. Returns the result
    as nested lists of signals and their exact ranges (exact where, as for ``B^T`` and ``A^T``, one
    sign pattern reaches both stages' ends)."""
    columns, column_ranges = _stage(matrix, values, ranges, register, f"{name}_col")
    # (R X) R^T = (R (R X)^T)^T: the same column stage on the transpose.
    rows, row_ranges = _stage(matrix, _transpose(columns), _transpose(column_ranges), register, f"{name}_row")
    return _transpose(rows), _transpose(row_ranges)


def transform_unit(m, unit, matrix, in_width, name, finish=None):
    """Elaborate a transform unit into ``m``: ``unit.i`` (a tile of signed ``in_width``-bit values per
    beat) through ``R X R^T`` (``R = matrix``, :func:`transform_stages`), then ``finish(tile, register)``
    if given (more register stages), onto ``unit.o``. Every stage moves only when the output can: the
    pipeline stalls as a whole while ``o.ready`` is low, so nothing is lost or duplicated. ``unit.latency``
    must count the stages."""
    valid = Signal(unit.latency)
    advance = Signal()
    m.d.comb += [
        advance.eq(~unit.o.valid | unit.o.ready),
        unit.i.ready.eq(advance),
        unit.o.valid.eq(valid[-1]),
    ]

    def register(target, value):
        m.d.sync += target.eq(value)

    size = len(matrix[0])
    in_range = code_range(in_width, True)
    values = [[unit.i.payload[i][j] for j in range(size)] for i in range(size)]
    with m.If(advance):
        m.d.sync += valid.eq(Cat(unit.i.valid, valid[:-1]))
        tile, _ = transform_stages(matrix, values, [[in_range] * size] * size, register, name)
        if finish is not None:
            tile = finish(tile, register)
    for i, row in enumerate(tile):
        for j, value in enumerate(row):
            m.d.comb += unit.o.payload[i][j].eq(value)


def count_multipliers(component, module=None):
    """Number of ``$mul`` cells in the RTLIL of ``component`` (a fresh, unelaborated instance): in every
    module, or only in the one whose hierarchical name ends with ``module`` (e.g. ``"mac"``)."""
    text = rtlil.convert(component, name="top", emit_src=False)
    count, current = 0, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("module "):
            current = line.split()[1].lstrip("\\")
        elif re.match(r"cell \$mul\b", line) and (module is None or current.split(".")[-1] == module):
            count += 1
    return count
