"""An integer-only transformer encoder layer (post-LN, BERT order) composed of qarith's golden blocks.

The layer (Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3; the post-LN order of
Devlin et al., BERT, NAACL 2019)::

    Q, K, V = x Wq + bq, x Wk + bk, x Wv + bv
    A_h     = softmax(Q_h K_h^T / sqrt(d_head)) V_h               (one per head, concatenated)
    y1      = LayerNorm1(x + A Wo + bo)
    y       = LayerNorm2(y1 + GELU(y1 W1 + b1) W2 + b2)

runs from int8 codes in to int8 codes out with the integer-only recipe of I-BERT (Kim et al., ICML 2021,
section 3) and I-ViT (Li & Gu, ICCV 2023, section 3): every matrix product is an exact integer GEMM
(:func:`qarith.golden.mac_array.mac_tiles`, tiled over the configured array) followed by TFLite
requantization (:func:`qarith.golden.requant.requantize`; Jacob et al., CVPR 2018, equations 5-6), and
the nonlinear steps are the blocks' own integer functions: ShiftMax or I-BERT's softmax
(:func:`qarith.golden.shiftmax.shiftmax`) or the table softmax (:func:`qarith.golden.softmax_lut.softmax_lut`),
I-LayerNorm (:func:`qarith.golden.ilayernorm.ilayernorm`), ShiftGELU or I-BERT's i-GELU
(:func:`qarith.golden.shiftgelu.shiftgelu`).

Quantization choices, named (``integerize_encoder`` makes them from calibration data):

* every activation tensor is symmetric int8, zero point 0, scale ``max|t| / 127`` over the calibration
  set (``x_scale``, ``q_scale``, ``k_scale``, ``v_scale``, ``score_scale``, ``ctx_scale``,
  ``res1_scale``, ``ln1_scale``, ``hidden_scale``, ``gelu_scale``, ``res2_scale``, ``out_scale``);
* weights per output channel, symmetric, ``max|w[o]| / 127``, codes in [-127, 127]; biases int32 at
  ``S_in S_w[o]`` (:func:`qarith.golden.linear_int8.quantize_linear`'s rules);
* every requantization's multiplier by TFLite ``QuantizeMultiplier`` (Q31 and shift), double rounding;
* scores: ``sum_d Q_hd K_hd`` requantized with ``M = S_q S_k / (sqrt(d_head) S_score)`` to int8 score
  codes (the softmax's input scale is ``score_scale``);
* probabilities: unsigned 7-bit codes at ``2**-7`` (ShiftMax ``out_width`` 8, I-BERT and the table
  softmax ``out_width`` 7), so they enter the ``P V`` GEMM as int8 operands;
* residual adds: each branch is requantized to the sum's scale (int8, ``res*_scale`` chosen so either
  branch fits) and the two codes are added exactly (a 9-bit sum, the I-LayerNorm's input);
* GELU output (``x * sigmoid`` at ``S_hidden 2**-(sig_width - 1)``, 15 bits) is requantized to int8
  at ``gelu_scale`` before the second FFN GEMM.

:func:`encoder_layer` returns every phase's tensor (the taps a test bench compares) and the int8 output.
"""

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn

from .common.codes import require_integers
from .common.pwl_fit import one_thread
from .ilayernorm import ILayerNormConfig, ilayernorm
from .mac_array import MacArrayConfig, mac_tiles
from .requant import RequantConfig, quantize_multiplier, requantize
from .shiftgelu import ShiftGeluConfig, shiftgelu
from .shiftmax import ShiftmaxConfig, shiftmax
from .softmax_lut import SoftmaxLutConfig, softmax_lut

__all__ = ["EncoderLayerConfig", "SOFTMAXES", "GELUS", "FloatEncoderLayer", "EncoderParams", "Requantizer",
           "integerize_encoder", "encoder_layer", "layer_matmul", "float_error", "TAPS", "SOURCES",
           "config_params", "seeded_layer", "digits_model", "qkv_projection", "RTL_PHASES"]

