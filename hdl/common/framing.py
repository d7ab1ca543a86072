"""Framing of the board link on ``amaranth.lib.stream``: COBS decoder and encoder, CRC check and
append, the frame buffer, and the adapters between link bytes and a block's payloads.

The frame format, the error codes and their order are those of :mod:`qarith.golden.common.frames`,
whose :func:`~qarith.golden.common.frames.classify` is the golden model of :class:`FrameReceiver`
and whose :func:`~qarith.golden.common.frames.cobs_encode` that of :class:`COBSEncoder`. Every unit
takes at most one byte per cycle and honours backpressure on its output.
"""

from amaranth.hdl import Cat, Module, Shape, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...golden.common.frames import CRC, MAX_FRAME, Error, beat_bytes

__all__ = ["decoded_layout", "frame_byte_layout", "frame_info_layout", "COBSDecoder", "COBSEncoder",
           "CRCAppender", "FrameReceiver", "BytesToBeats", "BeatsToBytes"]

#: A decoded byte, or (``end``) the end of a frame, ``error`` when its last COBS block was incomplete.
decoded_layout = data.StructLayout({"data": 8, "end": 1, "error": 1})
#: A byte of a frame with ``last`` on its final byte.
frame_byte_layout = data.StructLayout({"data": 8, "last": 1})
#: A received frame: the :class:`~qarith.golden.common.frames.Error` code (0 when good), its command
#: and length fields.
frame_info_layout = data.StructLayout({"error": 4, "command": 8, "length": 8})


class COBSDecoder(wiring.Component):
    """COBS decoder: wire bytes in, decoded bytes and end-of-frame markers out (one per delimiter).

    The implied zero of a block shorter than 254 bytes is sent when the next block's code byte arrives,
    so every input byte gives at most one output. Latency 1 cycle.

    Members
    -------
    i : In(stream.Signature(8))
    o : Out(stream.Signature(decoded_layout))
    """

    i: In(stream.Signature(8))
    o: Out(stream.Signature(decoded_layout))

    def elaborate(self, platform):
        m = Module()
        remaining = Signal(8)           # data bytes left in the current block; 0: a code byte is next
        zero_pending = Signal()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            byte = self.i.payload
            with m.If(byte == 0):
                m.d.sync += [self.o.payload.end.eq(1), self.o.payload.error.eq(remaining != 0),
                             self.o.payload.data.eq(0), self.o.valid.eq(1),
                             remaining.eq(0), zero_pending.eq(0)]
            with m.Elif(remaining == 0):
                m.d.sync += [remaining.eq(byte - 1), zero_pending.eq(byte != 0xFF),
                             self.o.payload.end.eq(0), self.o.payload.error.eq(0),
                             self.o.payload.data.eq(0), self.o.valid.eq(zero_pending)]
            with m.Else():
                m.d.sync += [remaining.eq(remaining - 1), self.o.payload.end.eq(0),
                             self.o.payload.error.eq(0), self.o.payload.data.eq(byte), self.o.valid.eq(1)]
        return m


