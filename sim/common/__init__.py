"""Shared verification machinery: vectors, the amaranth.sim tier, the cocotb driver, monitor and
scoreboard, the simulator runner, row and unary cases, the formal harnesses and proof list, the board
shell's bench, and simulation models of FPGA primitives."""
