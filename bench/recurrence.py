"""Seconds per training step on a CPU: the recurrence over padded batches (ours) against torch's packed sequences.

Both paths train the classifier's network as params.yaml builds it (cell, width, pooling, lexical path) on
the same real batches of a tokenized workspace (`dvc repro embed`: data/classifier/tokens, embeddings),
bucketed as training buckets them (batch_size, batch_tokens), in this one process: the two models start
from the same weights and take their steps alternately, batch by batch, so that both see the same load on
the machine. Before timing, the two paths' logits on the first batch are compared at equal weights.
Prints seconds a step of each, the ratio with a 95% bootstrap interval over batches, and training tokens/s.

    python bench/recurrence.py [--workspace DIR] [--steps 40] [--threads 2] [--page]

--page writes the result into docs/evidence.md (#cpu-recurrence), one block per corpus (--name).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sentipipe.tasks.classifier.network import ClassifierSpec, build_model, run_packed
from sentipipe.tasks.classifier.params import load
from sentipipe.text.batching import bucketed_batches, collate
from sentipipe.text.encoding import load_split
from sentipipe.tracking import cpu_model

ROOT = Path(__file__).resolve().parents[1]


def network(params, matrix: torch.Tensor, classes: int) -> nn.Module:
    p = params.classifier.train
    spec = ClassifierSpec.of(p, matrix.shape[0], matrix.shape[1], classes)
    return build_model(spec, matrix, freeze=p.freeze_embeddings)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default=".", help="a folder holding data/classifier/{tokens,embeddings.npy}")
    ap.add_argument("--params", default=None, help="params.yaml (default: the workspace's, else the repo's)")
    ap.add_argument("--steps", type=int, default=40, help="timed steps of each path")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="the default corpus", help="what the workspace holds, for --page")
    ap.add_argument("--page", action="store_true", help="write the result into docs/evidence.md")
    args = ap.parse_args()

    ws = Path(args.workspace)
    params_path = Path(args.params) if args.params else ws / "params.yaml"
    if not params_path.exists():
        params_path = ROOT / "params.yaml"
    params = load(params_path)
    torch.set_num_threads(args.threads)
    split = load_split(ws / "data/classifier/tokens/train")
    matrix = torch.from_numpy(np.load(ws / "data/classifier/embeddings.npy"))
    p = params.classifier.train
    batches = bucketed_batches(split.lengths, p.batch_size, True, np.random.default_rng(p.seed), p.batch_tokens)
    batches = batches[: args.steps + 2]  # two warm-up steps each

    torch.manual_seed(p.seed)
    ours = network(params, matrix, int(split.labels.max()) + 1)
    packed = copy.deepcopy(ours)
    packed.recurrence = lambda x, lengths: run_packed(packed.rnn, x, lengths)
    ids, lengths, _ = collate(split, batches[0])
    with torch.no_grad():
        ours.eval(), packed.eval()
        agree = float((ours(ids, lengths) - packed(ids, lengths)).abs().max())

    def step(model, optimizer, batch) -> tuple[float, int]:
        ids, lengths, labels = collate(split, batch)
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(ids, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start, int(lengths.sum())

    models = {"ours": ours.train(), "packed": packed.train()}
    optimizers = {
        k: torch.optim.AdamW([q for q in m.parameters() if q.requires_grad], lr=p.lr, weight_decay=p.weight_decay)
        for k, m in models.items()
    }
    seconds = {k: [] for k in models}
    tokens = []
    for i, batch in enumerate(batches):
        order = ("ours", "packed") if i % 2 else ("packed", "ours")
        for k in order:
            s, n = step(models[k], optimizers[k], batch)
            if i >= 2:
                seconds[k].append(s)
        if i >= 2:
            tokens.append(n)
    a, b = np.array(seconds["packed"]), np.array(seconds["ours"])
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(a), (2000, len(a)))
    boot = a[draws].sum(1) / b[draws].sum(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    ratio = a.sum() / b.sum()
    texts = np.mean([len(x) for x in batches[2:]])
    mean_len = float(np.sum(tokens) / np.sum([len(x) for x in batches[2:]]))
    lines = [
        f"{len(a)} training steps of each path on {args.name} ({len(split):,} training texts, {texts:.1f} a batch, "
        f"{mean_len:.0f} tokens a text on average), {p.cell} {p.hidden_size} units"
        f"{' bidirectional' if p.bidirectional else ''}, pooling {p.pooling}, lexical {p.lexical}; "
        f"torch {torch.__version__}, {args.threads} threads:",
        "",
        "| recurrence | s a step | training tokens/s |",
        "|---|---|---|",
        f"| torch's packed sequences (before) | {a.mean():.3f} | {np.sum(tokens) / a.sum():,.0f} |",
        f"| padded, reversed within length (ours) | {b.mean():.3f} | {np.sum(tokens) / b.sum():,.0f} |",
        "",
        f"Speed-up **{ratio:.2f}x** (95% bootstrap over batches {lo:.2f}-{hi:.2f}); the two paths' logits at equal "
        f"weights differ by at most {agree:.1e}.",
    ]
    print("\n".join(lines))
    if args.page:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        load_avg = os.getloadavg()[0]
        head = (
            f'Written by `python bench/recurrence.py --page --name "{args.name}"` at commit '
            f"{commit.stdout.strip()} on {platform.machine()} ({cpu_model()}), {os.cpu_count()} CPUs "
            f"(load average {load_avg:.1f} at the end)."
        )
        marker = f"<!-- bench/recurrence.py {args.name}"
        start, end = f"{marker}: start -->", f"{marker}: end -->"
        page = ROOT / "docs" / "evidence.md"
        text = page.read_text(encoding="utf-8")
        block = "\n".join([start, head, "", *lines, end])
        if start in text:
            before, _, rest = text.partition(start)
            text = before + block + rest.partition(end)[2]
        else:
            anchor = "<!-- bench/recurrence.py: blocks -->"
            if anchor not in text:
                raise SystemExit(f"docs/evidence.md has no {anchor!r} line to write after")
            text = text.replace(anchor, anchor + "\n\n" + block, 1)
        page.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
