"""Direct lookup table of a unary function for narrow fixed-point inputs.

For every input code ``q`` (``in_width`` bits, value ``x = q * 2**-in_frac_bits``) the table holds
``clamp(round(f(x) * 2**out_frac_bits), out_min, out_max)``, computed in float64 with round half to even
(``torch.round``); values beyond the output range saturate. This is the "direct LUT" end of the table
family (the small-table softmax of Vasyltsov & Chang, arXiv:2111.10770, and the PWL units of
NN-LUT, DAC 2022, sit at the other end): exact to half an output step wherever the output does not
saturate, at the price of ``2**in_width`` entries.
"""

import math
from dataclasses import dataclass

import torch

from .common.codes import OutputCodes, require_integers

__all__ = ["LutUnaryConfig", "FUNCTIONS", "lut_table", "lut_unary"]

#: The named functions (a Python callable on float64 tensors is accepted too).
FUNCTIONS = {
    "gelu": lambda x: torch.nn.functional.gelu(x),
    "exp": torch.exp,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "silu": torch.nn.functional.silu,
}


@dataclass(frozen=True)
class LutUnaryConfig(OutputCodes):
    """Configuration of the ``lut_unary`` block.

    Parameters
    ----------
    function : str or callable
        One of :data:`FUNCTIONS`, or a callable mapping a float64 tensor to a float64 tensor.
    in_width : int
        Input code width (1..10).
    in_signed : bool
        Signed (two's complement) or unsigned input codes.
    in_frac_bits : int
        Input scale ``2**-in_frac_bits`` (-16..16).
    out_width : int
        Output code width (2..16).
    out_signed : bool
        Signed or unsigned output codes.
    out_frac_bits : int
        Output scale ``2**-out_frac_bits`` (-16..24).
    """
    function: object = "gelu"
    in_width: int = 8
    in_signed: bool = True
    in_frac_bits: int = 4
    out_width: int = 8
    out_signed: bool = True
    out_frac_bits: int = 5

    def __post_init__(self):
        if isinstance(self.function, str):
            if self.function not in FUNCTIONS:
                raise ValueError(f"Function must be one of {', '.join(FUNCTIONS)} or a callable, "
                                 f"not {self.function!r}")
        elif not callable(self.function):
            raise TypeError(f"Function must be a name or a callable, not {self.function!r}")
        require_integers(self, ("in_width", "in_frac_bits", "out_width", "out_frac_bits"))
        for name in ("in_signed", "out_signed"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, not {getattr(self, name)!r}")
        if not 1 <= self.in_width <= 10:
            raise ValueError(f"Input width must be between 1 and 10 for a direct table, not {self.in_width}")
        if not 2 <= self.out_width <= 16:
            raise ValueError(f"Output width must be between 2 and 16, not {self.out_width}")
        if not -16 <= self.in_frac_bits <= 16:
            raise ValueError(f"Input fraction bits must be between -16 and 16, not {self.in_frac_bits}")
        if not -16 <= self.out_frac_bits <= 24:
            raise ValueError(f"Output fraction bits must be between -16 and 24, not {self.out_frac_bits}")
        values = self.function_values()
        if not bool(torch.isfinite(values).all()):
            low, high = self.input_range
            raise ValueError(f"Function {self.function_name} is not finite over the input range "
                             f"[{low}, {high}]")

    @property
    def function_name(self):
        return self.function if isinstance(self.function, str) else getattr(self.function, "__name__", "callable")

    @property
    def depth(self):
        return 1 << self.in_width

    @property
    def codes(self):
        """Every input code, in table-address order (the code's bits as an unsigned address)."""
        address = torch.arange(self.depth, dtype=torch.int64)
        if self.in_signed:
            return torch.where(address >= self.depth // 2, address - self.depth, address)
        return address

    @property
    def input_range(self):
        codes = self.codes
        return float(codes.min()) * 2.0 ** -self.in_frac_bits, float(codes.max()) * 2.0 ** -self.in_frac_bits

    def function_values(self):
        """The float function at every table address."""
        function = FUNCTIONS[self.function] if isinstance(self.function, str) else self.function
        x = self.codes.to(torch.float64) * 2.0 ** -self.in_frac_bits
        return torch.as_tensor(function(x), dtype=torch.float64)

    @property
    def table_bytes(self):
        return self.depth * math.ceil(self.out_width / 8)


def lut_table(cfg):
    """The table contents, indexed by the input code's bits as an unsigned address."""
    scaled = torch.round(cfg.function_values() * 2.0 ** cfg.out_frac_bits)
    return scaled.clamp(cfg.out_min, cfg.out_max).to(torch.int64)


def lut_unary(cfg, codes):
    """The block's function on integer input codes (any shape)."""
    codes = torch.as_tensor(codes, dtype=torch.int64)
    return lut_table(cfg)[codes & (cfg.depth - 1)]
