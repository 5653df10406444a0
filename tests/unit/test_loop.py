"""The training loop's promises that need no corpus: no host reads per step, the autocast choice, devices."""

from __future__ import annotations

import copy
import os
import sys

import numpy as np
import pytest
import torch

from sentipipe.tasks.classifier.network import ClassifierSpec, build_model
from sentipipe.tasks.classifier.objective import Classification
from sentipipe.tasks.classifier.params import TrainParams
from sentipipe.text.encoding import EncodedSplit
from sentipipe.training.device import CUDNN_BF16_RNN, choose_amp_dtype, set_deterministic, to_device
from sentipipe.training.loop import fit


def _split(n: int, seed: int) -> EncodedSplit:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 9, size=n)
    ids = rng.integers(2, 30, size=int(lengths.sum())).astype(np.int32)
    return EncodedSplit(ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), rng.integers(0, 2, size=n))


def _reads_during_fit(
    monkeypatch, max_steps: int, eval_every: int, rows: int = 704, ema_decay: float = 0.0
) -> tuple[int, int]:
    """How many times the project's code read a tensor's value into Python during one fit, and the evaluations.

    Reads inside PyTorch itself are not counted: AdamW keeps its step counters on the CPU (not capturable)
    and reads them there, which never waits for a GPU.
    """
    reads = {"n": 0}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            reads["n"] += f"{os.sep}sentipipe{os.sep}" in sys._getframe(1).f_code.co_filename
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    torch.manual_seed(0)
    model = build_model(ClassifierSpec(vocab_size=30, embed_dim=8, num_classes=2, hidden_size=8))
    objective = Classification(_split(rows, 0), _split(16, 1), batch_size=8, num_classes=2)
    params = TrainParams(max_steps=max_steps, eval_every=eval_every, patience=0, threads=1, ema_decay=ema_decay)
    result = fit(model, objective, params, torch.device("cpu"))
    monkeypatch.undo()
    return reads["n"], len(result.history)


def test_a_corpus_shorter_than_the_interval_is_evaluated_every_epoch():
    """eval_every 50 on 8 batches an epoch: an evaluation each 8 steps, so patience counts passes over it."""
    torch.manual_seed(0)
    model = build_model(ClassifierSpec(vocab_size=30, embed_dim=8, num_classes=2, hidden_size=8))
    objective = Classification(_split(64, 0), _split(16, 1), batch_size=8, num_classes=2)
    result = fit(model, objective, TrainParams(max_steps=40, eval_every=50, patience=0, threads=1), torch.device("cpu"))
    assert result.eval_every == 8
    assert [h.step for h in result.history] == [8, 16, 24, 32, 40]
    assert [h.epoch for h in result.history] == [1.0, 2.0, 3.0, 4.0, 5.0]
    long = fit(
        model,
        Classification(_split(704, 0), _split(16, 1), batch_size=8, num_classes=2),
        TrainParams(max_steps=100, eval_every=50, patience=0, threads=1),
        torch.device("cpu"),
    )
    assert long.eval_every == 50 and [h.step for h in long.history] == [50, 100]


def test_the_budget_follows_the_data_in_passes_capped_by_steps():
    """max_epochs passes over each corpus: 3 passes of 8 batches is 24 steps, of 88 batches 264, capped at 100."""
    torch.manual_seed(0)
    model = build_model(ClassifierSpec(vocab_size=30, embed_dim=8, num_classes=2, hidden_size=8))
    params = TrainParams(max_epochs=3, max_steps=100, eval_every=50, patience=0, threads=1)
    small = fit(model, Classification(_split(64, 0), _split(16, 1), 8, 2), params, torch.device("cpu"))
    assert (small.steps_per_epoch, small.budget, small.steps, small.stop_reason) == (8, 24, 24, "max_epochs")
    assert [h.epoch for h in small.history] == [1.0, 2.0, 3.0]
    large = fit(model, Classification(_split(704, 0), _split(16, 1), 8, 2), params, torch.device("cpu"))
    assert (large.steps_per_epoch, large.budget, large.steps, large.stop_reason) == (88, 100, 100, "max_steps")


