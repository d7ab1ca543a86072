"""The board link's frame format, shared by the host driver, the golden model and the test benches.

A frame is ``[command, length, payload (length bytes), CRC-16]``, COBS-encoded (Cheshire & Baker,
"Consistent Overhead Byte Stuffing", IEEE/ACM Trans. Networking 7(2), 1999) and ended by a ``0x00``
delimiter. The CRC is CRC-16/IBM-3740 (``CCITT-FALSE``: polynomial 0x1021, initial 0xFFFF, not
reflected) from ``amaranth.lib.crc``'s catalogue, over command, length and payload, appended most
significant byte first so that the receiver's CRC register ends on the algorithm's residue. The host
also sends a ``0x00`` before every frame: whatever garbage preceded it then ends as a frame of its own
(which gets an error reply) instead of corrupting the next one, and empty frames are ignored.

The COBS codec is written out here rather than taken from the PyPI ``cobs`` package: it is the model
of the hardware encoder (:class:`qarith.hdl.common.framing.COBSEncoder`), including the rule that a
full 254-byte block at the end of a frame has no trailing code byte, and the tests keep ``cobs`` as an
independent reference for both.

:func:`classify` is the golden model of the board's receiver: the error it returns for an encoded
frame is the one the hardware answers with, checked in the same order.
"""

import dataclasses
import enum
import hashlib

from amaranth.lib import crc

from .config import to_text

__all__ = ["PROTOCOL_VERSION", "MAX_PAYLOAD", "MAX_FRAME", "CRC", "Command", "Error", "COUNTERS",
           "FrameError", "Frame", "Identity", "crc16", "cobs_encode", "cobs_decode", "frame_bytes",
           "encode_frame", "classify", "decode_frame", "Deframer", "beat_bytes", "pack_beats",
           "unpack_beats", "config_hash", "frame_beats"]

#: Raised whenever the frame format or the meaning of a command changes.
PROTOCOL_VERSION = 1
#: The length field is one byte.
MAX_PAYLOAD = 255
#: Command, length, payload and CRC: the largest decoded frame the receiver holds.
MAX_FRAME = 2 + MAX_PAYLOAD + 2
CRC = crc.catalog.CRC16_IBM_3740(data_width=8)


class Command(enum.IntEnum):
    """Command codes. A reply carries the request's code with bit 7 set; the board sends
    :attr:`OUTPUT` frames on its own whenever output beats are waiting, and :attr:`ERROR` in reply to
    any frame it cannot carry out."""
    IDENTIFY = 0x01     # -> Identity bytes
    SET_STATIC = 0x02   # [port index, value (little-endian, the port's whole bytes)] -> [port index]
    STREAM = 0x03       # [sequence, input beats...] -> [sequence, beats accepted, free beats (2 bytes)]
    RESET = 0x04        # -> []: the block, its FIFOs and the stream sequence are reset
    COUNTERS = 0x05     # -> one 16-bit little-endian counter per name in COUNTERS
    OUTPUT = 0x90       # board -> host: [sequence, output beats...]
    ERROR = 0xFF        # board -> host: [Error code, the frame's command byte (0 if none)]

    @property
    def reply(self):
        return self | 0x80


class Error(enum.IntEnum):
    """Error codes of an :attr:`Command.ERROR` reply, in the order the receiver checks them."""
    COBS = 1        # the delimiter came in the middle of a COBS block
    OVERSIZE = 2    # more than MAX_FRAME decoded bytes
    SHORT = 3       # fewer bytes than command, length and CRC, or than the length field says
    LONG = 4        # more payload bytes than the length field says
    CRC = 5         # the CRC does not match
    COMMAND = 6     # unknown command code
    ARGUMENT = 7    # payload of the wrong size for its command, or no such static port
    FIFO_FULL = 8   # a STREAM frame's beats do not fit into the input FIFO (nothing was taken)


#: The error counters a COUNTERS reply holds, in order: UART framing errors (no stop bit), bytes lost
#: because the receive FIFO was full, then one per :class:`Error`, then frames carried out.
COUNTERS = ("uart_framing", "rx_overrun", *(e.name.lower() for e in Error), "frames_ok")


