"""ANT decoder: ``lanes`` 4-bit codes per beat -> (sign, mantissa, shift).

Computes :func:`qarith.golden.ant_decode.ant_decode`: the beat's type (``kind``: int, PoT or flint;
``signed``) applies to all its lanes, and each lane's code becomes the fields of
:data:`~qarith.hdl.common.ant.DECODED_LAYOUT` (:func:`~qarith.hdl.common.ant.decode_code`, a few gates
per lane). Source: Guo et al., "ANT" (MICRO 2022), the processing element's decoder. One register stage: latency 1 cycle, one
beat per cycle; the register holds while ``o.ready`` is low.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..golden.ant_decode import AntDecodeConfig
from ..golden.common.ant import BITS
from .common.ant import DECODED_LAYOUT, TYPE_LAYOUT, decode_code
from .common.component import BlockComponent

__all__ = ["AntDecode"]


class AntDecode(BlockComponent):
    """Streaming ANT decoder.

    Parameters
    ----------
    cfg : AntDecodeConfig

    Members
    -------
    i : In(stream.Signature(StructLayout({"codes": ArrayLayout(4, lanes), "type": TYPE_LAYOUT})))
    o : Out(stream.Signature(ArrayLayout(DECODED_LAYOUT, lanes)))
    """

    config_class = AntDecodeConfig

    latency = 1
    throughput = 1  # beats per cycle
    sim_sources = []
    table_bytes = 0

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "codes": data.ArrayLayout(unsigned(BITS), cfg.lanes),
                "type": TYPE_LAYOUT,
            }))),
            "o": Out(stream.Signature(data.ArrayLayout(DECODED_LAYOUT, cfg.lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        kind, is_signed = self.i.payload.type.kind, self.i.payload.type.signed
        for lane in range(self.cfg.lanes):
            fields = decode_code(m, kind, is_signed, self.i.payload.codes[lane], f"decoded{lane}")
            with m.If(advance):
                m.d.sync += self.o.payload[lane].eq(fields)
        return m
