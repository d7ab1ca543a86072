"""The formal proofs of every block: which harness of :mod:`qarith.sim.common.formal` runs on which
configuration, how deep, with which mutant, and the equivalence specs.

:func:`block_proofs` lists a block's proofs from its name, generator class and configuration (the caller
passes them: this module never reads the registry). Every configuration gets

* ``stream rules``: :class:`~qarith.sim.common.formal.StreamRules` by k-induction (an unbounded proof;
  the output registers hold under backpressure, so a short ``k`` suffices);
* ``stream order``: :class:`~qarith.sim.common.formal.StreamOrder`, bounded to 8 cycles past the first
  cycle an output can appear: the latency for most blocks, plus the rest of a group of input beats for
  blocks that need one first (a row, a vector of terms: :data:`GROUP`). ``drain`` is the latency + 1
  unless the block buffers more (:data:`DRAIN`).

Row blocks (rows of ``n = 64`` elements, latencies of 83 to 136 cycles, so a first output after 146 to
199 cycles) are out of reach for the two-copy order proof on their default configuration: a small
configuration of the same block (:data:`SMALL`, rows of 4) gets the order proof, and the default keeps
its unbounded stream-rules proof. The equivalence proofs (:func:`equivalence_proofs`) compare the
block's output with a combinational spec written here from the model's definition, on the default
configuration except ``mac_array``, whose spec is one 8-bit processing element (a 1 x 1 array).

Each proof names its mutant (a key of :data:`~qarith.sim.common.formal.FAULTS`); the tests and
``make formal`` check that the proof fails on it.
"""

from amaranth.hdl import Array, Cat, Fragment, Mux, signed

from ...golden.common.winograd import matrices
from ...golden.ilayernorm import ILayerNormConfig
from ...golden.log_softmax_int import LogSoftmaxIntConfig
from ...golden.lut_unary import lut_table
from ...golden.mac_array import MacArrayConfig
from ...golden.shiftmax import ShiftmaxConfig
from ...golden.softmax_lut import SoftmaxLutConfig
from .formal import BeatSpec, Equivalence, Proof, StreamOrder, StreamRules

__all__ = ["block_proofs", "stream_proofs", "equivalence_proofs", "latency_of", "reach", "drain_of", "NARROW", "NARROWED", "GROUP", "DRAIN",
           "SMALL", "FAST"]

#: Cycles of k-induction for the stream rules.
RULES_K = 4
#: Bounded proofs go this many cycles past the block's latency.
MARGIN = 8

#: Small configurations of the row blocks, whose order proof stands in for the default's.
SMALL = {
    "softmax_lut": ("n4_recip", SoftmaxLutConfig(n=4)),
    "shiftmax": ("n4_pytorch", ShiftmaxConfig(n=4)),
    "ilayernorm": ("c4", ILayerNormConfig(channels=4)),
    "log_softmax_int": ("n4_b4", LogSoftmaxIntConfig(n=4)),
}

#: Blocks whose output needs a group of input beats first (a row, a vector of terms, the input channels
#: of a tile): the group's length in beats.
GROUP = {
    "softmax_lut": lambda cfg: cfg.n,
    "shiftmax": lambda cfg: cfg.n,
    "log_softmax_int": lambda cfg: cfg.n,
    "attn_v": lambda cfg: cfg.n,
    "ilayernorm": lambda cfg: cfg.channels,
    "wino_conv": lambda cfg: cfg.in_channels,
    "xnor_popcount": lambda cfg: cfg.words,
}

#: Drain cycles beyond the latency + 1, for blocks that buffer more than their pipeline: a function of
#: the (elaborated) block.
DRAIN = {
    "mac_array": lambda block: block.fifo_depth,
    "linear_int8": lambda block: block.mac.fifo_depth,
    "ant_mac": lambda block: block.fifo_depth,
}