class FrameError(Exception):
    """A frame the receiver rejects; ``code`` is the :class:`Error` it replies with."""

    def __init__(self, code, command=0):
        super().__init__(f"{Error(code).name} error (command byte 0x{command:02x})")
        self.code, self.command = Error(code), command


@dataclasses.dataclass(frozen=True)
class Frame:
    command: int
    payload: bytes


def crc16(data):
    """The link's CRC of ``data`` (``amaranth.lib.crc`` catalogue's ``compute()``)."""
    return CRC.compute(bytes(data))


def cobs_encode(data):
    """COBS encoding of ``data`` (no delimiter). Blocks of 254 non-zero bytes have code 0xFF and no
    implied zero; a frame that ends with such a block gets no trailing code byte."""
    out, block, full = bytearray(), bytearray(), False
    for byte in data:
        full = False
        if byte == 0:
            out += bytes([len(block) + 1]) + block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out += b"\xff" + block
                block.clear()
                full = True
    if not full:
        out += bytes([len(block) + 1]) + block
    return bytes(out)


def _cobs_decode(data):
    """The hardware decoder's reading of one frame's bytes (no zeros): the bytes it outputs and whether
    the last block was complete."""
    out, remaining, zero_pending = bytearray(), 0, False
    for byte in data:
        if remaining == 0:
            if zero_pending:
                out.append(0)
            remaining, zero_pending = byte - 1, byte != 0xFF
        else:
            out.append(byte)
            remaining -= 1
    return bytes(out), remaining == 0


def cobs_decode(data):
    """Inverse of :func:`cobs_encode`; raises :class:`FrameError` (``COBS``) when the last block runs
    past the end of ``data`` or ``data`` holds a zero."""
    data = bytes(data)
    out, complete = _cobs_decode(data.split(b"\x00")[0])
    if b"\x00" in data or not complete:
        raise FrameError(Error.COBS, out[0] if out else 0)
    return out


