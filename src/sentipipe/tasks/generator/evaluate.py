"""Stage evaluate (generator): the served model, its val and test bits per character, the n-gram reference, samples.

The served model is the network alone, or (generator.evaluate.mixture) the network's next-unit distribution
mixed with a modified Kneser-Ney n-gram's, the n-gram's order and the network's weight chosen on validation
(mixture.py). `val` and `test` in metrics.json are the served model's figures, the ones the registry compares;
`network` is the network alone beside them. Test data decide nothing here.

Beside the bits: the served model's difference from the n-gram reference with a block bootstrap interval
(gap.py, from the per-position probabilities already computed: nothing is scored twice), and signals of
its samples per temperature (quality.py: words of the training text, repeated word 3-grams, distinct-2),
with the same signals of validation text as a yardstick.
"""

from __future__ import annotations

import math

import mlflow
import numpy as np

from sentipipe import tracking
from sentipipe.data.paths import SPLITS
from sentipipe.io import require, write_json
from sentipipe.tasks.generator.gap import block_bootstrap
from sentipipe.tasks.generator.mixture import MixedGenerator, Mixture, choose_weight
from sentipipe.tasks.generator.ngram import search_order
from sentipipe.tasks.generator.objective import stream_probabilities
from sentipipe.tasks.generator.params import GeneratorConfig
from sentipipe.tasks.generator.paths import METRICS, MODEL, SAMPLES, SERVED, TRAIN_REPORT, VOCAB, stream
from sentipipe.tasks.generator.quality import sample_quality, vocabulary
from sentipipe.tasks.generator.sampler import Generator
from sentipipe.tasks.generator.units import EOS_ID, UnitSettings, from_units, read_vocab
from sentipipe.text.vocab import PAD_ID, Vocab

LANES = 16  # validation and test streams are read in this many lanes (as training's validation does)
QUALITY_SEEDS = 4  # samples per prompt and temperature for the quality signals (seeds sample.seed, +1, ...)
GAP_BLOCKS = 100  # contiguous blocks of a stream for the bootstrap interval on the difference from the n-gram