#: Blocks whose ``stream order`` proof narrows the data (:func:`~qarith.sim.common.formal.narrow`): two
#: free bits per input field, and the named static ports or fields held at a value that keeps outputs
#: distinct (a Q31 multiplier of 1/2, no shift, the full int8 range). With every bit free the solver
#: did not finish ``mac_array``'s 16 multipliers on both copies in 15 minutes; the stall logic these
#: proofs are about never looks at the data.
NARROW = {"mac_array", "requant", "linear_int8", "pwl", "shiftgelu", "lns_dot", "lns_add", "wino_conv",
          "attn_v", "softmax_lut", "shiftmax", "ilayernorm", "log_softmax_int"}
NARROWED = (2, {"multiplier": 1 << 30, "shift": 0, "output_offset": 0, "act_min": -128, "act_max": 127})

#: ``(block, property)`` pairs that run in the normal test run (a few seconds each).
FAST = {
    ("lns_mul", "stream rules"), ("lns_mul", "stream order"), ("lut_unary", "equivalence"),
    ("requant", "stream rules"),
}


def _instance(generator, cfg):
    """A block instance for its derived properties, elaborated (so Amaranth never warns about it)."""
    block = generator(cfg)
    Fragment.get(block, None)
    return block


def latency_of(generator, cfg):
    """The block's ``latency``."""
    return _instance(generator, cfg).latency


def reach(name, generator, cfg):
    """``(latency, first)``: the block's latency and the first cycle its first output can be valid
    (the latency plus the beats of a group after the first)."""
    latency = latency_of(generator, cfg)
    return latency, latency + GROUP.get(name, lambda cfg: 1)(cfg) - 1


def drain_of(name, generator, cfg):
    """Cycles of idle input and ready output after which every beat must have left."""
    block = _instance(generator, cfg)
    return block.latency + 1 + DRAIN.get(name, lambda block: 0)(block)


def stream_proofs(name, generator, config_name, cfg, *, order=True, note=""):
    """``stream rules`` (k-induction) and, with ``order``, ``stream order`` (bounded to 8 cycles past
    the first output) for one configuration."""
    latency, first = reach(name, generator, cfg)
    depth = first + MARGIN
    drain = drain_of(name, generator, cfg)
    proofs = [Proof(name, config_name, "stream rules",
                    lambda fault: StreamRules(generator, cfg, fault=fault),
                    "prove", RULES_K, "ignore_ready", first + 4, latency, first, note,
                    fast=(name, "stream rules") in FAST)]
    if order:
        narrowed = NARROWED if name in NARROW else None
        order_note = "; ".join(filter(None, [note, narrowed and "inputs narrowed to 2 free bits per field"]))
        proofs.append(Proof(name, config_name, "stream order",
                            lambda fault: StreamOrder(generator, cfg, depth=depth, drain=drain,
                                                      narrowed=narrowed, fault=fault),
                            "bmc", depth, "ignore_ready", depth, latency, first, order_note,
                            fast=(name, "stream order") in FAST))
    return proofs


def _row_default_rules(name, generator, config_name, cfg):
    """A row block's default-config stream rules: proved on ``cfg``, its mutant checked on the small
    configuration (the default's first output is beyond the reach of BMC in reasonable time)."""
    latency, first = reach(name, generator, cfg)
    small_name, small_cfg = SMALL[name]
    _, small_first = reach(name, generator, small_cfg)
    return Proof(name, config_name, "stream rules",
                 lambda fault: StreamRules(generator, cfg if fault is None else small_cfg, fault=fault),
                 "prove", RULES_K, "ignore_ready", small_first + 4, latency, small_first,
                 f"first output at cycle {first}: mutant checked on `{small_name}`",
                 fast=(name, "stream rules") in FAST)


def block_proofs(name, generator, config_name, cfg, *, default=True):
    """Every proof of block ``name`` for configuration ``cfg``; with ``default`` (``cfg`` is the
    block's first named configuration) also the block's equivalence proofs, and for a row block the
    stream proofs of its small configuration in place of the default's order proof."""
    if default and name in SMALL:
        small_name, small_cfg = SMALL[name]
        proofs = [_row_default_rules(name, generator, config_name, cfg)]
        proofs += stream_proofs(name, generator, small_name, small_cfg, note="small config of a row block")
    else:
        proofs = stream_proofs(name, generator, config_name, cfg)
    if default:
        proofs += equivalence_proofs(name, generator, config_name, cfg)
    return proofs


