"""Direct lookup-table unit: one ROM read per element.

Computes :func:`qarith.golden.lut_unary.lut_unary`. The ROM's contents are
:func:`qarith.golden.lut_unary.lut_table`, so the Verilog and the golden model share one table. The read
port is synchronous (block RAM on iCE40 and ECP5 when the table is large enough); latency 1 cycle, one
element per cycle, and the read stalls with the output so backpressure loses nothing.
"""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.lut_unary import LutUnaryConfig, lut_table
from .common.component import BlockComponent

__all__ = ["LutUnary"]


class LutUnary(BlockComponent):
    """Streaming ``f(x)`` by table lookup.

    Parameters
    ----------
    cfg : LutUnaryConfig

    Members
    -------
    i : In(stream.Signature(in_shape))
    o : Out(stream.Signature(out_shape))
    """

    config_class = LutUnaryConfig

    latency = 1
    throughput = 1  # elements per cycle
    sim_sources = []

    def __init__(self, cfg):
        self.cfg = cfg
        in_shape = signed(cfg.in_width) if cfg.in_signed else unsigned(cfg.in_width)
        out_shape = signed(cfg.out_width) if cfg.out_signed else unsigned(cfg.out_width)
        super().__init__({
            "i": In(stream.Signature(in_shape)),
            "o": Out(stream.Signature(out_shape)),
        })

    @property
    def table_bytes(self):
        return self.cfg.table_bytes

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.table = table = Memory(shape=self.o.payload.shape(), depth=cfg.depth,
                                            init=lut_table(cfg).tolist())
        read = table.read_port()
        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
            read.en.eq(advance),
            read.addr.eq(self.i.payload.as_unsigned()),
            self.o.payload.eq(read.data),
        ]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        return m
