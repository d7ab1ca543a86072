"""A pin-count wrapper for place-and-route of blocks with more I/O than a package has.

Every input bit of the block comes from a ring of flip-flops in which each bit becomes the XOR of its
two neighbours (cellular rule 90) and bit 0 also takes the ``seed`` pin, so no input is constant and no
register of the block can be merged into a shift register that mirrors it (a plain LFSR would allow
that). Every output bit goes through a registered XOR tree, four bits per LUT per level, to the one
``out`` pin. The block is instantiated by module name, so the wrapper alone can be synthesized with the
block as a black box to measure the wrapper's own cost.
"""

from amaranth.hdl import Cat, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal

__all__ = ["PinWrapper"]


class PinWrapper(Elaboratable):
    """Wraps Verilog module ``module_name`` whose ports are ``ports`` (from the manifest).

    Ports of the wrapper: ``clk``, ``rst``, ``seed`` (inputs) and ``out`` (output).
    """

    def __init__(self, module_name, ports):
        self.module_name = module_name
        self.ports = [p for p in ports if p["name"] not in ("clk", "rst")]
        self.seed = Signal()
        self.out = Signal()

    @property
    def input_bits(self):
        return sum(p["width"] for p in self.ports if p["direction"] == "input")

    @property
    def output_bits(self):
        return sum(p["width"] for p in self.ports if p["direction"] == "output")

    def elaborate(self, platform):
        m = Module()
        ring = Signal(max(self.input_bits, 2))
        width = len(ring)
        m.d.sync += ring.eq(Cat(
            ring[(j - 1) % width] ^ ring[(j + 1) % width] ^ (self.seed if j == 0 else 0)
            for j in range(width)))

        connections = {"i_clk": ClockSignal("sync"), "i_rst": ResetSignal("sync")}
        outputs, offset = [], 0
        for port in self.ports:
            if port["direction"] == "input":
                connections[f"i_{port['name']}"] = ring[offset:offset + port["width"]]
                offset += port["width"]
            else:
                signal = Signal(port["width"], name=f"dut_{port['name']}")
                connections[f"o_{port['name']}"] = signal
                outputs.append(signal)
        m.submodules.dut = Instance(self.module_name, **connections)

        level = Cat(*outputs)
        while len(level) > 1:
            reduced = Signal((len(level) + 3) // 4)
            m.d.sync += reduced.eq(Cat(level[n:n + 4].xor() for n in range(0, len(level), 4)))
            level = reduced
        m.d.sync += self.out.eq(level)
        return m
