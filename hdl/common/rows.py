"""Row machinery shared by the row-wise blocks (``softmax_lut``, ``shiftmax``): a banked row buffer, the
row maximum, a free-running reduction pass and a stallable output pass.

A row of ``n`` elements passes three stages, each holding one row at a time:

``ingest``
    writes the row into a free bank of the buffer (one write port) and keeps its running maximum;
``reduce``
    reads the row back one element per cycle, free-running (it never waits for the output); the block
    reduces the elements (a sum, say), derives the row's parameters, stores them by bank and pulses
    :attr:`RowEngine.publish` once per row, in row order;
``output``
    reads the row a second time once its parameters are published, one element per cycle, and stalls
    as a whole while the block's ``o.ready`` is low. A bank is free again when this pass has read the
    row's last element; the row's maximum and parameters are taken at that read and travel with each
    element, so a refilled bank cannot change an element already in flight.

With ``banks`` chosen by :func:`banks_for` from the reduce pass's tail, the next rows stream in while
earlier ones are reduced and drained: one element per cycle in, one out, in steady state.

With ``variable_length``, the input payload is ``{"data", "last"}`` and a row ends at the element
carrying ``last``, or at its ``n``-th element (a longer row is cut there: the elements after it start
the next row). Each bank keeps its row's last index, and both passes read the row's own ``L`` elements
only, so a row of ``L`` elements costs ``L`` cycles in each stage; the output pass marks the row's last
element (:attr:`OutputPass.last`). A row still holds its bank from its first write to the output pass's
last read of it, so rows much shorter than ``n`` can fill every bank: the next row then waits for one
to be freed (for ``banks - 3`` rows of ``L`` elements shorter than the reduce tail).
:func:`output_pass_starts` gives the exact schedule.

With ``buffer="ecp5"`` the buffer is instantiated ECP5 block RAM (:func:`qarith.hdl.common.ecp5.dp16kd_ram`:
one simple dual-port RAM per pass, each written by the ingest stage and read by its pass through the
DP16KD's output register), in place of the one Yosys infers, whose DP16KD has no output register and a
clock-to-output of about 5.8 ns. Each pass then takes :data:`BUFFER_READ_EXTRA` more cycles to its
registered word (``s2``/``c2``), and a read latches the RAM only for a read the pass issues (never for
the bank being written: the DP16KD leaves a read of a word written at the same edge undefined).
"""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Mux, Signal, Value, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from .ecp5 import dp16kd_ram

__all__ = ["RowEngine", "RowSchedule", "OutputPass", "BUFFER_READ_EXTRA", "ONE_HOT_BANKS", "banks_for",
           "output_pass_starts", "row_layout"]

#: The row buffer's kinds (:class:`RowEngine`'s ``buffer``) and the cycles each pass's reads of it take
#: beyond the inferred buffer's: the DP16KD output register of ``"ecp5"``.
BUFFER_READ_EXTRA = {"inferred": 0, "ecp5": 1}

#: From this many banks on, the output pass selects its row's maximum and parameters with a one-hot bank
#: register rather than by the bank number (see :meth:`RowEngine.output_pass`).
ONE_HOT_BANKS = 32


def _or_all(values):
    """The OR of ``values``, as a balanced tree."""
    while len(values) > 1:
        values = [values[k] | values[k + 1] if k + 1 < len(values) else values[k] for k in range(0, len(values), 2)]
    return values[0]


def row_layout(shape):
    """The payload of a variable-length row's element: ``data`` and ``last`` (the row's final element)."""
    return data.StructLayout({"data": shape, "last": 1})


def banks_for(n, tail):
    """Buffer banks for full rate: a row occupies its bank for the three stages plus ``tail`` cycles
    (from the reduce pass's last read to its parameters being published)."""
    banks = 4
    while (banks - 3) * n < tail:
        banks *= 2
    return banks


