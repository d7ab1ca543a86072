"""Operation counts of every block: the multiplies, adds and memory accesses its datapath does per unit.

One function per block, registered in :data:`COUNTS` by block name; :func:`operations` looks one up.
Each reads the block's config (and, for derived sizes such as a FIFO depth or a row buffer's banks,
the generator's read-only properties) and returns an :class:`Operations`: what the block's RTL in
``hdl/<name>.py`` computes for one **unit** of its work, the unit its ``throughput`` counts (a MAC for
the arrays, an element or lane for element-wise and row blocks, a tile for the Winograd transforms).

Why here and not beside each block: the counts are read off the RTL (``hdl/``), so they live in a layer
above it; ``fpga/`` may import ``golden/`` and ``hdl/`` and is where the report and the sweeps, their
only readers, live. A block without a function here has no count: ``tests/test_operations.py`` fails for
every registered block missing from :data:`COUNTS`, naming it.

What is counted
---------------
``mults``
    ``(a_width, b_width, count)``: a ``*`` of the RTL, a constant factor other than a power of two
    included (Yosys maps it to shifts and adds or a DSP; the count follows the RTL, where a ``$mul``
    cell stands). A factor of a power of two is a shift, not counted.
``adds``
    ``(width, count)``: adders, subtractors, negations and magnitude comparisons (each a carry chain of
    ``width`` bits; a popcount's adder tree counts each of its adders). Equality tests, multiplexers,
    constant shifts, barrel shifters and control counters (indices, credits, FSMs) are not counted.
``reads``
    ``(word_bits, memory_bytes, count)``: reads of a table (a ROM whose contents the config fixes).
``accesses``
    ``(word_bits, memory_bytes, count)``: reads and writes of a buffer (a RAM the data passes through: a
    row buffer, a token buffer, the LUT-GEMM tables).

Only operations whose result the unit uses are counted (the one count increment an element takes of
``octav_stats``' two, the quantize datapath on the quantize pass's words of ``dfp_quant``); a sign test
(``x < 0``) is a wire, not a comparison.

Work done once per row (a softmax's divider, a layer norm's square root) is divided by the row length
``n`` (or ``channels``); work done once per output of a MAC array (requantization) is divided by the
reduction depth, at its largest (``max_k``: the fewest operations per MAC a config allows). Counts are
floats where such a share makes them fractional.

``table_bytes`` and ``buffer_bytes`` are the block's memories in bytes (all of them, not per unit);
:attr:`Operations.bytes_per_unit` is what one unit moves through them.
"""

import dataclasses
import math
from dataclasses import dataclass

from ..golden.common.codes import code_range, width_for
from ..golden.common.winograd import DIRECT_MULTS_PER_OUTPUT, matrices
from ..hdl.common.component import interface

__all__ = ["Operations", "COUNTS", "operations", "units_per_cycle", "ENERGY_PJ_SOURCE", "add_pj", "multiply_pj",
           "table_read_pj", "energy_pj"]


@dataclass(frozen=True)
class Operations:
    """Operations per unit of a block (see the module docstring for what each kind counts)."""
    unit: str
    mults: tuple = ()
    adds: tuple = ()
    reads: tuple = ()
    accesses: tuple = ()
    table_bytes: int = 0
    buffer_bytes: int = 0
    note: str = ""

    @property
    def mult_count(self):
        return sum(count for _, _, count in self.mults)

    @property
    def add_count(self):
        return sum(count for _, count in self.adds)

    @property
    def read_count(self):
        return sum(count for _, _, count in self.reads)

    @property
    def access_count(self):
        return sum(count for _, _, count in self.accesses)

    @property
    def bytes_per_unit(self):
        """Bytes read from tables and moved through buffers per unit."""
        return sum(bits * count for bits, _, count in (*self.reads, *self.accesses)) / 8

    def scaled(self, factor, unit=None):
        """These operations times ``factor`` (e.g. per beat -> per unit), in ``unit`` if given."""
        return Operations(
            unit or self.unit,
            tuple((a, b, n * factor) for a, b, n in self.mults),
            tuple((w, n * factor) for w, n in self.adds),
            tuple((w, s, n * factor) for w, s, n in self.reads),
            tuple((w, s, n * factor) for w, s, n in self.accesses),
            self.table_bytes, self.buffer_bytes, self.note)

    def __add__(self, other):
        """Both blocks' operations per unit of ``self`` (``other`` already scaled to it)."""
        return Operations(self.unit, self.mults + other.mults, self.adds + other.adds,
                          self.reads + other.reads, self.accesses + other.accesses,
                          self.table_bytes + other.table_bytes, self.buffer_bytes + other.buffer_bytes,
                          "; ".join(n for n in (self.note, other.note) if n))

    def as_dict(self):
        """JSON-ready summary and the itemised lists."""
        return {"unit": self.unit, "mults": _round(self.mult_count), "adds": _round(self.add_count),
                "table_reads": _round(self.read_count), "buffer_accesses": _round(self.access_count),
                "bytes_per_unit": _round(self.bytes_per_unit), "table_bytes": self.table_bytes,
                "buffer_bytes": self.buffer_bytes,
                "items": {"mults": [[a, b, _round(n)] for a, b, n in self.mults],
                          "adds": [[w, _round(n)] for w, n in self.adds],
                          "reads": [[w, s, _round(n)] for w, s, n in self.reads],
                          "accesses": [[w, s, _round(n)] for w, s, n in self.accesses]},
                "note": self.note}


def _round(value):
    value = round(value, 6)
    return int(value) if value == int(value) else value


