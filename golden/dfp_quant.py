"""Dynamic fixed point with stochastic rounding: a per-tensor shared-exponent quantizer (the function of
the ``dfp_quant`` block).

Source: Tayaranian, Ghaffari et al., "Integer Fine-tuning of Transformer-based Models" (Huawei, 2022),
section 3, after the dynamic fixed-point format of Ghaffari et al. (NeurIPS 2022): the tensor's
floating-point values share one exponent, the largest of the tensor's exponents; each value's
significand (with its hidden 1) is shifted to that exponent and cut to ``b`` bits by stochastic
rounding, ``floor(v / 2**r + u)`` with ``u`` uniform, so the rounding is unbiased.

Inputs are IEEE-style words of ``1 + exp_width + man_width`` bits (float32 by default; float16 and
bfloat16 are the same with other widths). For a word with sign ``s``, exponent field ``e`` and fraction
``f``: the significand ``m = (e != 0) << man_width | f`` and the effective exponent ``e' = max(e, 1)`` (a
subnormal has the smallest normal exponent and no hidden 1), so the value is ``(-1)**s m 2**(e' - bias -
man_width)``. Exponent fields of all ones (infinities, NaN) are refused. Per tensor:

1. ``E = max e'`` over the tensor (the **shared exponent**; 1 for an all-zero tensor);
2. each element's right shift ``r = (E - e') + (man_width + 2 - b)``: the largest significands land just
   under ``2**(b - 1)``, so with the sign the code has ``b`` bits (**sign in b**, our choice);
3. the magnitude ``q = floor(m / 2**r + R / 2**k)`` with ``R`` the element's ``k = rand_bits`` random bits
   (stochastic; ``rounding="nearest"`` uses ``R = 2**(k-1)``, round half up); computed as ``(floor(m 2**(k
   - r)) + R) >> k``, which is the same integer. ``u = R / 2**k`` has ``k`` bits, so the rounding is
   unbiased to within ``2**-k`` of a code (exactly, for ``r <= k``);
4. **saturation** at ``2**(b-1) - 1`` (a significand close to ``2**(man_width+1)`` can round up to
   ``2**(b-1)``), then the sign: codes in ``[-(2**(b-1) - 1), 2**(b-1) - 1]``, symmetric.

The code ``q`` stands for ``q 2**(E - bias - (b - 2))`` (:func:`dfp_dequantize`).

**Random bits** (the paper fixes no generator; ours is part of the model): a Galois LFSR of
``lfsr_width`` bits (16: mask ``0xB400``, x^16 + x^14 + x^13 + x^11 + 1; 32: mask ``0x80200003``,
x^32 + x^22 + x^2 + x + 1, both maximal-length), one step ``out = state & 1; state >>= 1; if out: state
^= mask``, started from ``seed`` at reset. Each quantized element takes the next ``k`` output bits,
``R = sum_j out_j << j`` (the first bit is the least significant); the sequence runs on across tensors
and is not restarted.
"""

from dataclasses import dataclass

import torch

from .common.codes import require_integers

__all__ = ["DfpQuantConfig", "LFSR_MASKS", "Lfsr", "dfp_quant", "dfp_dequantize", "float_words", "word_values",
           "ROUNDINGS"]

#: Galois masks of maximal-length LFSRs by width.
LFSR_MASKS = {16: 0xB400, 32: 0x80200003}
ROUNDINGS = ("stochastic", "nearest")


