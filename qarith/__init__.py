"""qarith: verified integer arithmetic for quantized neural-network inference, as hardware.

The top layer: the block registry (:mod:`qarith.registry`), the ``qarith`` command (:mod:`qarith.cli`) and
``make verilog``'s writer (:mod:`qarith.manifest`). The layers below are :mod:`qarith.golden`,
:mod:`qarith.hdl`, :mod:`qarith.sim` and :mod:`qarith.fpga`.
"""
