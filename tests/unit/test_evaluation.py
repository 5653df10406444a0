import tempfile

import numpy as np
import pytest

from sentipipe.tasks.classifier.evaluation import (
    classification_metrics,
    confident_errors,
    curve_rows,
    expected_calibration_error,
    grouped_metrics,
    reliability_rows,
)
from sentipipe.tasks.classifier.objective import confusion_figures

CLASSES = ["negative", "positive"]


def test_perfect_binary_predictions():
    labels = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    m = classification_metrics(labels, probs, CLASSES)
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0
    assert m["precision_positive"] == 1.0 and m["recall_negative"] == 1.0
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.7, 0.6])), rel=1e-6)


def test_multiclass_metrics_are_one_vs_rest():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 2.0 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = classification_metrics(labels, probs, ["a", "b", "c"])
    assert 0.5 < m["roc_auc"] <= 1 and 0.3 < m["pr_auc"] <= 1
    assert {"precision_a", "recall_c"} <= set(m)


def test_calibration_error_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    labels = np.array([0, 0, 0, 1] * 25)
    calibrated = np.tile([0.75, 0.25], (100, 1))
    assert expected_calibration_error(labels, calibrated) == pytest.approx(0.0)
    overconfident = np.tile([0.99, 0.01], (100, 1))
    assert expected_calibration_error(labels, overconfident) == pytest.approx(0.24)


def test_most_confident_errors_come_first_and_right_answers_never_appear():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.4, 0.6], [0.1, 0.9], [0.2, 0.8], [0.7, 0.3]])
    errors = confident_errors(["a", "b", "c", "d"], labels, probs, CLASSES)
    assert errors["text"].tolist() == ["b", "d", "a"]
    assert errors["predicted"].tolist() == ["positive", "negative", "positive"]


def test_groups_and_curves():
    labels = np.array([0, 1, 0, 1, 1, 0])
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55], [0.9, 0.1], [0.2, 0.8]])
    groups = grouped_metrics(labels, probs, CLASSES, ["x", "x", "x", "y", "y", "y"])
    assert groups["x"]["accuracy"] == 1.0 and groups["y"]["rows"] == 3
    curves = curve_rows(labels, probs, CLASSES)
    assert curves["roc"][0]["fpr"] == 0.0 and curves["roc"][-1]["tpr"] == 1.0
    rows = reliability_rows(labels, probs, probs)
    assert sum(r["uncalibrated_count"] for r in rows) == 6 and [r["confidence"] for r in rows][:2] == [0.05, 0.15]
    assert rows[7]["calibrated"] == 0.5, "two predictions near 0.8: one right, one wrong"


def test_the_served_model_reads_up_to_length_cap_when_training_cut_at_a_percentile():
    from sentipipe.tasks.classifier.evaluate import read_length
    from sentipipe.tasks.classifier.params import TokenizeParams

    assert read_length(TokenizeParams(), 46)[0] == 512
    assert read_length(TokenizeParams(length_cap=300), 46)[0] == 300
    assert read_length(TokenizeParams(length_cap=300), 300)[0] == 300  # a long-document corpus: unchanged
    assert read_length(TokenizeParams(max_length=46), 46)[0] == 46  # set in params: holds for serving too


def test_confusion_figures_average_recall_over_the_classes_present():
    # truth x predicted: 8 of class 0 (6 right), 2 of class 1 (1 right), none of class 2
    figures = confusion_figures(np.array([[6, 2, 0], [1, 1, 0], [0, 0, 0]], dtype=float))
    assert figures["accuracy"] == 0.7 and figures["macro_recall"] == (6 / 8 + 1 / 2) / 2
    probs = np.eye(3)[[0] * 6 + [1] * 2 + [0] + [1]]
    metrics = classification_metrics(np.array([0] * 8 + [1] * 2), probs, ["a", "b", "c"])
    assert metrics["macro_recall"] == figures["macro_recall"]


def test_the_baseline_is_tuned_on_the_registry_figure_with_balanced_weights_when_classes_are_imbalanced():
    from sentipipe.tasks.classifier import baseline, reference

    truth, predicted = np.array([0, 0, 0, 0, 1, 1, 2]), np.array([0, 0, 0, 0, 0, 1, 0])
    assert baseline.figure("accuracy", truth, predicted) == 5 / 7
    assert baseline.figure("macro_recall", truth, predicted) == (1 + 0.5 + 0) / 3
    assert reference.tuning_metric("val_macro_recall") == "macro_recall"
    assert reference.tuning_metric("val_log_loss") == "accuracy"
    assert {w for _, w in baseline.grid(np.array([0, 1] * 5))} == {"none"}
    assert {w for _, w in baseline.grid(np.array([0] * 8 + [1] * 2))} == {"none", "balanced"}
    texts = ["good fun", "great film", "lovely", "fine and good", "great", "bad", "awful film", "dull"] * 3
    labels = np.array([1, 1, 1, 1, 1, 0, 0, 0] * 3)
    fitted = baseline.fit(texts, labels, texts[:8], labels[:8], "macro_recall")
    assert fitted.metric == "macro_recall" and len(fitted.val_by_candidate) == 2 * len(baseline.C_GRID)
    assert fitted.predict_proba(["awful"]).argmax() == 0


