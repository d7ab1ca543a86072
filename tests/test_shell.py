"""The board shell simulated whole (UART pins, framing, FIFOs, block) in cocotb on Verilator, driven by
the host driver through the socket bridge: round trips through three blocks against their golden
models, and the malformed-traffic cases, each a named test on one simulated board."""

import json
import os
import random
from pathlib import Path

import pytest

from qarith.fpga.link_sim import simulated_board
from qarith.fpga.shell import payload_width, static_ports
from qarith.golden.common.frames import (
    COUNTERS,
    Command,
    Error,
    FrameError,
    classify,
    cobs_encode,
    encode_frame,
    frame_bytes,
    pack_beats,
)
from qarith.host import Board, play
from qarith.registry import BLOCKS
from qarith.sim.common.bench import pack
from qarith.sim.common.shell import vectors_prefix
from qarith.sim.mac_array import tile_vectors
from tiers import FULL

#: The malformed-traffic tests share one simulated board per xdist worker; boards of one config share one
#: Verilator build, which two workers take in turn (``build_lock``).
pytestmark = pytest.mark.cocotb

#: The simulated board runs at 12 MHz with 4 clock cycles per bit (3 Mbaud): three times fewer cycles
#: than the iCEBreaker's 1 Mbaud, the same logic.
CLK_HZ, SIM_BAUD = 12_000_000, 3_000_000
#: Host timeout: a simulated board is much slower than a real one.
TIMEOUT = 60

#: (block, config, input beats per case, largest frame in beats, least frames): 1000 frames in all.
ROUND_TRIPS = [
    ("requant", "int8", 160, 1, 500),           # static ports: output_offset, act_min, act_max
    ("lns_mul", "w12_b5_x4", 300, 1, 400),
    ("mac_array", "int8_4x4", 160, 1, 80),
]
# The whole encoder layer on a simulated board: every tap of every case through the link (make test-full).
# Its cases' first 40 beats are 23 tokens, so at four beats a frame at least 6 frames.
if FULL:
    ROUND_TRIPS.append(("encoder_layer", "d8_h2_f16_s4_layer", 40, 4, 6))


def _board(block_name, config_name, stats=None):
    block = BLOCKS[block_name]
    return simulated_board(block.generator, block.configs[config_name], f"{block_name}:{config_name}",
                           clk_hz=CLK_HZ, baud=SIM_BAUD, stats=stats)


@pytest.mark.parametrize("block_name, config_name, max_beats, frame_max, least_frames", ROUND_TRIPS,
                         ids=[f"{b}-{c}" for b, c, *_ in ROUND_TRIPS])
def test_round_trip(block_name, config_name, max_beats, frame_max, least_frames):
    block = BLOCKS[block_name]
    cfg = block.configs[config_name]
    component = block.interface(cfg)
    bench = block.bench
    cases = [vectors_prefix(case, max_beats) for case in bench.vectors(cfg)]
    stats = {}
    with _board(block_name, config_name, stats) as url, Board.open(url, timeout=TIMEOUT) as board:
        identity = board.identify()
        assert (identity.name, identity.in_width, identity.out_width, identity.latency) == \
            (f"{block_name}:{config_name}", payload_width(component.i.payload.shape()),
             payload_width(component.o.payload.shape()),
             component.latency)
        assert identity.static == static_ports(component)
        summary = play(board, component, cases, frame_beats_max=frame_max)
        counters = board.counters()
        frames = board.frames_sent
    assert summary.mismatches == []
    assert summary.beats_out == sum(len(c.expected) for c in cases)
    assert all(counters[name] == 0 for name in COUNTERS if name != "frames_ok"), counters
    assert board.retries_used == 0
    print(f"{block_name}:{config_name}: {frames} frames, {summary.beats_in} beats in, {summary.beats_out} out, "
          f"{stats['cycles']} cycles, {stats['to_board_bytes']} + {stats['from_board_bytes']} bytes")
    assert frames >= least_frames


# Malformed traffic, on one simulated mac_array board.

MAC = ("mac_array", "int8_4x4")


@pytest.fixture(scope="module")
def mac_board():
    with _board(*MAC) as url, Board.open(url, timeout=TIMEOUT) as board:
        board.identify()
        yield board


class Tiles:
    """Random K=1..3 tiles for the mac_array board and their golden output."""

    def __init__(self, seed):
        import torch
        cfg = BLOCKS[MAC[0]].configs[MAC[1]]
        self.component = BLOCKS[MAC[0]].interface(cfg)
        gen = torch.Generator().manual_seed(seed)
        tiles = []
        for n in range(6):
            depth = 1 + n % 3
            tiles.append((torch.randint(-128, 128, (4, depth), generator=gen),
                          torch.randint(-128, 128, (depth, 4), generator=gen)))
        self.vectors = tile_vectors(cfg, f"tiles{seed}", tiles)
        self.beats = [pack(self.component.i.payload.shape(), b) for b in self.vectors.beats]
        self.expected = [pack(self.component.o.payload.shape(), b) for b in self.vectors.expected]


def _malformed_case(board, wire, seed):
    """Accepted beats, then ``wire`` (malformed bytes), then more accepted beats: the reply to ``wire``
    is the golden receiver's error, and every accepted beat comes out, in order."""
    board.reset()
    before, after = Tiles(seed), Tiles(seed + 100)
    outputs = board.run(before.beats[:6], expect=0)
    board.send_raw(b"\x00" + wire + b"\x00")
    replies = []
    for chunk in wire.split(b"\x00"):
        try:
            frame = classify(chunk) if chunk else None
            if frame is not None:
                known = frame.command in (Command.IDENTIFY, Command.SET_STATIC, Command.STREAM, Command.RESET,
                                          Command.COUNTERS)
                replies.append(None if known else (Error.COMMAND, frame.command))
        except FrameError as error:
            replies.append((error.code, error.command))
    for want in replies:
        frame = board.reply()
        assert frame is not None, "no reply to a malformed frame"
        if want is not None:
            assert frame.command == Command.ERROR and (frame.payload[0], frame.payload[1]) == want
    expected = before.expected + after.expected
    outputs += board.run(before.beats[6:] + after.beats, expect=len(expected) - len(outputs))
    assert outputs == expected
    assert board.identify().name == ":".join(MAC)        # and the link still answers
    return replies