def frame_bytes(command, payload=b""):
    """The decoded frame: command, length, payload, CRC (most significant byte first)."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"Frame payload must be at most {MAX_PAYLOAD} bytes, not {len(payload)}")
    body = bytes([command, len(payload)]) + payload
    return body + crc16(body).to_bytes(2, "big")


def encode_frame(command, payload=b""):
    """The frame as sent on the wire: COBS-encoded and followed by the ``0x00`` delimiter."""
    return cobs_encode(frame_bytes(command, payload)) + b"\x00"


def classify(encoded):
    """The receiver's verdict on one frame's bytes between two delimiters: a :class:`Frame`, None for
    a frame that decodes to no bytes at all (ignored, like an empty one), or :class:`FrameError` raised
    with the code the board replies with. Checks, in order: COBS structure, size (MAX_FRAME), at least
    4 bytes, length field against the byte count, CRC."""
    raw = cobs_decode(encoded)
    if not raw:
        return None
    command = raw[0] if raw else 0
    if len(raw) > MAX_FRAME:
        raise FrameError(Error.OVERSIZE, command)
    if len(raw) < 4 or len(raw) - 4 < raw[1]:
        raise FrameError(Error.SHORT, command)
    if len(raw) - 4 > raw[1]:
        raise FrameError(Error.LONG, command)
    if crc16(raw[:-2]) != int.from_bytes(raw[-2:], "big"):
        raise FrameError(Error.CRC, command)
    return Frame(command, raw[2:-2])


def decode_frame(encoded):
    """:func:`classify`, for one frame with or without its trailing delimiter."""
    encoded = bytes(encoded)
    return classify(encoded[:-1] if encoded.endswith(b"\x00") else encoded)


class Deframer:
    """Splits a byte stream at delimiters: :meth:`feed` returns the frames completed by ``data``, each
    a :class:`Frame` or a :class:`FrameError`; frames with no bytes are skipped."""

    def __init__(self):
        self._pending = bytearray()

    def feed(self, data):
        frames = []
        for byte in bytes(data):
            if byte:
                self._pending.append(byte)
                continue
            if self._pending:
                try:
                    frame = classify(bytes(self._pending))
                    if frame is not None:
                        frames.append(frame)
                except FrameError as error:
                    frames.append(error)
            self._pending.clear()
        return frames


def beat_bytes(width):
    """Bytes a payload of ``width`` bits takes on the link (whole bytes, little-endian)."""
    return max(1, (width + 7) // 8)


def frame_beats(width):
    """Beats of ``width`` bits in one STREAM or OUTPUT frame (the payload also holds a sequence byte)."""
    return (MAX_PAYLOAD - 1) // beat_bytes(width)


def pack_beats(beats, width):
    """Beats (non-negative integers of ``width`` bits) as link bytes."""
    size = beat_bytes(width)
    return b"".join((beat & ((1 << width) - 1)).to_bytes(size, "little") for beat in beats)


def unpack_beats(data, width):
    """Inverse of :func:`pack_beats`."""
    size = beat_bytes(width)
    if len(data) % size:
        raise ValueError(f"Beat data must be a whole number of {size}-byte beats, not {len(data)} bytes")
    return [int.from_bytes(data[n:n + size], "little") & ((1 << width) - 1) for n in range(0, len(data), size)]


def config_hash(cfg):
    """A 32-bit hash of a config (the first four bytes of the SHA-256 of its canonical text,
    :func:`qarith.golden.common.config.to_text`), so ``identify`` tells which configuration a bitstream
    holds."""
    return int.from_bytes(hashlib.sha256(to_text(cfg).encode()).digest()[:4], "little")


@dataclasses.dataclass(frozen=True)
class Identity:
    """What an IDENTIFY reply says about the board's design.

    ``static`` is a tuple of (name, width) per static port, in port-index order; depths are the input
    and output FIFOs' in beats; ``clk_hz`` and ``baud`` are the board clock and link rate."""
    name: str
    config_hash: int
    in_width: int
    out_width: int
    latency: int
    in_depth: int
    out_depth: int
    clk_hz: int
    baud: int
    static: tuple = ()
    version: int = PROTOCOL_VERSION

    def to_bytes(self):
        """The reply payload: version, hash (4), widths (2 + 2), latency (2), depths (2 + 2), clock (4),
        baud (4), static port count, per port width (2) + name length + name, then name length + name;
        integers little-endian, names ASCII."""
        for field, value, size in [("in_width", self.in_width, 2), ("out_width", self.out_width, 2),
                                   ("latency", self.latency, 2), ("in_depth", self.in_depth, 2),
                                   ("out_depth", self.out_depth, 2)]:
            if not 0 <= value < 1 << 8 * size:
                raise ValueError(f"Identity {field} must fit {size} bytes, not {value}")
        out = bytearray([self.version])
        out += self.config_hash.to_bytes(4, "little")
        for value in (self.in_width, self.out_width, self.latency, self.in_depth, self.out_depth):
            out += value.to_bytes(2, "little")
        out += self.clk_hz.to_bytes(4, "little") + self.baud.to_bytes(4, "little")
        out.append(len(self.static))
        for name, width in self.static:
            out += width.to_bytes(2, "little") + bytes([len(name)]) + name.encode("ascii")
        out += bytes([len(self.name)]) + self.name.encode("ascii")
        if len(out) > MAX_PAYLOAD:
            raise ValueError(f"Identity must fit one frame ({MAX_PAYLOAD} bytes), not {len(out)}")
        return bytes(out)

    @classmethod
    def from_bytes(cls, data):
        data = bytes(data)
        word = lambda offset, size: int.from_bytes(data[offset:offset + size], "little")
        version = data[0]
        fields = [word(5 + 2 * n, 2) for n in range(5)]
        clk_hz, baud, count = word(15, 4), word(19, 4), data[23]
        offset, static = 24, []
        for _ in range(count):
            width, length = word(offset, 2), data[offset + 2]
            static.append((data[offset + 3:offset + 3 + length].decode("ascii"), width))
            offset += 3 + length
        name = data[offset + 1:offset + 1 + data[offset]].decode("ascii")
        return cls(name, word(1, 4), *fields, clk_hz, baud, tuple(static), version)