def output_pass_starts(lengths, banks, gap):
    """The cycle of each row's first output-pass read, for rows of ``lengths`` elements offered back to
    back from cycle 0 (an element every cycle the engine takes one) with the output never stalled.

    ``gap`` is the block's cycles from the reduce pass's last read of a row to the output pass's first
    read of it (the parameters' tail). Each stage holds one row at a time: a row is written once the
    one before it is in and, from the ``banks``-th row on, once the row ``banks`` before it has been
    read out (its bank freed, visible a cycle later); it is reduced once it is in and the reduce pass has
    read the row before; it is read out ``gap`` cycles after its last reduce read, and after the row
    before has been read out."""
    in_end = reduce_end = out_end = -1
    freed, starts = [], []
    for row, length in enumerate(lengths):
        in_start = in_end + 1 if row < banks else max(in_end + 1, freed[row - banks] + 1)
        in_end = in_start + length - 1
        reduce_end = max(in_end + 1, reduce_end + 1) + length - 1
        out_start = max(reduce_end + gap, out_end + 1)
        out_end = out_start + length - 1
        freed.append(out_end)
        starts.append(out_start)
    return starts


class RowSchedule:
    """:meth:`row_outputs` for a row block with ``banks``, ``output_gap`` (see :func:`output_pass_starts`)
    and ``row_latency(length)``."""

    def row_outputs(self, lengths):
        """The cycle of each row's first output, for rows of ``lengths`` elements offered back to back
        (the first taken at cycle 0) with ``o`` always ready: ``row_latency`` after a row's last element
        while the rows are long enough to stream, later once short rows have filled every bank or a
        longer row is still being read out (:func:`output_pass_starts`)."""
        starts = output_pass_starts(lengths, self.banks, self.output_gap)
        return [start + self.row_latency(length) - length - self.output_gap
                for start, length in zip(starts, lengths)]


class OutputPass:
    """What :meth:`RowEngine.output_pass` built: ``advance`` (the pipeline moves this cycle),
    ``valid[k]`` and ``values[k]`` (the row's maximum, its parameters, and last the element's position
    in the row) of stage ``c_k`` (k = 1 .. depth), and ``x``, the buffer word registered at stage
    ``c2``. With variable-length rows, ``last[k]`` marks the row's last element at stage ``c_k`` (it is
    also ``values[k][-2]``); ``last`` is ``None`` for fixed-length rows."""

    def __init__(self, m, advance, valid, values, x, last=None):
        self.m, self.advance, self.valid, self.values, self.x = m, advance, valid, values, x
        self.last = last

    def data(self, o):
        """The part of ``o.payload`` that carries the block's result (all of it for fixed-length rows)."""
        return o.payload if self.last is None else o.payload.data

    def ends(self, o, stage):
        """``(o.payload.last, last[stage])`` as a pair list for :meth:`stalled` (none for fixed-length
        rows)."""
        return [] if self.last is None else [(o.payload.last, self.last[stage])]

    def stalled(self, *pairs):
        """Registers that move with the output pipeline: ``(target, value)`` pairs."""
        with self.m.If(self.advance):
            self.m.d.sync += [target.eq(value) for target, value in pairs]


