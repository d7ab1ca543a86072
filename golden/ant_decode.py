"""Golden model of the ``ant_decode`` block: ANT codes -> the processing element's (sign, mantissa,
shift) fields, lane by lane, the type arriving with every beat.

Source: Guo et al., "ANT: Exploiting Adaptive Numerical Data Type for Low-bit Deep Neural Network
Quantization" (MICRO 2022), its processing element (the unified PE: a decoder turns a 4-bit int, PoT or flint code
into a small integer mantissa and an exponent, so one integer multiplier and a shifter serve every type).
The types, their codes and the decoder's rule are :mod:`qarith.golden.common.ant`; the value of a code
is ``(-1)^sign * mantissa << shift``.

The type of a beat is ``(kind, signed)``, ``kind`` an index into
:data:`~qarith.golden.common.ant.KINDS` (0 int, 1 PoT, 2 flint); kind 3 is reserved and the model
refuses it (the hardware decodes it as flint).
"""

from dataclasses import dataclass

import torch

from .common.ant import KINDS, decode_fields
from .common.codes import require_integers

__all__ = ["AntDecodeConfig", "ant_decode"]


@dataclass(frozen=True)
class AntDecodeConfig:
    """Configuration of the ``ant_decode`` block.

    Parameters
    ----------
    lanes : int
        Codes decoded per beat (1..64), all of the beat's one type.
    """
    lanes: int = 4

    def __post_init__(self):
        require_integers(self, ("lanes",))
        if not 1 <= self.lanes <= 64:
            raise ValueError(f"Lanes must be between 1 and 64, not {self.lanes}")


def ant_decode(cfg, kind, signed, codes):
    """The decoder's fields of every code.

    Parameters
    ----------
    kind, signed : integer tensors (T,)
        Each beat's type: kind index (0 int, 1 PoT, 2 flint) and signedness (0 or 1).
    codes : integer tensor (T, lanes)

    Returns
    -------
    (sign, mantissa, shift) : int64 tensors (T, lanes)
    """
    kind = torch.as_tensor(kind, dtype=torch.int64)
    signed = torch.as_tensor(signed, dtype=torch.int64)
    codes = torch.as_tensor(codes, dtype=torch.int64)
    if codes.dim() != 2 or codes.shape[1] != cfg.lanes or kind.shape != codes.shape[:1] \
            or signed.shape != codes.shape[:1]:
        raise ValueError(f"Expected codes of shape (T, {cfg.lanes}) and kind, signed of shape (T,), not "
                         f"{tuple(codes.shape)}, {tuple(kind.shape)} and {tuple(signed.shape)}")
    if kind.numel() and (int(kind.min()) < 0 or int(kind.max()) >= len(KINDS)):
        raise ValueError(f"Kind indices must lie in [0, {len(KINDS) - 1}] ({', '.join(KINDS)})")
    if signed.numel() and (int(signed.min()) < 0 or int(signed.max()) > 1):
        raise ValueError("Signedness must be 0 or 1")
    fields = [torch.zeros_like(codes) for _ in range(3)]
    for index, name in enumerate(KINDS):
        for is_signed in (False, True):
            beats = (kind == index) & (signed == int(is_signed))
            for field, value in zip(fields, decode_fields(name, is_signed, codes[beats])):
                field[beats] = value
    return tuple(fields)