def served_probabilities(generator: MixedGenerator, ids: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The served model's probability of each unit of a stream it predicts (network, or the mixture)."""
    positions, probs, correct = stream_probabilities(generator.model, ids, LANES, window, generator.device, (PAD_ID,))
    if generator.mixture is not None:
        probs = generator.mixture.scored(probs, ids, positions)
    return positions, probs, correct


def scores(probs: np.ndarray, chars_per_unit: float, correct: int | None = None) -> dict[str, float]:
    """Loss per unit (nats), perplexity and bits per character; next-unit accuracy when `correct` is given."""
    loss = float(-np.log(probs).mean())
    out = {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "bpc": loss / math.log(2) / chars_per_unit}
    if correct is not None:
        out["accuracy"] = correct / len(probs)
    return {k: round(v, 6) for k, v in out.items()}


def served_scores(generator: MixedGenerator, ids: np.ndarray, window: int, chars_per_unit: float) -> dict[str, float]:
    """What evaluate reports for a served generator on a stream (the test of a served file uses it too)."""
    _, probs, correct = served_probabilities(generator, ids, window)
    return scores(probs, chars_per_unit, correct if generator.mixture is None else None)


def documents(ids: np.ndarray, vocab: Vocab, settings: UnitSettings, max_units: int | None = None) -> list[str]:
    """A stream's documents as text (each ends at <eos>), each cut to its first `max_units` units if given."""
    tokens = np.array(vocab.tokens, dtype=object)
    pieces = [p[p != EOS_ID][:max_units] for p in np.split(ids, np.flatnonzero(ids == EOS_ID))]
    return [from_units(tokens[p].tolist(), settings) for p in pieces if len(p)]


def _quality(served: MixedGenerator, params: GeneratorConfig, train_words: set[str], val_docs: list[str]):
    """The samples shown (seed sample.seed), and the quality signals per temperature over QUALITY_SEEDS seeds;
    also those of as many validation documents (`val_docs`, cut to sample.max_length units) as a yardstick."""
    e, s = params.generator.evaluate, params.generator.sample
    samples, quality = [], {}
    for temperature in e.temperatures:
        pairs = []
        for seed in range(s.seed, s.seed + QUALITY_SEEDS):
            options = {"max_length": s.max_length, "temperature": temperature, "top_k": s.top_k, "seed": seed}
            texts = [text for text, _ in served.generate_batch(e.prompts, **options)]  # as each prompt alone
            pairs += list(zip(e.prompts, texts))
            if seed == s.seed:
                samples += [{"prompt": p, "temperature": temperature, "seed": seed, "text": p + t} for p, t in pairs]
        quality[str(temperature)] = sample_quality(pairs, train_words)
    count = min(QUALITY_SEEDS * len(e.prompts), len(val_docs))
    picked = [val_docs[i] for i in np.linspace(0, len(val_docs) - 1, count).astype(int)]
    quality["validation text"] = sample_quality([("", d) for d in picked], train_words)
    return samples, quality


def _choose_mixture(ngram_val: dict[int, np.ndarray], net_val: np.ndarray, positions: np.ndarray, cap: int, cpu: float):
    """For each order up to `cap`: the network's best weight on validation, and the mixture's val bpc
    (`ngram_val`: the n-gram's probabilities of the validation units by order, as the order search scored them)."""
    chosen = {}
    for order in range(1, cap + 1):
        weight, bits = choose_weight(net_val, ngram_val[order][positions])
        chosen[order] = (weight, bits / cpu)
    return chosen


def evaluate(params: GeneratorConfig) -> dict:
    g = params.generator
    e = g.evaluate
    require(MODEL, VOCAB, *(stream(s) for s in SPLITS))
    network = Generator.load(MODEL)
    _, _, stats = read_vocab(VOCAB)
    loaded = {s: np.load(stream(s)).astype(np.int64) for s in SPLITS}
    cpu = {s: stats[s]["chars_per_unit"] for s in SPLITS}
    window = g.train.bptt * 4
    metrics: dict = {}
    net: dict = {}
    for split in ("val", "test"):
        net[split] = stream_probabilities(network.model, loaded[split], LANES, window, network.device, (PAD_ID,))
        _, probs, correct = net[split]
        metrics.setdefault("network", {})[split] = scores(probs, cpu[split], correct)
    ngram = None
    if e.baseline or e.mixture != "off":
        limit = e.ngram_order_limit
        ngram, order, by_order, ngram_val = search_order(
            loaded["train"], loaded["val"], len(network.vocab), EOS_ID, limit
        )
    reference = {}  # the n-gram reference's probability of every unit of val and test
    if e.baseline:
        reference = {"val": ngram_val[order], "test": ngram.probabilities(loaded["test"], order)}
        bpc = {s: round(float(-np.log2(reference[s]).mean()) / cpu[s], 6) for s in ("val", "test")}
        metrics["baseline"] = {
            "name": f"a modified Kneser-Ney {order}-gram",
            "order": order,
            "order_limit_reached": max(by_order) == limit and order == limit,
            "val": {"bpc": bpc["val"]},
            "test": {"bpc": bpc["test"]},
            "val_bpc_by_order": {str(m): round(v / cpu["val"], 6) for m, v in by_order.items()},
        }
    mixture = None
    if e.mixture != "off":
        cap = min(ngram.max_order, e.mixture_max_order or ngram.max_order)
        positions, net_val, _ = net["val"]
        chosen = _choose_mixture(ngram_val, net_val, positions, cap, cpu["val"])
        best = min(chosen, key=lambda m: chosen[m][1])
        weight, val_bpc = chosen[best]
        used = e.mixture == "on" or (weight < 1.0 and val_bpc < metrics["network"]["val"]["bpc"])
        if used:  # fitted again at its order, as serving loads it: the search's model is let go first
            del ngram, ngram_val
            mixture = Mixture.fit(loaded["train"], len(network.vocab), best, weight)
        metrics["mixture"] = {
            "mode": e.mixture,
            "used": used,
            "order": best,
            "weight": weight,
            "val_bpc_by_order": {str(m): round(b, 6) for m, (_, b) in chosen.items()},
            "weight_by_order": {str(m): w for m, (w, _) in chosen.items()},
        }
    served = MixedGenerator(network.model, network.vocab, network.settings, network.device, mixture)
    served.save(SERVED)
    for split in ("val", "test"):
        positions, probs, _ = net[split]
        if mixture is None:
            metrics[split] = dict(metrics["network"][split])
        else:
            probs = mixture.scored(probs, loaded[split], positions)
            metrics[split] = scores(probs, cpu[split])
        if e.baseline:  # served minus reference, on the positions the served model predicts
            served_bits, reference_bits = -np.log2(probs), -np.log2(reference[split][positions])
            gap = block_bootstrap(served_bits, reference_bits, GAP_BLOCKS, scale=1.0 / cpu[split])
            metrics["baseline"][split]["difference"] = gap
    metrics["served"] = {
        "model": mixture.describe() if mixture else "the network alone",
        "size_mb": round(SERVED.stat().st_size / 1e6, 3),
    }
    train_words = vocabulary(documents(loaded["train"], network.vocab, network.settings))
    val_docs = documents(loaded["val"], network.vocab, network.settings, g.sample.max_length)
    samples, metrics["samples_quality"] = _quality(served, params, train_words, val_docs)
    order_of_keys = ("val", "test", "served", "network", "mixture", "baseline", "samples_quality")
    metrics = {k: metrics[k] for k in order_of_keys if k in metrics}
    write_json(METRICS, metrics)
    write_json(SAMPLES, samples)
    with tracking.attach_run(params.tracking, g.experiment, TRAIN_REPORT):
        flat = {f"{split}_{k}": v for split in ("val", "test") for k, v in metrics[split].items()}
        flat.update({f"network_{sp}_{k}": v for sp in ("val", "test") for k, v in metrics["network"][sp].items()})
        flat["served_mb"] = metrics["served"]["size_mb"]
        if "mixture" in metrics:
            flat.update({"mixture_used": float(mixture is not None), "mixture_order": metrics["mixture"]["order"]})
            flat["mixture_weight"] = metrics["mixture"]["weight"]
        if "baseline" in metrics:
            flat.update({f"baseline_{s}_bpc": metrics["baseline"][s]["bpc"] for s in ("val", "test")})
            flat["baseline_order"] = metrics["baseline"]["order"]
            for sp in ("val", "test"):
                gap = metrics["baseline"][sp]["difference"]
                flat[f"baseline_{sp}_difference"] = gap["difference"]
                flat[f"baseline_{sp}_difference_low"], flat[f"baseline_{sp}_difference_high"] = gap["interval"]
        for name, q in metrics["samples_quality"].items():
            prefix = "val_text" if name == "validation text" else f"sample_t{name}"
            flat.update({f"{prefix}_{k}": q[k] for k in ("in_vocabulary", "repeated_3grams", "distinct_2")})
        mlflow.log_metrics({k: float(v) for k, v in flat.items()})
        mlflow.log_artifact(str(METRICS))
        mlflow.log_artifact(str(SAMPLES))
    n = metrics["network"]
    print(
        f"generator evaluate: served ({metrics['served']['model']}, {metrics['served']['size_mb']} MB): "
        f"val bpc {metrics['val']['bpc']:.4f} (perplexity {metrics['val']['perplexity']:.2f}), "
        f"test bpc {metrics['test']['bpc']:.4f}; the network alone: val {n['val']['bpc']:.4f}, "
        f"test {n['test']['bpc']:.4f}"
    )
    if "baseline" in metrics:
        b = metrics["baseline"]
        print(
            f"generator evaluate: {b['name']} on the same split (orders grown until validation stopped "
            "improving): "
            f"val bpc {b['val']['bpc']:.4f}, test bpc {b['test']['bpc']:.4f}"
        )
        for sp in ("val", "test"):
            gap = b[sp]["difference"]
            print(
                f"generator evaluate: served minus the n-gram on {sp}: {gap['difference']:+.4f} bpc, "
                f"{gap['confidence']:.0%} interval {gap['interval'][0]:+.4f} to {gap['interval'][1]:+.4f} "
                f"(bootstrap of {gap['blocks']} contiguous blocks)"
            )
    for name, q in metrics["samples_quality"].items():
        what = name if name == "validation text" else f"samples at temperature {name}"
        print(
            f"generator evaluate: {what} ({q['samples']}, {q['words']} words): in the training vocabulary "
            f"{q['in_vocabulary']:.3f}, repeated word 3-grams {q['repeated_3grams']:.3f}, "
            f"distinct-2 {q['distinct_2']:.3f}"
        )
    for sample in samples:
        print(f"generator evaluate: sample (temperature {sample['temperature']}): {sample['text']!r}")
    return metrics
