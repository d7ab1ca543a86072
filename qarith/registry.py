"""The block registry: one entry per block, tying its five pieces together for the CLI, ``make verilog``,
the benches and the FPGA report.

Each entry holds the block's config dataclass, its Amaranth generator, its golden model, its test-bench
module and its named configurations, as objects. This is the top layer: nothing below it (``golden``,
``hdl``, ``sim``, ``fpga``) imports it; code there that works on "a block" takes these pieces as arguments.
"""

from dataclasses import dataclass, field
from types import ModuleType

from .golden.ant_decode import AntDecodeConfig, ant_decode
from .golden.ant_mac import AntMacConfig, ant_mac_tiles
from .golden.attn_v import AttnVConfig, attn_v
from .golden.dfp_quant import DfpQuantConfig, dfp_quant
from .golden.early_exit import EarlyExitConfig, early_exit
from .golden.encoder_layer import EncoderLayerConfig, encoder_layer
from .golden.ilayernorm import ILayerNormConfig, ilayernorm
from .golden.int8_outlier_linear import Int8OutlierLinearConfig, int8_outlier_linear
from .golden.linear_int8 import LinearInt8Config, linear_int8_hw
from .golden.lns_add import LnsAddConfig, lns_add
from .golden.lns_dot import LnsDotConfig, lns_dot
from .golden.lns_mul import LnsMulConfig, lns_mul
from .golden.lns_to_int import LnsToIntConfig, lns_to_int
from .golden.log_softmax_int import LogSoftmaxIntConfig, log_softmax_int
from .golden.lut_gemv import LutGemvConfig, lut_gemv
from .golden.lut_unary import LutUnaryConfig, lut_unary
from .golden.mac_array import MacArrayConfig, mac_tiles
from .golden.octav_stats import OctavStatsConfig, octav_stats
from .golden.pwl import PwlConfig, pwl
from .golden.requant import RequantConfig, requantize
from .golden.shiftgelu import ShiftGeluConfig, shiftgelu
from .golden.shiftmax import ShiftmaxConfig, shiftmax
from .golden.softmax_lut import SoftmaxLutConfig, softmax_lut
from .golden.wino_conv import WinoConvConfig, seeded_conv_config, wino_conv
from .golden.wino_input import WinoInputConfig, wino_input
from .golden.wino_output import WinoOutputConfig, wino_output
from .golden.xnor_popcount import XnorPopcountConfig, seeded_config, xnor_popcount
from .hdl.ant_decode import AntDecode
from .hdl.ant_mac import AntMac
from .hdl.attn_v import AttnV
from .hdl.common.component import interface
from .hdl.dfp_quant import DfpQuant
from .hdl.early_exit import EarlyExit
from .hdl.encoder_layer import EncoderLayer
from .hdl.ilayernorm import ILayerNorm
from .hdl.int8_outlier_linear import Int8OutlierLinear
from .hdl.linear_int8 import LinearInt8
from .hdl.lns_add import LnsAdd
from .hdl.lns_dot import LnsDot
from .hdl.lns_mul import LnsMul
from .hdl.lns_to_int import LnsToInt
from .hdl.log_softmax_int import LogSoftmaxInt
from .hdl.lut_gemv import LutGemv
from .hdl.lut_unary import LutUnary
from .hdl.mac_array import MacArray
from .hdl.octav_stats import OctavStats
from .hdl.pwl import Pwl
from .hdl.requant import Requant
from .hdl.shiftgelu import ShiftGelu
from .hdl.shiftmax import Shiftmax
from .hdl.softmax_lut import SoftmaxLut
from .hdl.wino_conv import WinoConv
from .hdl.wino_input import WinoInput
from .hdl.wino_output import WinoOutput
from .hdl.xnor_popcount import XnorPopcount
from .sim import ant_decode as ant_decode_bench
from .sim import ant_mac as ant_mac_bench
from .sim import attn_v as attn_v_bench
from .sim import dfp_quant as dfp_quant_bench
from .sim import early_exit as early_exit_bench
from .sim import encoder_layer as encoder_layer_bench
from .sim import ilayernorm as ilayernorm_bench
from .sim import int8_outlier_linear as int8_outlier_linear_bench
from .sim import linear_int8 as linear_int8_bench
from .sim import lns_add as lns_add_bench
from .sim import lns_dot as lns_dot_bench
from .sim import lns_mul as lns_mul_bench
from .sim import lns_to_int as lns_to_int_bench
from .sim import log_softmax_int as log_softmax_int_bench
from .sim import lut_gemv as lut_gemv_bench
from .sim import lut_unary as lut_unary_bench
from .sim import mac_array as mac_array_bench
from .sim import octav_stats as octav_stats_bench
from .sim import pwl as pwl_bench
from .sim import requant as requant_bench
from .sim import shiftgelu as shiftgelu_bench
from .sim import shiftmax as shiftmax_bench
from .sim import softmax_lut as softmax_lut_bench
from .sim import wino_conv as wino_conv_bench
from .sim import wino_input as wino_input_bench
from .sim import wino_output as wino_output_bench
from .sim import xnor_popcount as xnor_popcount_bench