class COBSEncoder(wiring.Component):
    """COBS encoder: frame bytes (``last`` on the final one) in, wire bytes and the ``0x00`` delimiter
    out. A block of up to 254 non-zero bytes is held in a 254-byte memory until its end is known,
    then sent after its code byte.

    Members
    -------
    i : In(stream.Signature(frame_byte_layout))
    o : Out(stream.Signature(8))
    """

    i: In(stream.Signature(frame_byte_layout))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = block = Memory(shape=8, depth=254, init=[])
        write = block.write_port()
        read = block.read_port()
        count = Signal(range(255))      # bytes held
        code = Signal(8)
        index = Signal(range(255))
        final = Signal()                # the frame's last byte has been taken
        trailing_one = Signal()         # ... and it was a zero: an empty block (code 1) follows

        with m.FSM():
            with m.State("FILL"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    byte, last = self.i.payload.data, self.i.payload.last
                    m.d.sync += [final.eq(last), trailing_one.eq(last & (byte == 0))]
                    with m.If(byte == 0):
                        m.d.sync += code.eq(count + 1)
                        m.next = "CODE"
                    with m.Else():
                        m.d.comb += [write.addr.eq(count), write.data.eq(byte), write.en.eq(1)]
                        m.d.sync += count.eq(count + 1)
                        with m.If(count == 253):
                            m.d.sync += code.eq(0xFF)
                            m.next = "CODE"
                        with m.Elif(last):
                            m.d.sync += code.eq(count + 2)
                            m.next = "CODE"
            with m.State("CODE"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(code), read.addr.eq(0)]
                with m.If(self.o.ready):
                    m.d.sync += index.eq(0)
                    with m.If(code != 1):
                        m.next = "DATA"
                    with m.Else():
                        m.next = "NEXT"
            with m.State("DATA"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(read.data),
                             read.en.eq(self.o.ready), read.addr.eq(index + 1)]
                with m.If(self.o.ready):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index + 2 == code):
                        m.next = "NEXT"
            with m.State("NEXT"):
                m.d.sync += count.eq(0)
                with m.If(trailing_one):
                    m.d.sync += [code.eq(1), trailing_one.eq(0)]
                    m.next = "CODE"
                with m.Elif(final):
                    m.next = "DELIMITER"
                with m.Else():
                    m.next = "FILL"
            with m.State("DELIMITER"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(0)]
                with m.If(self.o.ready):
                    m.d.sync += final.eq(0)
                    m.next = "FILL"
        return m


class CRCAppender(wiring.Component):
    """Passes a frame's bytes through and appends their CRC-16, most significant byte first; ``last``
    moves to the second CRC byte.

    Members
    -------
    i : In(stream.Signature(frame_byte_layout))
    o : Out(stream.Signature(frame_byte_layout))
    """

    i: In(stream.Signature(frame_byte_layout))
    o: Out(stream.Signature(frame_byte_layout))

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = CRC.create()
        first = Signal(init=1)
        with m.FSM():
            with m.State("DATA"):
                m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.data.eq(self.i.payload.data),
                             self.i.ready.eq(self.o.ready),
                             crc.data.eq(self.i.payload.data), crc.valid.eq(self.i.valid & self.o.ready),
                             crc.start.eq(first)]
                with m.If(self.i.valid & self.o.ready):
                    m.d.sync += first.eq(self.i.payload.last)
                    with m.If(self.i.payload.last):
                        m.next = "HIGH"
            with m.State("HIGH"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.data.eq(crc.crc[8:])]
                with m.If(self.o.ready):
                    m.next = "LOW"
            with m.State("LOW"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.data.eq(crc.crc[:8]), self.o.payload.last.eq(1)]
                with m.If(self.o.ready):
                    m.next = "DATA"
        return m


