"""Stage evaluate: choose how the model is served (on validation data), then score exactly that artifact.

On validation data only: vectors for unseen words from their subwords, or <unk>,
whichever does better (within the tolerance, subwords); int8 quantization when it
moves accuracy by at most the tolerance, the temperature that calibrates probabilities, the C of the
TF-IDF baseline, and the weight the served probabilities give that baseline (blend.py; 0: the network
alone). The blend's validation figure is in-sample, as the baseline's is (its C was chosen there too);
metrics.json also gives it cross-fitted (each half of val at the weight the other half chose).
The served predictor (models/classifier/served.pt, what
register logs) then scores val and test from raw text, unseen words and all;
test figures are reported, never chosen on. Also: per-source metrics, curves,
confident errors with explanations, the behavioural suite, and a paired test
against the baseline. Attaches to the MLflow run that train opened.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from sentipipe import stats, tracking
from sentipipe.data.paths import prepared
from sentipipe.errors import SentipipeError
from sentipipe.io import atomic_write, require, write_csv, write_json
from sentipipe.tasks.classifier import behaviour, blend, explain, reference
from sentipipe.tasks.classifier import evaluation as ev
from sentipipe.tasks.classifier.baseline import figure
from sentipipe.tasks.classifier.calibration import fit_temperature
from sentipipe.tasks.classifier.figures import save_figures
from sentipipe.tasks.classifier.params import ClassifierConfig, EvaluateParams, TokenizeParams
from sentipipe.tasks.classifier.paths import (
    BEHAVIOUR_FAILURES,
    CALIBRATION,
    CONFUSION,
    ERRORS,
    EXPLANATIONS,
    METRICS,
    MODEL,
    OPEN_VOCABULARY,
    PR,
    ROC,
    SERVED,
    TRAIN_REPORT,
)
from sentipipe.tasks.classifier.predictor import OpenVocabulary, Predictor
from sentipipe.tasks.classifier.reference import tuning_metric

HEADLINE = ("accuracy", "macro_f1", "roc_auc", "log_loss", "ece")
CALIBRATION_METRICS = ("ece", "brier", "log_loss")
BASELINE_NAME = "TF-IDF word+char logistic regression"


def _labels(frame: pd.DataFrame, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return frame["label"].map(index).to_numpy(dtype=np.int64)


def validation_behaviour(model: Predictor) -> float:
    """Pass rate over the behaviour cases a choice may look at: the validation templates and the other-syntax
    validation cases (never the suite's test cases nor the held-out part)."""
    cases = behaviour.cases(behaviour.VALIDATION) + behaviour.other_syntax("validation")
    return behaviour.run(model.predict_proba, model.labels, cases)[0]["overall"]


def choose_serving(
    model: Predictor, e: EvaluateParams, val_texts: list[str], val_y: np.ndarray, table: OpenVocabulary | None = None
) -> tuple[Predictor, dict]:
    """Unseen-word vectors (the open vocabulary, spelling), quantization and temperature, decided on validation data;
    what was measured."""

    def accuracy_of(logits: np.ndarray) -> float:
        return float((logits.argmax(1) == val_y).mean())

    decision: dict = {"unseen_words": {"mode": e.unseen_words}}
    modes = (True, False) if e.unseen_words == "auto" else (e.unseen_words == "subwords",)
    fp32 = {sw: model.serving(1.0, False, sw).logits(val_texts, e.batch_size) for sw in modes}
    if e.unseen_words == "auto":  # subword vectors help typos, but can move a model's answers: val decides
        accuracy = {sw: accuracy_of(x) for sw, x in fp32.items()}
        subwords = accuracy[True] >= accuracy[False] - e.quantize_tolerance
        decision["unseen_words"].update(val_accuracy_subwords=accuracy[True], val_accuracy_unk=accuracy[False])
        if not subwords and e.behaviour and behaviour.applicable(model.labels):
            # Val accuracy counts the typos a corpus happens to hold; the validation behaviour cases (typos,
            # unseen words in other syntax) count robustness. Subwords stay when they gain more there than
            # they cost in val accuracy (both fractions of their own cases).
            rates = {sw: validation_behaviour(model.serving(1.0, False, sw)) for sw in modes}
            decision["unseen_words"].update(val_behaviour_subwords=rates[True], val_behaviour_unk=rates[False])
            subwords = rates[True] - rates[False] > accuracy[False] - accuracy[True]
    else:
        (subwords,) = modes
    decision["unseen_words"]["chosen"] = "subwords" if subwords else "unk"
    # the open vocabulary: the embed stage's pretrained vectors of words the corpus lacks, read before spelling
    opened = {"mode": e.open_vocabulary, "words": len(table) if table is not None else 0, "chosen": False}
    base = fp32[subwords]
    if table is not None and len(table) and e.open_vocabulary != "off":
        with_table = model.serving(1.0, False, subwords, open_vocabulary=table).logits(val_texts, e.batch_size)
        accuracy = {True: accuracy_of(with_table), False: accuracy_of(base)}
        opened.update(val_accuracy_with=accuracy[True], val_accuracy_without=accuracy[False])
        opened["chosen"] = e.open_vocabulary == "on" or accuracy[True] >= accuracy[False] - e.quantize_tolerance
        if opened["chosen"]:
            base = with_table
    decision["open_vocabulary"] = opened
    plain = model.serving(1.0, False, subwords, open_vocabulary=table if opened["chosen"] else False)
    logits = {False: base}
    decision.update(mode=e.quantize, tolerance=e.quantize_tolerance)
    if e.quantize != "off":
        logits[True] = plain.serving(1.0, True, subwords).logits(val_texts, e.batch_size)
        accuracy = {q: accuracy_of(x) for q, x in logits.items()}
        change = accuracy[True] - accuracy[False]
        decision.update(val_accuracy_fp32=accuracy[False], val_accuracy_int8=accuracy[True], val_change=change)
        quantized = e.quantize == "on" or abs(change) <= e.quantize_tolerance
    else:
        quantized = False
    decision["int8"] = quantized
    temperature = fit_temperature(logits[quantized], val_y) if e.calibrate else 1.0
    return plain.serving(temperature, quantized, subwords), decision


def choose_blend(
    served: Predictor, ref: blend.LinearReference, e: EvaluateParams, texts: dict, y: dict, metric: str
) -> tuple[Predictor, dict, dict[str, np.ndarray]]:
    """The reference's weight in the served probabilities, chosen on validation `metric` (a tie keeps the smaller:
    0 serves the network alone); the report, with the choice cross-fitted on halves of val; and the reference's
    probabilities of val and test when it is served (computed once: they are what the served file computes)."""
    network = served.predict_proba(texts["val"], e.batch_size)
    referenced = {"val": ref.predict_proba(texts["val"])}
    figures = blend.by_weight(network, referenced["val"], y["val"], metric)
    weight = blend.best_weight(figures)
    crossfit, halves = blend.crossfit(network, referenced["val"], y["val"], metric)
    report = {
        "mode": e.blend,
        "weight": weight,
        "tuned_on": f"val_{metric}",
        "val_by_weight": {f"{w:g}": v for w, v in figures.items()},
        "val": figures[weight],
        "val_crossfit": figure(metric, y["val"], crossfit),
        "crossfit_weights": halves,
    }
    if weight == 0:
        return served, report, {}
    referenced["test"] = ref.predict_proba(texts["test"])
    return served.blended(ref, weight), report, referenced


def read_length(tokenize: TokenizeParams, trained: int) -> tuple[int, str]:
    """How many tokens the served model reads: training cut texts for batch cost, serving need not.

    With `max_length: auto` training keeps the training texts' percentile (46 tokens of a movie-review
    sentence), which would cut the verdict out of the middle of a paragraph; the served model reads up to
    `length_cap` instead. A max_length set in params holds for both.
    """
    if tokenize.max_length == "auto" and tokenize.length_cap > trained:
        return tokenize.length_cap, f"length_cap {tokenize.length_cap} (training cut texts at {trained})"
    return trained, f"the training length {trained}"


def evaluate(params: ClassifierConfig) -> dict:
    e = params.classifier.evaluate
    require(MODEL, *(prepared(s) for s in ("train", "val", "test")))
    if e.baseline:  # first, in a process of its own (the stage script fits it before torch is imported)
        tuned_on = tuning_metric(params.classifier.register.metric)
        chosen, base, arrays = reference.fitted(e, tuned_on)
    trained = Predictor.load(MODEL)
    length, length_rule = read_length(params.classifier.tokenize, trained.tokenizer.max_length)
    trained = trained.serving(1.0, False, trained.subwords, max_length=length)  # as trained, reading up to length
    classes = trained.labels
    if e.baseline and chosen["classes"] != list(classes):
        raise SentipipeError(f"the baseline's classes {chosen['classes']} are not the model's {classes}: rerun train")
    frames = {s: pd.read_parquet(prepared(s)) for s in ("val", "test")}  # train: only the baseline reads it
    texts = {s: f["text"].astype(str).tolist() for s, f in frames.items()}
    y = {s: _labels(f, classes) for s, f in frames.items()}
    table = OpenVocabulary.read(OPEN_VOCABULARY) if OPEN_VOCABULARY.is_file() else None
    served, quantization = choose_serving(trained, e, texts["val"], y["val"], table)
    mixed: dict = {"mode": e.blend, "weight": 0.0}
    referenced: dict[str, np.ndarray] = {}  # the served reference's probabilities, when one is served
    if e.blend != "off" and e.baseline:
        served, mixed, referenced = choose_blend(served, blend.LinearReference.read(arrays), e, texts, y, tuned_on)
    served.save(SERVED)

    def as_served(network_probs: np.ndarray, split: str) -> np.ndarray:  # Predictor.combine, the reference reused
        return blend.mix(network_probs, referenced[split], served.blend) if referenced else network_probs

    metrics: dict = {}
    probs, before = {}, {}
    for split in ("val", "test"):
        logits = served.logits(texts[split], e.batch_size)
        alone = served.probabilities(logits)
        probs[split] = as_served(alone, split)
        if referenced:  # reported, not chosen on: what the blend changed
            figures = ev.classification_metrics(y[split], alone, classes)
            mixed.setdefault("network_alone", {})[split] = {k: figures[k] for k in ("accuracy", "macro_f1")}
        before[split] = as_served(served.serving(1.0, served.quantized, served.subwords).probabilities(logits), split)
        metrics[split] = ev.classification_metrics(y[split], probs[split], classes)
    if e.quantize != "off":  # reported, not chosen on: the test accuracy of both forms
        other = served.serving(served.temperature, not served.quantized, served.subwords)
        other_probs = as_served(other.probabilities(other.logits(texts["test"], e.batch_size)), "test")
        accuracy = {
            served.quantized: metrics["test"]["accuracy"],
            other.quantized: float((other_probs.argmax(1) == y["test"]).mean()),
        }
        quantization.update(test_accuracy_fp32=accuracy[False], test_accuracy_int8=accuracy[True])
    metrics["serving"] = {
        "int8": served.quantized,
        "temperature": served.temperature,
        "unseen_words": "subwords" if served.subwords else "unk",
        "max_length": length,
        "max_length_rule": length_rule,
    }
    metrics["unseen_words"] = quantization.pop("unseen_words")
    metrics["open_vocabulary"] = quantization.pop("open_vocabulary")
    metrics["serving"]["open_vocabulary"] = len(served.open_vocabulary) if served.open_vocabulary else 0
    metrics["quantization"] = quantization
    metrics["blend"] = mixed
    metrics["serving"]["blend"] = served.blend
    metrics["calibration"] = {"temperature": served.temperature}
    for split in ("val", "test"):
        uncalibrated = ev.classification_metrics(y[split], before[split], classes)
        metrics["calibration"][split] = {
            "before": {k: uncalibrated[k] for k in CALIBRATION_METRICS},
            "after": {k: metrics[split][k] for k in CALIBRATION_METRICS},
        }
    metrics["test_by_source"] = ev.grouped_metrics(
        y["test"], probs["test"], classes, frames["test"]["source"].astype(str)
    )
    if e.baseline:
        metrics["baseline"] = {
            "name": BASELINE_NAME,
            "C": chosen["C"],
            "class_weight": chosen["class_weight"],
            "tuned_on": f"val_{tuned_on}",
            "features": chosen["features"],
            "sample": chosen["sample"],
            f"val_{tuned_on}_by_candidate": chosen["val_by_candidate"],
            **{s: ev.classification_metrics(y[s], base[s], classes) for s in ("val", "test")},
        }
        paired = stats.mcnemar(probs["test"].argmax(1) == y["test"], base["test"].argmax(1) == y["test"])
        metrics["versus_baseline"] = {
            "test_accuracy_difference": metrics["test"]["accuracy"] - metrics["baseline"]["test"]["accuracy"],
            "test_mcnemar": paired,
        }
    failures = None
    if e.behaviour and behaviour.applicable(classes):
        metrics["behaviour"], failures = behaviour.run(served.predict_proba, classes)
        # the same templates with words of their own: what a gate or a choice of params may look at
        metrics["behaviour_validation"], _ = behaviour.run(served.predict_proba, classes, behaviour.VALIDATION)
        # cases in syntax the templates do not use (verbs, idioms, double negation, other domains): a part to
        # choose on, and a held-out part that no choice looked at
        for part, key in (("validation", "behaviour_other_syntax"), ("held_out", "behaviour_other_syntax_held_out")):
            metrics[key], _ = behaviour.run(served.predict_proba, classes, behaviour.other_syntax(part))

    curves = ev.curve_rows(y["test"], probs["test"], classes)
    reliability = ev.reliability_rows(y["test"], before["test"], probs["test"])
    write_csv(CONFUSION, ev.confusion_rows(y["test"], probs["test"], classes))
    for path, rows in ((ROC, curves["roc"]), (PR, curves["pr"]), (CALIBRATION, reliability)):
        write_csv(path, rows)  # a test split with one class has no curve; DVC still needs the declared file
    errors = ev.confident_errors(texts["test"], y["test"], probs["test"], classes)
    atomic_write(ERRORS, lambda tmp: errors.to_csv(tmp, index=False))
    frame = failures if failures is not None else pd.DataFrame(columns=["capability", "text", "expected", "predicted"])
    atomic_write(BEHAVIOUR_FAILURES, lambda tmp: frame.to_csv(tmp, index=False))
    explained = errors.head(e.explain_errors)
    items = [
        {"explanation": x, "label": label}
        for x, label in zip(explain.explain(served, explained["text"].tolist()), explained["label"], strict=True)
    ]
    atomic_write(EXPLANATIONS, lambda tmp: tmp.write_text(explain.html_page("The most confident test errors", items)))
    write_json(METRICS, metrics)
    _log(params, metrics, curves, reliability, ev.confusion(y["test"], probs["test"], classes), classes)
    _print(metrics)
    return metrics


def _log(params: ClassifierConfig, metrics: dict, curves: dict, reliability: list, confusion, classes) -> None:
    with tracking.attach_run(params.tracking, params.classifier.experiment, TRAIN_REPORT):
        flat = {f"{split}_{k}": v for split in ("val", "test") for k, v in metrics[split].items()}
        for source, values in metrics["test_by_source"].items():
            flat.update({f"test_{source}_{k}": v for k, v in values.items() if k in ("accuracy", "macro_f1")})
        for split in ("val", "test"):
            flat.update({f"{split}_{k}_uncalibrated": v for k, v in metrics["calibration"][split]["before"].items()})
        flat["temperature"] = metrics["calibration"]["temperature"]
        flat["served_int8"] = float(metrics["serving"]["int8"])
        flat["served_subwords"] = float(metrics["serving"]["unseen_words"] == "subwords")
        flat["served_open_vocabulary"] = float(metrics["serving"].get("open_vocabulary", 0))
        flat["served_blend_weight"] = float(metrics["serving"].get("blend", 0.0))
        if "val_crossfit" in metrics.get("blend", {}):
            flat["blend_val_crossfit"] = metrics["blend"]["val_crossfit"]
        if "baseline" in metrics:
            for split in ("val", "test"):
                flat.update({f"baseline_{split}_{k}": metrics["baseline"][split][k] for k in ("accuracy", "macro_f1")})
            flat["test_mcnemar_p_vs_baseline"] = metrics["versus_baseline"]["test_mcnemar"]["p_value"]
        flat.update({f"behaviour_{k}": v for k, v in metrics.get("behaviour", {}).items()})
        flat.update({f"behaviour_val_{k}": v for k, v in metrics.get("behaviour_validation", {}).items()})
        flat.update({f"behaviour_other_{k}": v for k, v in metrics.get("behaviour_other_syntax", {}).items()})
        flat.update(
            {f"behaviour_other_held_{k}": v for k, v in metrics.get("behaviour_other_syntax_held_out", {}).items()}
        )
        mlflow.log_metrics({k: float(v) for k, v in flat.items() if v is not None})
        for path in (METRICS, EXPLANATIONS):
            mlflow.log_artifact(str(path))
        mlflow.log_artifact(str(ERRORS), artifact_path="errors")
        mlflow.log_artifact(str(BEHAVIOUR_FAILURES), artifact_path="behaviour")
        with tempfile.TemporaryDirectory() as tmp:
            for path in save_figures(curves, reliability, confusion, classes, Path(tmp)):
                mlflow.log_artifact(str(path), artifact_path="plots")


def _print(metrics: dict) -> None:
    print(
        "evaluate: "
        + "; ".join(f"{s} " + ", ".join(f"{k} {metrics[s][k]:.4f}" for k in HEADLINE) for s in ("val", "test"))
    )
    q, cal = metrics["quantization"], metrics["calibration"]
    served = "int8" if q["int8"] else "fp32"
    change = f" (int8 moved val accuracy by {q['val_change']:+.4f})" if "val_change" in q else ""
    unseen = metrics["unseen_words"]
    measured = (
        f" (val accuracy {unseen['val_accuracy_subwords']:.4f} with, {unseen['val_accuracy_unk']:.4f} without)"
        if "val_accuracy_unk" in unseen
        else ""
    )
    opened = metrics.get("open_vocabulary", {})
    if opened.get("words"):
        measured += f"; open vocabulary of {opened['words']} words {'on' if opened['chosen'] else 'off'}" + (
            f" (val accuracy {opened['val_accuracy_with']:.4f} with, {opened['val_accuracy_without']:.4f} without)"
            if "val_accuracy_with" in opened
            else ""
        )
    print(
        f"evaluate: served {served}{change}, unseen words as {unseen['chosen']}{measured}, "
        f"temperature {cal['temperature']:.3f} "
        f"(test ECE {cal['test']['before']['ece']:.4f} -> {cal['test']['after']['ece']:.4f})"
    )
    mixed = metrics.get("blend", {})
    if "val_by_weight" in mixed:
        print(
            f"evaluate: blended with the TF-IDF reference at weight {mixed['weight']:g} "
            f"(chosen on {mixed['tuned_on']}: "
            f"{mixed['val_by_weight']['0']:.4f} at 0, {mixed['val']:.4f} at the weight; cross-fitted on halves of val "
            f"{mixed['val_crossfit']:.4f})"
        )
    if "baseline" in metrics:
        b, versus = metrics["baseline"], metrics["versus_baseline"]
        print(
            f"evaluate: {b['name']} (C={b['C']:g}, class weights {b['class_weight']}, tuned on {b['tuned_on']}): "
            f"val accuracy {b['val']['accuracy']:.4f}, "
            f"test {b['test']['accuracy']:.4f}; McNemar p = {versus['test_mcnemar']['p_value']:.3g} on test"
        )
    if "behaviour" in metrics:
        for key, name in (
            ("behaviour", "behavioural suite"),
            ("behaviour_validation", "validation suite"),
            ("behaviour_other_syntax", "other syntax (validation)"),
            ("behaviour_other_syntax_held_out", "other syntax (held out)"),
        ):
            rates = ", ".join(f"{k} {v:.2f}" for k, v in metrics[key].items())
            print(f"evaluate: {name} pass rates: {rates}")