def test_evaluations_per_pass_are_capped_so_patience_counts_a_share_of_the_data():
    """eval_every 10 on 88 batches a pass, at most 4 evaluations a pass: every 22 steps; a small corpus keeps 10."""
    torch.manual_seed(0)
    model = build_model(ClassifierSpec(vocab_size=30, embed_dim=8, num_classes=2, hidden_size=8))
    params = TrainParams(max_steps=44, eval_every=10, evals_per_pass=4, patience=0, threads=1)
    large = fit(model, Classification(_split(704, 0), _split(16, 1), 8, 2), params, torch.device("cpu"))
    assert large.eval_every == 22 and [h.step for h in large.history] == [22, 44]
    small = fit(model, Classification(_split(160, 0), _split(16, 1), 8, 2), params, torch.device("cpu"))
    assert small.eval_every == 10


def test_val_macro_recall_can_pick_the_best_evaluation():
    """The classifier's validation reports recall averaged over classes, and the loop can monitor it."""
    torch.manual_seed(0)
    model = build_model(ClassifierSpec(vocab_size=30, embed_dim=8, num_classes=2, hidden_size=8))
    params = TrainParams(max_steps=40, eval_every=10, patience=0, threads=1, monitor="val_macro_recall")
    result = fit(model, Classification(_split(704, 0), _split(64, 1), 8, 2), params, torch.device("cpu"))
    recalls = [h.extra["val_macro_recall"] for h in result.history]
    assert result.best.extra["val_macro_recall"] == max(recalls) and all(0 <= r <= 1 for r in recalls)


def test_a_distilled_student_with_balanced_weights_counts_only_its_labelled_rows():
    """SemEval's distill set (macro recall monitored: class weights balanced) stopped at train: the variants'
    label -1 reached np.bincount. The weights come from the labelled rows; every row still trains."""
    torch.manual_seed(0)
    train = _split(96, 0)
    labels = np.array([0] * 24 + [1] * 8 + [-1] * 64)  # 32 labelled rows, 3 to 1, and 64 variants
    train = EncodedSplit(train.ids, train.offsets, labels)
    soft = np.random.default_rng(2).normal(size=(96, 2))
    objective = Classification(train, _split(16, 1), 8, 2, weights="balanced", soft_targets=soft)
    assert objective.weights.tolist() == pytest.approx([32 / (2 * 24), 32 / (2 * 8)])
    model = build_model(ClassifierSpec(vocab_size=30, embed_dim=8, num_classes=2, hidden_size=8))
    result = fit(model, objective, TrainParams(max_steps=12, eval_every=12, patience=0, threads=1), torch.device("cpu"))
    assert result.steps == 12 and np.isfinite(result.history[-1].val_loss)


@pytest.mark.parametrize("ema_decay", [0.0, 0.99])
def test_no_training_step_reads_from_the_device(monkeypatch, ema_decay):
    """Reads happen once per evaluation, however many steps run between two evaluations (a GPU never waits)."""
    few, evaluations = _reads_during_fit(monkeypatch, max_steps=40, eval_every=20, ema_decay=ema_decay)
    many, same_evaluations = _reads_during_fit(monkeypatch, max_steps=160, eval_every=80, ema_decay=ema_decay)
    assert evaluations == same_evaluations == 2
    assert few == many, f"{few} reads for 40 steps but {many} for 160: something reads every step"
    assert many / evaluations <= 8, f"{many / evaluations} reads per evaluation"


