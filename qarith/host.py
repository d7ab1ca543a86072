"""Host driver of the board link: the same code talks to a board (``/dev/ttyUSB1``), a simulated
board (``socket://127.0.0.1:PORT``, see :mod:`qarith.sim.common.shell`) or nothing at all (``loop://``),
because the port is opened by URL with pyserial's ``serial_for_url`` (as LiteX's
``litex/tools/remote/comm_uart.py`` does).

The host sends one frame at a time and waits for its reply (the board's receive FIFO holds more than
one frame, so nothing it has been sent is ever dropped); OUTPUT frames the board sends meanwhile are
collected in order. A frame damaged on the way (the board replies COBS/SHORT/LONG/CRC/OVERSIZE) or a
reply that does not come within ``timeout`` is sent again, up to ``retries`` times: STREAM frames carry
a sequence byte, so a frame the board took whose acknowledgement was lost is acknowledged again, not
taken twice. Anything else ends in a :class:`LinkError` that says what happened and what to check.
"""

import dataclasses
import time

import serial

from .golden.common.frames import (
    COUNTERS,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    Command,
    Deframer,
    Error,
    FrameError,
    Identity,
    beat_bytes,
    encode_frame,
    frame_beats,
    pack_beats,
    unpack_beats,
)

__all__ = ["Board", "LinkError", "BoardError", "FifoFull", "RunSummary", "play", "link_throughput"]

#: Errors that mean the frame was damaged on the line: sending it again may succeed.
TRANSPORT_ERRORS = (Error.COBS, Error.OVERSIZE, Error.SHORT, Error.LONG, Error.CRC)


class LinkError(Exception):
    """The link failed: no reply, a lost output frame, or the board refused a request."""


class BoardError(LinkError):
    """The board answered a request with an ERROR frame."""

    def __init__(self, code, command, url):
        self.code, self.command = Error(code), command
        super().__init__(f"board at {url} refused command 0x{command:02x}: {self.code.name} error")


class FifoFull(BoardError):
    """A STREAM frame did not fit into the board's input FIFO (nothing of it was taken)."""