SOFTMAXES = ("shiftmax", "ibert", "lut")
GELUS = ("shiftgelu", "igelu")
SOURCES = ("seeded", "digits")
#: The hardware's multipliers: ``"fabric"`` (products left to synthesis, portable, simulated by
#: amaranth.sim too) or ``"ecp5"`` (the MAC array's ``ecp5_pipe`` MULT18X18D and the requantizers'
#: ``ecp5`` partial products, with the DSPs' own registers; cocotb only).
MULTIPLIERS = ("fabric", "ecp5")
#: The phases the RTL computes for each ``rtl_phases`` choice, in the order its output stream carries
#: their tensors (the hardware's tap stream; the last one is the block's result so far).
RTL_PHASES = {"qkv": ("qkv",), "attention": ("qkv", "scores", "probs", "ctx", "attn_out", "res1")}
RTL_PHASES["layer"] = RTL_PHASES["attention"] + ("ln1", "hidden", "gelu", "ffn_out", "res2", "out")
#: Probability codes are 7-bit unsigned at this scale for every softmax choice.
PROB_BITS = 7
#: The residual sum of two int8 codes, the I-LayerNorm's input width.
RESIDUAL_WIDTH = 9
#: The phases :func:`encoder_layer` returns, in the order the layer computes them.
TAPS = ("q", "k", "v", "scores", "probs", "ctx", "attn_out", "res1", "ln1", "hidden", "gelu", "gelu_q",
        "ffn_out", "res2", "out")