class _Tally:
    """Collects operations while a count function walks a block's datapath."""

    def __init__(self):
        self.mults, self.adds, self.reads, self.accesses = [], [], [], []

    def mul(self, a, b, count=1):
        self.mults.append((a, b, count))

    def add(self, width, count=1):
        if count:
            self.adds.append((width, count))

    def read(self, bits, table_bytes, count=1):
        self.reads.append((bits, table_bytes, count))

    def access(self, bits, buffer_bytes, count=1):
        self.accesses.append((bits, buffer_bytes, count))

    def done(self, unit, table_bytes=0, buffer_bytes=0, note=""):
        merged = {}
        for width, count in self.adds:
            merged[width] = merged.get(width, 0) + count
        return Operations(unit, tuple(self.mults), tuple(sorted(merged.items())), tuple(self.reads),
                          tuple(self.accesses), table_bytes, buffer_bytes, note)


def _bytes(bits):
    return math.ceil(bits / 8)


def _bits(value):
    """Width of a signed signal holding ``value`` (as Amaranth's ``Const(value).shape()``)."""
    return width_for(min(value, 0), max(value, 0), value < 0)


COUNTS = {}


def _counts(name):
    def register(function):
        COUNTS[name] = function
        return function
    return register


def units_per_cycle(component, cfg):
    """Units per cycle of a generator instance: a ``throughput`` property counts the block's own unit; a
    class constant counts beats, of ``lanes`` elements each."""
    if isinstance(getattr(type(component), "throughput", None), property):
        return component.throughput
    return component.throughput * getattr(cfg, "lanes", 1)


def operations(block_name, cfg):
    """The :class:`Operations` per unit of block ``block_name`` for ``cfg``; ``None`` for a block without
    a count function."""
    count = COUNTS.get(block_name)
    return None if count is None else count(cfg)


# -- energy proxy ----------------------------------------------------------------------------------------

#: Where the per-operation energies come from.
ENERGY_PJ_SOURCE = ("M. Horowitz, \"Computing's energy problem (and what we can do about it)\", ISSCC 2014, "
                    "45 nm, 0.9 V: int add 0.03 pJ (8 bit), 0.1 pJ (32 bit); int multiply 0.2 pJ (8 bit), "
                    "3.1 pJ (32 bit); SRAM read of 64 bits 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB)")


def add_pj(width):
    """Integer add of ``width`` bits: linear through Horowitz's 8- and 32-bit points."""
    return max(0.03 + (width - 8) * (0.1 - 0.03) / 24, 0.005)


def multiply_pj(a_width, b_width):
    """Integer multiply, proportional to the partial-product array: 0.2 pJ at 8 x 8 (3.2 at 32 x 32)."""
    return 0.2 * a_width * b_width / 64


def table_read_pj(word_bits, table_bytes):
    """One read of ``word_bits`` from a table of ``table_bytes``: 10 pJ per 64 bits at 8 KB, scaled by the
    square root of the size (which fits Horowitz's 8 KB, 32 KB and 1 MB points within 15 %)."""
    return 10.0 * word_bits / 64 * math.sqrt(max(table_bytes, 1) / 8192)


def energy_pj(ops):
    """pJ per unit of an :class:`~qarith.fpga.operations.Operations`: its multiplies, adds, table reads
    and buffer accesses priced by :func:`multiply_pj`, :func:`add_pj` and :func:`table_read_pj` (a buffer
    access as an SRAM read of its size)."""
    total = sum(multiply_pj(a, b) * n for a, b, n in ops.mults)
    total += sum(add_pj(w) * n for w, n in ops.adds)
    total += sum(table_read_pj(w, size) * n for w, size, n in (*ops.reads, *ops.accesses))
    return round(total, 6)


# -- arrays ------------------------------------------------------------------------------------------------

@_counts("mac_array")
def mac_array(cfg):
    """``hdl/mac_array.py``: each PE one ``a x b`` product and one accumulator add per step."""
    from ..hdl.mac_array import MacArray
    tally = _Tally()
    tally.mul(cfg.a_width, cfg.b_width)
    tally.add(cfg.acc_bits)
    fifo_bits = interface(MacArray, cfg).fifo_depth * (cfg.cols * cfg.acc_bits + 1)
    return tally.done("MAC", buffer_bytes=_bytes(fifo_bits),
                      note="output FIFO accesses (one per row of accumulators) not counted")


@_counts("ant_mac")
def ant_mac(cfg):
    """``hdl/ant_mac.py``: a 4-bit ANT decoder per column (its negation shared by the column's PEs);
    per PE the sign's negation of ``a``, an ``(a_width + 1) x 4`` mantissa product, a shift and the
    accumulator add."""
    from ..golden.common.ant import BITS
    from ..hdl.ant_mac import AntMac
    tally = _Tally()
    if cfg.b_signed:
        tally.add(cfg.a_width + 1)               # Mux(sign, -a, a)
    tally.mul(cfg.a_width + (1 if cfg.b_signed else 0), BITS)
    tally.add(cfg.acc_bits)
    tally.add(BITS, 2 / cfg.rows)                # decoder: int negation, PoT body - 1, one per column
    fifo_bits = interface(AntMac, cfg).array.fifo_depth * (cfg.cols * cfg.acc_bits + 1)
    return tally.done("MAC", buffer_bytes=_bytes(fifo_bits),
                      note="output FIFO accesses not counted; decoders shared by a column")


def _requant_element(rounding):
    """``hdl/requant.py`` per lane (the datapath is 32 bits whatever the accumulator's width)."""
    tally = _Tally()
    tally.add(32)                                # bias add
    if rounding == "single":
        tally.add(6, 3)                          # shift clamp (2 comparisons), 31 - shift
    else:
        tally.add(6, 3)                          # shift >= 0, shift < 0, -shift
    tally.mul(16, 16, 4)                         # four partial products of the 32 x 32 Q31 multiply
    tally.add(33)                                # middle partial products
    tally.add(64)                                # full product
    tally.add(64)                                # rounding constant (2**30, or 2**(right - 1))
    if rounding != "single":
        tally.add(35)                            # round half away from zero
        tally.add(33)                            # high < 0
    tally.add(32)                                # output offset
    tally.add(32, 2)                             # clamp
    return tally