def test_paired_bootstrap_compares_a_figure_of_two_models_on_the_same_resampled_examples():
    from sentipipe import stats
    from sentipipe.tasks.classifier import baseline

    truth = np.array([0, 1] * 100)
    better = np.where(np.arange(200) % 10 == 0, 1 - truth, truth)  # 90% right
    worse = np.where(np.arange(200) % 4 == 0, 1 - truth, truth)  # 75% right
    recall = lambda t, p: baseline.figure("macro_recall", t, p)  # noqa: E731
    result = stats.paired_bootstrap(truth, better, worse, recall, resamples=500)
    assert result["a"] == baseline.figure("macro_recall", truth, better) and result["difference"] > 0.1
    assert result["difference_interval"][0] > 0 and result["p_value"] < 0.01
    assert result["a_interval"][0] < result["a"] < result["a_interval"][1]
    same = stats.paired_bootstrap(truth, better, better, recall, resamples=200)
    assert same["difference"] == 0 and same["p_value"] == 1.0


def test_every_baseline_candidate_is_the_cold_fit_of_its_c():
    """A warm start from the previous C let L-BFGS stop within its tolerance at once: the grid must not."""
    from sklearn.linear_model import LogisticRegression

    from sentipipe.tasks.classifier import baseline

    rng = np.random.default_rng(0)
    words = ["good", "great", "fine", "bad", "awful", "dull", "film", "plot", "cast", "the"]
    texts = [" ".join(rng.choice(words, 6)) for _ in range(120)]
    labels = np.array([int(sum(w in t for w in words[:3]) >= sum(w in t for w in words[3:6])) for t in texts])
    fitted = baseline.fit(texts[:80], labels[:80], texts[80:], labels[80:])
    x_train, x_val = fitted.features(texts[:80]), fitted.features(texts[80:])
    for c in baseline.C_GRID:
        cold = LogisticRegression(C=c, max_iter=3000).fit(x_train, labels[:80])
        assert fitted.val_by_candidate[f"{c:g}"] == baseline.figure("accuracy", labels[80:], cold.predict(x_val))


def _reviews(path, n, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    good, bad = ["good", "great", "lovely", "fine"], ["bad", "awful", "dull", "poor"]
    labels = rng.integers(0, 2, n)
    texts = [" ".join([*rng.choice(good if y else bad, 3), *rng.choice(["film", "plot", "cast"], 5)]) for y in labels]
    frame = pd.DataFrame({"text": texts, "label": np.where(labels == 1, "positive", "negative")})
    frame.to_parquet(path, row_group_size=64)
    return frame


def test_the_sampled_baseline_reads_a_seeded_sample_within_its_character_cap_and_learns_from_it(tmp_path, monkeypatch):
    from sentipipe.tasks.classifier import baseline

    frame = _reviews(tmp_path / "train.parquet", 600)
    val = _reviews(tmp_path / "val.parquet", 100, seed=1)
    y_val = (val["label"] == "positive").to_numpy().astype(int)
    classes = ["negative", "positive"]
    cap = int(frame["text"].str.len().sum() / 3)
    (tmp_path / "spill").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "spill"))
    # three of the grid's Cs: each candidate is an L-BFGS fit over 2 x 2^20 hashed features (the whole grid of 11
    # made this test 208 s under make test; what it checks is the sample, the spill and the choice among them)
    monkeypatch.setattr(baseline, "C_GRID", (0.5, 8.0, 64.0))
    scored, predict = [], baseline.LogisticRegression.predict
    monkeypatch.setattr(baseline.LogisticRegression, "predict", lambda m, x: scored.append(m.coef_) or predict(m, x))
    fitted = baseline.fit_sampled(tmp_path / "train.parquet", classes, val["text"].tolist(), y_val, max_chars=cap)
    assert scored and all(isinstance(coef, np.memmap) for coef in scored), "validation scores weights read from disk"
    assert fitted.streamed and fitted.sample["of"] == 600
    # the candidates' weights wait on disk for validation; the chosen one comes back in memory, the files go
    assert type(fitted.model.coef_) is np.ndarray and not list((tmp_path / "spill").iterdir())
    assert fitted.sample["characters"] <= cap and 150 < fitted.sample["rows"] < 250
    assert len(fitted.val_by_candidate) in (len(baseline.C_GRID), 2 * len(baseline.C_GRID))
    assert fitted.val_by_candidate[f"{fitted.c:g}"] == max(fitted.val_by_candidate.values()) > 0.95
    again = baseline.fit_sampled(tmp_path / "train.parquet", classes, val["text"].tolist(), y_val, max_chars=cap)
    assert again.sample == fitted.sample and np.array_equal(again.model.coef_, fitted.model.coef_), "seeded"
    whole = baseline.fit_sampled(tmp_path / "train.parquet", classes, val["text"].tolist(), y_val, max_chars=10**9)
    assert whole.sample["rows"] == 600
    assert fitted.predict_proba(["awful dull plot"]).argmax() == 0 and fitted.predict_proba(["lovely film"]).argmax()
    # validation and scoring read from Parquet a chunk at a time: the same choice and the same probabilities
    monkeypatch.setattr(baseline, "CHUNK", 7)
    read = baseline.fit_sampled(tmp_path / "train.parquet", classes, tmp_path / "val.parquet", y_val, max_chars=cap)
    assert read.val_by_candidate == fitted.val_by_candidate and read.c == fitted.c
    assert np.array_equal(read.predict_proba(tmp_path / "val.parquet"), fitted.predict_proba(val["text"].tolist()))