@dataclass(frozen=True)
class EncoderLayerConfig:
    """Configuration of the ``encoder_layer`` block and its integer model.

    Parameters
    ----------
    d_model : int
        Token width (channels), 1..512.
    heads : int
        Attention heads; must divide ``d_model``.
    d_ff : int
        Hidden width of the feed-forward network, 1..2048.
    max_seq : int
        Longest sequence (tokens), 1..256.
    softmax : str
        ``"shiftmax"`` (I-ViT ShiftMax), ``"ibert"`` (I-BERT's integer softmax) or ``"lut"`` (the table
        softmax of ``softmax_lut``, ``"recip"`` method).
    gelu : str
        ``"shiftgelu"`` (I-ViT ShiftGELU) or ``"igelu"`` (I-BERT's i-GELU).
    rows, cols : int
        The MAC array every GEMM is tiled over (1..32 each).
    sig_width : int
        ShiftGELU's sigmoid code width (2..8).
    source : str
        Where the hardware's weights come from (:func:`config_params`): ``"seeded"`` (a float layer
        initialised from ``seed``, calibrated on Gaussian tokens) or ``"digits"`` (the encoder layer of a
        tiny transformer trained on scikit-learn's digits, :func:`digits_model`).
    seed : int
        Seed of the float layer and its calibration data.
    rtl_phases : str
        How far the RTL goes (:data:`RTL_PHASES`): ``"qkv"`` (the fused projections), ``"attention"``
        (on to the first residual sum) or ``"layer"`` (the whole layer, on to the second LayerNorm's
        int8 output); every choice takes sequences of 1..``max_seq`` tokens. The integer model always
        computes the whole layer.
    multiplier : str
        The hardware's multipliers (:data:`MULTIPLIERS`); the function is the same.
    """
    d_model: int = 8
    heads: int = 2
    d_ff: int = 16
    max_seq: int = 4
    softmax: str = "shiftmax"
    gelu: str = "shiftgelu"
    rows: int = 4
    cols: int = 4
    sig_width: int = 8
    source: str = "seeded"
    seed: int = 0
    rtl_phases: str = "qkv"
    multiplier: str = "fabric"

    def __post_init__(self):
        require_integers(self, ("d_model", "heads", "d_ff", "max_seq", "rows", "cols", "sig_width", "seed"))
        if not 1 <= self.d_model <= 512:
            raise ValueError(f"d_model must be between 1 and 512, not {self.d_model}")
        if not 1 <= self.heads <= self.d_model or self.d_model % self.heads:
            raise ValueError(f"Head count must divide d_model={self.d_model}, not {self.heads}")
        if not 1 <= self.d_ff <= 2048:
            raise ValueError(f"d_ff must be between 1 and 2048, not {self.d_ff}")
        if not 1 <= self.max_seq <= 256:
            raise ValueError(f"max_seq must be between 1 and 256, not {self.max_seq}")
        if self.softmax not in SOFTMAXES:
            raise ValueError(f"Softmax must be one of {', '.join(SOFTMAXES)}, not {self.softmax!r}")
        if self.gelu not in GELUS:
            raise ValueError(f"GELU must be one of {', '.join(GELUS)}, not {self.gelu!r}")
        if not 2 <= self.sig_width <= 8:
            raise ValueError(f"Sigmoid width must be between 2 and 8, not {self.sig_width}")
        if not 0 <= self.seed < 1 << 32:
            raise ValueError(f"Seed must be between 0 and 2**32 - 1, not {self.seed}")
        if self.source not in SOURCES:
            raise ValueError(f"Source must be one of {', '.join(SOURCES)}, not {self.source!r}")
        if self.multiplier not in MULTIPLIERS:
            raise ValueError(f"Multiplier must be one of {', '.join(MULTIPLIERS)}, not {self.multiplier!r}")
        self.mac                      # the array's own checks word the rows/cols errors
        if self.d_model % self.cols:
            raise ValueError(f"Array cols must divide d_model={self.d_model}, not {self.cols}")
        if self.rtl_phases not in RTL_PHASES:
            raise ValueError(f"RTL phases must be one of {', '.join(RTL_PHASES)}, not {self.rtl_phases!r}")
        if self.rtl_phases != "qkv":
            if self.d_head % self.cols:
                raise ValueError(f"Array cols must divide d_head={self.d_head} for the attention phases, "
                                 f"not {self.cols}")
            if self.max_seq % self.rows or self.max_seq % self.cols:
                raise ValueError(f"Array rows and cols must divide max_seq={self.max_seq} for the attention "
                                 f"phases, not {self.rows} and {self.cols}")
        if self.rtl_phases == "layer":
            if self.d_ff % self.cols:
                raise ValueError(f"Array cols must divide d_ff={self.d_ff} for the FFN phases, not {self.cols}")
            if self.cols < 2:
                raise ValueError(f"The layer's gelu tap carries two codes a beat: array cols must be at least 2, "
                                 f"not {self.cols}")

    @property
    def d_head(self):
        return self.d_model // self.heads

    @property
    def mac(self):
        """The MAC array every GEMM runs on: int8 x int8, deep enough for the longest reduction."""
        if self.multiplier == "ecp5":
            return MacArrayConfig(rows=self.rows, cols=self.cols, max_k=max(self.d_model, self.d_ff, self.max_seq),
                                  mult_reg=True, multiplier="ecp5_pipe")
        return MacArrayConfig(rows=self.rows, cols=self.cols, max_k=max(self.d_model, self.d_ff, self.max_seq))

    @property
    def macs_per_token(self):
        """Multiply-accumulates of the projections and the FFN per token (the sequence-linear part)."""
        return 4 * self.d_model * self.d_model + 2 * self.d_model * self.d_ff

    def layer_macs(self, seq):
        """Every multiply-accumulate of one layer on ``seq`` tokens: projections, FFN, ``Q K^T``, ``P V``.
        (Not named ``macs``: ``qarith report`` records a config's ``macs`` attribute as a number.)"""
        return seq * self.macs_per_token + 2 * seq * seq * self.d_model