class _Recording(Classification):
    """Records the weights each step trains from: the live trajectory, to average by hand."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[list[torch.Tensor]] = []

    def step(self, model, batch, device):
        self.seen.append([p.detach().clone() for p in model.parameters()])
        return super().step(model, batch, device)


def _ema_run(ema_decay: float, max_steps: int = 24, **kwargs):
    torch.manual_seed(0)
    model = build_model(ClassifierSpec(vocab_size=30, embed_dim=8, num_classes=2, hidden_size=8, dropout=0.0))
    objective = _Recording(_split(704, 0), _split(64, 1), batch_size=8, num_classes=2)
    params = TrainParams(max_steps=max_steps, eval_every=12, patience=0, threads=1, ema_decay=ema_decay)
    return model, objective, fit(model, objective, params, torch.device("cpu"), **kwargs)


def test_the_moving_average_is_what_is_evaluated_and_kept_while_training_follows_the_live_weights():
    _, plain, plain_result = _ema_run(0.0)
    model, recorded, result = _ema_run(0.9)
    # training is undisturbed: the same live weights at every step, the same training loss
    assert all(torch.equal(a, b) for x, y in zip(plain.seen, recorded.seen) for a, b in zip(x, y))
    assert [h.train_loss for h in result.history] == [h.train_loss for h in plain_result.history]
    # the kept weights are the average of the live ones, computed here by hand with the same warm-up
    names = [n for n, _ in model.named_parameters()]
    trajectory = [*recorded.seen[1:], [p.detach() for p in model.parameters()]]  # the weights after each step
    average = [w.clone() for w in recorded.seen[0]]
    for n, weights in enumerate(trajectory[: result.best.step]):
        decay = min(0.9, (1 + n) / (10 + n))
        average = [a + (1 - decay) * (w - a) for a, w in zip(average, weights)]
    for name, expected in zip(names, average):
        assert torch.allclose(result.best_state[name], expected, atol=1e-6), name
    live = dict(model.named_parameters())
    assert any(not torch.allclose(result.best_state[n], live[n]) for n in names), "the model trains on, live"
    assert [h.val_loss for h in result.history] != [h.val_loss for h in plain_result.history], "the average is scored"


def test_a_run_with_a_moving_average_resumes_exactly():
    saved: list[dict] = []
    _, _, straight = _ema_run(0.9, max_steps=36, save_checkpoint=lambda state: saved.append(copy.deepcopy(state)))
    first = saved[0]
    assert first["step"] == 12 and first["average"]["updates"] == 12
    torch.manual_seed(123)  # the resumed run restores every random state it needs from the checkpoint
    model = build_model(ClassifierSpec(vocab_size=30, embed_dim=8, num_classes=2, hidden_size=8, dropout=0.0))
    objective = Classification(_split(704, 0), _split(64, 1), batch_size=8, num_classes=2)
    params = TrainParams(max_steps=36, eval_every=12, patience=0, threads=1, ema_decay=0.9)
    resumed = fit(model, objective, params, torch.device("cpu"), resume=first)
    assert [h.val_loss for h in resumed.history] == [h.val_loss for h in straight.history]
    assert resumed.best.step == straight.best.step
    assert all(torch.equal(resumed.best_state[k], straight.best_state[k]) for k in straight.best_state)


@pytest.mark.parametrize(
    "device, enabled, bf16, cudnn, expected",
    [
        ("cpu", True, True, CUDNN_BF16_RNN, None),
        ("cuda", False, True, CUDNN_BF16_RNN, None),
        ("cuda", True, True, CUDNN_BF16_RNN, torch.bfloat16),
        ("cuda", True, True, CUDNN_BF16_RNN - 1, torch.float16),  # cuDNN 9.12 has no bf16 RNN kernels
        ("cuda", True, True, None, torch.float16),  # no cuDNN: the CUDA LSTM cell has no bf16 kernel
        ("cuda", True, False, CUDNN_BF16_RNN, torch.float16),  # a GPU without bf16
    ],
)
def test_the_autocast_dtype_is_one_the_runtime_can_run_recurrent_layers_in(device, enabled, bf16, cudnn, expected):
    assert choose_amp_dtype(device, enabled, bf16, cudnn) == expected


def test_batches_stay_where_they_are_on_the_cpu():
    ids = torch.zeros(2, 3, dtype=torch.long)
    (moved,) = to_device(torch.device("cpu"), ids)
    assert moved is ids, "no copy, no pinning on the CPU"


def test_deterministic_mode_is_switched_on_and_off_and_warns_rather_than_fails():
    try:
        set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
