"""Integer matrix-multiply tile: the function of the ``mac_array`` block.

A tile is ``C[r, c] = sum_k A[r, k] * B[k, c]`` over a K-step reduction, exact in int64 (the accumulator
width is chosen so the hardware never wraps; see :attr:`MacArrayConfig.acc_width`). Source: the integer
GEMM at the core of Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference" (CVPR 2018), section 2.2.
"""

from dataclasses import dataclass

import torch

from .common.codes import code_range, width_for

__all__ = ["MacArrayConfig", "MULTIPLIERS", "READOUTS", "mac_tiles", "check_array"]

MULTIPLIERS = ("fabric", "ice40_dual", "ecp5_reg", "ecp5_pipe")
READOUTS = ("lut_or", "set_or")


@dataclass(frozen=True)
class MacArrayConfig:
    """Configuration of the ``mac_array`` block (an output-stationary ``rows x cols`` systolic array).

    Parameters
    ----------
    rows, cols : int
        Array size (1..32 each). A tile is ``rows x cols`` accumulators.
    a_width, b_width : int
        Operand widths (2..16; int4/int8/int16 are the usual choices).
    a_signed, b_signed : bool
        Operand signedness, per operand.
    max_k : int
        Largest reduction depth K the accumulators must hold without overflow (1..65536).
    acc_width : int or None
        Accumulator width; ``None`` picks the exact width for ``max_k``. A width that could overflow
        is rejected.
    input_reg : bool
        Register the accepted beat before the skew lines (shorter path from the input pins).
    mult_reg : bool
        Register every product before the accumulator adder (the DSP's output register).
    output_reg : bool
        Put a register slice (with a skid register) between the output FIFO and the output port, so
        the consumer's ``ready`` drives two registers instead of the FIFO's read logic.
    multiplier : str
        ``"fabric"``: products written as ``a * b``, left to Yosys (MULT18X18D on ECP5, one SB_MAC16
        per product on iCE40 while they last, then LUTs). ``"ice40_dual"``: iCE40 SB_MAC16 primitives
        in their dual 8x8 mode, two processing elements per DSP block, product registers inside the
        DSP (needs operands of at most 8 bits and ``mult_reg``). ``"ecp5_reg"``: ECP5 MULT18X18D
        primitives with their own input and output registers (two cycles, needs ``mult_reg``), which
        Yosys's inference leaves unused. ``"ecp5_pipe"``: as ``"ecp5_reg"`` plus the DSP's pipeline
        register and a fabric register after it (four cycles), for the highest clock.
    acc_split : int
        ``0``: each accumulator is one adder. ``s`` (1 .. ``acc_bits - 1``): the adder is cut after bit
        ``s``; the low part's carry goes into a register and is added into the high part on the next
        step (a carry-save accumulator with one delayed carry), so the accumulator's feedback loop is
        the longer of the two parts instead of the whole width. The last step's carry is added after the
        column's read-out, which costs one cycle of latency.
    readout : str
        How a column's drain registers are read out (their OR, one row per cycle). ``"lut_or"``: a
        ``rows``-input OR in LUTs into one register, then the deskew registers. ``"set_or"``: the OR is
        built from flip-flops with a synchronous set (``q <= set ? 1 : d`` is ``d | set`` with no LUT),
        pipelined through the column's own deskew registers, so the latency is the same; only the
        last columns, which have fewer deskew registers than OR levels, keep a few LUTs. It costs
        flip-flops (each with its own set net) instead of LUTs.
    """
    rows: int = 4
    cols: int = 4
    a_width: int = 8
    a_signed: bool = True
    b_width: int = 8
    b_signed: bool = True
    max_k: int = 256
    acc_width: int | None = None
    input_reg: bool = True
    mult_reg: bool = True
    output_reg: bool = False
    multiplier: str = "fabric"
    acc_split: int = 0
    readout: str = "lut_or"

    def __post_init__(self):
        for name in ("rows", "cols", "a_width", "b_width", "max_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        for name in ("a_width", "b_width"):
            if not 2 <= getattr(self, name) <= 16:
                raise ValueError(f"Operand width {name} must be between 2 and 16, not {getattr(self, name)}")
        check_array(self)
        if self.multiplier not in MULTIPLIERS:
            raise ValueError(f"Multiplier must be one of {', '.join(MULTIPLIERS)}, not {self.multiplier!r}")
        if self.multiplier == "ice40_dual":
            if max(self.a_width, self.b_width) > 8:
                raise ValueError(f"The ice40_dual multiplier takes operands of at most 8 bits, "
                                 f"not {self.a_width} and {self.b_width}")
        if self.multiplier != "fabric" and not self.mult_reg:
            raise ValueError(f"The {self.multiplier} multiplier registers its products: set mult_reg")
        if not isinstance(self.acc_split, int) or isinstance(self.acc_split, bool):
            raise TypeError(f"acc_split must be an integer, not {self.acc_split!r}")
        if self.acc_split and not 1 <= self.acc_split < self.acc_bits:
            raise ValueError(f"acc_split must be 0 (one adder) or a bit position between 1 and "
                             f"{self.acc_bits - 1} (the accumulator has {self.acc_bits} bits), not {self.acc_split}")
        if not isinstance(self.readout, str):
            raise TypeError(f"readout must be a string, not {self.readout!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"Readout must be one of {', '.join(READOUTS)}, not {self.readout!r}")
        if self.readout == "set_or" and self.acc_split:
            raise ValueError("The set_or readout does not take a split accumulator: set acc_split to 0")

    @property
    def family(self):
        """The FPGA family the config is tied to, or ``None`` for portable configs."""
        return {"ice40_dual": "ice40", "ecp5_reg": "ecp5", "ecp5_pipe": "ecp5"}.get(self.multiplier)

    @property
    def product_latency(self):
        """Cycles from a PE's operands to its product."""
        return {"fabric": int(self.mult_reg), "ice40_dual": 1, "ecp5_reg": 2, "ecp5_pipe": 4}[self.multiplier]

    @property
    def acc_signed(self):
        return self.a_signed or self.b_signed

    @property
    def product_range(self):
        a_lo, a_hi = code_range(self.a_width, self.a_signed)
        b_lo, b_hi = code_range(self.b_width, self.b_signed)
        corners = [a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi]
        return min(corners), max(corners)

    @property
    def min_acc_width(self):
        low, high = self.product_range
        return width_for(low * self.max_k, high * self.max_k, self.acc_signed)

    @property
    def acc_bits(self):
        """The accumulator width the generator uses."""
        return self.min_acc_width if self.acc_width is None else self.acc_width

    @property
    def macs(self):
        return self.rows * self.cols


def _check_codes(name, tensor, width, is_signed):
    low, high = code_range(width, is_signed)
    if tensor.numel() and (int(tensor.min()) < low or int(tensor.max()) > high):
        raise ValueError(f"{name} codes must lie in [{low}, {high}] for a {width}-bit "
                         f"{'signed' if is_signed else 'unsigned'} operand")


def mac_tiles(cfg, a, b):
    """Exact integer tiles.

    Parameters
    ----------
    a : integer tensor (T, rows, K)
    b : integer tensor (T, K, cols)

    Returns
    -------
    int64 tensor (T, rows, cols)
    """
    a = torch.as_tensor(a, dtype=torch.int64)
    b = torch.as_tensor(b, dtype=torch.int64)
    if a.dim() != 3 or b.dim() != 3 or a.shape[1] != cfg.rows or b.shape[2] != cfg.cols \
            or a.shape[2] != b.shape[1] or a.shape[0] != b.shape[0]:
        raise ValueError(f"Expected A of shape (T, {cfg.rows}, K) and B of shape (T, K, {cfg.cols}), "
                         f"not {tuple(a.shape)} and {tuple(b.shape)}")
    if not 1 <= a.shape[2] <= cfg.max_k:
        raise ValueError(f"Reduction depth must be between 1 and max_k={cfg.max_k}, not {a.shape[2]}")
    _check_codes("A", a, cfg.a_width, cfg.a_signed)
    _check_codes("B", b, cfg.b_width, cfg.b_signed)
    # Elementwise product and sum: integer bmm is not implemented on every torch backend.
    return (a.unsqueeze(3) * b.unsqueeze(1)).sum(dim=2)


def check_array(cfg):
    """The checks every systolic-array config shares (:class:`MacArrayConfig` and the ANT array's): the
    flags are bools, the shape is 1..32 each way, the depth 1..65536, and an explicit accumulator width
    holds ``max_k`` full-scale products (``cfg.min_acc_width``) in at most 48 bits."""
    for name in ("a_signed", "b_signed", "input_reg", "mult_reg", "output_reg"):
        if not isinstance(getattr(cfg, name), bool):
            raise TypeError(f"{name} must be a bool, not {getattr(cfg, name)!r}")
    for name in ("rows", "cols"):
        if not 1 <= getattr(cfg, name) <= 32:
            raise ValueError(f"Array {name} must be between 1 and 32, not {getattr(cfg, name)}")
    if not 1 <= cfg.max_k <= 65536:
        raise ValueError(f"Maximum reduction depth must be between 1 and 65536, not {cfg.max_k}")
    if cfg.acc_width is not None:
        if not isinstance(cfg.acc_width, int) or isinstance(cfg.acc_width, bool):
            raise TypeError(f"acc_width must be an integer or None, not {cfg.acc_width!r}")
        if cfg.acc_width < cfg.min_acc_width:
            raise ValueError(
                f"Accumulator width {cfg.acc_width} could overflow for max_k={cfg.max_k}: "
                f"at least {cfg.min_acc_width} bits are needed")
        if cfg.acc_width > 48:
            raise ValueError(f"Accumulator width must be at most 48, not {cfg.acc_width}")
