"""The drop-in integer modules and integerize(): each module's integer path equals the golden blocks it
claims, the fast float64 paths equal the int64 ones, and converted models (a Sequential CNN, a small
Hugging Face BERT) run on those chains."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from qarith.golden.common.integerize import RECIPES, IntProjectionAttention, IntSelfAttention, integerize, recipe_with
from qarith.golden.common.modules import (
    IntConv2d,
    IntGelu,
    IntLayerNorm,
    IntLinear,
    IntLinearOutlier,
    IntSoftmax,
    quantize_symmetric,
    requantize_fast,
)
from qarith.golden.ilayernorm import ILayerNormConfig, ilayernorm
from qarith.golden.int8_outlier_linear import int8_outlier_linear, llm_int8_matmul
from qarith.golden.linear_int8 import linear_int8_hw
from qarith.golden.log_softmax_int import LogSoftmaxIntConfig, log_softmax_int
from qarith.golden.lut_unary import lut_unary
from qarith.golden.pwl import pwl
from qarith.golden.requant import INT32_MAX, INT32_MIN, RequantConfig, quantize_multiplier, requantize
from qarith.golden.shiftgelu import shiftgelu
from qarith.golden.shiftmax import ShiftmaxConfig, shiftmax
from qarith.golden.softmax_lut import SoftmaxLutConfig, softmax_lut
from qarith.golden.wino_conv import direct_conv_int, wino_conv2d
from tiers import FULL


def seeded(module, seed=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for p in module.parameters():
            nn.init.normal_(p, std=0.3)
    return module


def test_requantize_fast_equals_requantize():
    gen = torch.Generator().manual_seed(1)
    acc = torch.cat([torch.randint(INT32_MIN, INT32_MAX + 1, (4000,), generator=gen),
                     torch.tensor([INT32_MIN, INT32_MAX, 0, 1, -1, 1 << 30, -(1 << 30), (1 << 30) + 1])])
    for exponent in range(0, 32, 3):
        for fraction in (0.5, 0.73, 0.999999):
            m0, shift = quantize_multiplier(fraction * 2.0 ** -exponent)
            expected = requantize(RequantConfig(out_width=16), acc, 0, m0, shift, -5, -32768, 32767)
            got = requantize_fast(acc, torch.tensor(m0), torch.tensor(shift), -5, -32768, 32767)
            assert torch.equal(got, expected), (m0, shift)


def test_linear_fast_path_equals_the_int64_golden_paths():
    linear = seeded(nn.Linear(48, 20))
    x = torch.randn(3, 5, 48, generator=torch.Generator().manual_seed(2))
    module = IntLinear.from_float(linear, x)
    codes = module.quantize(x)
    got = module.forward_codes(codes)
    assert got.shape == (3, 5, 20)
    reference = module.quantized_linear()
    flat = codes.reshape(-1, 48)
    assert torch.equal(got.reshape(-1, 20), reference.forward_int(flat))
    cfg = module.hw_config(rows=5)
    hw = linear_int8_hw(cfg, flat.reshape(3, 5, 48), reference.weight, reference.folded_bias(),
                        reference.multiplier, reference.shift, reference.output_zero_point, -128, 127)
    assert torch.equal(got, hw)


def test_linear_float64_sum_is_exact_at_the_largest_accumulator():
    """Codes at the extremes over 4096 inputs: |acc| = 4096 * 255 * 127, summed exactly in float64."""
    linear = nn.Linear(4096, 3, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0], [-1.0], [0.5]]).expand(3, 4096))
    x = torch.full((2, 4096), -1.0)
    x[1] = 1.0
    module = IntLinear.from_float(linear, torch.cat([x, torch.zeros(1, 4096)]))
    codes = module.quantize(x)
    exact = ((codes - module.input_zero_point).unsqueeze(1) * module.weight_q.unsqueeze(0)).sum(dim=2)
    assert int(exact.abs().max()) >= 4096 * 127 * 127
    assert torch.equal(module.accumulate(codes), exact)


def test_linear_too_wide_for_the_requantizer():
    with pytest.raises(ValueError, match=r"4096 inputs of 14 bits can reach an accumulator of \d+, beyond the "
                                         r"requantizer's 32 bits; use a narrower input"):
        IntLinear.from_float(seeded(nn.Linear(4096, 2)), torch.randn(4, 4096), in_width=14)


@pytest.mark.parametrize("method", ["winograd2", "winograd4"])
def test_winograd_conv_is_wino_conv_per_channel_group(method):
    conv = seeded(nn.Conv2d(3, 9, 3, padding=1))
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    module = IntConv2d.from_float(conv, x, method=method)
    assert len(module.configs) == math.ceil(9 / (64 // (module.configs[0][1].tile ** 2)))
    codes = module.quantize(x)
    got = module.forward_codes(codes)
    for image in range(2):
        expected = torch.cat([wino_conv2d(cfg, codes[image]) for _, cfg in module.configs])
        assert torch.equal(got[image], expected)


def test_winograd_conv_on_maps_that_are_not_whole_tiles():
    """A 6x7 map with F4: zero padded to 8x8, cropped back; equal to the block on the padded map."""
    conv = seeded(nn.Conv2d(2, 4, 3, padding=1), seed=4)
    x = torch.randn(1, 2, 6, 7, generator=torch.Generator().manual_seed(4))
    module = IntConv2d.from_float(conv, x, method="winograd4")
    codes = module.quantize(x)
    padded = nn.functional.pad(codes[0], (0, 1, 0, 2))
    expected = wino_conv2d(module.configs[0][1], padded)[:, :6, :7]
    assert torch.equal(module.forward_codes(codes)[0], expected)


def test_direct_conv_is_the_direct_integer_reference():
    conv = seeded(nn.Conv2d(3, 4, 3, padding=1), seed=5)
    x = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(5))
    direct = IntConv2d.from_float(conv, x, method="direct")
    cfg = IntConv2d.from_float(conv, x, method="winograd2").configs[0][1]
    codes = direct.quantize(x)
    expected, _ = direct_conv_int(cfg, codes)
    assert torch.equal(direct.forward_codes(codes), expected)


def test_winograd_needs_a_3x3_stride_1_conv():
    with pytest.raises(ValueError, match="Winograd needs a 3x3 stride-1 padding-1 convolution"):
        IntConv2d.from_float(nn.Conv2d(1, 1, 3, stride=2, padding=1), torch.randn(1, 1, 8, 8), method="winograd4")


@pytest.mark.parametrize("method", ["lut", "lut_log", "shiftmax", "ibert"])
def test_softmax_any_row_length_is_the_golden_block(method):
    gen = torch.Generator().manual_seed(6)
    module = IntSoftmax.from_float(None, torch.randn(64, 40, generator=gen) * 3, method=method, in_width=10,
                                   out_width=12)
    for n in (1, 7, 40):
        scores = torch.randn(2, 3, n, generator=gen) * 3
        codes = module.quantize(scores)
        if method.startswith("lut"):
            cfg = SoftmaxLutConfig(n=n, method="log" if method == "lut_log" else "recip", in_width=10,
                                   scale=module.scale, out_width=12)
            expected = softmax_lut(cfg, codes)
        else:
            cfg = ShiftmaxConfig(n=n, variant="pytorch" if method == "shiftmax" else "ibert", in_width=10,
                                 scale=module.scale, out_width=12)
            expected = shiftmax(cfg, codes)
        assert torch.equal(module.forward_codes(codes), expected)
        probabilities = module(scores)
        assert float((probabilities - torch.softmax(scores, -1)).abs().max()) < 0.05


def test_log_softmax_is_the_golden_block_at_widened_scores():
    gen = torch.Generator().manual_seed(8)
    calibration = torch.randn(64, 40, generator=gen) * 20            # 8-bit codes would step 0.6 > ln 2 / 2
    module = IntSoftmax.from_float(None, calibration, method="log", in_width=8)
    clip = float(calibration.abs().max())
    width = next(w for w in range(8, 17) if clip / ((1 << (w - 1)) - 1) < 0.6931 / 2)
    assert width > 8 and module.scale == clip / ((1 << (width - 1)) - 1)
    # and headroom: the minimum code 30 ln 2 below the calibrated range
    assert module.in_width == next(w for w in range(width, 17) if (1 << (w - 1)) * module.scale >= clip + 30 * 0.6931)
    for n in (1, 7, 40):
        scores = torch.randn(2, 3, n, generator=gen) * 20
        codes = module.quantize(scores)
        code, zero = log_softmax_int(LogSoftmaxIntConfig(n=n, in_width=module.in_width, scale=module.scale), codes)
        got_code, got_zero = module.forward_codes(codes)
        assert torch.equal(got_code, code) and torch.equal(got_zero, zero)
        expected = torch.where(zero.bool(), 0.0, 2.0 ** -code.to(torch.float64)).float()
        assert torch.equal(module(scores), expected)
    # A scale the block cannot take even at 16 bits is refused by the block's own check.
    with pytest.raises(ValueError, match="makes x0"):
        IntSoftmax.from_float(None, torch.tensor([1e5, -1e5]), method="log", in_width=8)


@pytest.mark.parametrize("method", ["lut", "log"])
def test_softmax_masked_scores_get_nothing(method):
    module = IntSoftmax.from_float(None, torch.randn(8, 8), method=method)
    scores = torch.randn(2, 8)
    scores[:, 5:] = torch.finfo(torch.float32).min
    assert float(module(scores)[:, 5:].abs().max()) == 0.0
    assert torch.equal(module(scores)[:, :5], module(scores[:, :5]))     # and leave the others unchanged


@pytest.mark.parametrize("method", ["shiftgelu", "igelu", "pwl", "lut"])
def test_gelu_is_the_golden_block(method):
    x = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(7)) * 3
    width = 10 if method == "lut" else 12
    module = IntGelu.from_float(None, x, method=method, in_width=width, pwl_method="irnn")
    codes = module.quantize(x)
    golden = {"shiftgelu": shiftgelu, "igelu": shiftgelu, "pwl": pwl, "lut": lut_unary}[method]
    assert torch.equal(module.forward_codes(codes), golden(module.cfg, codes))
    assert float((module(x) - nn.functional.gelu(x)).abs().max()) < 0.1


def test_layernorm_takes_zero_negative_and_tiny_gammas():
    channels = 16
    norm = nn.LayerNorm(channels)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 1.5, channels))
        norm.weight[3] = -0.7          # negative
        norm.weight[5] = 0.0           # zero
        norm.weight[7] = 1e-3          # |beta / gamma| = 500 > sqrt(16)
        norm.bias.copy_(torch.linspace(-0.3, 0.3, channels))
        norm.bias[7] = 0.5
    for gamma in (-0.7, 0.0):
        with pytest.raises(ValueError, match="gamma must be positive"):
            ILayerNormConfig(channels=channels, gamma=(gamma,) * channels)
    x = torch.randn(50, channels, generator=torch.Generator().manual_seed(8)) * 2
    module = IntLayerNorm.from_float(norm, x)
    with torch.no_grad():
        reference, got = norm(x), module(x)
    assert float((got - reference).abs().max()) < 0.01
    assert float((got[:, 5] - reference[:, 5]).abs().max()) <= module.out_scale / 2
    # The ordinary channels are the block's own codes.
    codes = module.quantize(x)
    plain = [c for c in range(channels) if c not in (3, 5, 7)]
    assert torch.equal(module.forward_codes(codes)[:, plain], ilayernorm(module.cfg, codes)[:, plain])


def test_layernorm_ptf_factors_follow_the_channel_ranges():
    norm = nn.LayerNorm(8)
    x = torch.randn(100, 8, generator=torch.Generator().manual_seed(9))
    x[:, 2] *= 20
    module = IntLayerNorm.from_float(norm, x, ptf=True)
    assert int(module.alphas[2]) == 3 and int(module.alphas.min()) == 0
    with torch.no_grad():
        assert float((module(x) - norm(x)).abs().max()) < 0.05


# -- integerize ----------------------------------------------------------------------------------------

def small_cnn():
    return seeded(nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU(),
                                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(5 * 4 * 4, 4)), seed=10)


@pytest.mark.parametrize("method", ["direct", "winograd2", "winograd4"])
def test_integerized_cnn_is_the_chain_of_golden_blocks(method):
    """From the first quantizer to the last dequantizer: direct_conv_int / wino_conv2d, integer ReLU and
    max-pool on codes, then linear_int8's reference; the converted model's output equals this chain."""
    model = small_cnn()
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(11))
    converted = integerize(model, x, recipe_with("ivit", only=("conv", "linear"), conv={"method": method},
                                                 linear={"in_width": 8, "out_width": 8}))
    assert converted.integer_report["float_rescales"] == []
    assert converted.integer_report["replaced"] == {"IntConv2d": 2, "IntLinear": 1}
    first, second, linear = converted[0], converted[2], converted[6]
    codes = quantize_symmetric(x, first.input_scale, 8)

    def golden_conv(layer, codes):
        if method == "direct":
            cfg = IntConv2d.from_float(nn.Conv2d(layer.weight_q.shape[1], layer.weight_q.shape[0], 3, padding=1),
                                       torch.ones(1, layer.weight_q.shape[1], 4, 4), method="winograd2").configs[0][1]
            cfg = type(cfg)(tile=2, in_channels=cfg.in_channels, out_channels=cfg.out_channels,
                            weights=tuple(layer.weight_q.flatten().tolist()), bias=tuple(layer.bias_q.tolist()),
                            multiplier=tuple(layer.input_scale * float(s) / layer.output_scale for s in layer.weight_scale))
            return direct_conv_int(cfg, codes)[0]
        return torch.stack([torch.cat([wino_conv2d(cfg, image) for _, cfg in layer.configs]) for image in codes])

    assert second.input_scale == first.output_scale and linear.input_quant == second.output_quant
    codes = golden_conv(first, codes).clamp(min=0)
    codes = golden_conv(second, codes).clamp(min=0)
    codes = nn.functional.max_pool2d(codes.to(torch.float64), 2).to(torch.int64).flatten(1)
    codes = linear.quantized_linear().forward_int(codes)
    expected = (codes - linear.output_zero_point).to(torch.float64) * linear.output_scale
    with torch.no_grad():
        assert torch.equal(converted(x).to(torch.float64), expected.to(torch.float32).to(torch.float64))
        assert float((converted(x) - model(x)).abs().max()) < 0.1 * float(model(x).abs().max())


def test_recipe_errors():
    with pytest.raises(ValueError, match=r"Recipe operators must be among linear, conv, softmax, gelu, "
                                         r"layernorm, not \['attention'\]"):
        integerize(small_cnn(), torch.randn(1, 1, 8, 8), dict(RECIPES["ivit"], attention={}))


transformers = pytest.importorskip("transformers")


def tiny_bert():
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=32,
                                     attn_implementation="eager")
    with torch.random.fork_rng():
        torch.manual_seed(12)
        return transformers.BertModel(config).eval()


def bert_inputs(seed=13):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (6, 12), generator=gen)
    mask = torch.ones_like(ids)
    mask[3:, 9:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_attention_wrapper_is_huggingface_eager_attention():
    model = tiny_bert()
    inputs = bert_inputs()
    wrapped = integerize(model, inputs, {op: None for op in ("linear", "conv", "gelu", "layernorm")} | {"softmax": None})
    for layer in wrapped.encoder.layer:
        layer.attention.self = IntSelfAttention(layer.attention.self)
    with torch.no_grad():
        expected, got = model(**inputs).last_hidden_state, wrapped(**inputs).last_hidden_state
    assert float((expected - got).abs().max()) < 1e-5


#: make test converts with two recipes (within the time budget); make test-full with all of them.
BERT_RECIPES = sorted(RECIPES) if FULL else ["ibert", "lut"]


@pytest.mark.parametrize("recipe", BERT_RECIPES)
def test_integerized_bert(recipe):
    model = tiny_bert()
    inputs = bert_inputs()
    converted = integerize(model, inputs, recipe)
    report = converted.integer_report
    assert report["replaced"] == {"IntLinear": 13, "IntLayerNorm": 5, "IntGelu": 2, "IntSoftmax": 2}
    assert not any(type(m) in (nn.Linear, nn.LayerNorm) or type(m).__name__ == "GELUActivation"
                   for m in converted.modules())
    test_inputs = bert_inputs(seed=14)
    with torch.no_grad():
        expected = model(**test_inputs).last_hidden_state
        got = converted(**test_inputs).last_hidden_state
    cosine = nn.functional.cosine_similarity(expected, got, dim=-1)
    assert float(cosine.min()) > 0.98, float(cosine.min())


def tiny_vit():
    config = transformers.ViTConfig(image_size=8, patch_size=2, num_channels=1, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=64, num_labels=10,
                                    attn_implementation="eager")
    with torch.random.fork_rng():
        torch.manual_seed(16)
        return transformers.ViTForImageClassification(config).eval()


def vit_images(seed=17, count=8):
    return torch.rand(count, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_projection_attention_wrapper_is_huggingface_eager_attention():
    model = tiny_vit()
    wrapped = integerize(model, vit_images(), {op: None for op in ("linear", "conv", "softmax", "gelu", "layernorm")})
    for layer in wrapped.vit.layers:
        layer.attention = IntProjectionAttention(layer.attention)
    with torch.no_grad():
        expected, got = model(vit_images(seed=18)).logits, wrapped(vit_images(seed=18)).logits
    assert float((expected - got).abs().max()) < 1e-5


@pytest.mark.parametrize("recipe", ["ivit"] if not FULL else sorted(RECIPES))
def test_integerized_vit(recipe):
    model = tiny_vit()
    converted = integerize(model, vit_images(count=32), recipe)
    report = converted.integer_report
    # 2 layers x (q, k, v, o, fc1, fc2) + the classifier; the patch embedding; 2 x 2 + the final LayerNorm
    assert report["replaced"] == {"IntLinear": 13, "IntConv2d": 1, "IntLayerNorm": 5, "IntGelu": 2, "IntSoftmax": 2}
    assert not any(type(m) in (nn.Linear, nn.Conv2d, nn.LayerNorm) or type(m).__name__ == "GELUActivation"
                   for m in converted.modules())
    assert sum("residual add" in entry for entry in report["float_rescales"]) == 4
    with torch.no_grad():
        expected, got = model(vit_images(seed=19)).logits, converted(vit_images(seed=19)).logits
    cosine = nn.functional.cosine_similarity(expected, got, dim=-1)
    assert float(cosine.min()) > 0.98, float(cosine.min())


def test_llm_int8_linear_is_the_block_tile_by_tile():
    gen = torch.Generator().manual_seed(20)
    linear = seeded(nn.Linear(24, 5))
    x = torch.randn(3, 7, 24, generator=gen)
    x[..., 3] *= 12                                            # an outlier column in most tiles
    x[1, 2, 17] = -9.0                                         # and one planted element
    module = IntLinearOutlier.from_float(linear, x, in_width=16, threshold=6.0, rows=4)
    assert module.cfg.frac_bits == 15 - math.ceil(math.log2(float(x.abs().max())))
    codes = module.quantize(x)
    flat = codes.reshape(-1, 24)
    tiles = torch.cat([flat, flat.new_zeros(3, 24)]).reshape(-1, 4, 24)           # 21 rows -> 6 tiles
    cfg = dataclasses.replace(module.cfg, cols=5, max_k=24)
    expected = int8_outlier_linear(cfg, tiles, module.weight_q).reshape(-1, 5)[:21].reshape(3, 7, 5)
    assert torch.equal(module.accumulate(codes), expected)
    # One tile of values the codes hold exactly: the float LLM.int8() product, plus the bias.
    exact = codes[0, :4].to(torch.float64) / (1 << module.cfg.frac_bits)
    reference = llm_int8_matmul(exact, linear.weight.detach(), threshold=6.0) + linear.bias.detach().double()
    assert float((module(exact) - reference).abs().max()) < 1e-9
    # The decomposition is what keeps the outlier column's error small.
    plain = IntLinearOutlier.from_float(linear, x, in_width=16, threshold=0.0, rows=4)
    with torch.no_grad():
        errors = [float((m(x) - linear(x)).abs().max()) for m in (module, plain)]
    assert errors[0] < errors[1] / 2, errors


def test_integerize_linear_llm_int8():
    model = tiny_bert()
    inputs = bert_inputs()
    recipe = recipe_with("lut", only=("linear",), linear={"method": "llm_int8", "in_width": 16})
    converted = integerize(model, inputs, recipe)
    assert converted.integer_report["replaced"] == {"IntLinearOutlier": 13}
    with torch.no_grad():
        expected, got = model(**bert_inputs(14)).last_hidden_state, converted(**bert_inputs(14)).last_hidden_state
    assert float(nn.functional.cosine_similarity(expected, got, dim=-1).min()) > 0.99


def test_percentile_calibration_clips_an_outlier():
    x = torch.randn(10000, 8, generator=torch.Generator().manual_seed(15))
    x[0, 0] = 1000.0
    linear = seeded(nn.Linear(8, 2))
    by_max = IntLinear.from_float(linear, x)
    by_percentile = IntLinear.from_float(linear, x, calibration="percentile", percentile=99.9)
    assert by_max.input_scale > 1000 / 256
    assert by_percentile.input_scale < 10 / 256
    with pytest.raises(ValueError, match="Calibration must be one of max, percentile, octav, not 'mse'"):
        IntLinear.from_float(linear, x, calibration="mse")


def test_octav_calibration_minimises_the_quantization_error():
    """``calibration="octav"``: the clip of OCTAV's recursion (Sakr et al., ICML 2022) gives the drop-ins'
    own symmetric quantizer a mean-square error within 1 % of the best clip on a fine grid, below the
    max clip's on heavy-tailed data (half of it at 4 bits)."""
    from qarith.golden.common.modules import clip_value, quantize_symmetric
    gen = torch.Generator().manual_seed(21)
    uniform = torch.rand(50000, generator=gen, dtype=torch.float64).clamp(min=1e-12)
    x = -torch.log(uniform) * torch.where(torch.rand(50000, generator=gen) < 0.5, -1.0, 1.0).double()  # Laplace(1)
    for bits in (4, 8):
        q_max = (1 << (bits - 1)) - 1

        def error(clip):
            scale = clip / q_max
            return float(((quantize_symmetric(x, scale, bits) * scale - x) ** 2).mean())

        clip = clip_value(x, "octav", bits=bits)
        grid = [float(x.abs().max()) * k / 300 for k in range(1, 301)]
        assert error(clip) <= 1.01 * min(error(c) for c in grid)
        assert error(clip) < (0.5 if bits == 4 else 0.95) * error(clip_value(x, "max"))
    linear = seeded(nn.Linear(8, 2))
    by_octav = IntLinear.from_float(linear, x.reshape(-1, 8), calibration="octav")
    # int8 codes over OCTAV's clip: the same quantizer as the max rule on data clipped there.
    clip = clip_value(x, "octav", bits=8)
    by_max_of_clipped = IntLinear.from_float(linear, x.clamp(-clip, clip).reshape(-1, 8))
    assert (by_octav.input_scale, by_octav.input_zero_point) == \
        pytest.approx((by_max_of_clipped.input_scale, by_max_of_clipped.input_zero_point))
    assert by_octav.input_scale < IntLinear.from_float(linear, x.reshape(-1, 8)).input_scale