@dataclass(frozen=True)
class DfpQuantConfig:
    """Configuration of the ``dfp_quant`` block.

    Parameters
    ----------
    exp_width, man_width : int
        The input words' exponent (2..8) and fraction (1..23) fields: 8, 23 for float32, 5, 10 for
        float16, 8, 7 for bfloat16.
    bits : int
        Output code width ``b``, sign included (2 .. ``man_width + 2``).
    rounding : str
        ``"stochastic"`` or ``"nearest"`` (half up, for comparison).
    rand_bits : int
        Random bits per element ``k`` (1 .. ``lfsr_width``).
    lfsr_width : int
        16 or 32.
    seed : int
        The LFSR's state at reset (1 .. ``2**lfsr_width - 1``).
    """
    exp_width: int = 8
    man_width: int = 23
    bits: int = 8
    rounding: str = "stochastic"
    rand_bits: int = 8
    lfsr_width: int = 32
    seed: int = 1

    def __post_init__(self):
        require_integers(self, ("exp_width", "man_width", "bits", "rand_bits", "lfsr_width", "seed"))
        if not 2 <= self.exp_width <= 8:
            raise ValueError(f"Exponent width must be between 2 and 8, not {self.exp_width}")
        if not 1 <= self.man_width <= 23:
            raise ValueError(f"Fraction width must be between 1 and 23, not {self.man_width}")
        if not 2 <= self.bits <= self.man_width + 2:
            raise ValueError(f"Code bits must be between 2 and {self.man_width + 2} for {self.man_width} "
                             f"fraction bits, not {self.bits}")
        if not isinstance(self.rounding, str):
            raise TypeError(f"rounding must be a string, not {self.rounding!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"Rounding must be 'stochastic' or 'nearest', not {self.rounding!r}")
        if self.lfsr_width not in LFSR_MASKS:
            raise ValueError(f"LFSR width must be 16 or 32, not {self.lfsr_width}")
        if not 1 <= self.rand_bits <= self.lfsr_width:
            raise ValueError(f"Random bits must be between 1 and {self.lfsr_width}, not {self.rand_bits}")
        if not 1 <= self.seed < 1 << self.lfsr_width:
            raise ValueError(f"Seed must be between 1 and {(1 << self.lfsr_width) - 1}, not {self.seed}")

    @property
    def width(self):
        """Input word width."""
        return 1 + self.exp_width + self.man_width

    @property
    def bias(self):
        return (1 << (self.exp_width - 1)) - 1

    @property
    def exp_max(self):
        """Largest finite exponent field."""
        return (1 << self.exp_width) - 2

    @property
    def base_shift(self):
        """``man_width + 2 - b``: the right shift of an element at the shared exponent."""
        return self.man_width + 2 - self.bits

    @property
    def max_shift(self):
        """Shifts from here on leave nothing of ``m 2**k``: the hardware clamps ``r`` to it."""
        return self.man_width + 1 + self.rand_bits

    @property
    def code_max(self):
        return (1 << (self.bits - 1)) - 1

    @property
    def mask(self):
        return LFSR_MASKS[self.lfsr_width]


class Lfsr:
    """The random-bit source of :class:`DfpQuantConfig` (state, step and ``k``-bit draws)."""

    def __init__(self, cfg, state=None):
        self.cfg = cfg
        self.state = cfg.seed if state is None else state

    def step(self):
        """One step; returns the output bit."""
        out = self.state & 1
        self.state >>= 1
        if out:
            self.state ^= self.cfg.mask
        return out

    def draw(self, count):
        """``count`` elements' random integers ``R``, ``k`` output bits each, first bit least significant.
        (A recurrence: one step per bit, in order, as in the block.)"""
        k = self.cfg.rand_bits
        values = []
        for _ in range(count):
            value = 0
            for j in range(k):
                value |= self.step() << j
            values.append(value)
        return torch.tensor(values, dtype=torch.int64)


def _fields(cfg, words):
    words = torch.as_tensor(words)
    if words.dtype.is_floating_point or words.dtype == torch.bool:
        raise TypeError(f"Dynamic fixed point takes word bit patterns (integers), not {words.dtype}")
    words = words.to(torch.int64)
    if words.ndim != 1 or len(words) == 0:
        raise ValueError("A tensor must be a non-empty 1-D tensor of words")
    if bool((words < 0).any()) or bool((words >= 1 << cfg.width).any()):
        raise ValueError(f"Words must be {cfg.width}-bit patterns")
    exponent = (words >> cfg.man_width) & ((1 << cfg.exp_width) - 1)
    if bool((exponent > cfg.exp_max).any()):
        raise ValueError("Infinities and NaN have no dynamic fixed-point code")
    fraction = words & ((1 << cfg.man_width) - 1)
    significand = torch.where(exponent != 0, fraction | (1 << cfg.man_width), fraction)
    return words >> (cfg.width - 1), exponent.clamp(min=1), significand


def dfp_quant(cfg, tensors, lfsr=None):
    """Quantize each 1-D word tensor of ``tensors`` in order: a list of ``(codes, shared exponent)``.
    ``lfsr`` (an :class:`Lfsr`, advanced in place) supplies the random bits; a new one from
    ``cfg.seed`` if not given."""
    lfsr = Lfsr(cfg) if lfsr is None else lfsr
    k = cfg.rand_bits
    results = []
    for words in tensors:
        sign, exponent, significand = _fields(cfg, words)
        shared = int(exponent.max())
        shift = (shared - exponent + cfg.base_shift).clamp(max=cfg.max_shift)
        # floor(m 2**(k - r)): a left shift for r < k, a right shift otherwise.
        scaled = torch.where(shift <= k, significand << (k - shift).clamp(min=0), significand >> (shift - k).clamp(min=0))
        draws = lfsr.draw(len(significand))
        rounding = draws if cfg.rounding == "stochastic" else torch.full_like(draws, 1 << (k - 1))
        magnitude = ((scaled + rounding) >> k).clamp(max=cfg.code_max)
        results.append((torch.where(sign == 1, -magnitude, magnitude), shared))
    return results


def dfp_dequantize(cfg, codes, shared):
    """The value a code stands for: ``q 2**(E - bias - (b - 2))`` (float64)."""
    return torch.as_tensor(codes, dtype=torch.float64) * 2.0 ** (shared - cfg.bias - (cfg.bits - 2))


def float_words(cfg, values):
    """Float ``values`` as word bit patterns of ``cfg``'s format, rounded to nearest even (through float32
    for float32 words; float16 and bfloat16 through torch's own conversion)."""
    values = torch.as_tensor(values)
    formats = {(8, 23): (torch.float32, torch.int32), (5, 10): (torch.float16, torch.int16),
               (8, 7): (torch.bfloat16, torch.int16)}
    if (cfg.exp_width, cfg.man_width) not in formats:
        raise ValueError(f"No torch float format has {cfg.exp_width} exponent and {cfg.man_width} fraction "
                         f"bits")
    dtype, int_dtype = formats[(cfg.exp_width, cfg.man_width)]
    return values.to(dtype).view(int_dtype).to(torch.int64) & ((1 << cfg.width) - 1)


def word_values(cfg, words):
    """The exact values of word bit patterns (float64)."""
    sign, exponent, significand = _fields(cfg, words)
    magnitude = significand.to(torch.float64) * torch.exp2((exponent - cfg.bias - cfg.man_width).to(torch.float64))
    return torch.where(sign == 1, -magnitude, magnitude)
