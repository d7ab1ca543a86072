"""Dynamic fixed point: the bias of LFSR stochastic rounding against round to nearest, and the
quantization error by code width, beside the integer fine-tuning paper's accuracy figures."""

import torch

from ...golden.dfp_quant import DfpQuantConfig, Lfsr, dfp_dequantize, dfp_quant, float_words, word_values

__all__ = ["PAPER_GLUE", "rounding_bias", "dfp_errors", "dfp_accuracy", "dfp_markdown"]

#: Tayaranian, Ghaffari et al. (2022): integer fine-tuning's GLUE average against float32, by code width
#: (points; the v2 paper has -3.1 at 8 bits). A fine-tuning result: not measured here.
PAPER_GLUE = {16: 0.0, 10: -0.5, 8: -1.7}


def rounding_bias(fraction, draws, bits=8, rand_bits=8):
    """Mean and RMS error, in codes, of quantizing one float32 tensor ``draws`` times (the LFSR running
    on): 1.0 (which fixes the shared exponent) and 127 values ``n + fraction`` codes (``n = 0..126``),
    by stochastic rounding and by round to nearest."""
    row = {"fraction": fraction, "draws": draws, "bits": bits, "rand_bits": rand_bits}
    for rounding in ("stochastic", "nearest"):
        cfg = DfpQuantConfig(bits=bits, rounding=rounding, rand_bits=rand_bits)
        codes_per_unit = 2.0 ** (bits - 2)
        values = torch.cat([torch.ones(1), (torch.arange(127) + fraction) / codes_per_unit])
        words = float_words(cfg, values)
        exact = word_values(cfg, words)[1:]
        results = dfp_quant(cfg, [words] * draws, Lfsr(cfg))
        error = torch.stack([dfp_dequantize(cfg, codes, shared)[1:] - exact for codes, shared in results])
        error = error * codes_per_unit
        row[f"{rounding}_mean_error"] = float(error.mean())
        row[f"{rounding}_rms_error"] = float(error.pow(2).mean().sqrt())
    return row


def dfp_errors(bits, count=4096, seed=0):
    """Relative RMS error and mean error (in codes) of one Gaussian float32 tensor at ``bits``."""
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(count, generator=gen)
    row = {"bits": bits, "paper_glue": PAPER_GLUE.get(bits)}
    for rounding in ("stochastic", "nearest"):
        cfg = DfpQuantConfig(bits=bits, rounding=rounding, rand_bits=16)
        words = float_words(cfg, values)
        ((codes, shared),) = dfp_quant(cfg, [words])
        exact = word_values(cfg, words)
        error = dfp_dequantize(cfg, codes, shared) - exact
        row[f"{rounding}_rel_rms"] = float(error.norm() / exact.norm())
        row[f"{rounding}_mean_codes"] = float(error.mean() / 2.0 ** (shared - cfg.bias - (bits - 2)))
    return row


def dfp_accuracy():
    """``make bench``'s dynamic fixed-point tables."""
    return {"bias": [rounding_bias(fraction, 200) for fraction in (0.1, 0.3, 0.5, 0.7)],
            "errors": [dfp_errors(bits) for bits in (6, 8, 10, 12, 16)]}


def dfp_markdown(result):
    lines = ["## dfp_quant: rounding bias (float32 -> 8-bit codes, 127 values n + f codes, 200 draws, "
             "8 random bits)", "",
             "| f | stochastic mean error | stochastic RMS | nearest mean error | nearest RMS |",
             "|---:|---:|---:|---:|---:|"]
    for r in result["bias"]:
        lines.append(f"| {r['fraction']} | {r['stochastic_mean_error']:+.4f} | {r['stochastic_rms_error']:.3f} | "
                     f"{r['nearest_mean_error']:+.4f} | {r['nearest_rms_error']:.3f} |")
    lines += ["", "## dfp_quant: error by code width (4096 N(0, 1) float32 values, one shared exponent)", "",
              "| b | stochastic rel. RMS | nearest rel. RMS | stochastic mean (codes) | nearest mean (codes) | "
              "paper: GLUE vs FP32 (fine-tuning, not measured) |", "|---:|---:|---:|---:|---:|---:|"]
    for r in result["errors"]:
        paper = "" if r["paper_glue"] is None else f"{r['paper_glue']:+.1f}"
        lines.append(f"| {r['bits']} | {r['stochastic_rel_rms']:.3g} | {r['nearest_rel_rms']:.3g} | "
                     f"{r['stochastic_mean_codes']:+.4f} | {r['nearest_mean_codes']:+.4f} | {paper} |")
    return "\n".join(lines) + "\n"