class Board:
    """One board on one port; use :meth:`open`.

    Attributes
    ----------
    frames_sent : int
        Frames written, retries included.
    retries_used : int
        Frames sent again after a timeout or a damaged-frame error.
    bad_frames : int
        Frames from the board that failed the host's own checks.
    """

    def __init__(self, port, url, timeout=1.0, retries=3):
        self.port, self.url, self.timeout, self.retries = port, url, timeout, retries
        self._deframer = Deframer()
        self._frames = []               # received, not yet consumed
        self._outputs = bytearray()
        self._output_seq = 0
        self._stream_seq = 0
        self._identity = None
        self.frames_sent = self.retries_used = self.bad_frames = 0

    @classmethod
    def open(cls, url, baud=1_000_000, timeout=1.0, retries=3):
        """Open ``url`` (a device path or any pyserial URL). ``timeout`` is how long a reply may take
        (seconds; a simulated board needs more than a real one)."""
        try:
            port = serial.serial_for_url(url, baudrate=baud, timeout=0.01)
        except (serial.SerialException, ValueError) as error:
            raise LinkError(f"cannot open {url}: {error}. Is the board plugged in (ls /dev/ttyUSB*), "
                            f"and may you open it (group dialout)?") from None
        board = cls(port, url, timeout, retries)
        port.reset_input_buffer()
        return board

    def close(self):
        self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Frames.

    def send_raw(self, data):
        """Write bytes as they are (the malformed-traffic tests use this)."""
        self.port.write(bytes(data))
        self.port.flush()

    def send(self, command, payload=b""):
        """Send one frame, after a delimiter that ends any garbage the line carried before it."""
        self.frames_sent += 1
        self.send_raw(b"\x00" + encode_frame(command, payload))

    def _poll(self):
        data = self.port.read(max(1, self.port.in_waiting))
        for frame in self._deframer.feed(data):
            if isinstance(frame, FrameError):
                self.bad_frames += 1
            elif frame.command == Command.OUTPUT:
                self._take_output(frame)
            elif frame.command < 0x80:
                continue            # a request, not a reply: the port echoes what we send (loop://)
            else:
                self._frames.append(frame)

    def _take_output(self, frame):
        if not frame.payload:
            raise LinkError(f"empty OUTPUT frame from {self.url}")
        seq = frame.payload[0]
        if seq != self._output_seq:
            raise LinkError(f"output frame {self._output_seq} from {self.url} was lost (next came {seq}): "
                            f"its beats are gone; lower the baud rate or check the cable")
        self._output_seq = (seq + 1) & 0xFF
        self._outputs += frame.payload[1:]

    def reply(self, timeout=None):
        """The next reply frame (not OUTPUT), or None after ``timeout`` seconds."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._frames:
            if time.monotonic() > deadline:
                return None
            self._poll()
        return self._frames.pop(0)

    def request(self, command, payload=b""):
        """Send a request and return its reply's payload; raise :class:`BoardError` on an ERROR reply
        that sending again cannot fix, :class:`LinkError` when no reply comes."""
        command = Command(command)
        for attempt in range(self.retries + 1):
            if attempt:
                self.retries_used += 1
            self.send(command, payload)
            frame = self.reply()
            if frame is None:
                continue
            if frame.command == command.reply:
                return frame.payload
            if frame.command == Command.ERROR and len(frame.payload) == 2:
                code = frame.payload[0]
                if code in TRANSPORT_ERRORS:
                    continue
                raise (FifoFull if code == Error.FIFO_FULL else BoardError)(code, frame.payload[1], self.url)
            raise LinkError(f"unexpected frame 0x{frame.command:02x} from {self.url} in reply to {command.name}")
        raise LinkError(f"no reply to {command.name} from {self.url} after {self.retries + 1} tries of "
                        f"{self.timeout:g} s: is the board connected, programmed with a qarith bitstream "
                        f"(make program) and the baud rate right?")

    # Commands.

    def identify(self):
        """The :class:`~qarith.golden.common.frames.Identity` of the design on the board."""
        payload = self.request(Command.IDENTIFY)
        identity = Identity.from_bytes(payload)
        if identity.version != PROTOCOL_VERSION:
            raise LinkError(f"board at {self.url} speaks protocol version {identity.version}, this host "
                            f"{PROTOCOL_VERSION}: rebuild the bitstream (make bitstream) from this qarith")
        self._identity = identity
        return identity

    @property
    def identity(self):
        return self._identity or self.identify()

    def set_static(self, port, value):
        """Write static port ``port`` (name or index) with integer ``value``."""
        names = [name for name, _ in self.identity.static]
        index = names.index(port) if isinstance(port, str) else port
        if isinstance(port, str) and port not in names:
            raise LinkError(f"the block on {self.url} has no static port {port!r}; ports: {', '.join(names)}")
        width = self.identity.static[index][1]
        data = (value & ((1 << width) - 1)).to_bytes(beat_bytes(width), "little")
        self.request(Command.SET_STATIC, bytes([index]) + data)

    def reset(self):
        """Reset the block and its FIFOs; output beats not yet received are dropped."""
        self.request(Command.RESET)
        self._outputs.clear()
        self._output_seq = 0
        self._stream_seq = 0

    def counters(self):
        """The board's error counters by name (:data:`~qarith.golden.common.frames.COUNTERS`)."""
        payload = self.request(Command.COUNTERS)
        return {name: int.from_bytes(payload[2 * n:2 * n + 2], "little") for n, name in enumerate(COUNTERS)}

    def stream(self, beats):
        """Send one STREAM frame of input beats (integers); returns the FIFO's free beats after it."""
        data = pack_beats(beats, self.identity.in_width)
        payload = self.request(Command.STREAM, bytes([self._stream_seq]) + data)
        self._stream_seq = (self._stream_seq + 1) & 0xFF
        return int.from_bytes(payload[2:4], "little")

    def free(self):
        """Free beats in the input FIFO (a STREAM frame without beats)."""
        payload = self.request(Command.STREAM, bytes([self._stream_seq]))
        return int.from_bytes(payload[2:4], "little")

    def outputs(self):
        """Output beats received so far (and removes them)."""
        self._poll()
        size = beat_bytes(self.identity.out_width)
        whole = len(self._outputs) // size * size
        beats = unpack_beats(bytes(self._outputs[:whole]), self.identity.out_width)
        del self._outputs[:whole]
        return beats

    def run(self, beats, expect=None, frame_beats_max=None, progress=None):
        """Stream input ``beats`` (integers of the block's input width) through the block and return
        its output beats: ``expect`` of them, or (``expect=None``) all that arrive until none has come
        for ``timeout`` seconds. ``progress(beats_in, beats_out)`` is called after every frame."""
        identity = self.identity
        per_frame = min(frame_beats(identity.in_width), frame_beats_max or MAX_PAYLOAD)
        outputs, sent, free = [], 0, identity.in_depth
        beats = list(beats)
        while sent < len(beats):
            count = min(per_frame, len(beats) - sent, free)
            if count == 0:
                outputs += self._wait_outputs(0.02)
                free = self.free()
                continue
            try:
                free = self.stream(beats[sent:sent + count])
                sent += count
            except FifoFull:
                free = 0
            outputs += self.outputs()
            if progress:
                progress(sent, len(outputs))
        deadline = time.monotonic() + self.timeout
        while expect is None or len(outputs) < expect:
            new = self._wait_outputs(0.05)
            outputs += new
            if new:
                deadline = time.monotonic() + self.timeout
                if progress:
                    progress(sent, len(outputs))
            elif time.monotonic() > deadline:
                if expect is None:
                    break
                raise LinkError(f"expected {expect} output beats from {self.url}, got {len(outputs)} "
                                f"({self.timeout:g} s without a new one)")
        return outputs

    def _wait_outputs(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._poll()
            if self._outputs:
                break
        return self.outputs()


@dataclasses.dataclass
class RunSummary:
    """What :func:`play` did: beats each way, the mismatches against the golden model (case name,
    output index, expected, got) and the wall-clock seconds of the streaming."""
    cases: int = 0
    beats_in: int = 0
    beats_out: int = 0
    mismatches: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def beats_per_second(self):
        return self.beats_in / self.seconds if self.seconds else 0.0


def play(board, component, cases, frame_beats_max=None, progress=None):
    """Play test cases (:class:`qarith.sim.common.bench.Vectors`) through the block on ``board``:
    for each, reset the block, set its static ports, stream the input beats and compare every output
    beat with the golden model's. ``component`` gives the payload layouts (the block's interface).
    ``progress(case, beats_in, beats_out)`` is called as beats move."""
    from .sim.common.bench import pack, unpack
    in_shape, out_shape = component.i.payload.shape(), component.o.payload.shape()
    summary = RunSummary()
    for case in cases:
        board.reset()
        for name, value in case.static.items():
            board.set_static(name, pack(getattr(component, name).shape(), value))
        start = time.monotonic()
        report = (lambda sent, got, case=case: progress(case, sent, got)) if progress else None
        outputs = board.run([pack(in_shape, beat) for beat in case.beats], expect=len(case.expected),
                            frame_beats_max=frame_beats_max, progress=report)
        summary.seconds += time.monotonic() - start
        got = [unpack(out_shape, beat) for beat in outputs]
        summary.cases += 1
        summary.beats_in += len(case.beats)
        summary.beats_out += len(got)
        summary.mismatches += [(case.name, n, want, value) for n, (want, value) in enumerate(zip(case.expected, got))
                               if want != value]
        if len(got) != len(case.expected):
            summary.mismatches.append((case.name, len(got), f"{len(case.expected)} beats", f"{len(got)} beats"))
    return summary


def link_throughput(generator, cfg, name, beats, expect, static=None, clk_hz=12_000_000, baud=1_000_000,
                    simulator="verilator"):
    """Stream ``beats`` (integers) through a simulated board in frames as large as they go and return
    the measured rates, in board time (simulated cycles at ``clk_hz``): input and output beats/s,
    bytes/s each way, and the line's use each way (bytes/s over ``baud / 10``). ``static`` port values
    (integers by port name) are set first. Returns (outputs, figures)."""
    from .fpga.link_sim import simulated_board
    stats = {}
    with simulated_board(generator, cfg, name, clk_hz, baud, simulator, stats=stats) as url, \
            Board.open(url, timeout=120) as board:
        board.identify()
        board.reset()
        for port, value in (static or {}).items():
            board.set_static(port, value)
        outputs = board.run(beats, expect=expect)
        frames = board.frames_sent
    seconds = (stats["last_byte_cycle"] - stats["first_byte_cycle"]) / clk_hz
    line = baud / 10
    figures = {
        "design": name, "clk_hz": clk_hz, "baud": baud, "frames": frames, "beats_in": len(beats),
        "beats_out": len(outputs), "cycles": stats["last_byte_cycle"] - stats["first_byte_cycle"],
        "beats_in_per_s": round(len(beats) / seconds), "beats_out_per_s": round(len(outputs) / seconds),
        "to_board_bytes_per_s": round(stats["to_board_bytes"] / seconds),
        "from_board_bytes_per_s": round(stats["from_board_bytes"] / seconds),
        "to_board_line_use": round(stats["to_board_bytes"] / seconds / line, 3),
        "from_board_line_use": round(stats["from_board_bytes"] / seconds / line, 3),
    }
    return outputs, figures
