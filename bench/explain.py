"""Which explanation to serve: occlusion against integrated gradients, by faithfulness and by speed.

Faithfulness is ERASER's comprehensiveness (DeYoung et al. 2020): take out the k tokens an
explanation ranks highest for the predicted label and measure how far the served model's
probability of that label falls (larger: the explanation found what the model relies on), for
k = 1, 2, 3 and a fifth of the tokens. A random ranking is the floor. Occlusion is optimal at k = 1
by construction (it measures exactly that removal), so k >= 2 is where the methods really differ.

Integrated gradients (Sundararajan et al. 2017) needs gradients, which int8 layers do not pass: it
runs on the fp32 network of the same artifact (same vocabulary, unseen-word vectors and
temperature), from an all-zero embedding baseline, all its steps in one batch; its ranking is
scored on the served model like the others. Speed: p50/p95 of one sentence explained, one at a time.

    python bench/explain.py [--sentences 300] [--steps 32]

Run `make run` first (the workspace's models/classifier/served.pt and data/prepared/test.parquet).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import pandas as pd
import torch

from sentipipe import stats
from sentipipe.data.paths import prepared
from sentipipe.tasks.classifier import paths
from sentipipe.tasks.classifier.explain import explain
from sentipipe.tasks.classifier.predictor import Predictor


def integrated_gradients(predictor: Predictor, tokens: list[str], steps: int) -> tuple[int, np.ndarray]:
    """The predicted class (fp32 network) and each token's attribution to it, from a zero-embedding baseline."""
    network = predictor.network
    split, extra = predictor.encode([tokens])
    ids = torch.as_tensor(split.ids[split.offsets[0] : split.offsets[1]], dtype=torch.long)
    alphas = ((torch.arange(steps, dtype=torch.float32) + 0.5) / steps).view(steps, 1, 1)  # midpoint rule
    captured = {}

    def scale(module, inputs, output):
        x = output.detach()
        captured["x"] = x[0]
        captured["path"] = (alphas * x).requires_grad_()
        return captured["path"]

    with torch.no_grad():
        target = int(network(ids.unsqueeze(0), torch.tensor([len(ids)]), extra).argmax(1)[0])
    handle = network.embed_dropout.register_forward_hook(scale)
    try:
        logits = network(ids.unsqueeze(0).expand(steps, -1), torch.full((steps,), len(ids)), extra)
        logits[:, target].sum().backward()
    finally:
        handle.remove()
    grads = captured["path"].grad.mean(0)
    return target, (captured["x"] * grads).sum(-1).numpy()


def occlusion(predictor: Predictor, text: str) -> tuple[int, np.ndarray]:
    e = explain(predictor, [text])[0]
    return predictor.labels.index(e["label"]), np.asarray(e["contributions"][e["label"]])


def comprehensiveness(predictor: Predictor, tokens: list[str], target: int, ranking: np.ndarray, ks) -> list[float]:
    """The served probability of `target` with all tokens, minus with the top-k of `ranking` taken out, per k."""
    variants = [tokens]
    for k in ks:
        drop = set(ranking[:k].tolist())
        variants.append([t for j, t in enumerate(tokens) if j not in drop])
    probs = predictor.probabilities(predictor.logits_encoded(*predictor.encode(variants)))[:, target]
    return (probs[0] - probs[1:]).tolist()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=300, help="test sentences of at least 4 tokens")
    ap.add_argument("--steps", type=int, default=32, help="integrated gradients: steps on the path")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json")
    args = ap.parse_args()
    if not paths.SERVED.exists():
        raise SystemExit(f"{paths.SERVED} not found: run `make run` first")
    served = Predictor.load(paths.SERVED)
    fp32 = served.serving(served.temperature, quantized=False, subwords=served.subwords)
    texts = pd.read_parquet(prepared("test"))["text"].astype(str).tolist()
    rng = np.random.default_rng(args.seed)
    chosen = [(t, tok) for t, tok in zip(texts, served.tokens(texts), strict=True) if len(tok) >= 4]
    chosen = [chosen[i] for i in rng.permutation(len(chosen))[: args.sentences]]

    names = ("occlusion (served int8)", "integrated gradients (fp32)", "random")
    scores = {n: [] for n in names}
    times = {n: [] for n in names[:2]}
    agree = []
    for text, tokens in chosen:
        ks = [1, 2, 3, max(1, round(0.2 * len(tokens)))]
        start = time.perf_counter()
        target, contributions = occlusion(served, text)
        times[names[0]].append(time.perf_counter() - start)
        start = time.perf_counter()
        ig_target, attributions = integrated_gradients(fp32, tokens, args.steps)
        times[names[1]].append(time.perf_counter() - start)
        agree.append(ig_target == target)
        rankings = {
            names[0]: np.argsort(-contributions, kind="stable"),
            names[1]: np.argsort(-attributions, kind="stable"),
            names[2]: rng.permutation(len(tokens)),
        }
        for name, ranking in rankings.items():
            scores[name].append(comprehensiveness(served, tokens, target, ranking, ks))

    table = {}
    for name in names:
        x = np.asarray(scores[name])
        table[name] = {
            "comprehensiveness": {
                k: stats.mean_interval(x[:, j]) for j, k in enumerate(("k=1", "k=2", "k=3", "20% of tokens"))
            }
        }
        if name in times:
            t = np.asarray(times[name]) * 1000
            table[name]["ms_p50"], table[name]["ms_p95"] = float(np.median(t)), float(np.percentile(t, 95))
    print(
        f"{len(chosen)} test sentences, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"integrated gradients: {args.steps} steps; fp32 and int8 agree on the label of "
        f"{np.mean(agree):.1%}\n"
    )
    print("| method | comprehensiveness k=1 | k=2 | k=3 | 20% of tokens | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for name, row in table.items():
        cells = " | ".join(f"{m:.3f} ± {h:.3f}" for m, h in row["comprehensiveness"].values())
        speed = f"{row['ms_p50']:.1f} | {row['ms_p95']:.1f}" if "ms_p50" in row else "- | -"
        print(f"| {name} | {cells} | {speed} |")
    occ, ig = (table[n] for n in names[:2])
    ratio = occ["comprehensiveness"]["k=3"][0] / max(ig["comprehensiveness"]["k=3"][0], 1e-9)
    print(
        f"\nocclusion / integrated gradients: comprehensiveness at k=3 {ratio:.2f}x, "
        f"p50 time {occ['ms_p50'] / ig['ms_p50']:.2f}x"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"sentences": len(chosen), "steps": args.steps, "table": table}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
