"""The link's hardware framing units in amaranth.sim against the golden model and PyPI ``cobs``."""

import random

import pytest
from amaranth.sim import Simulator
from cobs import cobs

from qarith.golden.common.frames import Command, Error, FrameError, classify, cobs_encode, encode_frame, frame_bytes
from qarith.hdl.common.framing import BeatsToBytes, BytesToBeats, COBSDecoder, COBSEncoder, CRCAppender, FrameReceiver
from qarith.hdl.common.uart import UARTReceiver, UARTTransmitter, uart_divisor


def _run(dut, testbench, clock=1e-8):
    sim = Simulator(dut)
    sim.add_clock(clock)
    sim.add_testbench(testbench)
    sim.run()


def _stream(dut, inputs, count_done, backpressure=0.3, seed=0):
    """Drive ``inputs`` (payload values) into ``dut.i`` and collect ``dut.o`` payloads until
    ``count_done(outputs)``, with random idles and backpressure."""
    rng = random.Random(seed)
    outputs = []

    async def testbench(ctx):
        index, cycles = 0, 0
        while not count_done(outputs):
            cycles += 1
            assert cycles < 100 * (len(inputs) + 50), "timed out"
            offer = index < len(inputs) and rng.random() > backpressure / 2
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload, inputs[index])
            ready = rng.random() > backpressure
            ctx.set(dut.o.ready, ready)
            _, _, in_ready, out_valid, payload = await ctx.tick().sample(dut.i.ready, dut.o.valid, dut.o.payload)
            if offer and in_ready:
                index += 1
            if out_valid and ready:
                outputs.append(payload)
    _run(dut, testbench)
    return outputs


def rtl_encode(frame):
    inputs = [{"data": byte, "last": n == len(frame) - 1} for n, byte in enumerate(frame)]
    out = _stream(COBSEncoder(), inputs, lambda o: bool(o) and o[-1] == 0)
    return bytes(out)


def rtl_receive(wire):
    """Wire bytes (several frames) through decoder and receiver; (error, command, payload) per frame."""
    decoder, receiver = COBSDecoder(), FrameReceiver()
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    m = Module()
    m.submodules.decoder, m.submodules.receiver = decoder, receiver
    wiring.connect(m, decoder.o, receiver.i)
    frames = []
    expected = len(golden_receive(wire))

    async def testbench(ctx):
        index, cycles = 0, 0
        while len(frames) < expected:
            cycles += 1
            assert cycles < 20 * len(wire) + 1000
            ctx.set(decoder.i.valid, index < len(wire))
            if index < len(wire):
                ctx.set(decoder.i.payload, wire[index])
            _, _, ready, valid, info = await ctx.tick().sample(decoder.i.ready, receiver.frame.valid,
                                                               receiver.frame.payload)
            if index < len(wire) and ready:
                index += 1
            if valid:
                payload = bytearray()
                if info.error == 0:
                    for n in range(info.length):
                        ctx.set(receiver.addr, n)
                        await ctx.tick()
                        payload.append(ctx.get(receiver.data))
                frames.append((info.error, info.command, bytes(payload)))
                ctx.set(receiver.frame.ready, 1)
                await ctx.tick()
                ctx.set(receiver.frame.ready, 0)
    _run(m, testbench)
    return frames


def golden_receive(wire):
    frames = []
    for encoded in wire.split(b"\x00")[:-1]:
        if not encoded:
            continue
        try:
            frame = classify(encoded)
            if frame is not None:
                frames.append((0, frame.command, frame.payload))
        except FrameError as error:
            frames.append((error.code, error.command, b""))
    return frames


@pytest.mark.parametrize("frame", [
    b"\x01", b"\x00", b"\x00\x00", b"\x11\x00\x22", b"\x01" * 253, b"\x01" * 254, b"\x01" * 255,
    b"\x01" * 253 + b"\x00", b"\x01" * 254 + b"\x00", bytes(range(256)) + bytes(range(1, 4)),
], ids=lambda f: f"{len(f)}B")
def test_encoder_matches_cobs(frame):
    assert rtl_encode(frame) == cobs.encode(frame) + b"\x00" == cobs_encode(frame) + b"\x00"


def test_encoder_random_frames():
    rng = random.Random(3)
    for _ in range(4):
        frame = bytes(rng.choice([0, rng.randrange(1, 256)]) for _ in range(rng.randrange(1, 300)))
        assert rtl_encode(frame) == cobs.encode(frame) + b"\x00"