class FloatEncoderLayer(nn.Module):
    """The float layer that :func:`integerize_encoder` quantizes: post-LN, batch first, erf GELU.

    ``forward(x, taps=None)`` takes ``(batch, seq, d_model)``; a ``dict`` passed as ``taps`` receives
    every intermediate tensor under the names of :data:`TAPS`.
    """

    def __init__(self, d_model, heads, d_ff):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"Head count must divide d_model={d_model}, not {heads}")
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d_model, d_model) for _ in range(4))
        self.ffn1, self.ffn2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x, taps=None):
        taps = {} if taps is None else taps
        batch, seq, d_model = x.shape
        d_head = d_model // self.heads

        def split(t):
            return t.reshape(batch, seq, self.heads, d_head).transpose(1, 2)

        taps["x"] = x
        q, k, v = taps["q"], taps["k"], taps["v"] = self.q(x), self.k(x), self.v(x)
        scores = taps["scores"] = split(q) @ split(k).transpose(-1, -2) / math.sqrt(d_head)
        probs = taps["probs"] = torch.softmax(scores, dim=-1)
        ctx = taps["ctx"] = (probs @ split(v)).transpose(1, 2).reshape(batch, seq, d_model)
        attn = taps["attn_out"] = self.o(ctx)
        taps["res1"] = x + attn
        y1 = taps["ln1"] = self.ln1(x + attn)
        hidden = taps["hidden"] = self.ffn1(y1)
        gelu = taps["gelu"] = nn.functional.gelu(hidden)
        ffn = taps["ffn_out"] = self.ffn2(gelu)
        taps["res2"] = y1 + ffn
        out = taps["out"] = self.ln2(y1 + ffn)
        return out


@dataclass(frozen=True)
class Requantizer:
    """One named requantization: per-channel (or scalar) ``bias``, Q31 ``multiplier`` and ``shift``;
    int8 output, zero point 0."""
    bias: torch.Tensor
    multiplier: torch.Tensor
    shift: torch.Tensor

    @classmethod
    def of(cls, real_multipliers, bias=None):
        real = torch.as_tensor(real_multipliers, dtype=torch.float64).reshape(-1)
        pairs = [quantize_multiplier(float(r)) for r in real]
        bias = torch.zeros(len(pairs), dtype=torch.int64) if bias is None else bias
        return cls(bias.to(torch.int64), torch.tensor([m for m, _ in pairs], dtype=torch.int64),
                   torch.tensor([s for _, s in pairs], dtype=torch.int64))

    def __call__(self, acc):
        return requantize(RequantConfig(), acc, self.bias, self.multiplier, self.shift, 0, -128, 127)


@dataclass(frozen=True)
class EncoderParams:
    """An integerized layer: int8 weights (``(out, in)``), the named requantizers, the real scales and the
    nonlinear blocks' configs (per sequence length where the row length matters)."""
    cfg: EncoderLayerConfig
    weights: dict
    requant: dict
    scales: dict
    ln1: ILayerNormConfig
    ln2: ILayerNormConfig
    gelu: ShiftGeluConfig

    def softmax_config(self, seq, variable_length=False):
        """The softmax over rows of ``seq`` scores (``variable_length``: rows of 1..``seq``, each ended
        by ``last``, the hardware's block; on a row of ``L`` it computes what the config of ``L`` does)."""
        if self.cfg.softmax == "lut":
            return SoftmaxLutConfig(n=seq, scale=self.scales["score"], out_width=PROB_BITS, mask_min=False,
                                    variable_length=variable_length)
        variant = "ibert" if self.cfg.softmax == "ibert" else "pytorch"
        return ShiftmaxConfig(n=seq, variant=variant, scale=self.scales["score"],
                              out_width=PROB_BITS if variant == "ibert" else PROB_BITS + 1,
                              variable_length=variable_length)


def _symmetric_scale(t):
    high = float(t.detach().abs().max())
    return high / 127 if high > 0 else 1.0


def _weight_codes(linear):
    weight = linear.weight.detach().to(torch.float64)
    scale = weight.abs().amax(dim=1) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(weight / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int64), scale


def _linear_requant(linear, in_scale, out_scale):
    """Weight codes and the requantizer of ``linear`` from ``in_scale`` to ``out_scale`` (bias int32 at
    ``in_scale S_w``, rounded half to even and clamped to int32)."""
    codes, w_scale = _weight_codes(linear)
    bias = torch.round(linear.bias.detach().to(torch.float64) / (in_scale * w_scale))
    bias = bias.clamp(-(1 << 31), (1 << 31) - 1).to(torch.int64)
    return codes, Requantizer.of(in_scale * w_scale / out_scale, bias)


