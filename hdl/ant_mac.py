"""Systolic MAC array with ANT weights: decode at the array's edge, multiply by the mantissa, shift.

Computes :func:`qarith.golden.ant_mac.ant_mac_tiles`. Input: one beat per reduction step ``k``: ``a``
(column ``k`` of the activations, ``rows`` integers), ``b`` (row ``k`` of the weights, ``cols`` 4-bit
ANT codes), ``kind`` (the weights' kind at this step: 0 int, 1 PoT, 2 flint; the signedness is the
config's ``b_signed``) and ``last``. Output: as :class:`~qarith.hdl.mac_array.MacArray`'s, one row of
``cols`` exact accumulators per beat.

Structure. ``cols`` decoders (:func:`~qarith.hdl.common.ant.decode_code`) sit in front of the array, one
per weight column (Guo et al., "ANT", MICRO 2022, pair a decoder with an integer PE; placing them at
the edge, shared by a column, is the choice made here: one decoder per column instead of per PE, at the
price of 9 bits per hop instead of 4). The decoded (sign, mantissa, shift)
travels down the columns in place of the code, and every PE computes ``(+-a * mantissa) << shift``: a
conditional negation, an ``(a_width + 1) x 4`` multiplier and a shifter of at most 6 (signed types) or 14
(unsigned types) places, feeding the accumulator. Everything else (skew, step-flag delay line, drain,
deskew, output FIFO with credits) is :class:`~qarith.hdl.mac_array.MacArray`'s, reused by subclassing:
latency and throughput are the same as a ``mac_array`` of the same shape and registers.
"""

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.ant_mac import AntMacConfig
from ..golden.common.ant import BITS
from .common.ant import DECODED_LAYOUT, TYPE_LAYOUT, decode_code
from .common.component import BlockComponent
from .mac_array import MacArray

__all__ = ["AntMac"]


def _shape(width, is_signed):
    return signed(width) if is_signed else unsigned(width)


class _DecodedArray(MacArray):
    """:class:`MacArray` whose ``b`` operands are decoded ANT fields and whose PEs shift."""

    config_class = AntMacConfig

    def __init__(self, cfg):
        self.cfg = cfg
        self.a_shape = _shape(cfg.a_width, cfg.a_signed)
        self.acc_shape = _shape(cfg.acc_bits, cfg.acc_signed)
        wiring.Component.__init__(self, {
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(self.a_shape, cfg.rows),
                "b": data.ArrayLayout(DECODED_LAYOUT, cfg.cols),
                "last": 1,
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "acc": data.ArrayLayout(self.acc_shape, cfg.cols),
                "last": 1,
            }))),
        })

    @property
    def product_shape(self):
        return _shape(self.cfg.product_width, self.cfg.acc_signed)

    def pe_product(self, a, b):
        # The sign is applied to the activation (one multiplier per PE), and the shifter needs only the
        # bits of the config's largest shift.
        operand = Mux(b.sign, -a, a) if self.cfg.b_signed else a
        return (operand * b.mantissa) << b.shift[:self.cfg.max_shift.bit_length()]


class AntMac(BlockComponent):
    """Systolic ``rows x cols`` MAC array with ANT weight codes, streaming input and output.

    Parameters
    ----------
    cfg : AntMacConfig

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(a, rows), "b": ArrayLayout(4, cols), "kind": 2, "last": 1})))
    o : Out(stream.Signature(StructLayout({"acc": ArrayLayout(acc, cols), "last": 1})))
    """

    config_class = AntMacConfig
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        self.array = _DecodedArray(cfg)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(self.array.a_shape, cfg.rows),
                "b": data.ArrayLayout(unsigned(BITS), cfg.cols),
                "kind": TYPE_LAYOUT["kind"].shape,
                "last": 1,
            }))),
            "o": self.array.signature.members["o"],
        })

    @property
    def latency(self):
        """Cycles from accepting a tile's last step to its first output row being valid."""
        return self.array.latency

    @property
    def fifo_depth(self):
        return self.array.fifo_depth

    @property
    def throughput(self):
        """Peak MACs per cycle."""
        return self.cfg.macs

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self.array
        wiring.connect(m, array.o, wiring.flipped(self.o))
        m.d.comb += [
            array.i.valid.eq(self.i.valid),
            self.i.ready.eq(array.i.ready),
            array.i.payload.a.eq(self.i.payload.a),
            array.i.payload.last.eq(self.i.payload.last),
        ]
        for c in range(self.cfg.cols):
            fields = decode_code(m, self.i.payload.kind, self.cfg.b_signed, self.i.payload.b[c], f"decoded{c}")
            m.d.comb += array.i.payload.b[c].eq(fields)
        return m
