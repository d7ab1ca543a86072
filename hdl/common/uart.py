"""UART (8 data bits, no parity, one stop bit) on ``amaranth.lib.stream``.

:class:`UARTTransmitter` sends one byte per ``10 * divisor`` cycles; :class:`UARTReceiver` finds the
start bit's falling edge, checks it again half a bit later and samples every bit in its middle, so a
rate error of up to about 4 % over a frame is tolerated; the board link keeps it under 1 %
(:func:`uart_divisor`). The receiver cannot be stalled (a UART has no flow control): a byte that arrives
while the previous one still waits is dropped and counted on ``overrun``; a missing stop bit drops the
byte and pulses ``framing_error``. Both units are register-only (no memory), latency one bit time.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["uart_divisor", "UARTTransmitter", "UARTReceiver"]

#: The largest relative baud-rate error :func:`uart_divisor` accepts.
MAX_RATE_ERROR = 0.01


def uart_divisor(clk_hz, baud):
    """Clock cycles per bit for ``baud`` from a ``clk_hz`` clock; raises :class:`ValueError` when the
    nearest divisor misses the rate by 1 % or more, or is below 4 (the receiver's half-bit checks need
    a few cycles per bit)."""
    if not isinstance(clk_hz, (int, float)) or not isinstance(baud, (int, float)):
        raise TypeError(f"Clock and baud rate must be numbers, not {clk_hz!r} and {baud!r}")
    if clk_hz <= 0 or baud <= 0:
        raise ValueError(f"Clock and baud rate must be positive, not {clk_hz} and {baud}")
    divisor = round(clk_hz / baud)
    if divisor < 4:
        raise ValueError(f"Baud rate {baud} needs at least 4 clock cycles per bit; a {clk_hz / 1e6:g} MHz "
                         f"clock gives {clk_hz / baud:.2f}")
    error = abs(clk_hz / divisor - baud) / baud
    if error >= MAX_RATE_ERROR:
        raise ValueError(f"Baud rate {baud} from a {clk_hz / 1e6:g} MHz clock is {100 * error:.2f} % off "
                         f"(divisor {divisor}); the link needs less than {100 * MAX_RATE_ERROR:g} %")
    return divisor


class UARTTransmitter(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit.

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send; one is taken whenever the line is idle.
    tx : Out(1)
        The serial line (idle high).
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        if not isinstance(divisor, int) or divisor < 1:
            raise ValueError(f"Divisor must be a positive integer, not {divisor!r}")
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10, init=1)           # start bit, data LSB first, stop bit; bit 0 is on the line
        bits = Signal(range(11))
        timer = Signal(range(self.divisor))
        m.d.comb += [self.tx.eq(shift[0]), self.i.ready.eq(bits == 0)]
        with m.If(bits == 0):
            with m.If(self.i.valid):
                m.d.sync += [shift.eq(Cat(0, self.i.payload, 1)), bits.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shift.eq(Cat(shift[1:], 1)), bits.eq(bits - 1), timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class UARTReceiver(wiring.Component):
    """8N1 receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Members
    -------
    rx : In(1)
        The serial line (asynchronous; synchronised inside).
    o : Out(stream.Signature(8))
        Received bytes; ``valid`` stays up until ``ready``.
    framing_error : Out(1)
        One-cycle pulse: a byte without its stop bit was dropped.
    overrun : Out(1)
        One-cycle pulse: a byte was dropped because the previous one had not been taken.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor):
        if not isinstance(divisor, int) or divisor < 4:
            raise ValueError(f"Divisor must be an integer of at least 4, not {divisor!r}")
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor))
        bits = Signal(range(9))
        shift = Signal(8)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    m.next = "IDLE"              # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(8)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), timer.eq(self.divisor - 1), bits.eq(bits - 1)]
                    with m.If(bits == 1):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    # Back to IDLE in the middle of the stop bit: the next start edge is never missed.
                    m.next = "IDLE"
                    with m.If(~rx):
                        m.d.comb += self.framing_error.eq(1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
        return m