__all__ = ["Block", "BLOCKS"]


@dataclass(frozen=True)
class Block:
    """A registered block.

    Attributes
    ----------
    name : str
    summary : str
        One line: what it computes.
    config : type
        Its frozen config dataclass (the generator's ``config_class``).
    generator : type
        Its :class:`~qarith.hdl.common.component.BlockComponent` subclass.
    golden : callable
        Its golden model.
    bench : module
        Its test-bench module (``vectors(cfg)`` and the cocotb tests).
    configs : dict
        Named configurations, the first being the block's default.
    """
    name: str
    summary: str
    config: type
    generator: type
    golden: object
    bench: ModuleType
    configs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.generator.config_class is not self.config:
            raise TypeError(f"{self.name}: generator {self.generator.__name__} takes "
                            f"{self.generator.config_class.__name__}, not {self.config.__name__}")

    def elaborate(self, cfg):
        """A new generator instance for ``cfg``, to be elaborated (simulated, emitted, synthesized)."""
        return self.generator(cfg)

    def interface(self, cfg):
        """The generator instance for ``cfg`` that is read for its ports and derived properties
        (:func:`qarith.hdl.common.component.interface`)."""
        return interface(self.generator, cfg)

    def config_name(self, cfg):
        """The name of the registered config equal to ``cfg``, or ``None``."""
        return next((name for name, named in self.configs.items() if named == cfg), None)


