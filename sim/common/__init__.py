"""Shared verification machinery: vectors, the amaranth.sim tier, the cocotb driver, monitor and
scoreboard, the simulator runner, row and unary cases, and simulation models of FPGA primitives."""
