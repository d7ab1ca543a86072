"""Output-stationary systolic MAC array.

Computes :func:`qarith.golden.mac_array.mac_tiles`: for every tile, ``rows x cols`` exact integer dot
products over a K-step reduction.

Input: one beat per reduction step ``k``: ``a`` (column ``k`` of A, ``rows`` codes), ``b`` (row ``k`` of
B, ``cols`` codes) and ``last`` on the tile's final step. Output: the tile, one row of ``cols``
accumulators per beat in row order, ``last`` on its final row.

Structure. Operands enter skewed (row ``p`` delayed ``p`` cycles, column ``c`` delayed ``c``) and move
one processing element (PE) per cycle right (A) and down (B), so PE ``(p, c)`` sees step ``k`` at cycle
``t_k + p + c``. Step flags (valid, finish) ride a central delay line; row ``p`` taps it at ``p`` plus
the product latency, and the flags then move right with the A operands, one register per PE (so no
flag net drives more than one PE's accumulator). On a tile's last step a PE clears its accumulator
with the flip-flop's synchronous reset and shows its sum in a drain register for exactly one cycle (the drain
register is held at zero otherwise, again by the synchronous reset). The rows of a column finish in
different cycles, so an OR of the column's drain registers reads them out in row order, and a triangle
of registers deskews the columns into whole rows. Per PE this leaves the accumulator's adder as the
only logic besides the multiplier, and tiles follow each other without bubbles. With
``readout="set_or"`` the OR is made of flip-flops whose synchronous set is one operand, pipelined
through the deskew registers (:meth:`MacArray._set_or_column`), so it costs almost no LUTs.

The array itself never stalls: rows go into an output queue (:class:`RowQueue`: a memory, two
pointers and a head register, in block RAM for the FPGA-specific configs), and the input accepts a
step only while the queue has room for one more tile beyond every row already promised (a credit
counter). Two tiles' last steps must be at least ``rows`` cycles apart (a column emits one row per
cycle); the input holds back a ``last`` step that comes earlier, so tiles with ``K < rows`` cost bubbles
and nothing else.

Throughput: ``rows * cols`` MACs per cycle for ``K >= rows``. Latency: :attr:`MacArray.latency`.
"""

import operator
from functools import reduce

from amaranth.hdl import Cat, ClockSignal, Const, Elaboratable, Instance, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.mac_array import MacArrayConfig
from .common.component import BlockComponent
from .common.ecp5 import MULT18X18D_MODEL, mult18x18d

__all__ = ["MacArray", "RowQueue"]


def _shape(width, is_signed):
    return signed(width) if is_signed else unsigned(width)


