"""The board shell: UART pins, the framed link and FIFOs around any one stream block.

Data path (every arrow an ``amaranth.lib.stream`` handshake, one byte or beat per cycle at most)::

    rx -> UARTReceiver -> receive FIFO (512 B) -> COBSDecoder -> FrameReceiver (frame buffer, CRC check)
       -> dispatcher -> BytesToBeats -> input FIFO -> block -> output FIFO -> BeatsToBytes -> packer
    dispatcher replies / packer OUTPUT frames -> arbiter -> CRCAppender -> COBSEncoder -> UARTTransmitter -> tx

The frame format and commands are :mod:`qarith.golden.common.frames`. A STREAM frame is carried out
only when it is whole, its CRC is good and all its beats fit into the input FIFO; otherwise it gets an
error reply and nothing of it is taken, so an accepted beat is never lost and beats leave in the order
they came. A STREAM frame whose sequence byte equals the last accepted one is acknowledged again
without taking its beats (the host's retry after a lost acknowledgement). Output beats leave in OUTPUT
frames as soon as the output FIFO holds any, as many per frame as it holds (up to one frame), with a
sequence byte so the host notices a lost frame. The block sees backpressure only from the output FIFO.

LEDs: ``led[0]`` blinks (about 1.4 s period at 12 MHz) while the design runs; ``led[1]`` lights after
any malformed or refused frame and goes out on RESET.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Shape, Signal, Value
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.common.frames import COUNTERS, Command, Error, Identity, beat_bytes, config_hash, frame_beats
from ..hdl.common.framing import (
    BeatsToBytes,
    BytesToBeats,
    COBSDecoder,
    COBSEncoder,
    CRCAppender,
    FrameReceiver,
    frame_byte_layout,
)
from ..hdl.common.uart import UARTReceiver, UARTTransmitter, uart_divisor

__all__ = ["Shell", "payload_width", "static_ports"]

#: Bytes the receive FIFO holds: more than one whole encoded frame, so the host may send the next frame
#: while the board still replies to the last one.
RX_FIFO_DEPTH = 512
#: Width of each error counter (saturating).
COUNTER_WIDTH = 16


def payload_width(shape):
    """Bits of a stream payload shape (a plain shape or a ``data.Layout``)."""
    return shape.size if isinstance(shape, data.Layout) else Shape.cast(shape).width


def static_ports(component):
    """``(name, width)`` of a block's ports other than its streams ``i`` and ``o``, in declaration
    order: the ports SET_STATIC writes."""
    ports = []
    for name, member in component.signature.members.items():
        if name in ("i", "o"):
            continue
        if not member.is_port or member.flow != In:
            raise TypeError(f"Block port {name!r} must be an input port to be set over the link, not {member!r}")
        ports.append((name, payload_width(member.shape)))
    return tuple(ports)


def _fifo_depth(beats):
    """A FIFO depth of at least two whole frames of ``beats`` beats (a power of two)."""
    depth = 16
    while depth < 2 * beats:
        depth *= 2
    return depth


class Shell(wiring.Component):
    """The board top around one block, minus the platform's pins.

    Parameters
    ----------
    generator : type
        The block's ``wiring.Component`` class, with stream ports ``i`` and ``o``.
    cfg : object
        Its configuration (passed to ``generator``).
    name : str
        What IDENTIFY reports, e.g. ``"requant:int8"``.
    clk_hz : int
        Frequency of the ``sync`` clock.
    baud : int
        Link rate; must divide ``clk_hz`` with less than 1 % error.
    in_depth, out_depth : int or None
        FIFO depths in beats (default: two whole frames' worth, at least 16).

    Members
    -------
    rx : In(1)
    tx : Out(1)
    led : Out(2)

    Attributes
    ----------
    identity : Identity
        The IDENTIFY reply.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    led: Out(2)

    def __init__(self, generator, cfg, name, clk_hz, baud, in_depth=None, out_depth=None):
        self.divisor = uart_divisor(clk_hz, baud)
        self.block = generator(cfg)
        self.in_shape = self.block.i.payload.shape()
        self.out_shape = self.block.o.payload.shape()
        self.in_width, self.out_width = payload_width(self.in_shape), payload_width(self.out_shape)
        for label, width in (("input", self.in_width), ("output", self.out_width)):
            if frame_beats(width) == 0:
                raise ValueError(f"Block {label} beats of {width} bits do not fit one frame")
        self.statics = static_ports(self.block)
        self.in_depth = in_depth or _fifo_depth(frame_beats(self.in_width))
        self.out_depth = out_depth or _fifo_depth(frame_beats(self.out_width))
        self.identity = Identity(name, config_hash(cfg), self.in_width, self.out_width, self.block.latency,
                                 self.in_depth, self.out_depth, int(clk_hz), int(baud), self.statics)
        self.identity_bytes = self.identity.to_bytes()
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        in_bytes, out_bytes = beat_bytes(self.in_width), beat_bytes(self.out_width)
        block_reset = Signal()

        # Receive path.
        m.submodules.uart_rx = uart_rx = UARTReceiver(self.divisor)
        m.submodules.rx_fifo = rx_fifo = fifo.SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        m.submodules.decoder = decoder = COBSDecoder()
        m.submodules.receiver = receiver = FrameReceiver()
        m.d.comb += uart_rx.rx.eq(self.rx)
        wiring.connect(m, uart_rx.o, rx_fifo.w_stream)
        wiring.connect(m, rx_fifo.r_stream, decoder.i)
        wiring.connect(m, decoder.o, receiver.i)

        # The block and its FIFOs, all reset by RESET.
        block = self.block
        reset = ResetInserter(block_reset)
        unpack = BytesToBeats(self.in_shape)
        in_fifo = fifo.SyncFIFOBuffered(width=self.in_width, depth=self.in_depth)
        out_fifo = fifo.SyncFIFOBuffered(width=self.out_width, depth=self.out_depth)
        pack = BeatsToBytes(self.out_shape)
        m.submodules.unpack, m.submodules.in_fifo = reset(unpack), reset(in_fifo)
        m.submodules.block, m.submodules.out_fifo, m.submodules.pack = reset(block), reset(out_fifo), reset(pack)
        m.d.comb += [
            in_fifo.w_data.eq(Value.cast(unpack.o.payload)),
            in_fifo.w_en.eq(unpack.o.valid), unpack.o.ready.eq(in_fifo.w_rdy),
            block.i.payload.eq(in_fifo.r_data), block.i.valid.eq(in_fifo.r_rdy), in_fifo.r_en.eq(block.i.ready),
            out_fifo.w_data.eq(block.o.payload), out_fifo.w_en.eq(block.o.valid), block.o.ready.eq(out_fifo.w_rdy),
            pack.i.payload.eq(out_fifo.r_data),
        ]
        static_regs = []
        for name, width in self.statics:
            register = Signal(width, name=f"static_{name}")
            m.d.comb += getattr(block, name).eq(register)
            static_regs.append(register)

        # Transmit path: replies and OUTPUT frames share it a frame at a time.
        m.submodules.crc_append = crc_append = CRCAppender()
        m.submodules.encoder = encoder = COBSEncoder()
        m.submodules.uart_tx = uart_tx = UARTTransmitter(self.divisor)
        wiring.connect(m, crc_append.o, encoder.i)
        wiring.connect(m, encoder.o, uart_tx.i)
        m.d.comb += self.tx.eq(uart_tx.tx)
        reply = stream.Signature(frame_byte_layout).create()
        output = stream.Signature(frame_byte_layout).create()
        owner = Signal(range(3))        # 0: none, 1: reply, 2: output
        with m.If(owner == 0):
            with m.If(reply.valid):
                m.d.sync += owner.eq(1)
            with m.Elif(output.valid):
                m.d.sync += owner.eq(2)
        for index, source in ((1, reply), (2, output)):
            with m.If(owner == index):
                m.d.comb += [crc_append.i.valid.eq(source.valid), crc_append.i.payload.eq(source.payload),
                             source.ready.eq(crc_append.i.ready)]
                with m.If(source.valid & source.ready & source.payload.last):
                    m.d.sync += owner.eq(0)

        # Packer: OUTPUT frames of up to frame_beats(out_width) beats, as many as the FIFO holds.
        hold = Signal()                 # RESET waits for the packer to finish its frame
        out_count = Signal(range(frame_beats(self.out_width) + 1))
        to_take = Signal.like(out_count)
        to_send = Signal.like(out_count)
        out_seq = Signal(8)
        packer_idle = Signal()
        m.d.comb += [pack.i.valid.eq(out_fifo.r_rdy & (to_take != 0)),
                     out_fifo.r_en.eq(pack.i.ready & (to_take != 0))]
        with m.If(pack.i.valid & pack.i.ready):
            m.d.sync += to_take.eq(to_take - 1)
        with m.FSM(name="packer"):
            with m.State("IDLE"):
                m.d.comb += packer_idle.eq(1)
                with m.If((out_fifo.level != 0) & ~hold):
                    count = Signal.like(out_count)
                    m.d.comb += count.eq(Mux(out_fifo.level > frame_beats(self.out_width), frame_beats(self.out_width), out_fifo.level))
                    m.d.sync += [out_count.eq(count), to_take.eq(count), to_send.eq(count)]
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                m.d.comb += [output.valid.eq(1), output.payload.data.eq(Command.OUTPUT)]
                with m.If(output.ready):
                    m.next = "LENGTH"
            with m.State("LENGTH"):
                m.d.comb += [output.valid.eq(1), output.payload.data.eq(1 + out_count * out_bytes)]
                with m.If(output.ready):
                    m.next = "SEQUENCE"
            with m.State("SEQUENCE"):
                m.d.comb += [output.valid.eq(1), output.payload.data.eq(out_seq)]
                with m.If(output.ready):
                    m.next = "BEATS"
            with m.State("BEATS"):
                m.d.comb += [output.valid.eq(pack.o.valid), output.payload.data.eq(pack.o.payload.data),
                             output.payload.last.eq(pack.o.payload.last & (to_send == 1)),
                             pack.o.ready.eq(output.ready)]
                with m.If(pack.o.valid & pack.o.ready & pack.o.payload.last):
                    m.d.sync += to_send.eq(to_send - 1)
                    with m.If(to_send == 1):
                        m.d.sync += out_seq.eq(out_seq + 1)
                        m.next = "IDLE"

        # Counters.
        counters = [Signal(COUNTER_WIDTH, name=f"count_{name}") for name in COUNTERS]
        count_event = Signal()
        count_index = Signal(range(len(COUNTERS)))
        for index, counter in enumerate(counters):
            event = ((count_event & (count_index == index)) if index >= 2 else
                     uart_rx.framing_error if index == 0 else uart_rx.overrun)
            with m.If(event & (counter != (1 << COUNTER_WIDTH) - 1)):
                m.d.sync += counter.eq(counter + 1)
        error_seen = Signal()

        # Dispatcher.
        info = receiver.frame.payload
        identity = Const(int.from_bytes(self.identity_bytes, "little"), 8 * len(self.identity_bytes))
        counter_bits = Cat(*counters)
        args = Signal(32)               # payload of short replies
        reply_cmd = Signal(8)
        reply_len = Signal(8)
        reply_kind = Signal(range(3))   # 0: args, 1: identity, 2: counters
        reply_index = Signal(8)
        ptr = Signal(range(256))        # payload byte whose data the buffer shows this cycle
        remaining = Signal(8)
        beats = Signal(8)
        seq = Signal(8)
        last_seq = Signal(8)
        seq_valid = Signal()
        free = Signal(16)
        static_index = Signal(8)
        max_static_bytes = max((beat_bytes(w) for _, w in self.statics), default=1)
        static_shift = Signal(8 * max_static_bytes)
        m.d.comb += [receiver.addr.eq(ptr), free.eq(self.in_depth - in_fifo.level)]

        def fail(code):
            m.d.sync += [reply_cmd.eq(Command.ERROR), reply_len.eq(2), reply_kind.eq(0),
                         args.eq(Cat(Const(code, 8), info.command)), error_seen.eq(1)]
            m.d.comb += [count_event.eq(1), count_index.eq(COUNTERS.index(Error(code).name.lower()))]
            m.next = "REPLY"

        def succeed(command, length, kind=0, arguments=None):
            m.d.sync += [reply_cmd.eq(command | 0x80), reply_len.eq(length), reply_kind.eq(kind)]
            if arguments is not None:
                m.d.sync += args.eq(arguments)
            m.d.comb += [count_event.eq(1), count_index.eq(COUNTERS.index("frames_ok"))]
            m.next = "REPLY"

        with m.FSM(name="dispatcher"):
            with m.State("IDLE"):
                m.d.sync += ptr.eq(0)
                with m.If(receiver.frame.valid):
                    with m.If(info.error != 0):
                        m.d.sync += [reply_cmd.eq(Command.ERROR), reply_len.eq(2), reply_kind.eq(0),
                                     args.eq(Cat(info.error, Const(0, 4), info.command)), error_seen.eq(1)]
                        m.d.comb += [count_event.eq(1), count_index.eq(info.error + 1)]
                        m.next = "REPLY"
                    with m.Elif(info.command == Command.IDENTIFY):
                        with m.If(info.length != 0):
                            fail(Error.ARGUMENT)
                        with m.Else():
                            succeed(Command.IDENTIFY, len(self.identity_bytes), kind=1)
                    with m.Elif(info.command == Command.COUNTERS):
                        with m.If(info.length != 0):
                            fail(Error.ARGUMENT)
                        with m.Else():
                            succeed(Command.COUNTERS, len(counters) * COUNTER_WIDTH // 8, kind=2)
                    with m.Elif(info.command == Command.RESET):
                        with m.If(info.length != 0):
                            fail(Error.ARGUMENT)
                        with m.Else():
                            m.next = "RESET"
                    with m.Elif(info.command == Command.SET_STATIC):
                        with m.If((info.length == 0) | (len(self.statics) == 0)):
                            fail(Error.ARGUMENT)
                        with m.Else():
                            m.d.sync += ptr.eq(1)
                            m.next = "STATIC_INDEX"
                    with m.Elif(info.command == Command.STREAM):
                        with m.If(info.length == 0):
                            fail(Error.ARGUMENT)
                        with m.Else():
                            m.d.sync += [ptr.eq(1), remaining.eq(info.length - 1), beats.eq(0)]
                            m.next = "STREAM_SEQUENCE"
                    with m.Else():
                        fail(Error.COMMAND)

            with m.State("STATIC_INDEX"):
                sizes = Array(Const(beat_bytes(w), 8) for _, w in self.statics)
                index = receiver.data
                m.d.sync += static_index.eq(index)
                with m.If(index >= len(self.statics)):
                    fail(Error.ARGUMENT)
                with m.Elif(info.length != 1 + sizes[index]):
                    fail(Error.ARGUMENT)
                with m.Else():
                    m.d.sync += [ptr.eq(2), remaining.eq(sizes[index])]
                    m.next = "STATIC_DATA"
            with m.State("STATIC_DATA"):
                m.d.sync += [static_shift.eq(Cat(static_shift[8:], receiver.data)), ptr.eq(ptr + 1),
                             remaining.eq(remaining - 1)]
                with m.If(remaining == 1):
                    m.next = "STATIC_COMMIT"
            with m.State("STATIC_COMMIT"):
                for index, ((name, width), register) in enumerate(zip(self.statics, static_regs)):
                    offset = 8 * (max_static_bytes - beat_bytes(width))
                    with m.If(static_index == index):
                        m.d.sync += register.eq(static_shift[offset:offset + width])
                succeed(Command.SET_STATIC, 1, arguments=static_index)

            with m.State("STREAM_SEQUENCE"):
                m.d.sync += seq.eq(receiver.data)
                m.next = "STREAM_COUNT"
            with m.State("STREAM_COUNT"):
                # Beats in the frame by repeated subtraction: at most 254 cycles, no divider.
                with m.If(remaining >= in_bytes):
                    m.d.sync += [remaining.eq(remaining - in_bytes), beats.eq(beats + 1)]
                with m.Elif(remaining != 0):
                    fail(Error.ARGUMENT)
                with m.Elif(seq_valid & (seq == last_seq)):
                    succeed(Command.STREAM, 4, arguments=Cat(seq, beats, free))
                with m.Elif(beats > free):
                    fail(Error.FIFO_FULL)
                with m.Elif(beats == 0):
                    succeed(Command.STREAM, 4, arguments=Cat(seq, beats, free))
                with m.Else():
                    m.d.sync += [last_seq.eq(seq), seq_valid.eq(1), args.eq(Cat(seq, beats, free - beats))]
                    m.next = "STREAM_PUSH"
            with m.State("STREAM_PUSH"):
                m.d.comb += [unpack.i.valid.eq(1), unpack.i.payload.eq(receiver.data)]
                with m.If(unpack.i.ready):
                    m.d.comb += receiver.addr.eq(ptr + 1)
                    m.d.sync += ptr.eq(ptr + 1)
                    with m.If(ptr == info.length - 1):
                        succeed(Command.STREAM, 4)

            with m.State("RESET"):
                m.d.comb += hold.eq(1)
                with m.If(packer_idle & (owner != 2)):
                    m.d.comb += block_reset.eq(1)
                    m.d.sync += [seq_valid.eq(0), out_seq.eq(0), error_seen.eq(0)]
                    succeed(Command.RESET, 0)

            with m.State("REPLY"):
                byte_index = (reply_index - 2).as_unsigned()
                m.d.comb += reply.valid.eq(1)
                with m.If(reply_index == 0):
                    m.d.comb += reply.payload.data.eq(reply_cmd)
                with m.Elif(reply_index == 1):
                    m.d.comb += [reply.payload.data.eq(reply_len), reply.payload.last.eq(reply_len == 0)]
                with m.Else():
                    m.d.comb += [reply.payload.data.eq(Mux(reply_kind == 0, args.word_select(byte_index, 8),
                                                                 Mux(reply_kind == 1,
                                                                     identity.word_select(byte_index, 8),
                                                                     counter_bits.word_select(byte_index, 8)))),
                                 reply.payload.last.eq(reply_index - 1 == reply_len)]
                with m.If(reply.ready):
                    m.d.sync += reply_index.eq(reply_index + 1)
                    with m.If(reply.payload.last):
                        m.d.sync += reply_index.eq(0)
                        m.d.comb += receiver.frame.ready.eq(1)
                        m.next = "IDLE"

        heartbeat = Signal(24)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        m.d.comb += self.led.eq(Cat(heartbeat[-1], error_seen))
        return m

