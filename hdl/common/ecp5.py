"""Lattice ECP5 primitives that synthesis does not infer with the registers qarith needs.

Behaviour from Lattice TN1267 ("ECP5 and ECP5-5G sysDSP Usage Guide"): a MULT18X18D multiplies two
18-bit operands (signed or unsigned per the ``SIGNEDA``/``SIGNEDB`` pins) into a 36-bit product, with
optional input registers on A and B, a pipeline register and an output register, each selectable onto
one of four clock/enable/reset sets. Yosys maps ``a * b`` onto the multiplier alone and leaves those
registers unused, so a registered product costs a trip from the DSP to fabric flip-flops and back.
Simulation uses qarith's behavioural model (``sim_sources`` spec ``"qarith:MULT18X18D"``).

Behaviour from Lattice TN1264 ("ECP5 and ECP5-5G Memory Usage Guide", the DP16KD sections): a DP16KD is
an 18-kbit true dual-port block RAM whose ports are each 16384 x 1, 8192 x 2, 4096 x 4, 2048 x 9 or
1024 x 18 (``DATA_WIDTH_A``/``_B``). A read latches the word at the clock edge the port's ``CE`` is
high; with ``REGMODE="OUTREG"`` an output register (enabled by ``OCE``) follows the latch, so the word
leaves from a register one cycle later. Yosys's DP16KD mapping always sets ``REGMODE="NOREG"``, so a
fabric register behind the RAM is timed from the latch's slow clock-to-output; :func:`dp16kd_rom`
instantiates the primitive with its output register. The contents are the 64 ``INITVAL_xx``
parameters, encoded as Yosys's own mapping (``techlibs/lattice/brams_map_16kd.v``) encodes them
(:func:`dp16kd_initvals`). Simulation uses ``"qarith:DP16KD"``.

:func:`dp16kd_ram` is the same primitive as a simple dual-port RAM: port A writes (``WEA``, with
``WRITEMODE_A="NORMAL"``: port A's unused output does not change on a write; at 18 bits ``ADA1``/``ADA0``
are the byte enables, both high), port B reads through its output register as the ROM does. A word
written at one clock edge is read by port B at any later edge; a port B read of a word that port A
writes at the same edge is an address collision, whose data TN1264 leaves undefined (the model reads
X), so the RAM's users must never read a word in the cycle it is written.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Signal

__all__ = ["MULT18X18D_MODEL", "mult18x18d", "DP16KD_MODEL", "DP16KD_DEPTHS", "DP16KD_WIDTHS", "dp16kd_width",
           "dp16kd_initvals", "dp16kd_rom", "dp16kd_ram"]

#: ``sim_sources`` entry for :func:`mult18x18d`'s simulation model.
MULT18X18D_MODEL = "qarith:MULT18X18D"

#: ``sim_sources`` entry for :func:`dp16kd_rom`'s and :func:`dp16kd_ram`'s simulation model.
DP16KD_MODEL = "qarith:DP16KD"

#: A DP16KD port's data widths and the words it then holds.
DP16KD_DEPTHS = {1: 16384, 2: 8192, 4: 4096, 9: 2048, 18: 1024}
DP16KD_WIDTHS = tuple(DP16KD_DEPTHS)

# The address bits below a port's word address (at 18 bits, ADx[3:0]: byte enables and unused bits).
_ADDRESS_SHIFT = {1: 0, 2: 1, 4: 2, 9: 3, 18: 4}


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


def dp16kd_width(depth):
    """The widest DP16KD port width whose words cover ``depth`` entries (1 .. 16384)."""
    if not 1 <= depth <= 16384:
        raise ValueError(f"DP16KD depth must be between 1 and 16384, not {depth}")
    return max(width for width, words in DP16KD_DEPTHS.items() if words >= depth)


def dp16kd_initvals(words, width):
    """The ``INITVAL_00`` .. ``INITVAL_3F`` values (320-bit integers) of a DP16KD whose ``width``-bit
    port reads ``words[k]`` at word address ``k``.

    The array is 1024 rows of 18 bits, 16 rows to an ``INITVAL``, each row in 20 bits of it (the top
    two unused). A row holds one 18-bit word or two 9-bit words (the lower address in bits 0-8); 4-, 2-
    and 1-bit words fill the two 9-bit halves from bit 0 up and leave each half's ninth bit unused.
    Checked against Yosys's mapping of an inferred memory in ``tests/test_ecp5.py``."""
    if width not in DP16KD_WIDTHS:
        raise ValueError(f"DP16KD width must be one of {', '.join(map(str, DP16KD_WIDTHS))}, not {width}")
    if len(words) > DP16KD_DEPTHS[width]:
        raise ValueError(f"A DP16KD holds at most {DP16KD_DEPTHS[width]} words of {width} bits, not {len(words)}")
    per_half = 1 if width >= 9 else 8 // width
    per_row = 1 if width == 18 else 2 * per_half
    rows = [0] * 1024
    for address, word in enumerate(words):
        if not 0 <= word < 1 << width:
            raise ValueError(f"DP16KD word {word} at address {address} does not fit in {width} bits")
        row, place = divmod(address, per_row)
        half, unit = divmod(place, per_half)
        rows[row] |= word << (half * 9 + unit * width)
    return [sum(rows[16 * index + k] << (20 * k) for k in range(16)) for index in range(64)]


