"""Validation bits per character of the recurrent generator against a smoothed n-gram, same split.

Runs ingest, prepare and the generator's stages (params.yaml, or --params, with
--set overrides) in a temporary workspace with a throw-away MLflow store. The
evaluate stage, in the same process, fits interpolated modified Kneser-Ney
n-grams on the very same training stream, growing the order until validation
stops improving. Prints both models' validation and test bits per
character with the ratio RNN / n-gram (below 1: the RNN is better), the served
model's difference from the n-gram with its block bootstrap interval, evaluate's
sample signals (words of the training text, repeated word 3-grams, distinct-2),
then samples at two temperatures. The served model is the network mixed with an
n-gram when evaluate chose it (generator.evaluate.mixture); the network alone is
printed beside it. Exits 1 when the served model does not beat the n-gram on
validation.

    python bench/generator.py [--params params.yaml] [--set generator.train.epochs=3 ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from sentipipe.io import read_json
from sentipipe.tasks.generator import paths
from sentipipe.tasks.generator.evaluate import evaluate
from sentipipe.tasks.generator.mixture import MixedGenerator
from sentipipe.tasks.generator.params import GeneratorConfig
from sentipipe.tasks.generator.train import train

from common import load, run_stages


def sampling_speed(generator, temperature: float, top_k: int, prompts: int = 32, max_length: int = 100) -> dict:
    """Prompts per second, one at a time against all in one batch (each with its own seeded generator)."""
    texts = [f"The {word}" for word in ("movie", "film", "story", "plot", "cast", "actor", "ending", "script")]
    texts = (texts * (prompts // len(texts) + 1))[:prompts]
    options = {"max_length": max_length, "temperature": temperature, "top_k": top_k, "seed": 3}
    start = time.perf_counter()
    alone = [generator.generate(t, **options) for t in texts]
    alone_seconds = time.perf_counter() - start
    start = time.perf_counter()
    together = generator.generate_batch(texts, **options)
    together_seconds = time.perf_counter() - start
    return {
        "prompts": texts,
        "max_length": max_length,
        "alone": len(texts) / alone_seconds,
        "together": len(texts) / together_seconds,
        "same": alone == together,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--set", action="append", default=[], help="section.key=value override, any depth")
    ap.add_argument("--temperatures", default="0.5,1.0")
    ap.add_argument("--samples", type=int, default=3, help="samples per temperature (seeds 1..n)")
    args = ap.parse_args()
    args.params = str(Path(args.params).resolve())  # the stages run in a temporary workspace
    overrides = list(args.set)
    params = load(args.params, overrides, GeneratorConfig)
    n = args.samples
    with tempfile.TemporaryDirectory(prefix="sentipipe-bench-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        os.chdir(tmp)
        run_stages(args.params, overrides, "generator", ("ingest", "prepare", "tokenize"))
        start = time.perf_counter()
        train(params)
        rnn_seconds = time.perf_counter() - start
        start = time.perf_counter()
        metrics = evaluate(params)  # the RNN and the n-gram on val and test
        evaluate_seconds = time.perf_counter() - start
        train_report = read_json(paths.TRAIN_REPORT)
        sizes = {s: read_json(paths.VOCAB)["splits"][s]["units"] for s in ("train", "val", "test")}
        generator = MixedGenerator.load(paths.SERVED)  # what register logs
        g = params.generator
        temperatures = [float(t) for t in args.temperatures.split(",")]
        samples = {
            t: [
                generator.generate("", max_length=g.sample.max_length, temperature=t, top_k=g.sample.top_k, seed=seed)[
                    0
                ]
                for seed in range(1, n + 1)
            ]
            for t in temperatures
        }
        speed = sampling_speed(generator, g.sample.temperature, g.sample.top_k)

    t = g.train
    label = f"{t.cell} {t.num_layers}x{t.hidden_size}, bptt {t.bptt}, {train_report['epochs_run']} epochs"
    b = metrics["baseline"]
    ngram_bpc = {"val": b["val"]["bpc"], "test": b["test"]["bpc"]}
    print(f"\nunits: {g.tokenize.unit}; train {sizes['train']}, val {sizes['val']}, test {sizes['test']}")
    by_order = b["val_bpc_by_order"]
    print("n-gram val bits per character by order: " + ", ".join(f"{m}: {v:.3f}" for m, v in by_order.items()))
    print(f"{'model':<44}{'val bpc':>9}{'test bpc':>10}{'val vs n-gram':>15}")
    name = b["name"]
    print(f"{name:<44}{ngram_bpc['val']:>9.4f}{ngram_bpc['test']:>10.4f}{1.0:>15.3f}")
    network = metrics["network"]
    ratio = network["val"]["bpc"] / ngram_bpc["val"]
    print(f"{label:<44}{network['val']['bpc']:>9.4f}{network['test']['bpc']:>10.4f}{ratio:>15.3f}")
    if "mixture" in metrics and metrics["mixture"]["used"]:
        ratio = metrics["val"]["bpc"] / ngram_bpc["val"]
        served = f"served: {metrics['served']['model']}"
        print(f"{served:<44}{metrics['val']['bpc']:>9.4f}{metrics['test']['bpc']:>10.4f}{ratio:>15.3f}")
        print(f"the served file: {metrics['served']['size_mb']} MB (the n-gram refitted from its ids on loading)")
    for split in ("val", "test"):
        if "difference" in b[split]:
            gap = b[split]["difference"]
            print(
                f"served minus the n-gram on {split}: {gap['difference']:+.4f} bpc, {gap['confidence']:.0%} "
                f"interval {gap['interval'][0]:+.4f} to {gap['interval'][1]:+.4f} (bootstrap of {gap['blocks']} "
                f"contiguous blocks, {gap['resamples']} resamples)"
            )
    for name, q in metrics.get("samples_quality", {}).items():
        print(
            f"{name if name == 'validation text' else f'evaluate samples at temperature {name}'} "
            f"({q['samples']}, {q['words']} words): in the training vocabulary {q['in_vocabulary']:.3f}, "
            f"repeated word 3-grams {q['repeated_3grams']:.3f}, distinct-2 {q['distinct_2']:.3f}"
        )
    print(
        f"RNN: {train_report['parameters']:,} parameters, {train_report['seconds_per_100_steps']:.1f} s per 100 steps, "
        f"{rnn_seconds:.0f} s training on {train_report['device']}; "
        f"evaluation, n-gram fit included, {evaluate_seconds:.0f} s"
    )
    print(
        f"sampling {len(speed['prompts'])} prompts of {speed['max_length']} units: one at a time "
        f"{speed['alone']:.2f} prompts/s, together {speed['together']:.2f} prompts/s "
        f"({speed['together'] / speed['alone']:.2f}x), the same texts: {speed['same']}"
    )
    for temperature, texts in samples.items():
        print(f"\nsamples at temperature {temperature} (seeds 1..{len(texts)}):")
        for text in texts:
            print(f"  {text!r}")
    return 0 if metrics["val"]["bpc"] < ngram_bpc["val"] else 1


if __name__ == "__main__":
    sys.exit(main())
