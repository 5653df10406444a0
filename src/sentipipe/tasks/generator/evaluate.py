"""Stage evaluate (generator): val and test bits per character, the n-gram reference, samples."""

from __future__ import annotations

import mlflow
import numpy as np

from sentipipe import tracking
from sentipipe.data.paths import SPLITS
from sentipipe.io import require, write_json
from sentipipe.tasks.generator.ngram import search_order
from sentipipe.tasks.generator.objective import stream_scores
from sentipipe.tasks.generator.params import GeneratorConfig
from sentipipe.tasks.generator.paths import METRICS, MODEL, SAMPLES, TRAIN_REPORT, VOCAB, stream
from sentipipe.tasks.generator.sampler import Generator
from sentipipe.tasks.generator.units import EOS_ID, read_vocab
from sentipipe.text.vocab import PAD_ID


def evaluate(params: GeneratorConfig) -> dict:
    g = params.generator
    require(MODEL, VOCAB, *(stream(s) for s in SPLITS))
    generator = Generator.load(MODEL)
    _, _, stats = read_vocab(VOCAB)
    loaded = {s: np.load(stream(s)).astype(np.int64) for s in SPLITS}
    metrics: dict = {}
    window = g.train.bptt * 4
    for split in ("val", "test"):
        cpu = stats[split]["chars_per_unit"]
        scores = stream_scores(generator.model, loaded[split], 16, window, generator.device, cpu, (PAD_ID,))
        metrics[split] = {k: round(v, 6) for k, v in scores.items()}
    if g.evaluate.baseline:
        limit = g.evaluate.ngram_order_limit
        ngram, order, by_order = search_order(loaded["train"], loaded["val"], len(generator.vocab), EOS_ID, limit)
        val_cpu = stats["val"]["chars_per_unit"]
        bpc = {s: round(ngram.bits_per_unit(loaded[s], order) / stats[s]["chars_per_unit"], 6) for s in ("val", "test")}
        metrics["baseline"] = {
            "name": f"a modified Kneser-Ney {order}-gram",
            "order": order,
            "order_limit_reached": max(by_order) == limit and order == limit,
            "val": {"bpc": bpc["val"]},
            "test": {"bpc": bpc["test"]},
            "val_bpc_by_order": {str(m): round(v / val_cpu, 6) for m, v in by_order.items()},
        }
    s = g.sample
    samples = []
    for temperature in g.evaluate.temperatures:
        for prompt in g.evaluate.prompts:
            text, _ = generator.generate(
                prompt, max_length=s.max_length, temperature=temperature, top_k=s.top_k, seed=s.seed
            )
            samples.append({"prompt": prompt, "temperature": temperature, "seed": s.seed, "text": prompt + text})
    write_json(METRICS, metrics)
    write_json(SAMPLES, samples)
    with tracking.attach_run(params.tracking, g.experiment, TRAIN_REPORT):
        flat = {f"{split}_{k}": v for split in ("val", "test") for k, v in metrics[split].items()}
        if "baseline" in metrics:
            flat.update({f"baseline_{s}_bpc": metrics["baseline"][s]["bpc"] for s in ("val", "test")})
            flat["baseline_order"] = metrics["baseline"]["order"]
        mlflow.log_metrics({k: float(v) for k, v in flat.items()})
        mlflow.log_artifact(str(METRICS))
        mlflow.log_artifact(str(SAMPLES))
    print(
        f"generator evaluate: val bpc {metrics['val']['bpc']:.4f} (perplexity {metrics['val']['perplexity']:.2f}), "
        f"test bpc {metrics['test']['bpc']:.4f}"
    )
    if "baseline" in metrics:
        b = metrics["baseline"]
        print(
            f"generator evaluate: {b['name']} on the same split (orders grown until validation stopped "
            "improving): "
            f"val bpc {b['val']['bpc']:.4f}, test bpc {b['test']['bpc']:.4f}"
        )
    for sample in samples:
        print(f"generator evaluate: sample (temperature {sample['temperature']}): {sample['text']!r}")
    return metrics