def dp16kd_rom(m, name, table, width, addr, data, *, en=1):
    """Add a ROM of ``table`` (unsigned ``width``-bit entries) to ``m`` as DP16KD instances named
    ``name_0``, ``name_1`` ... with their output registers: ``data`` is ``table[addr]`` two cycles
    after ``addr`` (the read latch at the first edge, the output register at the second, each moving
    only while ``en`` is high, so a stalled pipeline holds both words). The table is split across
    ``ceil(width / w)`` DP16KD side by side, where ``w`` is :func:`dp16kd_width` of its depth: no
    multiplexer follows the output registers. Port B reads; port A is tied off."""
    width_bits = dp16kd_width(len(table))
    shift = _ADDRESS_SHIFT[width_bits]
    addr14 = Signal(14, name=f"{name}_addr")
    m.d.comb += addr14.eq(Cat(Const(0, shift), addr))
    slices = []
    for index, low in enumerate(range(0, width, width_bits)):
        mask = (1 << min(width_bits, width - low)) - 1
        initvals = dp16kd_initvals([(int(entry) >> low) & mask for entry in table], width_bits)
        out = Signal(18, name=f"{name}_{index}_do")
        slices.append(out[:min(width_bits, width - low)])
        m.submodules[f"{name}_{index}"] = Instance(
            "DP16KD",
            p_DATA_WIDTH_A=width_bits, p_DATA_WIDTH_B=width_bits, p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
            p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
            p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="DISABLED",
            **{f"p_INITVAL_{k:02X}": Const(value, 320) for k, value in enumerate(initvals)},
            i_CLKA=0, i_CEA=0, i_OCEA=0, i_WEA=0, i_RSTA=0,
            **{f"i_CSA{k}": 0 for k in range(3)}, **{f"i_ADA{k}": 0 for k in range(14)},
            **{f"i_DIA{k}": 0 for k in range(18)},
            i_CLKB=ClockSignal(), i_CEB=en, i_OCEB=en, i_WEB=0, i_RSTB=0,
            **{f"i_CSB{k}": 0 for k in range(3)}, **{f"i_ADB{k}": addr14[k] for k in range(14)},
            **{f"i_DIB{k}": 0 for k in range(18)},
            **{f"o_DOB{k}": out[k] for k in range(18)})
    m.d.comb += data.eq(Cat(*slices))


def dp16kd_ram(m, name, width, depth, *, write_addr, write_data, write_en, read_addr, read_data, read_en=1,
               out_en=1):
    """Add a simple dual-port RAM of ``depth`` words of ``width`` bits to ``m`` as DP16KD instances named
    ``name_0``, ``name_1`` ... side by side (``ceil(width / w)`` of them, ``w`` being
    :func:`dp16kd_width` of ``depth``), starting as zeros. Port A writes ``write_data`` at
    ``write_addr`` at the clock edges ``write_en`` is high. Port B reads with its output register:
    ``read_data`` is the word at ``read_addr`` two cycles after it, latched at an edge ``read_en`` is
    high and moved to the output register at an edge ``out_en`` is high (each holding otherwise). A
    read sees every write of an earlier edge; a read of the word written at the same edge is undefined
    (module docstring)."""
    width_bits = dp16kd_width(depth)
    shift = _ADDRESS_SHIFT[width_bits]
    # At 18 bits ADx[1:0] are the byte enables (both bytes written), ADx[3:2] unused.
    write_low = Const(0b11, shift) if width_bits == 18 else Const(0, shift)
    write14, read14 = Signal(14, name=f"{name}_write_addr"), Signal(14, name=f"{name}_read_addr")
    write_word, read_word = Signal(width, name=f"{name}_write_data"), Signal(width, name=f"{name}_read_data")
    m.d.comb += [write14.eq(Cat(write_low, write_addr)), read14.eq(Cat(Const(0, shift), read_addr)),
                 write_word.eq(write_data), read_data.eq(read_word)]
    slices = []
    for index, low in enumerate(range(0, width, width_bits)):
        bits = min(width_bits, width - low)
        din = Signal(18, name=f"{name}_{index}_di")
        out = Signal(18, name=f"{name}_{index}_do")
        m.d.comb += din.eq(write_word[low:low + bits])
        slices.append(out[:bits])
        m.submodules[f"{name}_{index}"] = Instance(
            "DP16KD",
            p_DATA_WIDTH_A=width_bits, p_DATA_WIDTH_B=width_bits, p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
            p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
            p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="DISABLED",
            i_CLKA=ClockSignal(), i_CEA=1, i_OCEA=0, i_WEA=write_en, i_RSTA=0,
            **{f"i_CSA{k}": 0 for k in range(3)}, **{f"i_ADA{k}": write14[k] for k in range(14)},
            **{f"i_DIA{k}": din[k] for k in range(18)},
            i_CLKB=ClockSignal(), i_CEB=read_en, i_OCEB=out_en, i_WEB=0, i_RSTB=0,
            **{f"i_CSB{k}": 0 for k in range(3)}, **{f"i_ADB{k}": read14[k] for k in range(14)},
            **{f"i_DIB{k}": 0 for k in range(18)},
            **{f"o_DOB{k}": out[k] for k in range(18)})
    m.d.comb += read_word.eq(Cat(*slices))