def _lns_mul_spec(cfg):
    """LNS product from the word format's definition (``qarith.golden.lns``): zero if an operand is the
    zero code, else the exponent sum, saturated above ``emax``, flushed to zero below ``emin``; signs
    XOR."""
    def lane(a, b):
        exp_a, exp_b = a[:cfg.exp_width].as_signed(), b[:cfg.exp_width].as_signed()
        total = exp_a + exp_b
        zero = (exp_a == cfg.zero_exp) | (exp_b == cfg.zero_exp) | (total < cfg.emin)
        exp = Mux(total > cfg.emax, cfg.emax, total)
        return Mux(zero, cfg.zero_word, Cat(exp[:cfg.exp_width], a[-1] ^ b[-1]))

    return BeatSpec(lambda beat, statics: Cat(*(lane(beat.a[k], beat.b[k]) for k in range(cfg.lanes))))


def _lut_unary_spec(cfg):
    """The golden model's table, read at the input code's bits."""
    table = Array(lut_table(cfg).tolist())
    return BeatSpec(lambda code, statics: table[code.as_unsigned()])


def _transform_spec(rows, width, shift=0):
    """``round_shift((R X) R^T, shift)`` as two matrix products with ``*`` for every coefficient (the
    hardware uses shifts and adds), each pixel cut to ``width`` bits. The products keep the matrix
    order: Yices proves this form in seconds, but not the fully expanded ``sum_kl R_ik R_jl X_kl`` (no
    answer in 60 s at depth 4, although the two differ only in how the sum associates)."""
    size = len(rows[0])

    def expect(tile, statics):
        left = [[sum(rows[i][k] * tile[k][j] for k in range(size) if rows[i][k]) for j in range(size)]
                for i in range(len(rows))]
        pixels = []
        for i in range(len(rows)):
            for j in range(len(rows)):
                total = sum(left[i][k] * rows[j][k] for k in range(size) if rows[j][k])
                if shift:
                    total = (total + (1 << (shift - 1))) >> shift
                pixels.append(total[:width])
        return Cat(*pixels)

    return BeatSpec(expect)


class _TileSpec:
    """A one-PE ``mac_array`` (1 x 1): a tile's single output row is the sum of ``a * b`` over the
    tile's steps, ``last`` set; the spec sums at a width the bounded tiles cannot overflow."""

    def __init__(self, cfg):
        self.cfg = cfg

    def state_shape(self, block):
        return signed(self.cfg.acc_bits + 8)

    def step(self, state, step, statics):
        return state + step.a[0] * step.b[0]

    def ends(self, step):
        return step.last

    def expect(self, state, statics):
        return Cat(state[:self.cfg.acc_bits], 1)


def equivalence_proofs(name, generator, config_name, cfg):
    """The equivalence proofs of block ``name`` (an empty list for blocks without one). Only
    ``lut_unary`` is proved under backpressure; the wider datapaths are proved with ``ready`` held
    high, which ``stream order`` extends to any backpressure (see
    :class:`~qarith.sim.common.formal.Equivalence`)."""
    backpressure = False
    if name == "lns_mul":
        spec = _lns_mul_spec(cfg)
    elif name == "lut_unary":
        spec, backpressure = _lut_unary_spec(cfg), True
    elif name == "wino_input":
        spec = _transform_spec(matrices(cfg.tile).BT, cfg.out_width)
    elif name == "wino_output":
        spec = _transform_spec(matrices(cfg.tile).AT, cfg.out_width, cfg.shift)
    elif name == "mac_array":
        # One 8-bit PE; max_k covers every tile a bounded proof can hold.
        config_name, cfg = "pe_int8", MacArrayConfig(rows=1, cols=1, max_k=32)
        spec = _TileSpec(cfg)
    else:
        return []
    latency = latency_of(generator, cfg)
    depth = latency + MARGIN
    note = "" if backpressure else "output always ready; stream order covers stalls"
    return [Proof(name, config_name, "equivalence",
                  lambda fault: Equivalence(generator, cfg, spec, depth=depth, backpressure=backpressure,
                                            fault=fault),
                  "bmc", depth, "flip_bit", depth, latency, latency, note, fast=(name, "equivalence") in FAST)]