def _prepared_splits(tmp_path, monkeypatch) -> int:
    """Prepared train (300 rows), val and test (60) in tmp_path, the working directory; the training characters."""
    (tmp_path / "data/prepared").mkdir(parents=True)
    frame = _reviews(tmp_path / "data/prepared/train.parquet", 300)
    for split, seed in (("val", 1), ("test", 2)):
        _reviews(tmp_path / f"data/prepared/{split}.parquet", 60, seed=seed)
    monkeypatch.chdir(tmp_path)
    return int(frame["text"].str.len().sum())


def test_the_evaluate_stage_fits_the_baseline_in_a_process_of_its_own_and_streams_it_past_its_threshold(
    tmp_path, monkeypatch
):
    from sentipipe.tasks.classifier import reference
    from sentipipe.tasks.classifier.params import EvaluateParams

    chars = _prepared_splits(tmp_path, monkeypatch)
    exact, probabilities = reference.scores(EvaluateParams(baseline_stream_chars=chars), "accuracy")
    assert exact["features"] == "exact" and exact["sample"] == "all training rows"
    assert exact["classes"] == ["negative", "positive"], "the training labels sorted, as tokenize orders them"
    again = reference.scores(EvaluateParams(baseline_stream_chars=chars), "accuracy")
    assert again[1] is probabilities, "fitted once a process: the stage script fits it before evaluate asks"
    _reviews(tmp_path / "data/prepared/val.parquet", 40, seed=3)  # a split rewritten (a bench's next fold)
    _, rewritten = reference.scores(EvaluateParams(baseline_stream_chars=chars), "accuracy")
    assert rewritten["val"].shape == (40, 2), "fitted again on the files as they are now"
    assert probabilities["val"].shape == probabilities["test"].shape == (60, 2)
    assert exact["val_by_candidate"][f"{exact['C']:g}"] == max(exact["val_by_candidate"].values()) > 0.95
    stream = EvaluateParams(baseline_stream_chars=chars - 1, baseline_sample_chars=chars // 2)
    hashed, probabilities = reference.scores(stream, "accuracy")
    assert hashed["features"] == "hashed" and hashed["sample"]["rows"] < 300
    assert hashed["sample"]["characters"] <= chars // 2 and probabilities["test"].shape == (60, 2)


def test_prefit_starts_a_small_corpus_fit_and_waits_for_a_large_one(tmp_path, monkeypatch):
    """A small corpus's reference is fitted while the stage imports the network's code; past
    baseline_stream_chars of training text prefit waits for it (the stage's peak: one process at a time)."""
    from sentipipe.tasks.classifier import reference
    from sentipipe.tasks.classifier.params import ClassifierConfig

    chars = _prepared_splits(tmp_path, monkeypatch)
    train = tmp_path / "data/prepared/train.parquet"
    assert reference.exact_and_small(train, 10 * chars) and not reference.exact_and_small(train, chars - 1)

    def params(stream_chars: int) -> ClassifierConfig:
        return ClassifierConfig.model_validate({"classifier": {"evaluate": {"baseline_stream_chars": stream_chars}}})

    small = params(10 * chars)
    reference.prefit(small)
    assert len(reference._RUNNING) == 1, "started, not waited for"
    ((process, _),) = reference._RUNNING.values()
    summary, probabilities, _ = reference.fitted(small.classifier.evaluate, "accuracy")
    assert process.returncode == 0 and not reference._RUNNING
    assert summary["features"] == "exact" and probabilities["val"].shape == (60, 2)
    large = params(chars - 1)
    before = len(reference._FITTED)
    reference.prefit(large)
    assert not reference._RUNNING and len(reference._FITTED) == before + 1, "fitted and waited for in prefit"
    assert reference.fitted(large.classifier.evaluate, "accuracy")[0]["features"] == "hashed"


def test_the_evaluate_stage_script_fits_the_reference_before_it_imports_the_network_code():
    """The stage's peak is the larger of its two processes only if the first holds nothing while a large
    corpus's reference process runs: what the script imports before the fit must not pull in torch, sklearn or
    mlflow."""
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import sys; from sentipipe.tasks.classifier import reference; "
        "from sentipipe.runner import run; from sentipipe.tasks.classifier.params import load; "
        "print(sorted(m for m in ('torch', 'sklearn', 'mlflow', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    script = (Path(__file__).resolve().parents[2] / "pipeline/classifier/evaluate.py").read_text()
    assert script.index("run(reference.prefit, load)") < script.index("import evaluate")