@_counts("requant")
def requant(cfg):
    return _requant_element(cfg.rounding).done("element")


@_counts("linear_int8")
def linear_int8(cfg):
    """``hdl/linear_int8.py``: a ``mac_array`` and one requantization per output (per ``max_k`` MACs)."""
    ops = mac_array(cfg.mac) + requant(cfg.requant).scaled(1 / cfg.mac.max_k)
    return dataclasses.replace(ops, note=f"{ops.note}; requantization amortised over max_k = {cfg.mac.max_k} MACs")


@_counts("int8_outlier_linear")
def int8_outlier_linear(cfg):
    """``hdl/int8_outlier_linear.py``, per int8 MAC: the int8 array's and the side array's PE (both
    ``mac_array``); per element (shared by the ``cols`` MACs that use it) the masked row absmax (``|x|``,
    the threshold test, the running-maximum compare), the quantizer (7 restoring-division stages, the
    half-to-even rounding, the sign) and the tile buffer's write and read; per output (per ``max_k``
    MACs) the row dequantization ``c * C32``, ``127 * S`` and the sum (the two factors of 127 are ``*``
    in the RTL: counted as multiplies, as the module docstring says of constant factors)."""
    from ..hdl.int8_outlier_linear import QUOTIENT_BITS
    int8_mac, side_mac = cfg.int8_mac, cfg.side_mac
    buffer_word = cfg.rows * cfg.in_width + cfg.cols * 8 + 1
    buffer_bytes = _bytes(buffer_word * cfg.max_k)
    element = _Tally()
    element.add(cfg.in_width, 3)                             # |x|, |x| >= t, the running maximum
    element.mul(cfg.in_width, 7)                             # the numerator 127 |x|
    element.add(cfg.scale_bits + 8, QUOTIENT_BITS)           # restoring division of 127 |x| by c
    element.add(8, 2)                                        # rounding, sign
    output = _Tally()
    output.mul(cfg.scale_bits, int8_mac.acc_bits)            # c C32
    output.mul(side_mac.acc_bits, 7)                         # 127 S
    output.add(cfg.out_bits)                                 # the sum
    tally = _Tally()
    tally.access(buffer_word, buffer_bytes, 2 / (cfg.rows * cfg.cols))   # one write, one read per step
    ops = (mac_array(int8_mac) + mac_array(side_mac) + element.done("MAC").scaled(1 / cfg.cols)
           + output.done("MAC").scaled(1 / cfg.max_k) + tally.done("MAC"))
    return dataclasses.replace(ops, buffer_bytes=ops.buffer_bytes + buffer_bytes,
                               note="output FIFO accesses not counted; per-element work shared by the cols "
                                    "MACs, per-output work amortised over max_k")


