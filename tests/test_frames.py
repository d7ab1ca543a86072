"""The link's frame format (golden/common/frames.py): COBS against PyPI ``cobs``, CRC, the receiver's
verdicts in order, identity and beat packing; the host driver's errors without a board."""

import random

import pytest
from cobs import cobs

from qarith.golden.common.frames import (
    CRC,
    MAX_FRAME,
    Command,
    Deframer,
    Error,
    Frame,
    FrameError,
    Identity,
    beat_bytes,
    classify,
    cobs_decode,
    cobs_encode,
    config_hash,
    crc16,
    decode_frame,
    encode_frame,
    frame_beats,
    frame_bytes,
    pack_beats,
    unpack_beats,
)
from qarith.host import Board, LinkError


def test_crc_is_the_catalogue_entry():
    assert crc16(b"123456789") == 0x29B1 == CRC.compute(b"123456789")   # CRC-16/IBM-3740 check value


@pytest.mark.parametrize("length", [0, 1, 2, 253, 254, 255, 256, 507, 508, 509, 600])
def test_cobs_matches_pypi(length):
    rng = random.Random(length)
    for zeros in (0.0, 0.05, 0.5):
        data = bytes(0 if rng.random() < zeros else rng.randrange(1, 256) for _ in range(length))
        assert cobs_encode(data) == cobs.encode(data)
        assert cobs_decode(cobs.encode(data)) == data


def test_cobs_decode_rejects_broken_blocks():
    with pytest.raises(FrameError, match=r"^COBS error \(command byte 0x07\)$"):
        cobs_decode(b"\x05\x07\x01")


def test_frame_round_trip():
    wire = encode_frame(Command.STREAM, b"\x00\x01\x02")
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    assert decode_frame(wire) == Frame(Command.STREAM, b"\x00\x01\x02")
    assert frame_bytes(Command.IDENTIFY)[:2] == b"\x01\x00"


def test_frame_too_long():
    with pytest.raises(ValueError, match=r"^Frame payload must be at most 255 bytes, not 256$"):
        frame_bytes(Command.STREAM, bytes(256))


@pytest.mark.parametrize("raw, code", [
    (frame_bytes(Command.STREAM, b"abc")[:-1], Error.SHORT),
    (b"\x03", Error.SHORT),
    (frame_bytes(Command.STREAM, b"abc") + b"!", Error.LONG),
    (bytes([3, 255]) + bytes(MAX_FRAME), Error.OVERSIZE),
    (frame_bytes(Command.STREAM, b"abc")[:-1] + b"\x00", Error.CRC),
])
def test_classify_errors(raw, code):
    with pytest.raises(FrameError) as error:
        classify(cobs_encode(raw))
    assert error.value.code == code and error.value.command == raw[0]


def test_classify_ignores_empty_frames():
    assert classify(b"\x01") is None
    assert Deframer().feed(b"\x00\x00\x01\x00") == []


def test_deframer():
    frames = Deframer().feed(b"\x00\x13\x37\x00" + encode_frame(Command.RESET.reply) + b"\x00")
    assert isinstance(frames[0], FrameError) and frames[0].code == Error.COBS
    assert frames[1] == Frame(Command.RESET.reply, b"")


def test_identity_round_trip():
    identity = Identity("requant:int8", 0x12345678, 102, 8, 10, 64, 512, 12_000_000, 1_000_000,
                        (("output_offset", 9), ("act_min", 8), ("act_max", 8)))
    assert Identity.from_bytes(identity.to_bytes()) == identity


def test_identity_limits():
    with pytest.raises(ValueError, match=r"^Identity latency must fit 2 bytes, not 70000$"):
        Identity("x", 0, 8, 8, 70000, 16, 16, 1, 1).to_bytes()
    with pytest.raises(ValueError, match=r"^Identity must fit one frame \(255 bytes\), not 261$"):
        Identity("x" * 236, 0, 8, 8, 1, 16, 16, 1, 1).to_bytes()


def test_beats():
    assert beat_bytes(1) == 1 and beat_bytes(65) == 9 and frame_beats(65) == 28
    beats = [0, 1, (1 << 65) - 1, 12345]
    assert unpack_beats(pack_beats(beats, 65), 65) == beats
    with pytest.raises(ValueError, match=r"^Beat data must be a whole number of 9-byte beats, not 10 bytes$"):
        unpack_beats(bytes(10), 65)


def test_config_hash_follows_parameters():
    from qarith.golden.requant import RequantConfig
    assert config_hash(RequantConfig()) == config_hash(RequantConfig())
    assert config_hash(RequantConfig()) != config_hash(RequantConfig(lanes=2))


def test_host_without_board():
    with Board.open("loop://", timeout=0.05, retries=1) as board:
        with pytest.raises(LinkError, match=r"^no reply to IDENTIFY from loop:// after 2 tries of 0\.05 s"):
            board.identify()
        assert board.frames_sent == 2 and board.retries_used == 1


def test_host_bad_port():
    with pytest.raises(LinkError, match=r"^cannot open /nonexistent/ttyUSB9: "):
        Board.open("/nonexistent/ttyUSB9")
