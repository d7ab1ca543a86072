"""Shared hardware: the generator base class, Verilog emission, row buffers, pipelined arithmetic, the
shift exponential, Winograd transform pipelines and the LNS word fields."""
