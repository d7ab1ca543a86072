"""Accuracy of the blocks against their float functions (part of ``make bench``), one module per family:
:mod:`.rows` (softmaxes, GELU, LayerNorm, attention), :mod:`.pwl`, :mod:`.lns`, :mod:`.winograd`,
:mod:`.ant` (ANT's 4-bit types: MSE against int4 / PoT4 / flint4, a digits MLP's accuracy).

Each function takes the named configs it measures (``{block: {config name: config}}``, as the registry
holds them) from its caller.


* ``softmax_lut``: every registered config, re-sized to rows of 16, 64 and 256 elements, on score
  distributions from :func:`qarith.golden.common.scores.score_rows`, against ``torch.softmax``; beside it
  the emulated hls4ml default softmax (:func:`qarith.golden.softmax_lut.hls4ml_softmax`) on the same codes.

* ``shiftmax``: every registered config on the same distributions (rows of the config's length)
  against ``torch.softmax``;
* ``shiftgelu``: every registered config over every input code against the exact GELU;
* ``ilayernorm``: every registered config on transformer-like rows against ``layer_norm``;
* ``log_softmax_int``: the log2 weights against ``torch.softmax``; ``attn_v``: its sums against the exact
  sum of the codes' weights times ``V`` and against float softmax times ``V``;
* LNS: 8-bit LNS products, sums and dot products (K = 64, 256) against int8 fixed point of the same
  bit budget on Gaussian data, relative errors plotted into ``lns_error.png`` (:func:`lns_errors`);
* Winograd: :func:`qarith.fpga.accuracy.winograd.winograd_error` (tap-wise, per-tap-and-channel and single-scale
  int8 F(4x4,3x3) and F(2x2,3x3) against the direct integer and the float layer) and the multipliers per
  output pixel counted in each ``wino_conv`` netlist;
* ``pwl``: every function with both fitters (NN-LUT, iRNN) at 8, 16 and 32 entries on a 16-bit input,
  16-bit output format, over every input code (:func:`qarith.fpga.accuracy.pwl.error_sweep`), plotted into
  ``pwl_error.png``, and every registered config's own error.

Everything here is the golden models' arithmetic (bit-exact with the RTL by the test suite), so it runs
in seconds on a CPU.
"""