BLOCKS = {block.name: block for block in [
    Block(
        name="mac_array",
        summary="Output-stationary systolic R x C integer MAC array, streaming K-step tiles",
        config=MacArrayConfig, generator=MacArray, golden=mac_tiles, bench=mac_array_bench,
        configs={
            "int8_4x4": MacArrayConfig(rows=4, cols=4),
            "int8_8x8": MacArrayConfig(rows=8, cols=8),
            "int8_4x4_ice40": MacArrayConfig(rows=4, cols=4, multiplier="ice40_dual"),
            # The accumulators' carry chains cut in two (12 + 12 bits): the iCE40 clock is set by them.
            "int8_4x4_ice40_split": MacArrayConfig(rows=4, cols=4, multiplier="ice40_dual", acc_split=12),
            "int8_8x8_ecp5": MacArrayConfig(rows=8, cols=8, multiplier="ecp5_reg"),
            "int8_8x8_ecp5_oreg": MacArrayConfig(rows=8, cols=8, multiplier="ecp5_reg", output_reg=True),
            "int8_8x8_ecp5_pipe": MacArrayConfig(rows=8, cols=8, multiplier="ecp5_pipe"),
            # The columns' read-out OR from flip-flops' synchronous set instead of LUTs (same latency).
            "int8_8x8_ecp5_setor": MacArrayConfig(rows=8, cols=8, multiplier="ecp5_pipe", readout="set_or"),
            # 144 of the ECP5-85F's 156 MULT18X18D.
            "int8_12x12_ecp5_pipe": MacArrayConfig(rows=12, cols=12, multiplier="ecp5_pipe"),
            "int8_2x3_u8s8": MacArrayConfig(rows=2, cols=3, a_signed=False, max_k=64),
            # The split accumulator on the portable multiplier (checked in amaranth.sim), cut low so that
            # carries come on most steps.
            "int8_2x3_split4": MacArrayConfig(rows=2, cols=3, max_k=64, acc_split=4),
            # The set_or read-out on the portable multiplier (checked in amaranth.sim): five rows and four
            # columns give every kind of level (pairs with an odd one left, a last level with LUTs in
            # front of a set, plain registers after the OR).
            "int8_5x4_setor": MacArrayConfig(rows=5, cols=4, max_k=64, readout="set_or"),
            "int4_4x2": MacArrayConfig(rows=4, cols=2, a_width=4, b_width=4, max_k=16, mult_reg=False),
            "int16_2x2": MacArrayConfig(rows=2, cols=2, a_width=16, b_width=16, max_k=1024,
                                        input_reg=False, output_reg=True),
            # One row of four int8 MACs: lns_dot's 4-lane configs' throughput, for the area comparison.
            "int8_1x4": MacArrayConfig(rows=1, cols=4, max_k=256),
        }),
    Block(
        name="requant",
        summary="TFLite per-channel requantization: bias, Q31 multiplier, shift, zero point, clamp",
        config=RequantConfig, generator=Requant, golden=requantize, bench=requant_bench,
        configs={
            "int8": RequantConfig(),
            "int8_x4": RequantConfig(lanes=4, acc_width=24),
            "uint8_single": RequantConfig(out_signed=False, rounding="single"),
            # The partial products on MULT18X18D instances with their registers (ECP5).
            "int8_x4_ecp5": RequantConfig(lanes=4, acc_width=24, multiplier="ecp5"),
            "uint8_single_ecp5": RequantConfig(out_signed=False, rounding="single", multiplier="ecp5"),
            # The same with the left shift registered ahead of the DSPs (latency 11).
            "int8_x4_ecp5_reg": RequantConfig(lanes=4, acc_width=24, multiplier="ecp5_reg"),
        }),
    Block(
        name="linear_int8",
        summary="int8 fully-connected layer: mac_array + requant, int8 x int8 -> int32 -> int8",
        config=LinearInt8Config, generator=LinearInt8, golden=linear_int8_hw, bench=linear_int8_bench,
        configs={
            "b4_o4_k64": LinearInt8Config(rows=4, cols=4, max_k=64),
            "b2_o8_k256": LinearInt8Config(rows=2, cols=8, max_k=256),
        }),
    Block(
        name="lut_unary",
        summary="Direct lookup table f(x) for inputs of up to 10 bits (gelu, exp, sigmoid, tanh, silu)",
        config=LutUnaryConfig, generator=LutUnary, golden=lut_unary, bench=lut_unary_bench,
        configs={
            "gelu_s8": LutUnaryConfig(function="gelu"),
            "sigmoid_s8_u8": LutUnaryConfig(function="sigmoid", out_signed=False, out_frac_bits=8),
            "exp_neg_s8": LutUnaryConfig(function="exp", in_frac_bits=4, out_signed=False, out_frac_bits=8),
            "tanh_s10": LutUnaryConfig(function="tanh", in_width=10, in_frac_bits=7, out_frac_bits=7),
        }),
    Block(
        name="pwl",
        summary="Piecewise-linear f(x): NN-LUT or iRNN breakpoints, one multiply-add; 1/x and 1/sqrt(x) "
                "range-reduced",
        config=PwlConfig, generator=Pwl, golden=pwl, bench=pwl_bench,
        configs={
            "gelu16_s8": PwlConfig(function="gelu", entries=16),
            "exp16_irnn": PwlConfig(function="exp", method="irnn", entries=16, out_signed=False,
                                    out_frac_bits=8),
            "recip16_u12": PwlConfig(function="reciprocal", entries=16, in_width=12, in_signed=False,
                                     in_frac_bits=8, out_width=12, out_signed=False, out_frac_bits=4),
            "rsqrt16_u12": PwlConfig(function="rsqrt", entries=16, in_width=12, in_signed=False,
                                     in_frac_bits=8, out_width=12, out_signed=False, out_frac_bits=7),
            "sigmoid8_s8": PwlConfig(function="sigmoid", entries=8, out_signed=False, out_frac_bits=8),
            "tanh32_s10": PwlConfig(function="tanh", entries=32, in_width=10, in_frac_bits=7,
                                    out_frac_bits=7),
        }),
    Block(
        name="softmax_lut",
        summary="Row softmax from small tables (exp + reciprocal, or log domain), one element per cycle",
        config=SoftmaxLutConfig, generator=SoftmaxLut, golden=softmax_lut, bench=softmax_lut_bench,
        configs={
            "n64_recip": SoftmaxLutConfig(n=64),
            "n64_log": SoftmaxLutConfig(n=64, method="log"),
            "n64_recip_o12": SoftmaxLutConfig(n=64, out_width=12, exp_width=12, recip_width=14),
            "n16_log": SoftmaxLutConfig(n=16, method="log"),
            "n256_recip_s10": SoftmaxLutConfig(n=256, in_width=10, scale=1 / 64),
            "n16_recip_varlen": SoftmaxLutConfig(n=16, variable_length=True),
            # The ROMs on DP16KD with their output registers, the product on a MULT18X18D with its
            # registers (ECP5; cocotb only: amaranth.sim cannot run the primitives).
            "n64_recip_ecp5": SoftmaxLutConfig(n=64, memory="ecp5", multiplier="ecp5"),
            "n64_log_ecp5": SoftmaxLutConfig(n=64, method="log", memory="ecp5"),
            "n64_recip_o12_ecp5": SoftmaxLutConfig(n=64, out_width=12, exp_width=12, recip_width=14, memory="ecp5",
                                                   multiplier="ecp5"),
            "n16_log_ecp5": SoftmaxLutConfig(n=16, method="log", memory="ecp5"),
            "n256_recip_s10_ecp5": SoftmaxLutConfig(n=256, in_width=10, scale=1 / 64, memory="ecp5",
                                                    multiplier="ecp5"),
        }),
    Block(
        name="shiftmax",
        summary="I-ViT ShiftMax (or I-BERT i-exp softmax): integer exp, one pipelined division per row",
        config=ShiftmaxConfig, generator=Shiftmax, golden=shiftmax, bench=shiftmax_bench,
        configs={
            "n64_pytorch": ShiftmaxConfig(n=64),
            "n64_tvm": ShiftmaxConfig(n=64, variant="tvm"),
            "n197_pytorch": ShiftmaxConfig(n=197, scale=0.05),
            "n8_tvm_o16": ShiftmaxConfig(n=8, variant="tvm", out_width=16, in_width=10, scale=1 / 64),
            "n64_ibert": ShiftmaxConfig(n=64, variant="ibert"),
            "n16_pytorch_varlen": ShiftmaxConfig(n=16, variable_length=True),
        }),
    Block(
        name="shiftgelu",
        summary="I-ViT ShiftGELU (x * sigmoid(1.702 x), shift-based exp) or I-BERT i-GELU, one per cycle",
        config=ShiftGeluConfig, generator=ShiftGelu, golden=shiftgelu, bench=shiftgelu_bench,
        configs={
            "s8_scale": ShiftGeluConfig(),
            "s8_shift": ShiftGeluConfig(factor="shift"),
            "s8_scale_n23": ShiftGeluConfig(exp_shift=23),
            "s10_scale_sig10": ShiftGeluConfig(in_width=10, scale=1 / 64, sig_width=10),
            "s8_ibert": ShiftGeluConfig(method="ibert"),
        }),
    Block(
        name="ilayernorm",
        summary="Integer LayerNorm (I-ViT): exact isqrt, pipelined divider, requant; FQ-ViT PTF inputs",
        config=ILayerNormConfig, generator=ILayerNorm, golden=ilayernorm, bench=ilayernorm_bench,
        configs={
            "c64": ILayerNormConfig(channels=64),
            "c64_ptf_affine": ILayerNormConfig(
                channels=64, ptf=tuple(2 if c % 16 == 0 else c % 2 for c in range(64)),
                gamma=tuple(0.75 + 0.125 * (c % 5) for c in range(64)),
                beta=tuple(0.25 * (c % 3 - 1) for c in range(64))),
            "c192_deit_tiny": ILayerNormConfig(channels=192),
            "c3_i6": ILayerNormConfig(channels=3, in_width=6, out_scale=1 / 16),
            "c16_varlen": ILayerNormConfig(channels=16, variable_length=True),
            # A wide residual stream (16-bit codes, as the linear layers' 16-bit outputs sum) with PTF.
            "c16_w16_ptf": ILayerNormConfig(
                channels=16, in_width=16, out_width=16, out_scale=1 / 4096, ptf=tuple(c % 4 for c in range(16)),
                gamma=tuple(0.5 + 0.25 * (c % 3) for c in range(16)), beta=tuple(0.125 * (c % 5 - 2) for c in range(16))),
        }),
    Block(
        name="log_softmax_int",
        summary="FQ-ViT Log-Int-Softmax: I-BERT i-exp, 4-bit rounded log2 codes, no divider",
        config=LogSoftmaxIntConfig, generator=LogSoftmaxInt, golden=log_softmax_int,
        bench=log_softmax_int_bench,
        configs={
            "n64_b4": LogSoftmaxIntConfig(n=64),
            "n197_b4": LogSoftmaxIntConfig(n=197, scale=0.05),
            "n16_b3_s10": LogSoftmaxIntConfig(n=16, bits=3, in_width=10, scale=1 / 64),
            "n16_b4_varlen": LogSoftmaxIntConfig(n=16, variable_length=True),
        }),
    Block(
        name="attn_v",
        summary="Attention x V from log2 codes: sum of V shifted by the code, no multiplier",
        config=AttnVConfig, generator=AttnV, golden=attn_v, bench=attn_v_bench,
        configs={
            "n64_exact": AttnVConfig(n=64),
            "n64_floor": AttnVConfig(n=64, rounding="floor"),
            "n197_v16": AttnVConfig(n=197, v_width=16),
            "n16_exact_varlen": AttnVConfig(n=16, variable_length=True),
        }),
    Block(
        name="lns_mul",
        summary="LNS multiply: exponent add and sign XOR per lane, zero word, saturation, flush to zero",
        config=LnsMulConfig, generator=LnsMul, golden=lns_mul, bench=lns_mul_bench,
        configs={
            "w8_b3_x16": LnsMulConfig(width=8, frac_bits=3, lanes=16),
            "w12_b5_x4": LnsMulConfig(width=12, frac_bits=5, lanes=4),
        }),
    Block(
        name="lns_to_int",
        summary="LNS -> fixed point: integer exponent bits shift, fraction bits index a 2^(r/gamma) table "
                "(or Mitchell's 1 + f)",
        config=LnsToIntConfig, generator=LnsToInt, golden=lns_to_int, bench=lns_to_int_bench,
        configs={
            "w8_b3_table": LnsToIntConfig(width=8, frac_bits=3),
            "w8_b3_mitchell": LnsToIntConfig(width=8, frac_bits=3, method="mitchell"),
            "w12_b6_x4_o24": LnsToIntConfig(width=12, frac_bits=6, lanes=4, out_width=24, out_frac_bits=4,
                                            table_frac_bits=14),
        }),
    Block(
        name="lns_dot",
        summary="LNS-Madam dot product: exponent-add products, one partial sum per remainder, gamma "
                "constant multiplies per output",
        config=LnsDotConfig, generator=LnsDot, golden=lns_dot, bench=lns_dot_bench,
        configs={
            "w8_b3_x4_table": LnsDotConfig(width=8, frac_bits=3, lanes=4),
            "w8_b3_x4_mitchell": LnsDotConfig(width=8, frac_bits=3, lanes=4, method="mitchell"),
            "w8_b3_x4_linear": LnsDotConfig(width=8, frac_bits=3, lanes=4, accumulate="linear"),
            "w8_b2_x1_exact": LnsDotConfig(width=8, frac_bits=2, lanes=1, max_k=64, acc_frac_bits=4,
                                           out_width=51, out_frac_bits=12),
        }),
    Block(
        name="lns_add",
        summary="Pure LNS a + b / a - b: Gaussian logarithms sb, db from one ROM, optional interpolation",
        config=LnsAddConfig, generator=LnsAdd, golden=lns_add, bench=lns_add_bench,
        configs={
            "w8_b3_direct": LnsAddConfig(width=8, frac_bits=3, lanes=16),
            "w12_b6_interp": LnsAddConfig(width=12, frac_bits=6, lanes=4, interp_bits=4, table_frac_bits=4),
            "w8_b3_interp": LnsAddConfig(width=8, frac_bits=3, lanes=16, interp_bits=2, table_frac_bits=3),
        }),
    Block(
        name="wino_input",
        summary="Winograd input transform B^T d B, F(2x2,3x3) or F(4x4,3x3), one tile per cycle, shifts and adds",
        config=WinoInputConfig, generator=WinoInput, golden=wino_input, bench=wino_input_bench,
        configs={
            "f2_s8": WinoInputConfig(tile=2),
            "f4_s8": WinoInputConfig(tile=4),
        }),
    Block(
        name="wino_output",
        summary="Winograd output transform A^T M A with a rounding shift, one tile per cycle, shifts and adds",
        config=WinoOutputConfig, generator=WinoOutput, golden=wino_output, bench=wino_output_bench,
        configs={
            "f2_i16": WinoOutputConfig(tile=2, in_width=16),
            "f4_i24_sh8": WinoOutputConfig(tile=4, in_width=24, shift=8),
        }),
    Block(
        name="wino_conv",
        summary="int8 3x3 convolution by Winograd tiles with tap-wise power-of-two weight scales, then requant",
        config=WinoConvConfig, generator=WinoConv, golden=wino_conv, bench=wino_conv_bench,
        configs={
            "f2_c4_o1": seeded_conv_config(tile=2, in_channels=4, out_channels=1, seed=1),
            "f4_c2_o1": seeded_conv_config(tile=4, in_channels=2, out_channels=1, seed=3),
            "f2_c3_o3_tapch": seeded_conv_config(tile=2, in_channels=3, out_channels=3, seed=2,
                                                 scales="tap_channel"),
        }),
    Block(
        name="lut_gemv",
        summary="LUT-GEMM matrix-vector product with binary-coded weights: a table of signed input sums per "
                "mu inputs, one read and add per row per cycle, one alpha multiply per row, plane and group",
        config=LutGemvConfig, generator=LutGemv, golden=lut_gemv, bench=lut_gemv_bench,
        configs={
            # First (make test's cocotb config): mu = 4 builds a table in 9 cycles, where mu = 8 takes 129.
            "q4_mu4_x4_k64": LutGemvConfig(mu=4, lanes=4, bits=4, offset=True, group_size=32, max_k=64),
            "q3_k64": LutGemvConfig(mu=8, lanes=1, bits=3, offset=True, group_size=64, max_k=64),
            # Eight planes and the offset: int8 RTN weights, converted exactly, against linear_int8 b4_o4_k64.
            "q8_x4_k64": LutGemvConfig(mu=8, lanes=4, bits=8, offset=True, group_size=64, max_k=64),
            "q1_x2_k32": LutGemvConfig(mu=8, lanes=2, bits=1, offset=False, group_size=32, max_k=32),
        }),
    Block(
        name="octav_stats",
        summary="OCTAV pass statistics at a clip: sum of clipped magnitudes, clipped and unclipped counts",
        config=OctavStatsConfig, generator=OctavStats, golden=octav_stats, bench=octav_stats_bench,
        configs={
            "s8_n256_b4": OctavStatsConfig(in_width=8, max_n=256, bits=4),
            "u8_n512_b8": OctavStatsConfig(in_width=8, in_signed=False, max_n=512, bits=8),
            "s16_n128_b6": OctavStatsConfig(in_width=16, max_n=128, bits=6),
        }),
    Block(
        name="early_exit",
        summary="ELBERT confidence-window early exit: top-2 logit margin vs entropy and vote thresholds, run counter",
        config=EarlyExitConfig, generator=EarlyExit, golden=early_exit, bench=early_exit_bench,
        configs={
            "c2_w8_t01_n8": EarlyExitConfig(classes=2, logit_width=8, scale=1 / 16, tau=0.1, patience=8),
            "c2_w10_t02_m01_n4": EarlyExitConfig(classes=2, logit_width=10, scale=1 / 32, tau=0.2, patience=4,
                                                 margin=0.1),
            "c4_w8_t03_n3": EarlyExitConfig(classes=4, logit_width=8, scale=1 / 8, tau=0.3, patience=3),
        }),
    Block(
        name="dfp_quant",
        summary="Dynamic fixed point: per-tensor shared exponent, aligned significands, LFSR stochastic rounding",
        config=DfpQuantConfig, generator=DfpQuant, golden=dfp_quant, bench=dfp_quant_bench,
        configs={
            "fp32_b8_sr": DfpQuantConfig(),
            "bf16_b8_sr_l16": DfpQuantConfig(exp_width=8, man_width=7, bits=8, rand_bits=8, lfsr_width=16,
                                             seed=0xACE1),
            "fp16_b12_nearest": DfpQuantConfig(exp_width=5, man_width=10, bits=12, rounding="nearest",
                                               rand_bits=4),
        }),
    Block(
        name="ant_decode",
        summary="ANT decoder: 4-bit int / PoT / flint codes (type per beat) -> sign, mantissa, shift per lane",
        config=AntDecodeConfig, generator=AntDecode, golden=ant_decode, bench=ant_decode_bench,
        configs={
            "x4": AntDecodeConfig(lanes=4),
            "x1": AntDecodeConfig(lanes=1),
            "x8": AntDecodeConfig(lanes=8),
        }),
    Block(
        name="ant_mac",
        summary="Systolic R x C MAC array with 4-bit ANT weights: edge decoders, mantissa multiply and shift "
                "in each PE",
        config=AntMacConfig, generator=AntMac, golden=ant_mac_tiles, bench=ant_mac_bench,
        configs={
            # Shapes and depths of mac_array's int8_4x4 and int4_4x2, for the area comparison.
            "s8_4x4": AntMacConfig(rows=4, cols=4, a_width=8, max_k=256),
            "s4_4x2": AntMacConfig(rows=4, cols=2, a_width=4, max_k=16, mult_reg=False),
            "u4_2x3_unsigned": AntMacConfig(rows=2, cols=3, a_width=4, a_signed=False, b_signed=False,
                                            max_k=64),
        }),
    Block(
        name="xnor_popcount",
        summary="Binary (+-1) layer: XNOR-popcount dot products one word per cycle per channel, folded "
                "batch-norm + sign threshold, one bit out per channel",
        config=XnorPopcountConfig, generator=XnorPopcount, golden=xnor_popcount, bench=xnor_popcount_bench,
        configs={
            # K = 100: seven 16-bit words, the last masked to 4 bits; thresholds of a seeded batch norm
            # (gamma = 0 both ways, negative gammas, exact ties).
            "w16_k100_c8": seeded_config(word_width=16, k=100, channels=8, seed=1),
            # Two 4-bit words per vector (K = 7, one padding bit): every pair of words is played.
            "w4_k7_c16": seeded_config(word_width=4, k=7, channels=16, seed=2),
            # The area point: 512 binary MACs per cycle, plain sign(s) (no batch norm).
            "w32_k256_c16": XnorPopcountConfig(word_width=32, k=256, channels=16),
        }),
    Block(
        name="encoder_layer",
        summary="Integer transformer encoder layer in RTL, int8 in to int8 out: Q/K/V, scores, softmax, P V, "
                "O projection, residual, LayerNorm, FFN with GELU, residual, LayerNorm on one time-multiplexed "
                "mac_array + requant, sequences of 1..max_seq tokens, every phase on a tap stream",
        config=EncoderLayerConfig, generator=EncoderLayer, golden=encoder_layer, bench=encoder_layer_bench,
        configs={
            # The whole layer (every phase: qkv, scores, ShiftMax, P V, O projection, residual, I-LayerNorm,
            # FFN1, ShiftGELU, FFN2, residual, I-LayerNorm), sequences of 1..max_seq tokens.
            "d8_h2_f16_s4_layer": EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=4, rows=4, cols=4,
                                                     rtl_phases="layer"),
            # The projections alone, at every sequence length 1..max_seq.
            "d8_h2_f16_s4": EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=4, rows=4, cols=4),
            "d8_h2_f16_s8_digits": EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=8, rows=2, cols=8,
                                                      source="digits"),
            # The whole layer on the ECP5's DSPs with their registers: the array's ecp5_pipe multipliers and
            # the requantizers' ecp5 partial products (cocotb only: amaranth.sim cannot run MULT18X18D).
            "d8_h2_f16_s4_layer_ecp5": EncoderLayerConfig(d_model=8, heads=2, d_ff=16, max_seq=4, rows=4, cols=4,
                                                          rtl_phases="layer", multiplier="ecp5"),
        }),
    Block(
        name="int8_outlier_linear",
        summary="LLM.int8() linear tile: masked row absmax, vector-wise int8 quantizer, int8 mac_array, "
                "outlier columns (x at or above 6.0 in magnitude, any row) on an int16 x int8 side mac_array, "
                "row dequantization",
        config=Int8OutlierLinearConfig, generator=Int8OutlierLinear, golden=int8_outlier_linear,
        bench=int8_outlier_linear_bench,
        configs={
            # Q7.8 activations (threshold code 1536), the 4 x 4 shape of linear_int8 b4_o4_k64.
            "r4_c4_k16": Int8OutlierLinearConfig(rows=4, cols=4, max_k=16, in_width=16, frac_bits=8),
            # Q3.4 activations (threshold code 96, row scales up to 95), two rows.
            "r2_c4_k16_w8": Int8OutlierLinearConfig(rows=2, cols=4, max_k=16, in_width=8, frac_bits=4),
        }),
]}