class FrameReceiver(wiring.Component):
    """Collects one decoded frame into a buffer, checks it and offers it on ``frame``.

    Checks in the order of :func:`qarith.golden.common.frames.classify`: COBS structure, size, at
    least command + length + CRC, length field against the byte count, CRC. Empty frames (two
    delimiters in a row) are ignored. The buffer is read through ``addr``/``data`` (payload byte ``n``
    at ``addr = n``, data one cycle after the address) while ``frame.valid``; taking the frame
    (``frame.ready``) frees the buffer for the next one, and until then no byte is taken from ``i``.

    Members
    -------
    i : In(stream.Signature(decoded_layout))
    frame : Out(stream.Signature(frame_info_layout))
    addr : In(range(MAX_FRAME))
    data : Out(8)
    """

    i: In(stream.Signature(decoded_layout))
    frame: Out(stream.Signature(frame_info_layout))
    addr: In(range(MAX_FRAME))
    data: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = Memory(shape=8, depth=MAX_FRAME, init=[])
        write = buffer.write_port()
        read = buffer.read_port()
        m.submodules.crc = crc = CRC.create()
        count = Signal(range(MAX_FRAME + 2))
        command = Signal(8)
        length = Signal(8)

        m.d.comb += [read.addr.eq(self.addr + 2), self.data.eq(read.data), self.i.ready.eq(~self.frame.valid),
                     crc.data.eq(self.i.payload.data), crc.start.eq(count == 0)]
        with m.If(self.frame.valid & self.frame.ready):
            m.d.sync += self.frame.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(self.i.payload.end):
                m.d.sync += count.eq(0)
                with m.If(self.i.payload.error | (count != 0)):
                    m.d.sync += [self.frame.valid.eq(1), self.frame.payload.command.eq(command),
                                 self.frame.payload.length.eq(length)]
                    with m.If(self.i.payload.error):
                        m.d.sync += self.frame.payload.error.eq(Error.COBS)
                    with m.Elif(count > MAX_FRAME):
                        m.d.sync += self.frame.payload.error.eq(Error.OVERSIZE)
                    with m.Elif((count < 4) | (count - 4 < length)):
                        m.d.sync += self.frame.payload.error.eq(Error.SHORT)
                    with m.Elif(count - 4 > length):
                        m.d.sync += self.frame.payload.error.eq(Error.LONG)
                    with m.Elif(~crc.match_detected):
                        m.d.sync += self.frame.payload.error.eq(Error.CRC)
                    with m.Else():
                        m.d.sync += self.frame.payload.error.eq(0)
                m.d.sync += [command.eq(0), length.eq(0)]
            with m.Else():
                m.d.comb += crc.valid.eq(1)
                with m.If(count <= MAX_FRAME):
                    m.d.sync += count.eq(count + 1)
                with m.If(count < MAX_FRAME):
                    m.d.comb += [write.addr.eq(count), write.data.eq(self.i.payload.data), write.en.eq(1)]
                with m.If(count == 0):
                    m.d.sync += command.eq(self.i.payload.data)
                with m.If(count == 1):
                    m.d.sync += length.eq(self.i.payload.data)
        return m


class BytesToBeats(wiring.Component):
    """Little-endian link bytes to payloads of ``shape`` (whole bytes per beat, high bits dropped).

    Members
    -------
    i : In(stream.Signature(8))
    o : Out(stream.Signature(shape))
    """

    def __init__(self, shape):
        self.size = beat_bytes(_width(shape))
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        gathered = Signal(8 * self.size)
        index = Signal(range(self.size + 1))
        m.d.comb += [self.o.payload.eq(gathered), self.i.ready.eq(~self.o.valid | self.o.ready)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += gathered.eq(Cat(gathered[8:], self.i.payload))
            with m.If(index == self.size - 1):
                m.d.sync += [index.eq(0), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += index.eq(index + 1)
        return m


class BeatsToBytes(wiring.Component):
    """Payloads of ``shape`` to little-endian link bytes (whole bytes per beat, zero-padded), with
    ``last`` on each beat's final byte.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(frame_byte_layout))
    """

    def __init__(self, shape):
        self.size = beat_bytes(_width(shape))
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(frame_byte_layout))})

    def elaborate(self, platform):
        m = Module()
        scattered = Signal(8 * self.size)
        index = Signal(range(self.size + 1))
        m.d.comb += [self.o.payload.data.eq(scattered[:8]), self.o.payload.last.eq(index == 1),
                     self.o.valid.eq(index != 0), self.i.ready.eq(index == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [scattered.eq(Value.cast(self.i.payload)), index.eq(self.size)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [scattered.eq(scattered[8:]), index.eq(index - 1)]
        return m


def _width(shape):
    """Bits of a payload shape (a plain shape or a ``data.Layout``)."""
    return shape.size if isinstance(shape, data.Layout) else Shape.cast(shape).width