def integerize_encoder(layer, calib, cfg):
    """Quantize ``layer`` (a :class:`FloatEncoderLayer`) with calibration inputs ``calib``
    ``(batch, seq, d_model)`` into :class:`EncoderParams` for ``cfg``.

    Raises
    ------
    TypeError
        If ``layer`` is not a :class:`FloatEncoderLayer`.
    ValueError
        If the layer's dimensions differ from ``cfg``'s, or a LayerNorm has a non-positive gamma.
    """
    if not isinstance(layer, FloatEncoderLayer):
        raise TypeError(f"Expected a FloatEncoderLayer, not {layer!r}")
    dims = (layer.q.in_features, layer.heads, layer.ffn1.out_features)
    if dims != (cfg.d_model, cfg.heads, cfg.d_ff):
        raise ValueError(f"Layer has (d_model, heads, d_ff) = {dims}, the config {(cfg.d_model, cfg.heads, cfg.d_ff)}")
    taps = {}
    with torch.no_grad():
        layer(calib.to(torch.float32), taps)
    s = {name: _symmetric_scale(taps[name]) for name in ("x", "q", "k", "v", "scores", "ctx", "hidden", "gelu",
                                                         "ln1", "out")}
    s["score"] = s.pop("scores")
    s["res1"] = max(s["x"], _symmetric_scale(taps["attn_out"]))
    s["res2"] = max(s["ln1"], _symmetric_scale(taps["ffn_out"]))
    weights, requant = {}, {}
    for name, linear, in_scale, out_scale in (("q", layer.q, s["x"], s["q"]), ("k", layer.k, s["x"], s["k"]),
                                              ("v", layer.v, s["x"], s["v"]), ("o", layer.o, s["ctx"], s["res1"]),
                                              ("ffn1", layer.ffn1, s["ln1"], s["hidden"]),
                                              ("ffn2", layer.ffn2, s["gelu"], s["res2"])):
        weights[name], requant[name] = _linear_requant(linear, in_scale, out_scale)
    requant["scores"] = Requantizer.of(s["q"] * s["k"] / math.sqrt(cfg.d_head) / s["score"])
    requant["ctx"] = Requantizer.of(2.0 ** -PROB_BITS * s["v"] / s["ctx"])
    requant["res1_x"] = Requantizer.of(s["x"] / s["res1"])
    requant["res2_ln1"] = Requantizer.of(s["ln1"] / s["res2"])
    if cfg.gelu == "igelu":
        gelu = ShiftGeluConfig(scale=s["hidden"], method="ibert")
    else:
        gelu = ShiftGeluConfig(scale=s["hidden"], sig_width=cfg.sig_width)
    requant["gelu"] = Requantizer.of(gelu.out_scale / s["gelu"])
    lns = []
    for norm, in_scale, out_scale in ((layer.ln1, s["res1"], s["ln1"]), (layer.ln2, s["res2"], s["out"])):
        gamma = norm.weight.detach().to(torch.float64)
        if not bool((gamma > 0).all()):
            raise ValueError("LayerNorm gamma must be positive in every channel (fold a sign into the next layer)")
        # The I-LayerNorm normalises the codes themselves: the input scale cancels, beta stays real.
        lns.append(ILayerNormConfig(channels=cfg.d_model, in_width=RESIDUAL_WIDTH,
                                    gamma=tuple(float(g) for g in gamma),
                                    beta=tuple(float(b) for b in norm.bias.detach().to(torch.float64)),
                                    out_scale=out_scale))
    return EncoderParams(cfg, weights, requant, s, lns[0], lns[1], gelu)