class RowQueue(Elaboratable):
    """The array's output queue: first word falls through, no full flag (the writer is credited).

    Rows are written into a memory of ``2 ** n > depth`` entries and read into a head register (the
    memory's synchronous read port), so ``r_valid`` and ``r_data`` come from flip-flops. The read
    address is the read pointer and "not empty" is a flip-flop computed a cycle ahead, so the read
    port's enable is one LUT of ``r_ready`` and two flip-flops, and no pointer compare lies in front of
    the memory. The read never meets the write's address, so the read port needs no transparency. A
    row written in cycle ``t`` is valid at ``r_data`` in cycle ``t + 2``.

    Parameters
    ----------
    width : int
    depth : int
        Most rows ever held (memory and head together); the writer must not exceed it.
    attrs : dict
        Attributes of the memory (``{"ram_style": "block"}`` puts it in block RAM).
    out_reg : bool
        Put a fabric register behind the memory's read register: ``r_data`` then comes from a flip-flop
        even when the memory is a block RAM, whose clock-to-output (5.6-5.8 ns in nextpnr's ECP5 model)
        would otherwise start every path from the head. A row written in cycle ``t`` is then valid at
        ``r_data`` in cycle ``t + 3``; throughput stays one row per cycle, and ``depth`` counts the rows
        in both registers.
    """

    def __init__(self, *, width, depth, attrs=None, out_reg=False):
        self.width, self.depth = width, depth
        self.attrs = attrs or {}
        self.out_reg = out_reg
        self.w_data = Signal(width)
        self.w_en = Signal()
        self.r_data = Signal(width)
        self.r_valid = Signal()
        self.r_ready = Signal()

    def elaborate(self, platform):
        m = Module()
        address_bits = self.depth.bit_length()
        # A read never meets the write's address, so Yosys need not emulate either collision rule with
        # a bypass register and multiplexer per bit (``no_rw_check``).
        m.submodules.storage = storage = Memory(shape=self.width, depth=1 << address_bits, init=[],
                                                attrs={"no_rw_check": 1, **self.attrs})
        # The read port is asynchronous and its register explicit, so that Yosys's memory_dff merges
        # the two into the block RAM's synchronous port and then honours no_rw_check.
        write, read = storage.write_port(), storage.read_port(domain="comb")
        wp, rp = Signal(address_bits), Signal(address_bits)
        rp_ahead = Signal(address_bits, init=1)     # rp + 1, counted alongside rp
        filled = Signal()       # wp != rp, a cycle ahead
        load = Signal()
        # The memory's read register: the head itself, or (out_reg) a stage in front of it.
        if self.out_reg:
            head_data, head_valid, take = Signal(self.width), Signal(), Signal()
            m.d.comb += take.eq(head_valid & (~self.r_valid | self.r_ready))
            space = ~head_valid | take
        else:
            head_data, head_valid = self.r_data, self.r_valid
            space = ~self.r_valid | self.r_ready
        m.d.comb += [
            write.addr.eq(wp), write.data.eq(self.w_data), write.en.eq(self.w_en),
            load.eq(filled & space),
            read.addr.eq(rp),
        ]
        with m.If(self.w_en):
            m.d.sync += wp.eq(wp + 1)
        with m.If(load):
            m.d.sync += [rp.eq(rp + 1), rp_ahead.eq(rp_ahead + 1)]
        # A write makes the memory non-empty (it never fills all 2 ** n entries); a read without a
        # write empties it if it held one row.
        with m.If(self.w_en & ~load):
            m.d.sync += filled.eq(1)
        with m.Elif(load & ~self.w_en):
            m.d.sync += filled.eq(rp_ahead != wp)
        with m.If(load):
            m.d.sync += [head_data.eq(read.data), head_valid.eq(1)]
        with m.Elif(take if self.out_reg else self.r_ready):
            m.d.sync += head_valid.eq(0)
        if self.out_reg:
            with m.If(take):
                m.d.sync += [self.r_data.eq(head_data), self.r_valid.eq(1)]
            with m.Elif(self.r_ready):
                m.d.sync += self.r_valid.eq(0)
        return m