class RowEngine:
    """Builds the ingest stage, the reduce pass's reads and the row bookkeeping into ``m``.

    Parameters
    ----------
    m : Module
    n : int
        Row length.
    x_shape : Shape
        Shape of the (signed) elements; the row maximum is taken in it.
    banks : int
        Buffer banks (a power of two, at least 4): :func:`banks_for`.
    i : stream interface
        The block's input stream (``n`` beats per row; with ``variable_length``, payloads
        :func:`row_layout` and rows of ``1 .. n`` beats ended by ``last``).
    variable_length : bool
        Rows of ``1 .. n`` elements ended by ``last`` (see the module docstring).
    buffer : str
        ``"inferred"`` (a ``Memory``, mapped by synthesis) or ``"ecp5"`` (instantiated DP16KD with
        their output registers; see the module docstring).

    Raises
    ------
    ValueError
        If ``buffer`` is not one of :data:`BUFFER_READ_EXTRA`.

    Attributes
    ----------
    valid, first, last, bank, x, index : Signal
        The reduce pass at its stage ``s2``: an element (its buffer word registered), whether it is
        the row's first or last, its row's bank and its position in the row.
    max : Value
        The row maximum of the element at ``s2``.
    publish : Signal
        Driven by the block: high for one cycle when a row's parameters are stored (rows in order).
    """

    def __init__(self, m, n, x_shape, banks, i, variable_length=False, buffer="inferred"):
        if buffer not in BUFFER_READ_EXTRA:
            raise ValueError(f"Row buffer must be one of {', '.join(BUFFER_READ_EXTRA)}, not {buffer!r}")
        self.m, self.n, self.x_shape, self.banks = m, n, x_shape, banks
        self.variable_length, self.buffer = variable_length, buffer
        bank_bits = self.bank_bits = banks.bit_length() - 1
        index_bits = (n - 1).bit_length()
        count_shape = unsigned(bank_bits + 1)           # row counters, modulo 2 * banks

        # Neither pass reads the bank being written (the reduce pass reads rows already in, the output
        # pass rows already reduced), so Yosys need not emulate a read-write collision rule with a
        # bypass register and multiplexer per bit behind the block RAM (``no_rw_check``). The read
        # ports are asynchronous and their registers explicit (s1 -> s2, c1 -> c2), so that Yosys's
        # memory_dff merges the two into the RAM's synchronous ports and then honours the attribute.
        if buffer == "ecp5":
            depth = banks << index_bits
            write = SimpleNamespace(addr=Signal(range(depth), name="buffer_write_addr"),
                                    data=Signal(x_shape, name="buffer_write_data"), en=Signal(name="buffer_write_en"))

            def ram(name, read_en, out_en):
                port = SimpleNamespace(addr=Signal(range(depth), name=f"{name}_addr"),
                                       data=Signal(x_shape, name=f"{name}_data"))
                dp16kd_ram(m, name, x_shape.width, depth, write_addr=write.addr, write_data=write.data,
                           write_en=write.en, read_addr=port.addr, read_data=port.data, read_en=read_en,
                           out_en=out_en)
                return port
            self._ram = ram
        else:
            m.submodules.buffer = memory = Memory(shape=x_shape, depth=banks << index_bits, init=[],
                                                  attrs={"no_rw_check": 1})
            write = memory.write_port()
            reduce_read = memory.read_port(domain="comb")
            self._out_read = memory.read_port(domain="comb")

        rows_in = Signal(count_shape)         # rows completely written
        rows_reduced = Signal(count_shape)    # rows whose reduce-pass reads were issued
        self._rows_ready = Signal(count_shape)  # rows whose parameters are published
        self._rows_out = Signal(count_shape)  # rows whose output-pass reads were issued (banks freed)
        self.row_max = row_max = Array(Signal(x_shape, name=f"row_max_{b}") for b in range(banks))
        self.publish = Signal()
        with m.If(self.publish):
            m.d.sync += self._rows_ready.eq(self._rows_ready + 1)

        # ingest
        in_index = Signal(range(n))
        running_max = Signal(x_shape)
        new_max = Signal(x_shape)
        # Banks taken (rows_in - rows_out), counted rather than subtracted: i.ready is a compare of one
        # register with a constant, not a subtractor in front of the write enables.
        occupied = Signal(range(banks + 1))
        row_in_done, self._row_freed = Signal(), Signal()
        m.d.sync += occupied.eq(occupied + row_in_done - self._row_freed)
        full = Signal()
        element = i.payload.data if variable_length else i.payload
        # element > running_max as the sign of a subtraction: one carry chain (iCE40 synthesis made the
        # comparison a ripple of LUTs, the UP5K critical path).
        above = Signal()
        m.d.comb += above.eq((running_max - element)[-1])
        # The next element starts a row: a flip-flop, not a compare of in_index in front of the
        # multiplexer and running_max's enable (with the comparison above, the iCE40 ingest path).
        at_first = Signal(init=1)
        m.d.comb += [
            full.eq(occupied == banks),
            i.ready.eq(~full),
            new_max.eq(Mux(at_first | above, element, running_max)),
            write.addr.eq(Cat(in_index, rows_in[:bank_bits])),
            write.data.eq(element),
            write.en.eq(i.valid & i.ready),
        ]
        if variable_length:
            # Each bank's row: its last index (the row's length minus one), read through asynchronous
            # ports (top_of). A memory rather than an Array of registers: Icarus evaluates a
            # combinational mux of registers only when one of them changes, and a bank's index written
            # with the value it already holds (0 after reset) left the mux unknown there.
            # Beside it, whether that index is 0 (a row of one element): the passes' row ends
            # (:meth:`_row_end`) read it as one bit.
            m.submodules.row_tops = self._row_tops = Memory(shape=unsigned(index_bits + 1), depth=banks, init=[])
            top_write = self._row_tops.write_port()
            m.d.comb += [top_write.addr.eq(rows_in[:bank_bits]), top_write.data.eq(Cat(in_index, in_index == 0))]
            in_end = Signal()
            m.d.comb += in_end.eq(i.payload.last | (in_index == n - 1))
        else:
            in_end = in_index == n - 1
        with m.If(i.valid & i.ready):
            m.d.sync += [running_max.eq(new_max), at_first.eq(in_end)]
            with m.If(in_end):
                m.d.sync += [in_index.eq(0), rows_in.eq(rows_in + 1)]
                m.d.comb += row_in_done.eq(1)
                if variable_length:
                    m.d.comb += top_write.en.eq(1)
            with m.Else():
                m.d.sync += in_index.eq(in_index + 1)
        # The row's maximum is stored a cycle after its last element, from running_max (the compare and
        # multiplexer of new_max are then not in front of every bank's enable). The reduce pass first
        # reads it at its s1, two cycles after the last element.
        max_pending, max_bank = Signal(), Signal(bank_bits)
        m.d.sync += [max_pending.eq(row_in_done), max_bank.eq(rows_in[:bank_bits])]
        with m.If(max_pending):
            m.d.sync += row_max[max_bank].eq(running_max)

        # reduce pass: s1 has the buffer word on the read port (block RAM clock-to-out), s2 registers it
        # (buffer="ecp5": the word leaves the DP16KD's output register a stage after s1)
        reduce_index = Signal(range(n))
        if buffer == "inferred":
            reduce_word = Signal(x_shape)
        issue = Signal()
        if buffer == "ecp5":
            reduce_read = self._ram("buffer_reduce", issue, 1)
            reduce_word = reduce_read.data
        m.d.comb += [
            issue.eq(rows_reduced != rows_in),
            reduce_read.addr.eq(Cat(reduce_index, rows_reduced[:bank_bits])),
        ]
        if buffer == "inferred":
            m.d.sync += reduce_word.eq(reduce_read.data)
        if variable_length:
            # The row's last index may be written in the cycle before its first read (the pass waits for
            # the row), so a row that starts then takes its end from the ingest's index instead.
            counter_bits = len(rows_reduced)
            written_now = Signal()
            m.d.comb += written_now.eq(row_in_done & ((rows_in == rows_reduced)
                                                      | (rows_in == (rows_reduced + 1)[:counter_bits])))
            at_top = self._row_end(issue, reduce_index, rows_reduced, written_now, in_index == 0,
                                   restart_too=row_in_done & (rows_in == rows_reduced), name="reduce")
        else:
            at_top = reduce_index == n - 1
        with m.If(issue):
            with m.If(at_top):
                m.d.sync += [reduce_index.eq(0), rows_reduced.eq(rows_reduced + 1)]
            with m.Else():
                m.d.sync += reduce_index.eq(reduce_index + 1)
        s1 = [Signal(name="s1_valid"), Signal(name="s1_first"), Signal(name="s1_last"), Signal(bank_bits, name="s1_bank"),
              Signal(range(n), name="s1_index")]
        m.d.sync += [s1[0].eq(issue), s1[1].eq(reduce_index == 0), s1[2].eq(at_top),
                     s1[3].eq(rows_reduced[:bank_bits]), s1[4].eq(reduce_index)]
        if buffer == "ecp5":
            later = [Signal.like(tag, name=f"s1r_{tag.name[3:]}") for tag in s1]
            m.d.sync += [a.eq(b) for a, b in zip(later, s1)]
            s1 = later
        self.valid, self.first, self.last = Signal(name="s2_valid"), Signal(name="s2_first"), Signal(name="s2_last")
        self.bank, self.x = Signal(bank_bits, name="s2_bank"), Signal(x_shape, name="s2_x")
        self.index = Signal(range(n), name="s2_index")
        # The row maximum registered beside the element (a bank's maximum is steady from the row's last
        # write until its output pass has read it), so that the bank multiplexer is not in front of the
        # block's arithmetic at s2.
        self.max = Signal(x_shape, name="s2_max")
        m.d.sync += [self.valid.eq(s1[0]), self.first.eq(s1[1]), self.last.eq(s1[2]), self.bank.eq(s1[3]),
                     self.index.eq(s1[4]), self.x.eq(reduce_word), self.max.eq(row_max[s1[3]])]

    def top_of(self, bank):
        """With ``variable_length``: the last index (length minus one) of the row in ``bank``, through a
        new asynchronous read port; set when the row is written, steady until its output pass has read
        it."""
        port = self._row_tops.read_port(domain="comb")
        self.m.d.comb += port.addr.eq(bank)
        return port.data[:-1]

    def _row_end(self, issue, index, rows, written_now, written_single, restart_too, name):
        """With ``variable_length``: whether ``index`` is the last of the row in bank ``rows[:bank_bits]``,
        from flip-flops and one compare, not through the multiplexer over the banks' last indices.

        The last index comes from a register of the bank's entry, read a cycle earlier; in the cycle after
        the pass moves on to the next bank (``issue`` at the end), or after ``restart_too``, the index is
        0 and the end is whether the new row is one element long: a flip-flop, set from the next bank's
        entry or, when ``written_now``, from ``written_single`` (the entry being written)."""
        m = self.m
        bank_bits = self.bank_bits
        last_index, single, restart = (Signal(range(self.n), name=f"{name}_last_index"),
                                       Signal(name=f"{name}_single"), Signal(name=f"{name}_restart"))
        at_end = Signal(name=f"{name}_at_end")
        next_bank = (rows[:bank_bits] + 1)[:bank_bits]
        m.d.sync += [
            last_index.eq(self.top_of(rows[:bank_bits])),
            single.eq(Mux(written_now, written_single, self._single_of(next_bank))),
            restart.eq((issue & at_end) | restart_too),
        ]
        m.d.comb += at_end.eq(Mux(restart, single, index == last_index))
        return at_end

    def _single_of(self, bank):
        """Whether the row in ``bank`` is one element long (see :meth:`top_of`)."""
        port = self._row_tops.read_port(domain="comb")
        self.m.d.comb += port.addr.eq(bank)
        return port.data[-1]

    def tags(self, delay):
        """``(valid, first, last, bank)`` of the reduce pass ``delay`` registers after stage ``s2``, to go
        with a value the block has computed through as many stages."""
        tags = [self.valid, self.first, self.last, self.bank]
        for stage in range(delay):
            later = [Signal(len(t), name=f"r{stage}_{t.name}") for t in tags]
            self.m.d.sync += [a.eq(b) for a, b in zip(later, tags)]
            tags = later
        return tuple(tags)

    def params(self, shape, name):
        """A per-bank parameter array for the block to store a row's parameters in."""
        return Array(Signal(shape, name=f"{name}_{b}") for b in range(self.banks))

    def output_pass(self, o, arrays, depth):
        """Build the output pass's reads and a stallable pipeline of ``depth`` stages that carries each
        element's row maximum and its row's entries of ``arrays`` (from :meth:`params`). The block
        computes its result from them and drives ``o.payload``/``o.valid`` through
        :meth:`OutputPass.stalled`."""
        m = self.m
        advance, issue = Signal(), Signal()
        out_index = Signal(range(self.n))
        bank = self._rows_out[:self.bank_bits]
        if self.buffer == "ecp5":
            self._out_read = self._ram("buffer_out", issue, advance)
        m.d.comb += [
            advance.eq(~o.valid | o.ready),
            issue.eq(advance & (self._rows_out != self._rows_ready)),
            self._out_read.addr.eq(Cat(out_index, bank)),
        ]
        if self.variable_length:
            # A row's last index is written long before its output pass reads it (the parameters
            # come after the reduce pass), so no write is in flight here.
            out_end = self._row_end(issue, out_index, self._rows_out, 0, 0, restart_too=0, name="out")
        else:
            out_end = out_index == self.n - 1
        # Outside the If: a continuous assignment, which Icarus evaluates at time 0. As an always block it
        # ran only once an input changed, and every input of out_end is now a register that holds its
        # initial value, so the bank count took an unknown row_freed until the first output.
        m.d.comb += self._row_freed.eq(issue & out_end)
        with m.If(issue):
            with m.If(out_end):
                m.d.sync += [out_index.eq(0), self._rows_out.eq(self._rows_out + 1)]
            with m.Else():
                m.d.sync += out_index.eq(out_index + 1)
        row_end = [out_end] if self.variable_length else []
        if self.banks >= ONE_HOT_BANKS:
            # The bank number's bits, which also address the buffer, drove every bit's multiplexer over
            # the banks: 695 loads on one bit (ilayernorm c3_i6, 32 banks, the ECP5 critical path). A
            # one-hot copy of the bank turns each multiplexer into an OR of ANDs, each of its bits a
            # select for one bank's entries only.
            one_hot = Signal(self.banks, init=1, name="out_bank_one_hot")
            with m.If(issue & out_end):
                m.d.sync += one_hot.eq(one_hot.rotate_left(1))

            def select(array):
                selected = Signal.like(array[0], name=f"out_{array[0].name.rsplit('_', 1)[0]}")
                width = len(selected)
                terms = [array[b].as_unsigned() & one_hot[b].replicate(width) for b in range(self.banks)]
                m.d.comb += selected.eq(_or_all(terms))
                return selected
        else:
            def select(array):
                return array[bank]
        carried = [select(self.row_max)] + [select(array) for array in arrays] + row_end + [out_index]
        valid, values = [None], [None]
        previous_valid, previous_values = issue, carried
        if self.buffer == "ecp5":
            # The read latch's stage, before c1 (c1 has the word on the DP16KD's output register).
            c0_valid = Signal(name="c0_valid")
            c0_values = [Signal(Value.cast(value).shape(), name=f"c0_v{index}") for index, value in enumerate(carried)]
            with m.If(advance):
                m.d.sync += [c0_valid.eq(issue), *[a.eq(b) for a, b in zip(c0_values, carried)]]
            previous_valid, previous_values = c0_valid, c0_values
        for k in range(1, depth + 1):
            stage_valid = Signal(name=f"c{k}_valid")
            stage_values = [Signal(Value.cast(value).shape(), name=f"c{k}_v{index}")
                            for index, value in enumerate(previous_values)]
            with m.If(advance):
                m.d.sync += [stage_valid.eq(previous_valid),
                             *[a.eq(b) for a, b in zip(stage_values, previous_values)]]
            valid.append(stage_valid)
            values.append(stage_values)
            previous_valid, previous_values = stage_valid, stage_values
        if self.buffer == "ecp5":
            x = Signal(self.x_shape, name="c2_x")
            with m.If(advance):
                m.d.sync += x.eq(self._out_read.data)
        else:
            word, x = Signal(self.x_shape, name="c1_x"), Signal(self.x_shape, name="c2_x")
            with m.If(advance):
                m.d.sync += [word.eq(self._out_read.data), x.eq(word)]
        last = [None] + [stage[-2] for stage in values[1:]] if self.variable_length else None
        return OutputPass(m, advance, valid, values, x, last)