def layer_matmul(cfg, a, b):
    """``a (n, K) @ b (K, m)`` as the hardware does it: ``rows x cols`` tiles of the MAC array
    (:func:`~qarith.golden.mac_array.mac_tiles`), the edges padded with zero codes."""
    mac = cfg.mac
    a, b = torch.as_tensor(a, dtype=torch.int64), torch.as_tensor(b, dtype=torch.int64)
    n, m = a.shape[0], b.shape[1]
    tiles_r, tiles_c = -(-n // mac.rows), -(-m // mac.cols)
    a_pad = torch.zeros(tiles_r * mac.rows, a.shape[1], dtype=torch.int64)
    a_pad[:n] = a
    b_pad = torch.zeros(b.shape[0], tiles_c * mac.cols, dtype=torch.int64)
    b_pad[:, :m] = b
    a_tiles = a_pad.reshape(tiles_r, mac.rows, -1).repeat_interleave(tiles_c, dim=0)
    b_tiles = b_pad.reshape(b.shape[0], tiles_c, mac.cols).permute(1, 0, 2).repeat(tiles_r, 1, 1)
    out = mac_tiles(mac, a_tiles, b_tiles).reshape(tiles_r, tiles_c, mac.rows, mac.cols)
    return out.permute(0, 2, 1, 3).reshape(tiles_r * mac.rows, tiles_c * mac.cols)[:n, :m]


def encoder_layer(params, x):
    """The integer layer on one sequence of int8 token codes ``x (seq, d_model)``.

    Returns a ``dict`` of every phase's int64 tensor (:data:`TAPS`; ``scores`` and ``probs`` are
    ``(heads, seq, seq)``, the others ``(seq, channels)``); ``"out"`` is the layer's int8 output.
    """
    cfg = params.cfg
    x = torch.as_tensor(x, dtype=torch.int64)
    if x.dim() != 2 or x.shape[1] != cfg.d_model or not 1 <= x.shape[0] <= cfg.max_seq:
        raise ValueError(f"Expected (seq, {cfg.d_model}) token codes with 1 <= seq <= {cfg.max_seq}, "
                         f"not {tuple(x.shape)}")
    if int(x.min()) < -128 or int(x.max()) > 127:
        raise ValueError("Token codes must be int8")
    seq, w, rq = x.shape[0], params.weights, params.requant
    t = {}

    def linear(name, inputs):
        return rq[name](layer_matmul(cfg, inputs, w[name].T))

    t["q"], t["k"], t["v"] = linear("q", x), linear("k", x), linear("v", x)
    dh = cfg.d_head
    heads = range(cfg.heads)
    t["scores"] = torch.stack([rq["scores"](layer_matmul(cfg, t["q"][:, h * dh:(h + 1) * dh],
                                                         t["k"][:, h * dh:(h + 1) * dh].T)) for h in heads])
    smc = params.softmax_config(seq)
    t["probs"] = softmax_lut(smc, t["scores"]) if cfg.softmax == "lut" else shiftmax(smc, t["scores"])
    t["ctx"] = torch.cat([rq["ctx"](layer_matmul(cfg, t["probs"][h], t["v"][:, h * dh:(h + 1) * dh]))
                          for h in heads], dim=1)
    t["attn_out"] = linear("o", t["ctx"])
    t["res1"] = rq["res1_x"](x) + t["attn_out"]
    t["ln1"] = ilayernorm(params.ln1, t["res1"])
    t["hidden"] = linear("ffn1", t["ln1"])
    t["gelu"] = shiftgelu(params.gelu, t["hidden"])
    t["gelu_q"] = rq["gelu"](t["gelu"])
    t["ffn_out"] = linear("ffn2", t["gelu_q"])
    t["res2"] = rq["res2_ln1"](t["ln1"]) + t["ffn_out"]
    t["out"] = ilayernorm(params.ln2, t["res2"])
    return t


def float_error(params, layer, x_real):
    """The integer layer against the float one on real inputs ``x_real (batch, seq, d_model)``: max and
    mean absolute error in output LSBs (``out_scale``) and the cosine similarity of the outputs."""
    s = params.scales
    with torch.no_grad():
        reference = layer(x_real.to(torch.float32)).to(torch.float64)
    codes = torch.round(x_real.to(torch.float64) / s["x"]).clamp(-128, 127).to(torch.int64)
    got = torch.stack([encoder_layer(params, seq)["out"] for seq in codes]).to(torch.float64) * s["out"]
    error = (got - reference).abs() / s["out"]
    cosine = nn.functional.cosine_similarity(got.reshape(1, -1), reference.reshape(1, -1))
    return {"max_lsb": float(error.max()), "mean_lsb": float(error.mean()), "cosine": float(cosine)}


def seeded_layer(cfg):
    """A float layer initialised from ``cfg.seed`` and Gaussian calibration tokens
    ``(16, max_seq, d_model)`` drawn from the same seed."""
    generator = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        layer = FloatEncoderLayer(cfg.d_model, cfg.heads, cfg.d_ff)
    calibration = torch.randn(16, cfg.max_seq, cfg.d_model, generator=generator)
    return layer, calibration


#: The tiny digits transformer: 8 tokens (image rows) of 8 pixels, this many training steps.
DIGITS_STEPS = 200
DIGITS_BATCH = 64


@functools.lru_cache(maxsize=8)
def digits_model(d_model, heads, d_ff, seed=0):
    """A one-layer transformer trained on scikit-learn's 8x8 digits (shipped with the package, no
    download): each image row is a token (8 pixels, linear embedding plus a learned position), one
    :class:`FloatEncoderLayer`, mean pooling, a linear classifier; Adam, ``DIGITS_STEPS`` steps of
    batch ``DIGITS_BATCH``, seeded, on one torch thread (reproducible), a few seconds.

    Returns ``(layer, train_tokens, test_tokens, test_accuracy)``: the layer's float input tokens
    ``(n, 8, d_model)`` of the training and held-out images, and the classifier's held-out accuracy.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16
    labels = torch.tensor(digits.target)
    with torch.random.fork_rng(devices=[]), one_thread():
        torch.manual_seed(seed)
        order = torch.randperm(len(images))
        train, test = order[:1400], order[1400:]
        embed = nn.Linear(8, d_model)
        position = nn.Parameter(torch.randn(8, d_model) * 0.1)
        layer = FloatEncoderLayer(d_model, heads, d_ff)
        head = nn.Linear(d_model, 10)
        modules = nn.ModuleList([embed, layer, head])
        optimizer = torch.optim.Adam([*modules.parameters(), position], lr=3e-3)

        def tokens(batch):
            return embed(images[batch]) + position

        for _ in range(DIGITS_STEPS):
            batch = train[torch.randint(len(train), (DIGITS_BATCH,))]
            loss = nn.functional.cross_entropy(head(layer(tokens(batch)).mean(dim=1)), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            accuracy = float((head(layer(tokens(test)).mean(dim=1)).argmax(dim=1) == labels[test]).float().mean())
            return layer.eval(), tokens(train).detach(), tokens(test).detach(), accuracy


@functools.lru_cache(maxsize=32)
def config_params(cfg):
    """The integerized layer the hardware bakes in: :func:`integerize_encoder` of the config's float layer
    (``source``) on its calibration tokens, cut to ``max_seq``."""
    if cfg.source == "digits":
        layer, calibration, _, _ = digits_model(cfg.d_model, cfg.heads, cfg.d_ff, cfg.seed)
        calibration = calibration[:, :cfg.max_seq]
    else:
        layer, calibration = seeded_layer(cfg)
    return integerize_encoder(layer, calibration, cfg)


def qkv_projection(params):
    """The fused phase-1 projection: int8 weights ``[Wq; Wk; Wv]`` ``(3 d_model, d_model)`` and per output
    channel bias, Q31 multiplier and shift (int64 tensors of ``3 d_model``)."""
    names = ("q", "k", "v")
    weight = torch.cat([params.weights[n] for n in names])
    bias, multiplier, shift = (torch.cat([getattr(params.requant[n], f) for n in names])
                               for f in ("bias", "multiplier", "shift"))
    return weight, bias, multiplier, shift
