"""The teacher's network and its fine-tuning: a pretrained encoder, mean pooling and a linear head, trained end to end.

Used by the teacher stage (teacher.py), which labels the student's soft targets with it, and by the benches that
score the fine-tuned teacher itself. Fine-tuning hands its whole state to a `save` callback after every epoch and
takes such a state back to resume (the stage keeps it in its checkpoint).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoModel

from sentipipe.tasks.classifier import soft_targets as targets
from sentipipe.tasks.classifier.params import DistillParams
from sentipipe.text.batching import bucketed_batches
from sentipipe.text.encoding import release


class TeacherNetwork(nn.Module):
    def __init__(self, classes: int, folder: str | Path):
        super().__init__()
        # float32 whatever the checkpoint's dtype: a half-precision file would fine-tune badly on a CPU
        self.encoder = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(self.encoder.config.hidden_size, classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return self.head(self.dropout((hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)))


def _padded(pieces: list[np.ndarray], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in pieces)
    ids = torch.full((len(pieces), width), pad, dtype=torch.long)
    mask = torch.zeros((len(pieces), width), dtype=torch.long)
    for row, p in enumerate(pieces):
        ids[row, : len(p)], mask[row, : len(p)] = torch.from_numpy(p.astype(np.int64)), 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def teacher_logits(model: TeacherNetwork, pieces: targets.Pieces, pad: int, device: torch.device) -> np.ndarray:
    model.eval()
    out = np.zeros((len(pieces), model.head.out_features), dtype=np.float32)
    for index in bucketed_batches(pieces.lengths, 128, False, max_tokens=128 * 64):
        out[index] = model(*_padded([pieces[i] for i in index], pad, device)).float().cpu().numpy()
    return out


def rebuilt(state: dict, classes: int, folder: str) -> TeacherNetwork:
    """The fine-tuned teacher on a Ray worker: the encoder's architecture from its folder, the weights sent along."""
    model = TeacherNetwork(classes, folder)
    model.load_state_dict(state)
    return model


TRAIN_PROGRESS_TEXTS = 10_000  # training texts between progress lines while fine-tuning (a backward pass each)


def fine_tune(
    pieces: dict[str, targets.Pieces],
    y: dict,
    d: DistillParams,
    pad: int,
    device: torch.device,
    folder: str | Path,
    resume: dict | None = None,
    save: Callable[[dict], None] | None = None,
) -> tuple[TeacherNetwork, list]:
    """Fine-tune on train, evaluate on val after every epoch, keep the best epoch's weights.

    After every epoch `save` gets the whole state (weights, optimizer, schedule, both random generators, the
    history and the best epoch's weights); from such a `resume` the remaining epochs run as they would have
    without the kill (bit for bit on a CPU), and with none left the best epoch's weights come straight back.
    """
    model = TeacherNetwork(int(max(y["train"].max(), y["val"].max())) + 1, folder).to(device)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=d.teacher_lr)
    rng = np.random.default_rng(d.seed)
    lengths = pieces["train"].lengths
    total = d.teacher_epochs * int(np.ceil(len(lengths) / d.teacher_batch_size))
    warmup = max(1, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    labels = torch.tensor(y["train"], device=device)
    history, best, best_state, done = [], -1.0, None, 0
    if resume is not None:
        if resume["epoch"] < d.teacher_epochs:  # mid-fine-tuning; after it (while labelling) the best epoch is enough
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
            schedule.load_state_dict(resume["schedule"])
            rng.bit_generator.state = resume["numpy_rng"]
            torch.set_rng_state(resume["torch_rng"])
        history, best, best_state, done = resume["history"], resume["best"], resume["best_state"], resume["epoch"]
        print(f"teacher: resumed after epoch {done}/{d.teacher_epochs} from its checkpoint", flush=True)
    for epoch in range(done + 1, d.teacher_epochs + 1):
        model.train()
        start, seen, shown = time.perf_counter(), 0, 0
        for index in bucketed_batches(lengths, d.teacher_batch_size, True, rng):
            batch = _padded([pieces["train"][i] for i in index], pad, device)
            # The pieces' pages this step mapped go back at once, as the student's ids do (objective.py): random
            # batches would otherwise map the whole pieces file, in large folios, into this process.
            release(pieces["train"].flat)
            loss = nn.functional.cross_entropy(model(*batch), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            seen += len(index)
            if seen >= shown + TRAIN_PROGRESS_TEXTS:  # a long epoch on a CPU says how far it is and how fast it goes
                shown = seen
                rate = seen / (time.perf_counter() - start)
                print(
                    f"teacher: epoch {epoch}/{d.teacher_epochs}: {seen:,} of {len(lengths):,} training texts, "
                    f"{rate:.0f} texts/s (about {(len(lengths) - seen) / rate / 60:.0f} min left in the epoch)",
                    flush=True,
                )
        accuracy = {
            s: float((teacher_logits(model, pieces[s], pad, device).argmax(1) == y[s]).mean()) for s in ("val", "test")
        }
        history.append(
            {
                "epoch": epoch,
                "val_accuracy": accuracy["val"],
                "test_accuracy": accuracy["test"],
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(
            f"teacher: epoch {epoch}/{d.teacher_epochs}: val accuracy {accuracy['val']:.4f} "
            f"({history[-1]['seconds']}s)",
            flush=True,
        )
        if accuracy["val"] > best:
            best, best_state = accuracy["val"], {k: v.detach().clone() for k, v in model.state_dict().items()}
        if save is not None:
            save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "numpy_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "best": best,
                    "best_state": best_state,
                }
            )
    model.load_state_dict(best_state)
    return model, history
