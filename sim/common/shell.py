"""cocotb bench of a board top (:class:`qarith.fpga.shell.Shell` emitted as Verilog): a TCP socket
bridged to the UART pins, so that the host driver (:mod:`qarith.host`, ``socket://host:port``) talks to
the simulated board exactly as to a real one.

The bench listens on ``QARITH_BRIDGE_PORT`` (localhost), drives every byte the host sends onto ``rx``
as 8N1 bits and turns every byte the design sends on ``tx`` into a socket write, at
``QARITH_UART_DIVISOR`` clock cycles per bit. It runs until the host closes the connection, then
writes the clock cycles it simulated and the byte counts of both directions to
``QARITH_BRIDGE_STATS`` (JSON), the figures the link throughput is computed from. It writes
``QARITH_BRIDGE_READY`` once it listens.
"""

import json
import os
import socket

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from cocotb.utils import get_sim_time

from .bench import vectors_prefix

__all__ = ["UARTBridge", "vectors_prefix"]

CLOCK_NS = 10
#: How long the host may take to connect after the simulation starts (wall-clock seconds).
ACCEPT_TIMEOUT = 120


class UARTBridge:
    """Socket <-> UART pins of ``dut`` (``rx`` driven, ``tx`` sampled in the middle of each bit)."""

    def __init__(self, dut, connection, divisor):
        self.dut, self.connection = dut, connection
        self.bit_ns = divisor * CLOCK_NS
        self.to_board = self.from_board = 0
        self.first_byte = self.last_byte = None

    @property
    def cycles(self):
        return int(get_sim_time("ns")) // CLOCK_NS

    def _mark(self):
        self.first_byte = self.cycles if self.first_byte is None else self.first_byte
        self.last_byte = self.cycles

    async def _send_byte(self, byte):
        bits = [0, *((byte >> n) & 1 for n in range(8)), 1]
        start = 0
        while start < len(bits):
            end = start
            while end < len(bits) and bits[end] == bits[start]:
                end += 1
            self.dut.rx.value = bits[start]
            await Timer(self.bit_ns * (end - start), unit="ns")
            start = end
        self.to_board += 1
        self._mark()

    async def host_to_board(self):
        """Returns when the host closes the connection."""
        while True:
            try:
                data = self.connection.recv(4096)
            except BlockingIOError:
                await Timer(4 * self.bit_ns, unit="ns")
                continue
            if not data:
                return
            for byte in data:
                await self._send_byte(byte)

    async def board_to_host(self):
        while True:
            await FallingEdge(self.dut.tx)
            await Timer(self.bit_ns * 3 // 2, unit="ns")
            byte = 0
            for n in range(8):
                byte |= int(self.dut.tx.value) << n
                await Timer(self.bit_ns, unit="ns")
            assert int(self.dut.tx.value) == 1, "the board sent a byte without its stop bit"
            self.from_board += 1
            self._mark()
            try:
                self.connection.sendall(bytes([byte]))
            except OSError:
                return


@cocotb.test()
async def bridge(dut):
    """Serve the simulated board on the socket until the host disconnects."""
    divisor = int(os.environ["QARITH_UART_DIVISOR"])
    with socket.create_server(("127.0.0.1", int(os.environ["QARITH_BRIDGE_PORT"]))) as server:
        # The C clock: the Python one costs a wake-up per edge. Only rx (behind a synchroniser) and rst
        # are written, so the write order against the clock edge does not matter.
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start())
        dut.rx.value = 1
        dut.rst.value = 1
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        server.settimeout(ACCEPT_TIMEOUT)
        if "QARITH_BRIDGE_READY" in os.environ:
            with open(os.environ["QARITH_BRIDGE_READY"], "w") as file:
                file.write("listening\n")
        connection, _ = server.accept()
    with connection:
        connection.setblocking(False)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = UARTBridge(dut, connection, divisor)
        cocotb.start_soon(link.board_to_host())
        await link.host_to_board()
    stats = {"cycles": link.cycles, "to_board_bytes": link.to_board, "from_board_bytes": link.from_board,
             "first_byte_cycle": link.first_byte, "last_byte_cycle": link.last_byte,
             "divisor": divisor}
    dut._log.info("bridge: %s", stats)
    if "QARITH_BRIDGE_STATS" in os.environ:
        with open(os.environ["QARITH_BRIDGE_STATS"], "w") as file:
            json.dump(stats, file)