@_counts("encoder_layer")
def encoder_layer(cfg):
    """``hdl/encoder_layer.py``, per useful MAC of one layer on ``max_seq`` tokens (every phase the
    config's ``rtl_phases`` runs): the ``mac_array`` steps; per array step of each matrix phase the A
    operand reads (one word per row bank, shared by the step's ``rows`` x ``cols`` MACs) and the B
    operand reads (a weight word, a K bank word per column, or the V word); the token loads; one
    requantization per matrix output and a write per output beat; the softmax block per score, the
    residuals' requantization and 9-bit add per channel (their reads and writes), the two
    I-LayerNorms per channel and the GELU with its requantization per hidden element (their
    blocks' own counts), each shared out over the layer's MACs."""
    from ..hdl.encoder_layer import GEMM_PHASES, EncoderLayer
    component = interface(EncoderLayer, cfg)
    seq, d, d_ff, heads = cfg.max_seq, cfg.d_model, cfg.d_ff, cfg.heads
    depth_r = -(-seq // cfg.rows)
    phases = [p for p in component.phases if p in GEMM_PHASES]
    total = sum(component.phase_macs(p, seq) for p in phases)
    # The A and B operand memories of each matrix phase: (word bits, memory bytes, words read per step).
    token = (8 * d, cfg.rows * depth_r * d)
    weight = (8 * cfg.cols, component.weight_codes)
    operands = {
        "qkv": (token, weight, 1), "attn_out": (token, weight, 1), "hidden": (token, weight, 1),
        "scores": (token, (8 * d, seq * d), cfg.cols),
        "ctx": ((8 * seq, cfg.rows * heads * depth_r * seq), (8 * d, seq * d), 1),
        "ffn_out": ((8 * d_ff, cfg.rows * depth_r * d_ff), weight, 1),
    }
    outputs = {"qkv": 3 * seq * d, "scores": heads * seq * seq, "ctx": seq * d, "attn_out": seq * d,
               "hidden": seq * d_ff, "ffn_out": seq * d}
    tally = _Tally()
    per = 1 / total
    tally.access(*token, seq * per)                                   # token loads
    requantized = 0
    for phase in phases:
        tiles, steps = component.gemm_shape(phase, seq)
        (a_bits, a_bytes), (b_bits, b_bytes), b_words = operands[phase]
        tally.access(a_bits, a_bytes, tiles * steps * cfg.rows * per)
        if b_bits == weight[0]:
            tally.read(b_bits, b_bytes, tiles * steps * per)
        else:
            tally.access(b_bits, b_bytes, tiles * steps * b_words * per)
        tally.access(8 * cfg.cols, seq * d, outputs[phase] / cfg.cols * per)   # the beat's write
        requantized += outputs[phase]
    quant_bytes = _bytes(component.quant_channels * 70)
    # A ROM row per requantizer beat: the matrix outputs' beats, and (the residuals' and GELU's scalar
    # rows) a residual beat of cols channels or a GELU element.
    quant_rows = requantized / cfg.cols
    if component.attention:
        quant_rows += (2 if component.layer else 1) * seq * d / cfg.cols + (seq * d_ff if component.layer else 0)
    tally.read(cfg.cols * 70, quant_bytes, quant_rows * per)
    ops = mac_array(cfg.mac) + _requant_element("double").done("MAC").scaled(requantized * per)
    buffers = token[1]
    if component.attention:
        scores = heads * seq * seq
        residuals = (2 if component.layer else 1) * seq * d
        res_bits = 9 * cfg.cols
        tally.access(8 * seq, heads * seq * seq, scores / cfg.cols * per)      # score rows read
        tally.access(8 * seq, cfg.rows * heads * depth_r * seq, scores * per)  # probabilities written
        tally.access(8 * d, token[1], residuals / cfg.cols * per)               # x (ln1) for the residual
        tally.access(8 * d, seq * d, residuals / cfg.cols * per)                # attn_out (ffn_out)
        tally.add(9, residuals * per)                                           # the residual sums
        ops = (ops + _requant_element("double").done("MAC").scaled(residuals * per)
               + operations("softmax_lut" if cfg.softmax == "lut" else "shiftmax",
                            component.softmax.cfg).scaled(scores * per, "MAC"))
        buffers += 3 * seq * d + heads * seq * seq + cfg.rows * heads * depth_r * seq + 2 * seq * d
        if component.layer:
            tally.access(res_bits, _bytes(9 * seq * d), residuals / cfg.cols * per)   # residual written
            tally.access(9 * d, _bytes(9 * seq * d), 2 * seq * d * per)               # LayerNorms' reads
            tally.access(8 * d, token[1], seq * d * per)                              # ln1 written
            tally.access(8 * d_ff, seq * d_ff, seq * d_ff * per)                      # hidden read
            tally.access(8 * d_ff, cfg.rows * depth_r * d_ff, seq * d_ff * per)       # gelu_q written
            ops = (ops + operations("ilayernorm", component.ln1.cfg).scaled(seq * d * per, "MAC")
                   + operations("ilayernorm", component.ln2.cfg).scaled(seq * d * per, "MAC")
                   + operations("shiftgelu", component.gelu.cfg).scaled(seq * d_ff * per, "MAC")
                   + _requant_element("double").done("MAC").scaled(seq * d_ff * per))
            buffers += _bytes(9 * seq * d) + seq * d_ff + cfg.rows * depth_r * d_ff
    ops = ops + tally.done("MAC")
    note = (f"per useful MAC of a layer on max_seq = {seq} tokens ({total} MACs, phases "
            f"{', '.join(component.phases)}); operand reads a word per bank per array step, shared by its "
            "MACs; the row blocks' (softmax, LayerNorm, GELU) own counts shared out over the MACs")
    return dataclasses.replace(ops, table_bytes=component.table_bytes, buffer_bytes=buffers, note=note)


@_counts("xnor_popcount")
def xnor_popcount(cfg):
    """``hdl/xnor_popcount.py``: per channel and word, ``word_width`` XNORs (not counted), a popcount
    tree of ``word_width - 1`` adders, one accumulator add; per channel and vector one threshold
    comparison. Unit: one binary MAC (one bit of one channel's dot product)."""
    tally = _Tally()
    level, width = cfg.word_width, 1
    while level > 1:
        tally.add(width + 1, (level // 2) / cfg.word_width)
        level, width = level - level // 2, width + 1
    tally.add(cfg.count_width, 1 / cfg.word_width)                     # accumulator
    tally.add(cfg.count_width, 1 / (cfg.words * cfg.word_width))       # threshold
    return tally.done("binary MAC", note="XNORs not counted (one LUT input each)")


@_counts("lns_dot")
def lns_dot(cfg):
    """``hdl/lns_dot.py``: per product the exponent add and the shift's offset; per remainder and beat
    one increment adder tree over the lanes and one partial-sum add; per output (per ``max_k``
    products) ``gamma`` constant multiplies, their sum, a rounding add and two clamp comparisons."""
    tally = _Tally()
    gamma = cfg.gamma
    tally.add(cfg.exp_width + 1)                                       # e = exp_a + exp_b
    tally.add(cfg.exp_width + 1)                                       # (e >> b) + acc_frac_bits
    tally.add(cfg.q_max(0) + cfg.acc_frac_bits + 2)                    # Mux(sign, -magnitude, ...)
    for r in range(gamma):
        tally.add(cfg.inc_widths[r], (cfg.lanes - 1) / cfg.lanes)      # sum over the lanes' terms
        tally.add(cfg.acc_widths[r], 1 / cfg.lanes)                    # partial sum
    per_output = 1 / (cfg.lanes * cfg.max_k)
    for r, constant in enumerate(cfg.table):
        tally.mul(cfg.acc_widths[r], constant.bit_length(), per_output)
    tally.add(cfg.sum_width, (gamma - 1) * per_output)
    if cfg.out_shift > 0:
        tally.add(cfg.sum_width, per_output)
    tally.add(cfg.out_width, 2 * per_output)
    return tally.done("MAC", table_bytes=cfg.table_bytes,
                      note=f"per-output constant multiplies amortised over max_k = {cfg.max_k} beats")


@_counts("lut_gemv")
def lut_gemv(cfg):
    """``hdl/lut_gemv.py``. Unit: one table term (one row, plane and ``mu``-input group: a read and an
    add standing for ``mu`` binary MACs), the unit ``throughput`` counts. Per term: the table read, the
    conditional negation, the partial-sum add; per scale (a plane's group) the ``alpha`` multiply and
    the accumulator add, amortised over the group's ``group_size / mu`` terms; the table build (``2**(mu-1)``
    writes of one add each per activation group) amortised over the rows sharing it is not counted."""
    tally = _Tally()
    table = cfg.table_bytes
    tally.access(cfg.table_width, table)
    tally.add(cfg.table_width + 1)                                      # -read.data
    tally.add(cfg.partial_width)
    per_scale = cfg.mu / cfg.group_size
    tally.mul(cfg.alpha_width, cfg.partial_width, per_scale)
    tally.add(cfg.acc_width, per_scale)
    return tally.done("term", buffer_bytes=table,
                      note="table build (2**(mu-1) adds and writes per activation group) not counted")


# -- element-wise ------------------------------------------------------------------------------------------

@_counts("lut_unary")
def lut_unary(cfg):
    """``hdl/lut_unary.py``: one table read per element."""
    tally = _Tally()
    tally.read(cfg.out_width, cfg.table_bytes)
    return tally.done("element", table_bytes=cfg.table_bytes)


@_counts("pwl")
def pwl(cfg):
    """``hdl/pwl.py``: range reduction (reciprocal, rsqrt: ``in_width - 1 - position`` and the mantissa
    offset); ``entries - 1`` breakpoint comparisons; the (slope, intercept) read; one multiply-add; the
    rounding add and two clamp comparisons."""
    from ..golden.pwl import pwl_tables
    tables = pwl_tables(cfg)
    width, _ = cfg.table_code_shape
    tally = _Tally()
    if cfg.range_reduced:
        position_bits = (cfg.in_width - 1).bit_length()
        tally.add(position_bits)                                        # leading zeros
        if cfg.function != "reciprocal":
            tally.add(position_bits, 1)                                 # position + frac parity
            tally.add(cfg.in_width + 1)                                 # normalised - 2**top
    tally.add(width, cfg.entries - 1)
    tally.read(tables.slope_width + tables.intercept_width, tables.table_bytes)
    tally.mul(tables.slope_width, width)
    product = tables.slope_width + width + 1
    tally.add(product)                                                  # + intercept
    tally.add(product + 1)                                              # round half up
    tally.add(product + 1, 2)                                           # clamp
    return tally.done("element", table_bytes=tables.table_bytes)


@_counts("lns_mul")
def lns_mul(cfg):
    """``hdl/lns_mul.py``: the exponent add, the underflow and overflow comparisons (sign XOR free)."""
    tally = _Tally()
    tally.add(cfg.exp_width + 1, 3)
    return tally.done("element")


@_counts("lns_to_int")
def lns_to_int(cfg):
    """``hdl/lns_to_int.py``: the table read (or Mitchell's 1 + f, none), the shift amount and its two
    clamp comparisons, the rounding add, the saturation comparison, the sign's negation."""
    tally = _Tally()
    if cfg.method == "table":
        tally.read(cfg.table_bits, cfg.table_bytes)
    tally.add(max(cfg.exp_width, 8) + 2, 4)                 # q + offset, < low, > high, - low
    tally.add(cfg.table_bits + 1)                           # round half up (width of the kept bits)
    tally.add(cfg.out_width, 2)                             # saturation, negation
    return tally.done("element", table_bytes=cfg.table_bytes)


@_counts("lns_add")
def lns_add(cfg):
    """``hdl/lns_add.py``: the exponent comparison, the distance, the ROM address clamps, one ROM read,
    optionally the interpolation multiply-add, the rounding and exponent adds, the clamp and flush."""
    from ..golden.lns_add import lns_add_rom
    rom = lns_add_rom(cfg)
    e, k = cfg.exp_width, cfg.interp_bits
    tally = _Tally()
    tally.add(e, 3)                                          # exp_a >= exp_b, exp_a - exp_b, exp_b - exp_a
    # The ROM address (hdl/lns_add.py: _clamped has a comparator only for a reachable end).
    tally.add(e, (cfg.sb_end <= cfg.q_max) + (cfg.db_end <= cfg.q_max))
    tally.add(e, 3 if cfg.db_direct <= cfg.d_max else 1)     # d < db_direct, the two base offsets
    tally.read(rom.word_bits, cfg.table_bytes)
    value_bits = rom.point_bits + k + 1
    if k:
        tally.mul(rom.word_bits - rom.point_bits, k)
        tally.add(value_bits)
    if cfg.shift:
        tally.add(value_bits)                                # rounding
    tally.add(max(e, value_bits) + 2, 3)                     # big_exp + offset, > emax, < emin
    return tally.done("element", table_bytes=cfg.table_bytes)


@_counts("ant_decode")
def ant_decode(cfg):
    """``hdl/common/ant.py`` ``decode_code``: the int kind's negation and the PoT kind's ``body - 1``
    (flint is a priority decode, no adder)."""
    from ..golden.common.ant import BITS
    tally = _Tally()
    tally.add(BITS, 2)
    return tally.done("element")


@_counts("dfp_quant")
def dfp_quant(cfg):
    """``hdl/dfp_quant.py``. Unit: one input word (each tensor is streamed twice, so an element is two
    words). Scan pass: the running exponent maximum. Quantize pass: the distance, its clamps, the
    rounding add, the saturation, the sign's negation (the LFSR's steps are XORs)."""
    tally = _Tally()
    tally.add(cfg.exp_width, 1 / 2)                          # effective > running (scan pass)
    quantize = 1 / 2
    tally.add(cfg.exp_width + 2, 2 * quantize)               # shared - effective + base_shift
    tally.add(cfg.exp_width + 2, quantize)                   # distance > max_shift (< 0 is the sign)
    tally.add(cfg.man_width + 2 + cfg.rand_bits, quantize)   # + rounding
    tally.add(cfg.man_width + 2, quantize)                   # saturation
    tally.add(cfg.bits, quantize)                            # negation
    return tally.done("word", note="an element is two words (scan, then quantize)")


@_counts("octav_stats")
def octav_stats(cfg):
    """``hdl/octav_stats.py``: the magnitude's negation (signed inputs), the clip comparison, the sum add
    and one of the two count increments per element."""
    tally = _Tally()
    if cfg.in_signed:
        tally.add(cfg.in_width)
    tally.add(cfg.in_width)
    tally.add(cfg.sum_width)
    tally.add(cfg.count_width)
    return tally.done("element")


@_counts("early_exit")
def early_exit(cfg):
    """``hdl/early_exit.py``. Unit: one layer's logits (one beat). Two classes: the difference and its
    magnitude; more: a tree of ``classes - 1`` merges (three comparisons each) and the gap. Then the two
    threshold comparisons, the run's increment and its two comparisons with ``patience``."""
    tally = _Tally()
    if cfg.classes == 2:
        tally.add(cfg.logit_width + 1, 2)
    else:
        tally.add(cfg.logit_width, 3 * (cfg.classes - 1))
        tally.add(cfg.logit_width + 1)
    tally.add(cfg.logit_width + 1, 2)
    tally.add(cfg.run_width, 2)
    return tally.done("layer", note="run == patience is an equality test (not counted)")


# -- Winograd ----------------------------------------------------------------------------------------------

def _transform(tally, matrix, ranges, count=1):
    """Adds of ``R X R^T`` (``hdl/common/winograd.py``: columns then rows, each output ``sum c x`` with
    every set bit of ``|c|`` a term, ``terms - 1`` adds), on a square tile whose entries range over
    ``ranges``; returns the result's ranges. Widths follow each output's exact interval."""
    def stage(values):
        out = []
        for row in matrix:
            out_row = []
            for j in range(len(values[0])):
                low = sum(c * (values[k][j][0] if c > 0 else values[k][j][1]) for k, c in enumerate(row))
                high = sum(c * (values[k][j][1] if c > 0 else values[k][j][0]) for k, c in enumerate(row))
                terms = sum(bin(abs(c)).count("1") for c in row)
                tally.add(width_for(low, high), max(terms - 1, 0) * count)
                out_row.append((low, high))
            out.append(out_row)
        return out
    columns = stage(ranges)
    rows = stage([list(r) for r in zip(*columns)])
    return [list(r) for r in zip(*rows)]


@_counts("wino_input")
def wino_input(cfg):
    """``hdl/wino_input.py``: ``B^T d B`` by shifts and adds. Unit: one tile."""
    tally = _Tally()
    n = cfg.n
    _transform(tally, matrices(cfg.tile).BT, [[code_range(cfg.in_width, True)] * n] * n)
    return tally.done("tile")


@_counts("wino_output")
def wino_output(cfg):
    """``hdl/wino_output.py``: ``A^T M A`` by shifts and adds, and a rounding add per output. Unit: one
    tile."""
    tally = _Tally()
    n = cfg.n
    out = _transform(tally, matrices(cfg.tile).AT, [[code_range(cfg.in_width, True)] * n] * n)
    if cfg.shift:
        for row in out:
            for low, high in row:
                tally.add(width_for(low, high + (1 << (cfg.shift - 1))))
    return tally.done("tile")


@_counts("wino_conv")
def wino_conv(cfg):
    """``hdl/wino_conv.py``. Unit: one direct-convolution MAC (``throughput``'s unit: ``out_channels x
    tile**2 x 9`` per input beat). Per beat: ``B^T d B``, the weight ROM read, ``out_channels x n**2``
    tap multiplies and accumulator adds; per tile (``in_channels`` beats): the tap rounding adds,
    ``A^T . A`` per output channel and a requantization per output pixel."""
    from ..golden.wino_conv import winograd_layer
    layer = winograd_layer(cfg)
    n, lanes = cfg.n, cfg.out_channels
    tally = _Tally()
    taps = _transform(tally, matrices(cfg.tile).BT, [[code_range(cfg.in_width, True)] * n] * n)
    rom_bytes = _bytes(cfg.in_channels * lanes * n * n * cfg.weight_width)
    tally.read(lanes * n * n * cfg.weight_width, rom_bytes)
    for o in range(lanes):
        for i in range(n):
            for j in range(n):
                tally.mul(cfg.weight_width, width_for(*taps[i][j]))
                tally.add(_bits(int(layer.mac_bounds[o, i, j])) + 1)
    per_tile = _Tally()
    for o in range(lanes):
        bounds = []
        for i in range(n):
            row = []
            for j in range(n):
                bound = int(layer.shifted_bounds[o, i, j])
                per_tile.add(_bits(int(layer.mac_bounds[o, i, j])) + 1)
                row.append((-bound, bound))
            bounds.append(row)
        _transform(per_tile, matrices(cfg.tile).AT, bounds)
    beat_ops = tally.done("beat")
    tile_ops = per_tile.done("beat").scaled(1 / cfg.in_channels)
    requant_ops = requant(cfg.requant).scaled(lanes * cfg.tile ** 2 / cfg.in_channels)
    units = lanes * cfg.tile ** 2 * DIRECT_MULTS_PER_OUTPUT
    ops = (beat_ops + tile_ops + requant_ops).scaled(1 / units, unit="MAC")
    return dataclasses.replace(ops, table_bytes=rom_bytes, buffer_bytes=0,
                               note="direct-convolution MACs as the unit; per-tile work amortised over "
                                    "in_channels beats")


# -- rows --------------------------------------------------------------------------------------------------

def _row_engine(tally, n, in_width, banks):
    """``hdl/common/rows.py`` ``RowEngine``: per element the running maximum's comparison, one buffer
    write and two reads (reduce pass, output pass); returns the buffer's bytes."""
    buffer_bytes = _bytes((banks << (n - 1).bit_length()) * in_width)
    tally.add(in_width)
    tally.access(in_width, buffer_bytes, 3)
    return buffer_bytes


def _divider(tally, numerator_bits, divisor_bits, quotient_width, per):
    """``hdl/common/arith.py`` ``divide_stages`` (and ``split_divide_stages``, the same add in two
    halves): one addition (or subtraction) of ``divisor_bits + 2`` bits per quotient bit (non-restoring)."""
    tally.add(divisor_bits + 2, quotient_width * per)


def _dsp_pieces(width, signed):
    """Widths of the pieces ``hdl/common/arith.py`` ``product_stages`` cuts an operand of ``width`` bits
    into: itself within an 18-bit signed DSP port, else 17-bit slices."""
    if width <= 17 + signed:
        return [width]
    return [min(17, width - low) for low in range(0, width, 17)]


def _product(tally, a_width, b_width, per=1, a_signed=False, b_signed=False):
    """``product_stages``: a multiply per pair of pieces and the adds that sum them."""
    pieces = [(a, b) for a in _dsp_pieces(a_width, a_signed) for b in _dsp_pieces(b_width, b_signed)]
    for a, b in pieces:
        tally.mul(a, b, per)
    tally.add(a_width + b_width, (len(pieces) - 1) * per)


def _shift_exp(tally, d_width, x0, n):
    """``hdl/common/shift_exp.py`` ``shift_exp_stages``: ``d + d/2 - d/16``, the clamp and the ``n``
    comparisons that give ``q`` (on ``d``; the count is a tree of XORs, not adders), ``q x0`` by shifts
    and adds, ``t - q x0``, ``n - q``, the base."""
    t = max(d_width + 2, _bits(n * x0) + 1)
    tally.add(t, 2)
    tally.add(d_width, 1 + n)
    q = n.bit_length()
    tally.add(t, bin(-x0).count("1") - 1)
    tally.add(t)
    tally.add(q)
    tally.add(_bits(x0) + 1)


def _ibert_exp(tally, d_width, scale, n):
    """``hdl/common/shift_exp.py`` ``ibert_exp_stages``: the clamp, ``n`` comparisons and their count,
    ``q x0``, ``t - q x0``, ``n - q``, ``r + b``, ``r (r + b) + c``."""
    from ..golden.common.shift_exp import ibert_constants
    x0, b, c = ibert_constants(scale)
    t = max(d_width + 1, _bits(n * x0) + 1)
    r = _bits(x0) + 1
    tally.add(t, 1 + n)
    tally.add(n.bit_length(), max(n - 1, 0))
    q = n.bit_length()
    tally.mul(q, _bits(x0))
    tally.add(t)
    tally.add(q)
    rb = r + _bits(b)
    tally.add(rb)
    tally.mul(r, rb)
    tally.add(max((c + b * -x0).bit_length(), _bits(c)) + 2)
    return max((c + b * -x0).bit_length(), _bits(c)) + 2


@_counts("softmax_lut")
def softmax_lut(cfg):
    """``hdl/softmax_lut.py``, per element: the row engine, ``max - x`` and its clamp, the exp read, the
    row sum; per row the sum's clamp and the reciprocal (or log) read; per element again
    ``max - x``, and either the exp read, the product and its rounding and clamp, or the log-domain
    index, its clamp and the output read."""
    from ..hdl.softmax_lut import SoftmaxLut
    component = interface(SoftmaxLut, cfg)
    tables = {name: (len(entries), width) for name, (entries, width, _) in cfg.tables().items()}
    # A padded exp ROM (every in_width-bit d has an entry) needs no clamp of its index.
    clamp = 0 if component.exp_padded else 1
    if component.exp_padded:
        tables["exp"] = (1 << cfg.in_width, tables["exp"][1])

    def read(name, per=1):
        entries, width = tables[name]
        tally.read(width, _bytes(entries * width), per)
    tally = _Tally()
    buffer_bytes = _row_engine(tally, cfg.n, cfg.in_width, component.banks)
    tally.add(cfg.in_width, 1 + clamp)                       # max - x, clamp to the exp table
    read("exp")
    tally.add(cfg.sum_width)
    tally.add(cfg.sum_width, 1 / cfg.n)                      # sum < 2**p_min
    # output pass: max - x, and the exp index's clamp (recip) or the log-domain one's operand (log)
    tally.add(cfg.in_width, 1 + clamp if cfg.method == "recip" else 2)
    if cfg.method == "recip":
        read("recip", 1 / cfg.n)
        tally.add(8, 1 / cfg.n)                              # the row's shift: p + constant
        read("exp")
        exp_bits, recip_bits = tables["exp"][1], tables["recip"][1]
        tally.mul(exp_bits, recip_bits)
        tally.add(exp_bits + recip_bits, 2)                  # round half up, clamp
    else:
        read("log_mantissa", 1 / cfg.n)
        tally.add(cfg.in_width + 4, 2 / cfg.n)               # lp + lm, < 0
        tally.add(cfg.in_width + cfg.log_frac_bits + 4, 2)   # (d << f) + row log, clamp
        read("out")
    return tally.done("element", table_bytes=component.table_bytes, buffer_bytes=buffer_bytes)


@_counts("shiftmax")
def shiftmax(cfg):
    """``hdl/shiftmax.py``, per element: the row engine, ``x - max``, the exponential, the row sum; per
    row the non-restoring divider; per element again ``x - max``, the exponential, the product and the
    clamp."""
    from ..hdl.shiftmax import Shiftmax
    component = interface(Shiftmax, cfg)
    tally = _Tally()
    buffer_bytes = _row_engine(tally, cfg.n, cfg.in_width, component.banks)
    d_width = cfg.in_width + 1
    for _ in range(2):                                       # reduce pass, output pass
        tally.add(d_width)
        if cfg.variant == "ibert":
            _ibert_exp(tally, d_width, cfg.scale, cfg.shift)
        else:
            _shift_exp(tally, d_width, cfg.x0, cfg.shift)
    tally.add(cfg.sum_width)
    _divider(tally, cfg.numerator.bit_length(), cfg.sum_width, cfg.quotient_width, 1 / cfg.n)
    _product(tally, cfg.e_max.bit_length(), cfg.quotient_width)
    tally.add(cfg.e_max.bit_length() + cfg.quotient_width)
    return tally.done("element", buffer_bytes=buffer_bytes)


@_counts("log_softmax_int")
def log_softmax_int(cfg):
    """``hdl/log_softmax_int.py``, per element: the row engine, ``x - max``, I-BERT's exponential, the
    row sum; per element again ``x - max``, the exponential, ``2 S + e`` (``3 e`` a shift and an add),
    ``levels`` comparisons, their count and the code's clamp. No divider."""
    from ..hdl.log_softmax_int import LogSoftmaxInt
    component = interface(LogSoftmaxInt, cfg)
    tally = _Tally()
    buffer_bytes = _row_engine(tally, cfg.n, cfg.in_width, component.banks)
    d_width = cfg.in_width + 1
    for _ in range(2):
        tally.add(d_width)
        _ibert_exp(tally, d_width, cfg.scale, 30)
    tally.add(cfg.sum_width)
    width = cfg.compare_width + 1
    tally.add(width)                                         # 2 S + e (2 S a shift)
    tally.mul(width, 2)                                      # 3 e, a constant factor
    tally.add(width, cfg.levels)
    tally.add(cfg.levels.bit_length(), max(cfg.levels - 1, 0) + 1)
    return tally.done("element", buffer_bytes=buffer_bytes)


@_counts("shiftgelu")
def shiftgelu(cfg):
    """``hdl/shiftgelu.py``. I-ViT: ``1.702 x`` by shifts and adds (``"shift"``), ``y > 0`` and ``-y``, two
    shift exponentials, their sum, the non-restoring divider, ``e1 * factor`` and ``x * sigmoid``. I-BERT:
    the magnitude, the clip, ``t = clipped + b``, ``t * t``, ``+ c``, the sign, ``+ h`` and ``x * ...``."""
    tally = _Tally()
    if cfg.method == "ibert":
        from ..golden.shiftgelu import ibert_gelu_constants
        b, c, k, h, _ = ibert_gelu_constants(cfg)
        t = _bits(b) + 1
        tally.add(cfg.in_width, 3)                           # -x, x > 0, the clip (x < 0 is the sign)
        tally.add(t)
        tally.mul(t, t)
        poly = max(2 * t, _bits(c)) + 2
        tally.add(poly, 2)                                   # + c and -c - square
        shifted = poly + _bits(h) + 1
        tally.add(shifted)                                   # + h
        tally.mul(cfg.in_width, shifted)
        tally.add(cfg.in_width + shifted)                    # -(x * ...)
        return tally.done("element")
    y = cfg.in_width + 2
    if cfg.factor == "shift":
        tally.add(y, 3)
    tally.add(y + 1, 2)                                      # y > 0, -y
    for _ in range(2):
        _shift_exp(tally, y + 1, cfg.x0, cfg.exp_shift)
    e = (-cfg.x0 << cfg.exp_shift).bit_length()
    tally.add(e + 1)
    _divider(tally, 31, e + 1, cfg.quotient_width, 1)
    tally.mul(e, cfg.quotient_width)
    tally.mul(cfg.in_width, cfg.sig_width)
    return tally.done("element")


@_counts("attn_v")
def attn_v(cfg):
    """``hdl/attn_v.py``: per term a shift of ``v`` by the code (``levels - 1 - code`` in exact mode) and
    the accumulator add. Unit: one (probability code, v) term."""
    tally = _Tally()
    if cfg.rounding != "floor":
        tally.add(cfg.bits)
    tally.add(cfg.out_width)
    return tally.done("element", note="the shift is a barrel shifter (not counted)")


@_counts("ilayernorm")
def ilayernorm(cfg):
    """``hdl/ilayernorm.py``, per element: the row engine, the PTF read, ``xp * xp``, the two row sums;
    per row (``channels`` elements) the mean by a constant division, its rounding, ``mu S1`` and
    ``mu**2``, the variance, the square root and the divider; per element again the PTF and parameter
    reads, ``xp - mean``, the product with the factor and a requantization."""
    from ..hdl.ilayernorm import ILayerNorm
    component = interface(ILayerNorm, cfg)
    C = cfg.channels
    tally = _Tally()
    buffer_bytes = _row_engine(tally, C, cfg.in_width, component.banks)
    xp = cfg.in_width + 3
    ptf_bytes, param_bytes = _bytes(2 * C), _bytes(70 * C)
    tally.read(2, ptf_bytes, 2)
    _product(tally, xp, xp, a_signed=True, b_signed=True)
    tally.add(cfg.s1_width)
    tally.add(cfg.var_width + 1)
    per_row = 1 / C
    low, high = -C * cfg.x_max, C * cfg.x_max
    offset = -(low // C) + 1
    top = high + offset * C
    k = top.bit_length() + C.bit_length()
    tally.mul(cfg.s1_width, (-(-(1 << k) // C)).bit_length(), per_row)
    tally.add(top.bit_length() + (-(-(1 << k) // C)).bit_length(), per_row)   # + the folded offsets
    tally.add(C.bit_length() + 2, (bin(C).count("1") - 1) * per_row)         # quotient * C, low bits
    tally.add(C.bit_length() + 2, 2 * per_row)                # remainder, 2 r > C
    tally.add(cfg.s1_width, per_row)                          # q + up
    _product(tally, cfg.s1_width, cfg.s1_width, 2 * per_row, True, True)   # mu S1, mu**2
    _product(tally, C.bit_length(), 2 * cfg.s1_width, per_row)   # C mu**2
    tally.add(cfg.var_width, 2 * per_row)
    bits = cfg.var_width + (cfg.var_width & 1)
    tally.add(bits // 2 + 2, 2 * (bits // 2) * per_row)       # isqrt: compare, subtract per root bit
    _divider(tally, 31, cfg.root_width, cfg.quotient_width, per_row)
    tally.read(70, param_bytes)
    tally.add(cfg.s1_width + 1)                               # xp - mean
    _product(tally, cfg.s1_width + 1, cfg.quotient_width, a_signed=True)
    ops = tally.done("element", table_bytes=ptf_bytes + param_bytes, buffer_bytes=buffer_bytes)
    # hdl/ilayernorm.py's requantizer: RequantConfig's default (double) rounding.
    return ops + _requant_element("double").done("element")
