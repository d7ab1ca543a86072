"""Lattice ECP5 primitives that synthesis does not infer with the registers qarith needs.

Behaviour from Lattice TN1267 ("ECP5 and ECP5-5G sysDSP Usage Guide"): a MULT18X18D multiplies two
18-bit operands (signed or unsigned per the ``SIGNEDA``/``SIGNEDB`` pins) into a 36-bit product, with
optional input registers on A and B, a pipeline register and an output register, each selectable onto
one of four clock/enable/reset sets. Yosys maps ``a * b`` onto the multiplier alone and leaves those
registers unused, so a registered product costs a trip from the DSP to fabric flip-flops and back.
Simulation uses qarith's behavioural model (``sim_sources`` spec ``"qarith:MULT18X18D"``).
"""

from amaranth.hdl import ClockSignal, Instance, Signal

__all__ = ["MULT18X18D_MODEL", "mult18x18d"]

#: ``sim_sources`` entry for :func:`mult18x18d`'s simulation model.
MULT18X18D_MODEL = "qarith:MULT18X18D"


def mult18x18d(m, name, a, b, product, *, signed=(True, True), ce=1, pipeline=False):
    """Add a MULT18X18D named ``name`` to ``m``: ``product`` (combinationally driven from the output
    register) is ``a * b`` two cycles after ``a`` and ``b`` (three with ``pipeline``), every register on
    the domain's clock and enabled by ``ce``. ``a`` and ``b`` are at most 18 bits, extended as
    ``signed`` says; the cascade inputs stay unconnected, as nextpnr requires."""
    a18, b18, p36 = Signal(18, name=f"{name}_a"), Signal(18, name=f"{name}_b"), Signal(36, name=f"{name}_p")
    m.d.comb += [a18.eq(a), b18.eq(b), product.eq(p36[:len(product)])]
    ports = {f"i_A{n}": a18[n] for n in range(18)}
    ports.update({f"i_B{n}": b18[n] for n in range(18)})
    ports.update({f"o_P{n}": p36[n] for n in range(36)})
    registers = {"p_REG_PIPELINE_CLK": "CLK0"} if pipeline else {}
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0", **registers,
        p_GSR="DISABLED", p_RESETMODE="SYNC",
        i_SIGNEDA=int(signed[0]), i_SIGNEDB=int(signed[1]), i_SOURCEA=0, i_SOURCEB=0,
        i_CLK0=ClockSignal(), i_CLK1=0, i_CLK2=0, i_CLK3=0,
        i_CE0=ce, i_CE1=0, i_CE2=0, i_CE3=0, i_RST0=0, i_RST1=0, i_RST2=0, i_RST3=0,
        **ports)