def test_crc_appender():
    body = bytes([Command.STREAM, 3, 7, 0, 9])
    inputs = [{"data": b, "last": n == len(body) - 1} for n, b in enumerate(body)]
    out = _stream(CRCAppender(), inputs, lambda o: bool(o) and o[-1].last == 1)
    assert bytes(o.data for o in out) == frame_bytes(Command.STREAM, body[2:])


def test_receiver_matches_golden():
    rng = random.Random(5)
    good = [encode_frame(Command.STREAM, bytes(rng.randrange(256) for _ in range(n))) for n in (0, 1, 40, 255)]
    bad_crc = bytearray(encode_frame(Command.IDENTIFY, b"\x05\x06"))
    bad_crc[3] ^= 0x10
    truncated = cobs_encode(frame_bytes(Command.STREAM, b"abcdef")[:5]) + b"\x00"
    long = cobs_encode(frame_bytes(Command.STREAM, b"abc") + b"x") + b"\x00"
    oversize = cobs_encode(bytes([3, 255]) + b"\x01" * 300) + b"\x00"
    broken_cobs = b"\x05\x01\x02\x00"
    garbage = b"\x13\x37\x42\x00\x01\x00\x01\x01"
    wire = b"".join([b"\x00", good[0], bytes(bad_crc), good[1], truncated, b"\x00\x00", long, good[2], oversize,
                     broken_cobs, garbage + b"\x00", good[3]])
    expected = golden_receive(wire)
    assert [e for e, _, _ in expected] == [0, Error.CRC, 0, Error.SHORT, Error.LONG, 0, Error.OVERSIZE,
                                           Error.COBS, Error.COBS, Error.SHORT, 0]
    assert rtl_receive(wire) == expected


def test_bytes_beats_round_trip():
    from amaranth.hdl import signed
    from amaranth.lib import data
    layout = data.StructLayout({"a": data.ArrayLayout(signed(8), 2), "last": 1})  # 17 bits, 3 bytes
    values = [0x1FFFF, 0x00001, 0x12345 & 0x1FFFF, 0x10000]
    wire = b"".join(v.to_bytes(3, "little") for v in values)
    beats = _stream(BytesToBeats(layout), list(wire), lambda o: len(o) == len(values))
    assert [b.as_value().value if hasattr(b, "as_value") else int(b) for b in beats] == values
    back = _stream(BeatsToBytes(layout), [layout.from_bits(v) for v in values], lambda o: len(o) == len(wire))
    assert bytes(o.data for o in back) == wire
    assert [o.last for o in back] == [0, 0, 1] * len(values)


@pytest.mark.parametrize("clk_hz, baud, divisor", [(12e6, 1_000_000, 12), (25e6, 1_000_000, 25),
                                                    (12e6, 115200, 104), (25e6, 115200, 217)])
def test_uart_divisor(clk_hz, baud, divisor):
    assert uart_divisor(clk_hz, baud) == divisor


@pytest.mark.parametrize("clk_hz, baud, message", [
    (12e6, 500_000 * 1.9, r"^Baud rate 950000.0 from a 12 MHz clock is 2\.83 % off \(divisor 13\); "
                          r"the link needs less than 1 %$"),
    (12e6, 4_000_000, r"^Baud rate 4000000 needs at least 4 clock cycles per bit; a 12 MHz clock gives 3\.00$"),
])
def test_uart_divisor_errors(clk_hz, baud, message):
    with pytest.raises(ValueError, match=message):
        uart_divisor(clk_hz, baud)


def test_uart_loopback():
    from amaranth.hdl import Module
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx = UARTTransmitter(8), UARTReceiver(8)
    m.d.comb += rx.rx.eq(tx.tx)
    sent, got = [0x00, 0xFF, 0x55, 0xA3, 0x01], []

    async def send(ctx):
        for byte in sent:
            ctx.set(tx.i.valid, 1)
            ctx.set(tx.i.payload, byte)
            await ctx.tick().until(tx.i.ready)
            ctx.set(tx.i.valid, 0)

    async def receive(ctx):
        ctx.set(rx.o.ready, 1)
        while len(got) < len(sent):
            _, _, valid, payload = await ctx.tick().sample(rx.o.valid, rx.o.payload)
            if valid:
                got.append(payload)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(send)
    sim.add_testbench(receive)
    sim.run_until(1e-8 * 8 * 10 * (len(sent) + 2))
    assert got[:len(sent)] == sent