def _stream_frame(board, beats, seq=0x55):
    return bytes([seq]) + pack_beats(beats, board.identity.in_width)


def test_bad_crc(mac_board):
    raw = bytearray(frame_bytes(Command.STREAM, _stream_frame(mac_board, Tiles(1).beats[:2])))
    raw[-1] ^= 0x01
    assert _malformed_case(mac_board, cobs_encode(raw), 2) == [(Error.CRC, Command.STREAM)]


def test_truncated_frame(mac_board):
    raw = frame_bytes(Command.STREAM, _stream_frame(mac_board, Tiles(3).beats[:3]))
    assert _malformed_case(mac_board, cobs_encode(raw[:-5]), 4) == [(Error.SHORT, Command.STREAM)]


def test_oversized_frame(mac_board):
    raw = bytes([Command.STREAM, 255]) + bytes(range(1, 256)) * 2
    assert _malformed_case(mac_board, cobs_encode(raw), 5) == [(Error.OVERSIZE, Command.STREAM)]


def test_unknown_command(mac_board):
    encoded = encode_frame(0x42, b"\x01\x02")[:-1]
    assert _malformed_case(mac_board, encoded, 6) == [(Error.COMMAND, 0x42)]


def test_garbage_between_frames(mac_board):
    rng = random.Random(7)
    garbage = bytes(rng.choice([0, rng.randrange(1, 256)]) for _ in range(60))
    replies = _malformed_case(mac_board, garbage, 8)
    assert len(replies) >= 5 and all(r is not None for r in replies)


def test_lost_byte(mac_board):
    encoded = cobs_encode(frame_bytes(Command.STREAM, _stream_frame(mac_board, Tiles(9).beats[:4])))
    lost = encoded[:10] + encoded[11:]
    replies = _malformed_case(mac_board, lost, 10)
    assert len(replies) == 1 and replies[0][0] in (Error.COBS, Error.SHORT)


def test_fifo_full(mac_board):
    """K=1 tiles make 4 output rows of 13 bytes per 9-byte input beat, so the output FIFO fills, the
    block stalls, and the input FIFO fills: a STREAM frame that no longer fits is refused with
    FIFO_FULL and nothing of it taken; every beat of the accepted frames comes out, in order."""
    board = mac_board
    board.reset()
    import torch
    cfg = BLOCKS[MAC[0]].configs[MAC[1]]
    component = BLOCKS[MAC[0]].interface(cfg)
    gen = torch.Generator().manual_seed(11)
    tiles = [(torch.randint(-128, 128, (4, 1), generator=gen), torch.randint(-128, 128, (1, 4), generator=gen))
             for _ in range(200)]
    vectors = tile_vectors(cfg, "k_one", tiles)
    beats = [pack(component.i.payload.shape(), b) for b in vectors.beats]
    per_frame = 28
    before = board.counters()["fifo_full"]
    accepted, refused = 0, 0
    from qarith.host import FifoFull
    while accepted < len(beats):
        try:
            board.stream(beats[accepted:accepted + per_frame])
            accepted += len(beats[accepted:accepted + per_frame])
        except FifoFull:
            refused += 1
            break
    assert refused == 1 and accepted < len(beats)
    assert board.counters()["fifo_full"] == before + 1
    outputs = board.outputs()
    outputs += board.run(beats[accepted:], expect=len(vectors.expected) - len(outputs))
    expected = [pack(component.o.payload.shape(), b) for b in vectors.expected]
    assert outputs == expected


#: Link throughput at the iCEBreaker's own clock and rate (12 MHz, 1 Mbaud): make test-full, or
#: QARITH_THROUGHPUT=1; the README's throughput table.
THROUGHPUT = [("requant", "int8", 600), ("lns_mul", "w12_b5_x4", 600), ("mac_array", "int8_4x4", 400)]


@pytest.mark.skipif(not (FULL or os.environ.get("QARITH_THROUGHPUT") == "1"),
                    reason="the throughput runs take minutes: make test-full or QARITH_THROUGHPUT=1")
@pytest.mark.parametrize("block_name, config_name, max_beats", THROUGHPUT, ids=[f"{b}-{c}" for b, c, _ in THROUGHPUT])
def test_link_throughput(block_name, config_name, max_beats):
    from qarith.host import link_throughput
    block = BLOCKS[block_name]
    cfg = block.configs[config_name]
    component = block.interface(cfg)
    case = vectors_prefix(block.bench.vectors(cfg)[0], max_beats)
    beats = [pack(component.i.payload.shape(), b) for b in case.beats]
    static = {port: pack(getattr(component, port).shape(), value) for port, value in case.static.items()}
    outputs, figures = link_throughput(block.generator, cfg, f"{block_name}:{config_name}", beats,
                                       len(case.expected), static)
    assert outputs == [pack(component.o.payload.shape(), b) for b in case.expected]
    print(json.dumps(figures))
    out = Path(os.environ.get("QARITH_BUILD", "build")) / "link_throughput"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{block_name}__{config_name}.json").write_text(json.dumps(figures, indent=2) + "\n")
