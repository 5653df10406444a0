"""Seconds per epoch of the training loop against a plain padded PyTorch BiLSTM loop.

Both train the same network size on the same tokenized split (data/classifier/tokens
from `dvc repro embed`) in child processes of this run, so the peak resident memory
of each is measured on its own. The baseline is the loop most people write
first: shuffled batches padded to their longest sequence, no packing, no
length bucketing. Prints seconds per epoch, the ratio, padding fractions and
peak RSS.

    python bench/speed.py [--epochs 2] [--batch-size 64] [--device cpu|cuda]
    python bench/speed.py --long   # training tokens/s on 256-token documents against 20-token sentences
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

from sentipipe.tasks.classifier import paths
from sentipipe.tasks.classifier.network import ClassifierSpec, build_model
from sentipipe.tasks.classifier.objective import Classification
from sentipipe.tasks.classifier.params import load
from sentipipe.text.batching import padding_fraction
from sentipipe.text.encoding import EncodedSplit, load_split
from sentipipe.text.vocab import PAD_ID
from sentipipe.training.device import device_name as device_name_of
from sentipipe.training.device import resolve_device
from sentipipe.training.loop import fit


class PlainBiLSTM(nn.Module):
    def __init__(self, matrix: torch.Tensor, hidden: int, classes: int):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(matrix, freeze=False, padding_idx=PAD_ID)
        self.rnn = nn.LSTM(matrix.shape[1], hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(ids))
        return self.head(out.max(dim=1).values)


def plain_epoch(split, model, optimizer, batch_size: int, rng, device) -> tuple[float, float]:
    cells = 0
    for index in np.array_split(rng.permutation(len(split)), max(1, len(split) // batch_size)):
        seqs = [torch.from_numpy(split.sequence(int(i)).astype(np.int64)) for i in index]
        ids = nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=PAD_ID).to(device)
        cells += ids.numel()
        labels = torch.from_numpy(np.asarray(split.labels[index])).to(device)
        loss = nn.functional.cross_entropy(model(ids), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter(), 1 - split.lengths.sum() / cells


def child(mode: str, epochs: int, batch_size: int, device_name: str) -> dict:
    params = load()
    device = resolve_device(device_name)
    torch.manual_seed(0)
    split = load_split(paths.tokens("train"))
    matrix = torch.from_numpy(np.load(paths.EMBEDDINGS))
    hidden = params.classifier.train.hidden_size
    times = []
    if mode == "plain":
        model = PlainBiLSTM(matrix, hidden, int(split.labels.max()) + 1).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        for _ in range(epochs):
            start = time.perf_counter()
            end, pad = plain_epoch(split, model, optimizer, batch_size, rng, device)
            times.append(end - start)
    else:
        spec = ClassifierSpec(
            vocab_size=matrix.shape[0],
            embed_dim=matrix.shape[1],
            num_classes=int(split.labels.max()) + 1,
            hidden_size=hidden,
            bidirectional=True,
            cell="lstm",
            pooling="max",
        )
        model = build_model(spec, matrix).to(device)
        val = load_split(paths.tokens("val"))
        objective = Classification(split, val, batch_size, spec.num_classes, device=device)
        steps = len(objective.batches(None))  # one evaluation an epoch, as the plain loop has none: conservative
        update = {"max_steps": steps * epochs, "eval_every": steps, "patience": 0, "batch_size": batch_size}
        p = params.classifier.train.model_copy(update=update)
        result = fit(model, objective, p, device)
        times = [h.seconds for h in result.history]
        pad = padding_fraction(split, batch_size, shuffle=True, seed=p.seed)
    return {
        "seconds_per_epoch": float(np.mean(times)),
        "padding_fraction": float(pad),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": device_name_of(device),
        "sentences_per_second": len(split) / float(np.mean(times)),
    }


def tokens_child(length: int, tokens: int, device_name: str) -> dict:
    """Training tokens/s of our loop on texts of `length` tokens cut from the real training stream."""
    params = load()
    device = resolve_device(device_name)
    torch.manual_seed(0)
    stream = load_split(paths.tokens("train")).ids
    matrix = torch.from_numpy(np.load(paths.EMBEDDINGS))
    rng = np.random.default_rng(0)

    def cut(n_texts: int) -> EncodedSplit:
        offsets = np.arange(0, n_texts * length + 1, length, dtype=np.int64)
        return EncodedSplit(np.resize(stream, n_texts * length), offsets, rng.integers(0, 2, n_texts))

    train, val = cut(tokens // length), cut(max(1, 256 // length))
    p = params.classifier.train
    spec = ClassifierSpec.of(p, matrix.shape[0], matrix.shape[1], 2)
    model = build_model(spec, matrix).to(device)
    objective = Classification(train, val, p.batch_size, 2, device=device, max_tokens=p.batch_tokens)
    steps = len(objective.batches(None))
    update = {"max_steps": 2 * steps, "eval_every": steps, "patience": 0}
    result = fit(model, objective, p.model_copy(update=update), device)
    seconds = result.history[-1].seconds  # the second pass over the tokens: warm
    return {"length": length, "texts": len(train), "steps_per_pass": steps, "tokens_per_second": tokens / seconds}


def long_documents(tokens: int, device: str) -> int:
    """--long: tokens/s on 256-token documents against 20-token sentences, same tokens, same loop, same run."""
    out = {}
    for length in (20, 256):
        cmd = [sys.executable, __file__, "--tokens-child", str(length), "--tokens", str(tokens), "--device", device]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[length] = json.loads(proc.stdout.strip().splitlines()[-1])
    for r in out.values():
        print(
            f"{r['length']:>4}-token texts: {r['texts']:>6} texts, {r['steps_per_pass']:>4} steps a pass, "
            f"{r['tokens_per_second']:>8.0f} training tokens/s"
        )
    ratio = out[20]["tokens_per_second"] / out[256]["tokens_per_second"]
    print(f"sentences / documents tokens/s: {ratio:.2f}x (target: at most 1.5x)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto (what a GPU host should measure: --device cuda)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--child", choices=["plain", "ours"])
    ap.add_argument("--long", action="store_true", help="tokens/s on 256-token documents against 20-token sentences")
    ap.add_argument("--tokens", type=int, default=81920, help="with --long: training tokens a pass, both lengths")
    ap.add_argument("--tokens-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.epochs, args.batch_size, args.device)))
        return 0
    if args.tokens_child:
        print(json.dumps(tokens_child(args.tokens_child, args.tokens, args.device)))
        return 0
    if args.long:
        return long_documents(args.tokens, args.device)
    results = {}
    for mode in ("plain", "ours"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--epochs",
                str(args.epochs),
                "--batch-size",
                str(args.batch_size),
                "--device",
                args.device,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    plain, ours = results["plain"], results["ours"]
    print(f"{'loop':<34}{'s/epoch':>9}{'padding':>9}{'peak RSS MB':>13}")
    print(
        f"{'plain padded BiLSTM (baseline)':<34}{plain['seconds_per_epoch']:>9.1f}{plain['padding_fraction']:>9.1%}"
        f"{plain['peak_rss_mb']:>13.0f}"
    )
    print(
        f"{'sentipipe (bucketed, packed)':<34}{ours['seconds_per_epoch']:>9.1f}{ours['padding_fraction']:>9.1%}"
        f"{ours['peak_rss_mb']:>13.0f}"
    )
    print(
        f"speed-up: {plain['seconds_per_epoch'] / ours['seconds_per_epoch']:.2f}x "
        f"(ours includes its validation pass; baseline does not); device {ours['device']}, "
        f"{ours['sentences_per_second']:.0f} training sentences/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
