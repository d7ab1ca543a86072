"""Golden model of the ``xnor_popcount`` block: binary (+-1) dot products by XNOR and popcount, and the
batch-norm + sign that follows them folded into one integer threshold per channel.

Source: Hubara, Courbariaux, Soudry, El-Yaniv and Bengio, "Quantized Neural Networks: Training Neural
Networks with Low Precision Weights and Activations" (JMLR 18, 2018), with the binarized networks of
Courbariaux, Hubara et al., "Binarized Neural Networks" (NeurIPS 2016):

* Binarization (eq. 1 of the BNN paper): ``x_b = sign(x)``, with ``sign(0) = +1``, as in the authors'
  Theano code (``binary_tanh_unit`` rounds half away from zero; the run-time kernel packs ``x >= 0`` as
  bit 1). The PyTorch port's ``Binarize`` calls ``torch.sign`` and maps 0 to 0; here 0 is +1.
* Encoding: bit 1 stands for +1 and bit 0 for -1; element ``i`` of a vector is bit ``i % W`` of word
  ``i // W`` (``W`` bits per word, ``W = 32`` in the paper's ``xnor_gemm`` kernel).
* The dot product of two +-1 vectors of length ``K`` is ``s = 2 p - K`` with
  ``p = popcount(XNOR(a, w))`` counted over the ``K`` real elements only: the padding bits of the last
  word are masked out (``xnor_gemm`` subtracts the word count times 32 and so needs ``K % 32 == 0``).
* The first layer's input is not binary: its ``n``-bit codes are split in bit planes (section 2.6 of the
  QNN paper), ``s = sum_n 2^(n-1) (x^n . w_b)`` (:func:`bitplane_dot`, golden only).

Fold. The layer after a binary dot product is a batch norm followed by sign,
``y = sign(gamma (s + b - mu) / sigma + beta)`` (``b`` the layer's bias, ``sigma > 0`` the batch norm's
standard deviation ``sqrt(var + eps)``). With ``tau = mu - b - beta sigma / gamma`` and ``s = 2 p - K``:

* ``gamma > 0``: ``y = +1`` iff ``s >= tau`` iff ``p >= ceil((tau + K) / 2)``;
* ``gamma < 0``: ``y = +1`` iff ``s <= tau`` iff ``p <= floor((tau + K) / 2)``;
* ``gamma = 0``: ``y = sign(beta)``, a constant (+1 when ``beta >= 0``).

A batch-norm output of exactly 0 gives +1 (``sign(0) = +1``), which is why the bound is ``>=`` / ``<=``
and not strict. :func:`fold_batchnorm` computes ``tau`` and the ceiling / floor in exact rationals
(:class:`fractions.Fraction`, every float parameter taken at its exact binary value): a float ``tau``
that lands an ulp below an integer moves the threshold by one exactly at the ties. Each channel keeps
a threshold ``t`` and a direction ``d``: the output bit is ``p >= t`` for ``d = +1`` and ``p <= t`` for
``d = -1``. Thresholds are clamped to ``[-1, K + 1]`` (``p >= 0`` and ``p <= K`` always hold,
``p >= K + 1`` and ``p <= -1`` never do), so every channel, constant ones included, is one compare.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

__all__ = ["XnorPopcountConfig", "MAX_WORD_WIDTH", "binarize", "pack_words", "unpack_words", "popcounts",
           "binary_dot", "threshold_bits", "xnor_popcount", "fold_batchnorm", "batchnorm_sign",
           "bitplane_dot", "seeded_config"]

#: Widest word: words are int64 bit patterns in the golden model, and uint32 in the paper's kernels.
MAX_WORD_WIDTH = 32


def _check_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")


@dataclass(frozen=True)
class XnorPopcountConfig:
    """Configuration of the ``xnor_popcount`` block.

    Parameters
    ----------
    word_width : int
        Bits per input word ``W`` (1..32): one word of the activation vector and one word of each
        channel's weight vector per beat.
    k : int
        Vector length ``K`` in bits (1..65536); a vector is ``ceil(K / W)`` beats, and the padding bits
        of its last word are ignored.
    channels : int
        Output channels (1..64): binary dot products computed side by side on the same activation word.
    thresholds : tuple of int or None
        Per channel, the popcount threshold ``t`` (in ``[-1, K + 1]``), usually from
        :func:`fold_batchnorm`. ``None``: no batch norm, the plain ``sign(s)``, i.e. ``p >= ceil(K / 2)``.
    directions : tuple of int or None
        Per channel, +1 (output +1 iff ``p >= t``, a positive batch-norm gamma) or -1 (iff ``p <= t``,
        a negative gamma). ``None``: every channel +1.
    """
    word_width: int = 16
    k: int = 100
    channels: int = 8
    thresholds: tuple | None = None
    directions: tuple | None = None

    def __post_init__(self):
        for name in ("word_width", "k", "channels"):
            _check_int(name, getattr(self, name))
        if not 1 <= self.word_width <= MAX_WORD_WIDTH:
            raise ValueError(f"Word width must be between 1 and {MAX_WORD_WIDTH}, not {self.word_width}")
        if not 1 <= self.k <= 65536:
            raise ValueError(f"Vector length K must be between 1 and 65536, not {self.k}")
        if not 1 <= self.channels <= 64:
            raise ValueError(f"Channels must be between 1 and 64, not {self.channels}")
        for name in ("thresholds", "directions"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, tuple):
                raise TypeError(f"{name} must be a tuple or None, not {value!r}")
            if len(value) != self.channels:
                raise ValueError(f"{name} must have one entry per channel ({self.channels}), not {len(value)}")
            for entry in value:
                _check_int(f"Each of {name}", entry)
        if self.thresholds is not None:
            for t in self.thresholds:
                if not -1 <= t <= self.k + 1:
                    raise ValueError(f"Thresholds must lie in [-1, K + 1] = [-1, {self.k + 1}], not {t}")
        if self.directions is not None:
            for d in self.directions:
                if d not in (1, -1):
                    raise ValueError(f"Directions must be +1 or -1, not {d}")

    @property
    def words(self):
        """Beats per vector, ``ceil(K / W)``."""
        return -(-self.k // self.word_width)

    @property
    def last_mask(self):
        """The bits of the last word that hold vector elements."""
        used = self.k - (self.words - 1) * self.word_width
        return (1 << used) - 1

    @property
    def count_width(self):
        """Bits of a popcount over the whole vector (0..K)."""
        return self.k.bit_length()

    @property
    def threshold_codes(self):
        """Per-channel thresholds, the plain ``sign(s)`` threshold ``ceil(K / 2)`` when none are given."""
        return self.thresholds if self.thresholds is not None else ((self.k + 1) // 2,) * self.channels

    @property
    def direction_codes(self):
        return self.directions if self.directions is not None else (1,) * self.channels

    @property
    def macs(self):
        """Binary multiply-accumulates per beat: ``W`` per channel."""
        return self.word_width * self.channels


def binarize(x):
    """``sign(x)`` as +-1 int64 with ``sign(0) = +1`` (the paper's deterministic binarization)."""
    x = torch.as_tensor(x)
    return torch.where(x >= 0, 1, -1).to(torch.int64)


def pack_words(bits, word_width):
    """Bits (int tensor ``(..., K)`` of 0/1, bit 1 = +1) packed into ``(..., ceil(K / W))`` words,
    element ``i`` at bit ``i % W`` of word ``i // W``; the padding bits of the last word are 0."""
    bits = torch.as_tensor(bits, dtype=torch.int64)
    k = bits.shape[-1]
    words = -(-k // word_width)
    padded = torch.nn.functional.pad(bits, (0, words * word_width - k))
    weights = torch.ones(word_width, dtype=torch.int64) << torch.arange(word_width)
    return (padded.reshape(*bits.shape[:-1], words, word_width) * weights).sum(-1)


def unpack_words(words, word_width, k):
    """Inverse of :func:`pack_words`: the first ``k`` bits of ``words`` (padding bits dropped)."""
    words = torch.as_tensor(words, dtype=torch.int64)
    bits = (words.unsqueeze(-1) >> torch.arange(word_width)) & 1
    return bits.reshape(*words.shape[:-1], -1)[..., :k]


def _check_words(cfg, x, w):
    if x.dim() != 2 or x.shape[1] != cfg.words or w.dim() != 3 or w.shape[1:] != (cfg.channels, cfg.words) \
            or w.shape[0] != x.shape[0]:
        raise ValueError(f"Expected x of shape (N, {cfg.words}) and w of shape (N, {cfg.channels}, {cfg.words}), "
                         f"not {tuple(x.shape)} and {tuple(w.shape)}")
    for name, tensor in (("x", x), ("w", w)):
        if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >> cfg.word_width):
            raise ValueError(f"{name} words must be bit patterns between 0 and {(1 << cfg.word_width) - 1}")


def popcounts(cfg, x, w):
    """``p = popcount(XNOR(x, w))`` over the ``K`` vector elements.

    Parameters
    ----------
    x : integer tensor (N, words)
        Activation vectors, packed by :func:`pack_words` (padding bits may hold anything).
    w : integer tensor (N, channels, words)
        Each channel's weight vector for the same N vectors.

    Returns
    -------
    int64 tensor (N, channels), each in ``0..K``
    """
    x = torch.as_tensor(x, dtype=torch.int64)
    w = torch.as_tensor(w, dtype=torch.int64)
    _check_words(cfg, x, w)
    agree = unpack_words(~(x.unsqueeze(1) ^ w), cfg.word_width, cfg.k)
    return agree.sum(-1)


def binary_dot(cfg, x, w):
    """The +-1 dot product ``s = 2 p - K`` of the packed vectors (shapes as :func:`popcounts`)."""
    return 2 * popcounts(cfg, x, w) - cfg.k


def threshold_bits(cfg, p):
    """Output bits (1 = +1) of popcounts ``p`` (..., channels): ``p >= t`` or ``p <= t`` per channel."""
    t = torch.tensor(cfg.threshold_codes, dtype=torch.int64)
    d = torch.tensor(cfg.direction_codes, dtype=torch.int64)
    return torch.where(d > 0, p >= t, p <= t).to(torch.int64)


def xnor_popcount(cfg, x, w):
    """The block's function: per vector and channel, the bit ``sign(BN(s))`` as folded into the config's
    thresholds and directions (shapes as :func:`popcounts`; int64 tensor (N, channels) of 0/1)."""
    return threshold_bits(cfg, popcounts(cfg, x, w))


def _exact(name, value):
    try:
        return Fraction(value)
    except (ValueError, OverflowError, TypeError):
        raise ValueError(f"{name} must be a finite number, not {value!r}") from None


def fold_batchnorm(k, gamma, beta, mean, std, bias=None):
    """Fold ``sign(gamma (s + bias - mean) / std + beta)`` over ``s = 2 p - K`` into per-channel integer
    thresholds and directions, exactly (see the module docstring for the derivation).

    Parameters
    ----------
    k : int
        Vector length ``K``.
    gamma, beta, mean, std : sequences of numbers (int, float, Fraction), one per channel
        The batch norm's scale, shift, running mean and standard deviation ``sqrt(var + eps)`` (> 0).
        Floats are taken at their exact binary values.
    bias : sequence of numbers or None
        The binary layer's bias (0 when ``None``).

    Returns
    -------
    (thresholds, directions) : two tuples of int, ready for :class:`XnorPopcountConfig`.

    Raises
    ------
    ValueError
        If the sequences differ in length, a parameter is not finite or a ``std`` is not positive.
    """
    _check_int("k", k)
    if k < 1:
        raise ValueError(f"Vector length K must be positive, not {k}")
    columns = [list(gamma), list(beta), list(mean), list(std)]
    columns.append([0] * len(columns[0]) if bias is None else list(bias))
    if len({len(column) for column in columns}) != 1:
        raise ValueError(f"gamma, beta, mean, std and bias must have one entry per channel, not lengths "
                         f"{[len(column) for column in columns]}")
    thresholds, directions = [], []
    for g, bt, mu, sigma, b in zip(*columns):
        g, bt, mu, sigma, b = (_exact(name, value) for name, value in
                               zip(("gamma", "beta", "mean", "std", "bias"), (g, bt, mu, sigma, b)))
        if sigma <= 0:
            raise ValueError(f"Batch-norm std must be positive, not {sigma}")
        if g == 0:
            thresholds.append(0 if bt >= 0 else k + 1)
            directions.append(1)
            continue
        tau = mu - b - bt * sigma / g
        half = (tau + k) / 2
        if g > 0:
            thresholds.append(min(max(math.ceil(half), 0), k + 1))
            directions.append(1)
        else:
            thresholds.append(min(max(math.floor(half), -1), k))
            directions.append(-1)
    return tuple(thresholds), tuple(directions)


def batchnorm_sign(s, gamma, beta, mean, std, bias=None):
    """The float reference: ``sign(gamma (s + bias - mean) / std + beta)`` in float64 with
    ``sign(0) = +1``, as +-1 int64. ``s`` is (..., channels), the parameters (channels,)."""
    s = torch.as_tensor(s, dtype=torch.float64)
    as64 = [torch.as_tensor([float(v) for v in p], dtype=torch.float64) for p in (gamma, beta, mean, std)]
    b = torch.zeros_like(as64[0]) if bias is None else torch.as_tensor([float(v) for v in bias],
                                                                        dtype=torch.float64)
    g, bt, mu, sigma = as64
    return binarize(g * (s + b - mu) / sigma + bt)


def bitplane_dot(x, w_bits, width=8, signed=False):
    """The first layer's dot product of ``width``-bit input codes with binary weights, by bit planes:
    ``s = sum_n 2^(n-1) (x^n . w_b)`` (QNN paper, section 2.6), each plane's product
    ``x^n . w_b = 2 popcount(x^n AND w) - popcount(x^n)`` (plane bits are 0/1, weights +-1).

    Parameters
    ----------
    x : integer tensor (N, K)
        Input codes: ``0..2^width - 1``, or two's complement ``-2^(width-1)..2^(width-1) - 1`` when
        ``signed`` (the top plane then weighs ``-2^(width-1)``).
    w_bits : integer tensor (C, K) of 0/1
        Binary weights, bit 1 = +1.

    Returns
    -------
    int64 tensor (N, C), equal to the integer dot product ``x @ (2 w_bits - 1).T``.
    """
    x = torch.as_tensor(x, dtype=torch.int64)
    w_bits = torch.as_tensor(w_bits, dtype=torch.int64)
    low, high = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if x.numel() and (int(x.min()) < low or int(x.max()) > high):
        raise ValueError(f"Input codes must lie in [{low}, {high}] for {width}-bit "
                         f"{'signed' if signed else 'unsigned'} inputs")
    if w_bits.numel() and (int(w_bits.min()) < 0 or int(w_bits.max()) > 1):
        raise ValueError("Weight bits must be 0 or 1")
    codes = x & ((1 << width) - 1)
    total = torch.zeros(x.shape[0], w_bits.shape[0], dtype=torch.int64)
    for n in range(width):
        plane = (codes >> n) & 1
        and_count = (plane.unsqueeze(1) & w_bits.unsqueeze(0)).sum(-1)
        plane_dot = 2 * and_count - plane.sum(-1, keepdim=True)
        weight = -(1 << n) if signed and n == width - 1 else 1 << n
        total += weight * plane_dot
    return total


def seeded_config(word_width, k, channels, seed):
    """A config whose thresholds fold a seeded random batch norm: channel 0 has ``gamma = 0`` with
    ``beta >= 0``, channel 1 ``gamma = 0`` with ``beta < 0`` (when there are that many channels), the
    others a random sign of gamma, and half of those an exact tie (``tau + K`` an even integer, so one
    popcount gives a batch-norm output of exactly 0)."""
    gen = torch.Generator().manual_seed(seed)
    gamma, beta, mean, std = [], [], [], []
    for c in range(channels):
        draw = torch.rand(4, generator=gen, dtype=torch.float64).tolist()
        sigma = Fraction(1 + int(draw[0] * 8), 4)
        if c < 2 and channels > 2:
            gamma.append(0)
            beta.append(Fraction(1, 2) if c == 0 else Fraction(-1, 2))
            mean.append(0)
        else:
            g = Fraction(1 + int(draw[1] * 4), 2) * (1 if draw[2] < 0.5 else -1)
            p_tie = int(draw[3] * (k + 1))
            tau = Fraction(2 * p_tie - k) + (0 if c % 2 else Fraction(1, 3))
            shift = Fraction(int(draw[3] * 7) - 3, 8)
            gamma.append(g)
            beta.append(shift)
            mean.append(tau + shift * sigma / g)
        std.append(sigma)
    thresholds, directions = fold_batchnorm(k, gamma, beta, mean, std)
    return XnorPopcountConfig(word_width=word_width, k=k, channels=channels, thresholds=thresholds,
                              directions=directions)