class MacArray(BlockComponent):
    """Systolic ``rows x cols`` MAC array with streaming input and output.

    Parameters
    ----------
    cfg : MacArrayConfig

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(a, rows), "b": ArrayLayout(b, cols), "last": 1})))
    o : Out(stream.Signature(StructLayout({"acc": ArrayLayout(acc, cols), "last": 1})))
    """

    config_class = MacArrayConfig

    def __init__(self, cfg):
        self.cfg = cfg
        self.a_shape = _shape(cfg.a_width, cfg.a_signed)
        self.b_shape = _shape(cfg.b_width, cfg.b_signed)
        self.acc_shape = _shape(cfg.acc_bits, cfg.acc_signed)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(self.a_shape, cfg.rows),
                "b": data.ArrayLayout(self.b_shape, cfg.cols),
                "last": 1,
            }))),
            "o": Out(stream.Signature(data.StructLayout({
                "acc": data.ArrayLayout(self.acc_shape, cfg.cols),
                "last": 1,
            }))),
        })

    @property
    def fill_latency(self):
        """Cycles from accepting a tile's last step to writing its first row into the output FIFO."""
        cfg = self.cfg
        return int(cfg.input_reg) + cfg.cols + cfg.product_latency + 1 + int(bool(cfg.acc_split))

    @property
    def latency(self):
        """Cycles from accepting a tile's last step to its first output row being valid."""
        return self.fill_latency + 2 + int(self.cfg.output_reg)

    @property
    def fifo_depth(self):
        """Output FIFO depth: enough credits to run back-to-back tiles of ``K = rows`` at full rate."""
        return self.fill_latency + 3 * self.cfg.rows + 3

    @property
    def throughput(self):
        """Peak MACs per cycle."""
        return self.cfg.macs

    @property
    def sim_sources(self):
        """Simulation models the emitted Verilog needs besides itself (Yosys's SB_MAC16 model)."""
        return {"ice40_dual": ["ice40:SB_MAC16"], "ecp5_reg": [MULT18X18D_MODEL],
                "ecp5_pipe": [MULT18X18D_MODEL]}.get(
            self.cfg.multiplier, [])

    @property
    def product_shape(self):
        """Shape of one PE's product."""
        cfg = self.cfg
        return signed(cfg.a_width + cfg.b_width) if cfg.acc_signed else unsigned(cfg.a_width + cfg.b_width)

    def pe_product(self, a, b):
        """One PE's product of the operands it sees, for the ``fabric`` multiplier (a subclass whose
        ``b`` operand is encoded otherwise, such as :class:`~qarith.hdl.ant_mac.AntMac`'s, overrides
        this and :attr:`product_shape`)."""
        return a * b

    def _ecp5_product(self, m, name, a, b, product, pipelined=False):
        """One MULT18X18D with its input and output registers (product two cycles after operands,
        :func:`~qarith.hdl.common.ecp5.mult18x18d`). ``pipelined`` adds the DSP's pipeline register and
        a fabric register after the DSP (product four cycles after operands): the multiplier array and
        the route out of the DSP column then each have a cycle of their own."""
        signs = (self.cfg.a_signed, self.cfg.b_signed)
        if not pipelined:
            mult18x18d(m, name, a, b, product, signed=signs)
            return
        dsp_product = Signal(len(product), name=f"{name}_q")
        mult18x18d(m, name, a, b, dsp_product, signed=signs, pipeline=True)
        m.d.sync += product.eq(dsp_product)

    def _ice40_dual_products(self, m, a_at, b_at, products):
        """Two PEs per SB_MAC16 in dual 8x8 mode: top half A[15:8] x B[15:8], bottom half
        A[7:0] x B[7:0], both products registered inside the DSP block."""
        cfg = self.cfg
        pes = [(p, c) for p in range(cfg.rows) for c in range(cfg.cols)]
        for n in range(0, len(pes), 2):
            pair = pes[n:n + 2]
            top, bottom = pair[0], pair[1] if len(pair) == 2 else None
            operand_a = Signal(16, name=f"dsp{n // 2}_a")
            operand_b = Signal(16, name=f"dsp{n // 2}_b")
            result = Signal(32, name=f"dsp{n // 2}_o")
            m.d.comb += [
                operand_a[8:].eq(a_at[top[0]][top[1]].as_signed() if cfg.a_signed else a_at[top[0]][top[1]]),
                operand_b[8:].eq(b_at[top[0]][top[1]].as_signed() if cfg.b_signed else b_at[top[0]][top[1]]),
                products[top[0]][top[1]].eq(result[16:].as_signed() if cfg.acc_signed else result[16:]),
            ]
            if bottom is not None:
                m.d.comb += [
                    operand_a[:8].eq(a_at[bottom[0]][bottom[1]]),
                    operand_b[:8].eq(b_at[bottom[0]][bottom[1]]),
                    products[bottom[0]][bottom[1]].eq(result[:16].as_signed() if cfg.acc_signed
                                                      else result[:16]),
                ]
            zero16 = Const(0, 16)
            m.submodules[f"dsp{n // 2}"] = Instance(
                "SB_MAC16",
                p_MODE_8x8=1, p_A_SIGNED=int(cfg.a_signed), p_B_SIGNED=int(cfg.b_signed),
                p_TOP_8x8_MULT_REG=1, p_BOT_8x8_MULT_REG=1,
                p_TOPOUTPUT_SELECT=2, p_BOTOUTPUT_SELECT=2,
                i_CLK=ClockSignal(), i_CE=1, i_A=operand_a, i_B=operand_b, i_C=zero16, i_D=zero16,
                i_AHOLD=0, i_BHOLD=0, i_CHOLD=0, i_DHOLD=0, i_IRSTTOP=0, i_IRSTBOT=0,
                i_ORSTTOP=0, i_ORSTBOT=0, i_OLOADTOP=0, i_OLOADBOT=0, i_ADDSUBTOP=0, i_ADDSUBBOT=0,
                i_OHOLDTOP=0, i_OHOLDBOT=0, i_CI=0, i_ACCUMCI=0, i_SIGNEXTIN=0,
                o_O=result)

    def _split_accumulator(self, m, name, product, flags):
        """A carry-save accumulator for ``acc_split = s``: ``low`` holds bits ``[0, s)``, ``high`` bits
        ``[s, acc_bits)``, ``carry`` the low adder's carry from the previous step, worth ``2 ** s``. The sum
        is ``(high + carry) * 2 ** s + low``. Returns the step's total, with the step's own carry on top
        (``acc_bits + 1`` bits, for the drain), and the (register, next value) pairs."""
        cfg = self.cfg
        s, width = cfg.acc_split, cfg.acc_bits
        low = Signal(s, name=f"acc_low_{name}")
        high = Signal(width - s, name=f"acc_high_{name}")
        carry = Signal(name=f"acc_carry_{name}")
        wide = Signal(self.acc_shape, name=f"product_wide_{name}")
        low_total = Signal(s + 1, name=f"total_low_{name}")
        high_total = Signal(width - s + 1, name=f"total_high_{name}")
        m.d.comb += [
            wide.eq(product),
            low_total.eq(low + wide[:s]),
            # The carry as the low bit of both operands: one adder whose carry-in is the register.
            high_total.eq(Cat(carry, high) + Cat(carry, wide[s:])),
        ]
        total = Cat(low_total[:s], high_total[1:], low_total[s])
        return total, [(low, low_total[:s]), (high, high_total[1:]), (carry, low_total[s])]

    @property
    def readout(self):
        """How a column's drain registers are read out (:attr:`MacArrayConfig.readout`); the configs of
        arrays built on this one without that field (:class:`~qarith.golden.ant_mac.AntMacConfig`) read
        out through the LUT OR."""
        return getattr(self.cfg, "readout", "lut_or")

    @staticmethod
    def _set_or_column(m, inputs, stages, name):
        """The OR of a column's drain registers, registered ``stages`` times (the read-out register
        and the column's deskew registers), from flip-flops with a synchronous set: ``q <= s ? 1 : d``
        is ``q <= d | s`` with the set input as the second operand, so a level that ORs pairs needs no
        LUT. Pairs are ORed while more than one level is left; the last level ORs what remains, all
        but one operand in LUTs in front of ``d``; once one value is left, the levels are plain
        registers. Every set input is a single bit, so each bit is a register of its own.

        The registers have no domain reset (a flip-flop has one set/reset input, and the set is taken),
        and those with a set start at one: an ECP5 flip-flop's initial value is its set/reset value,
        so Yosys turns a set with initial value zero back into a LUT. Neither matters: the drain
        registers are reset, so the OR holds zeros ``stages`` cycles after configuration or a reset,
        before any row can be written (a row needs a tile's last step and then :attr:`fill_latency`
        cycles, more than ``cols``)."""
        width = len(inputs[0])
        values = inputs
        for level in range(stages):
            if len(values) == 1:
                groups = [values]
            elif level < stages - 1:
                groups = [values[n:n + 2] for n in range(0, len(values), 2)]
            else:
                groups = [values]
            values = []
            for k, group in enumerate(groups):
                bits = []
                for i in range(width):
                    q = Signal(name=f"{name}_or{level}_{k}_{i}", init=len(group) > 1, reset_less=True)
                    if len(group) == 1:
                        m.d.sync += q.eq(group[0][i])
                    else:
                        rest = reduce(operator.or_, (value[i] for value in group[1:]))
                        # A Mux, which the Verilog backend writes as a continuous assignment: as an
                        # m.If it becomes an always @* block, which Icarus runs only once an input
                        # changes, so a register whose inputs keep their initial values loads x.
                        m.d.sync += q.eq(Mux(group[0][i], 1, rest))
                    bits.append(q)
                values.append(Cat(*bits))
        return values[0]

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows, cols = cfg.rows, cfg.cols
        mult_reg = cfg.product_latency

        # Family-specific configs ask for block RAM, so the queue's storage costs no logic cells.
        m.submodules.fifo = fifo = RowQueue(width=cols * cfg.acc_bits + 1, depth=self.fifo_depth,
                                            attrs={"ram_style": "block"} if cfg.family else None)
        if cfg.output_reg:
            # Register slice with a skid register: the FIFO's read enable comes from a flip-flop, so
            # the consumer's ready reaches no further than these two registers.
            out_valid, skid_valid = Signal(), Signal()
            out_data, skid_data = Signal.like(fifo.r_data), Signal.like(fifo.r_data)
            take = fifo.r_valid & ~skid_valid
            m.d.comb += [
                fifo.r_ready.eq(~skid_valid),
                self.o.valid.eq(out_valid),
                self.o.payload.eq(data.View(self.o.payload.shape(), out_data)),
            ]
            with m.If(self.o.ready | ~out_valid):
                with m.If(skid_valid):
                    m.d.sync += [out_data.eq(skid_data), out_valid.eq(1), skid_valid.eq(0)]
                with m.Else():
                    m.d.sync += [out_data.eq(fifo.r_data), out_valid.eq(take)]
            with m.Elif(take):
                m.d.sync += [skid_data.eq(fifo.r_data), skid_valid.eq(1)]
        else:
            m.d.comb += [
                self.o.valid.eq(fifo.r_valid),
                self.o.payload.eq(data.View(self.o.payload.shape(), fifo.r_data)),
                fifo.r_ready.eq(self.o.ready),
            ]

        # Acceptance. Credits count FIFO entries not yet promised to a tile; a step is accepted only
        # while a whole tile's rows are still free. Both conditions are registers, so the input's
        # ready is two LUT levels from flip-flops.
        accept = Signal()
        tile_accepted = Signal()
        credits = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        credits_next = Signal.like(credits)
        room = Signal(init=1)
        cooling = Signal()             # the previous last step was accepted under rows cycles ago
        since_last = Signal(range(rows + 1), init=rows)
        m.d.comb += [
            self.i.ready.eq(room & ~(self.i.payload.last & cooling)),
            accept.eq(self.i.valid & self.i.ready),
            tile_accepted.eq(accept & self.i.payload.last),
            credits_next.eq(credits - Mux(tile_accepted, rows, 0) + (self.o.valid & self.o.ready)),
        ]
        # room leaves out this cycle's returned credit (it only adds room, a cycle later): the
        # compares are then of a register with constants, off the output handshake's path.
        m.d.sync += [credits.eq(credits_next),
                     room.eq(Mux(tile_accepted, credits >= 2 * rows, credits >= rows))]
        with m.If(tile_accepted):
            m.d.sync += [since_last.eq(1), cooling.eq(rows > 1)]
        with m.Elif(since_last < rows):
            m.d.sync += [since_last.eq(since_last + 1), cooling.eq(since_last + 1 < rows)]

        # The step entering the array: operands and flags, optionally registered.
        step_a = Signal.like(self.i.payload.a)
        step_b = Signal.like(self.i.payload.b)
        step_flags = Signal(data.StructLayout({"valid": 1, "finish": 1}))   # finish: a tile's last step
        flags_now = Cat(accept, tile_accepted)
        domain = m.d.sync if cfg.input_reg else m.d.comb
        domain += [
            step_a.eq(self.i.payload.a),
            step_b.eq(self.i.payload.b),
            step_flags.eq(flags_now),
        ]

        # Central delay line of step flags; entry d is the step that entered d cycles ago.
        line = [step_flags]
        for d in range(rows + cols + mult_reg + 1):
            delayed = Signal.like(step_flags, name=f"flags_d{d + 1}")
            m.d.sync += delayed.eq(line[-1])
            line.append(delayed)

        def delay(value, cycles, name):
            for n in range(cycles):
                delayed = Signal.like(value, name=f"{name}_d{n + 1}")
                m.d.sync += delayed.eq(value)
                value = delayed
            return value

        # Skewed operand streams.
        a_left = [delay(step_a[p], p, f"a_skew{p}") for p in range(rows)]
        b_top = [delay(step_b[c], c, f"b_skew{c}") for c in range(cols)]

        # Operands as each PE sees them: A moves right, B moves down, one register per hop.
        a_at = [[None] * cols for _ in range(rows)]
        b_at = [[None] * cols for _ in range(rows)]
        for p in range(rows):
            for c in range(cols):
                if c == 0:
                    a_at[p][c] = a_left[p]
                else:
                    a_at[p][c] = Signal.like(a_left[p], name=f"a_{p}_{c}")
                    m.d.sync += a_at[p][c].eq(a_at[p][c - 1])
                if p == 0:
                    b_at[p][c] = b_top[c]
                else:
                    b_at[p][c] = Signal.like(b_top[c], name=f"b_{p}_{c}")
                    m.d.sync += b_at[p][c].eq(b_at[p - 1][c])

        products = [[Signal(self.product_shape, name=f"product_{p}_{c}") for c in range(cols)]
                    for p in range(rows)]
        if cfg.multiplier == "ice40_dual":
            self._ice40_dual_products(m, a_at, b_at, products)
        elif cfg.multiplier in ("ecp5_reg", "ecp5_pipe"):
            pipelined = cfg.multiplier == "ecp5_pipe"
            for p in range(rows):
                for c in range(cols):
                    self._ecp5_product(m, f"mult_{p}_{c}", a_at[p][c], b_at[p][c], products[p][c],
                                       pipelined)
        else:
            for p in range(rows):
                for c in range(cols):
                    domain = m.d.sync if mult_reg else m.d.comb
                    domain += products[p][c].eq(self.pe_product(a_at[p][c], b_at[p][c]))

        # Accumulate. On a tile's last step the accumulator clears (the flip-flop's synchronous reset)
        # and the sum appears in the PE's drain register for exactly one cycle; every other cycle the
        # drain register is reset to zero. Both cost no logic, and a column's rows come out at
        # different cycles, so the column reads its drain registers through a plain OR.
        split = cfg.acc_split
        drain_width = cfg.acc_bits + (1 if split else 0)    # with a split: the last step's carry on top
        drains = [[None] * cols for _ in range(rows)]
        # The flags a PE needs are the line's tap p + c + product latency; rather than one tap feeding
        # every PE of an anti-diagonal (a net of hundreds of clock enables and resets), row p takes
        # its tap once and the flags move right with the A operands, one register per PE.
        for p in range(rows):
            flags = line[p + mult_reg]
            for c in range(cols):
                if c:
                    moved = Signal.like(flags, name=f"flags_{p}_{c}")
                    m.d.sync += moved.eq(flags)
                    flags = moved
                drain = Signal(drain_width if split else self.acc_shape, name=f"drain_{p}_{c}")
                if split:
                    total, state = self._split_accumulator(m, f"{p}_{c}", products[p][c], flags)
                else:
                    acc = Signal(self.acc_shape, name=f"acc_{p}_{c}")
                    total = Signal(self.acc_shape, name=f"total_{p}_{c}")
                    m.d.comb += total.eq(acc + products[p][c])
                    state = [(acc, total)]
                with m.If(flags.finish):
                    m.d.sync += [register.eq(0) for register, _ in state]
                with m.Elif(flags.valid):
                    m.d.sync += [register.eq(value) for register, value in state]
                m.d.sync += drain.eq(Mux(flags.finish, total, 0))
                drains[p][c] = drain

        # Column c holds row p's sum in cycle t_last + 1 + p + c (+1 with the product register, +1 with
        # a split accumulator, whose last carry is added here); it is deskewed by cols - 1 - c cycles
        # into whole rows.
        row_out = []
        for c in range(cols):
            if self.readout == "set_or":
                row_out.append(self._set_or_column(m, [drains[p][c] for p in range(rows)], cols - c, f"column{c}"))
                continue
            selected = Signal(drain_width if split else self.acc_shape, name=f"column{c}")
            m.d.sync += selected.eq(reduce(operator.or_, (drains[p][c] for p in range(rows))))
            if split:
                carried = Signal(cfg.acc_bits, name=f"column{c}_carried")
                high = selected[split:cfg.acc_bits]
                m.d.sync += carried.eq(Cat(selected[:split], high + selected[cfg.acc_bits]))
                selected = carried
            row_out.append(delay(selected, cols - 1 - c, f"deskew{c}"))

        # Row p of the tile reaches the FIFO from column cols - 1's tap p, one cycle later.
        row_flags = [line[mult_reg + cols + p + int(bool(split))] for p in range(rows)]
        row_valid = Signal()
        row_last = Signal()
        m.d.sync += [
            row_valid.eq(Cat(f.finish for f in row_flags).any()),
            row_last.eq(row_flags[-1].finish),
        ]
        m.d.comb += [
            fifo.w_en.eq(row_valid),
            fifo.w_data.eq(Cat(*row_out, row_last)),
        ]
        return m
