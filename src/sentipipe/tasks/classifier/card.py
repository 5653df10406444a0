"""The classifier's model card: what the registry shows on a version's page, from the files the stages wrote.

`read()` gathers the reports (before a version exists, so a missing file fails the stage, not the card);
`render()` is pure: the same reports and decision give the same markdown. Accuracy gets Wilson's 95%
interval on the split's rows; the other figures are the point values the reports hold.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sentipipe import card
from sentipipe.card import count, number, section, table
from sentipipe.data.paths import INGEST_REPORT, PREPARE_REPORT
from sentipipe.io import read_json, require
from sentipipe.stats import wilson_interval
from sentipipe.tasks.classifier.paths import (
    BEHAVIOUR_FAILURES,
    EMBED_REPORT,
    METRICS,
    TEACHER_REPORT,
    TOKENS_REPORT,
    TRAIN_REPORT,
)

if TYPE_CHECKING:
    from sentipipe.tasks.classifier.params import ClassifierConfig

FILES = (METRICS, TRAIN_REPORT, TOKENS_REPORT, EMBED_REPORT, TEACHER_REPORT, PREPARE_REPORT, BEHAVIOUR_FAILURES)
COLUMNS = ("accuracy", "macro_f1", "macro_recall", "roc_auc", "log_loss", "ece")  # those the metrics file has
FAILURES_SHOWN, PER_CAPABILITY = 10, 2


@dataclass(frozen=True)
class Reports:
    metrics: dict
    train: dict
    tokens: dict
    embeddings: dict
    teacher: dict
    prepare: dict
    failures: list[dict]  # behaviour_failures.csv: capability, text, expected, predicted
    ingest: dict  # empty when the corpus was not ingested by the pipeline (written in place)
    tokenizer: dict  # the served model's tokenizer settings (language, lowercase, truncation, ...)


def read(tokenizer: dict, root: Path = Path(".")) -> Reports:
    require(*(root / f for f in FILES))
    with open(root / BEHAVIOUR_FAILURES, newline="", encoding="utf-8") as fh:
        failures = list(csv.DictReader(fh))
    ingest = read_json(root / INGEST_REPORT) if (root / INGEST_REPORT).is_file() else {}
    return Reports(*(read_json(root / f) for f in FILES[:-1]), failures, ingest, dict(tokenizer))


def interval(accuracy: float, rows: int) -> str:
    low, high = wilson_interval(round(accuracy * rows), rows)
    return f"{low:.3f}–{high:.3f}"


def _figures_table(r: Reports) -> str:
    m, splits = r.metrics, r.prepare["splits"]
    columns = [c for c in COLUMNS if c in m["val"]]
    rows = []
    for name, figures, split in [
        ("this model", m["val"], "val"),
        ("this model", m["test"], "test"),
        *((m["baseline"]["name"], m["baseline"][s], s) for s in ("val", "test") if "baseline" in m),
    ]:
        n = splits[split]["rows"]
        cells = [number(figures[c]) for c in columns]
        rows.append([name, f"{split} ({count(n)} rows)", cells[0], interval(figures["accuracy"], n), *cells[1:]])
    return table(["model", "split", columns[0], "95% interval (Wilson)", *columns[1:]], rows)


def _comparison(r: Reports) -> str:
    m = r.metrics
    if "versus_baseline" not in m:
        return "No reference baseline was fitted (`classifier.evaluate.baseline` is false)."
    b, versus = m["baseline"], m["versus_baseline"]
    mc = versus["test_mcnemar"]
    verdict = "a significant difference" if mc["p_value"] < 0.05 else "no significant difference"
    return (
        f"Against the reference baseline ({b['name']}, C {b['C']:g} tuned on validation): test accuracy "
        f"{versus['test_accuracy_difference']:+.4f}; McNemar's exact test p = {mc['p_value']:.3g} "
        f"({mc['only_a_correct']} test rows only this model got right, {mc['only_b_correct']} only the baseline): "
        f"{verdict} at the 5% level."
    )


def _by_source(r: Reports) -> str:
    groups = r.metrics.get("test_by_source", {})
    if len(groups) < 2:
        return ""
    rows = [[g, count(v["rows"]), number(v["accuracy"]), interval(v["accuracy"], v["rows"])] for g, v in groups.items()]
    return "Test figures by source:\n\n" + table(["source", "rows", "accuracy", "95% interval"], rows)


def _behaviour(r: Reports) -> str:
    m = r.metrics
    if "behaviour" not in m:
        return section("Behaviour", "The behavioural suite did not run (binary positive/negative labels only).")
    validation = m.get("behaviour_validation", {})
    rows = [[k, number(v, 3), number(validation.get(k), 3)] for k, v in m["behaviour"].items()]
    shown, per = [], {}
    for f in r.failures:
        if len(shown) < FAILURES_SHOWN and per.get(f["capability"], 0) < PER_CAPABILITY:
            per[f["capability"]] = per.get(f["capability"], 0) + 1
            shown.append([f["capability"], f["text"], f["expected"], f["predicted"]])
    failures = (
        f"Notable failures ({len(shown)} of {len(r.failures)} on the test suite; "
        "all in reports/classifier/behaviour_failures.csv and the run's artifacts):\n\n"
        + table(["capability", "text", "expected", "predicted"], shown)
        if shown
        else "No failures on the test suite."
    )
    return section(
        "Behaviour",
        "Pass rates on templated cases (negation, contrast, typos, ...). The validation suite uses its own words "
        "and is the one `register.behaviour_floor` gates on; the test suite is reported only.",
        table(["capability", "test suite", "validation suite"], rows),
        failures,
    )


def _calibration(r: Reports) -> str:
    cal = r.metrics["calibration"]
    rows = [
        [s, *(f"{number(cal[s]['before'][k])} → {number(cal[s]['after'][k])}" for k in ("ece", "log_loss", "brier"))]
        for s in ("val", "test")
    ]
    return section(
        "Calibration",
        f"Temperature scaling fitted on validation logits: T = {cal['temperature']:g} (1: unchanged). Before → after:",
        table(["split", "ECE", "log loss", "Brier"], rows),
    )


def _serving(r: Reports, run_tags: dict) -> str:
    m, t, e = r.metrics, r.train, r.embeddings
    s, q, unseen = m["serving"], m.get("quantization", {}), m.get("unseen_words", {})
    int8 = "yes" if s["int8"] else "no"
    if "val_accuracy_fp32" in q:
        int8 += (
            f" (`{q.get('mode')}`: val accuracy {number(q['val_accuracy_fp32'])} fp32, "
            f"{number(q['val_accuracy_int8'])} int8; tolerance {q.get('tolerance')})"
        )
    words = f"`{s['unseen_words']}`"
    if "val_accuracy_unk" in unseen:
        words += (
            f" (`{unseen.get('mode')}`: val accuracy {number(unseen['val_accuracy_subwords'])} with subwords, "
            f"{number(unseen['val_accuracy_unk'])} with <unk>)"
        )
    opened = m.get("open_vocabulary", {})
    if s.get("open_vocabulary"):
        size = count(s["open_vocabulary"])
        words += f"; first, the open vocabulary: pretrained vectors of {size} words the corpus lacks"
        if "val_accuracy_with" in opened:
            words += (
                f" (val accuracy {number(opened['val_accuracy_with'])} with, "
                f"{number(opened['val_accuracy_without'])} without)"
            )
    encoder = r.teacher.get("teacher") or {}
    teacher = (
        f"distilled from a fine-tuned {encoder.get('model', 'encoder')} "
        + (f"({count(encoder['parameters'])} parameters) " if encoder.get("parameters") else "")
        + f"(val accuracy {number(r.teacher.get('val_accuracy'))}, run `{run_tags.get('teacher.run_id', 'unknown')}`)"
        + (f"; the teacher's own training data: {encoder['training_data']}" if encoder.get("training_data") else "")
        if r.teacher.get("enabled")
        else "none (trained on the labels)"
    )
    mixed = m.get("blend", {})
    blend = (
        f"the network's log-probabilities x {1 - mixed['weight']:g} + the TF-IDF reference's x {mixed['weight']:g} "
        f"(the reference travels in the file; weight chosen on {mixed['tuned_on']}: "
        f"{number(mixed['val_by_weight']['0'])} at 0, {number(mixed['val'])} at the weight; "
        f"{number(mixed['val_crossfit'])} with each half of val at the weight the other half chose)"
        if mixed.get("weight")
        else "none: the network alone"
        + (f" (`{mixed['mode']}`: no weight beat 0 on {mixed['tuned_on']})" if mixed.get("tuned_on") else "")
    )
    lines = [
        f"- blended with the TF-IDF reference: {blend}",
        f"- int8 quantized: {int8}",
        f"- words not in the vocabulary of {count(r.tokens['vocabulary'])}: {words}",
        f"- text length: reads up to {s['max_length']} tokens, longer texts keep `{r.tokenizer.get('truncation')}` "
        f"(rule: {s['max_length_rule']})",
        f"- tokenizer: spaCy `{r.tokenizer.get('language')}`, lowercase {r.tokenizer.get('lowercase')}",
        f"- word vectors: {e.get('source')}" + (f" ({e['mode']})" if e.get("source") == "minilm" else "") + f", "
        f"{e.get('dim')} dimensions",
        f"- teacher: {teacher}",
        f"- training: best evaluation at step {t['best_step']} of {t['steps_run']} (epoch {t['best_epoch']:.1f}), "
        f"stopped by `{t['stop_reason']}`, {t['train_seconds']} s on {t['device']}",
    ]
    return section("Serving and training choices", "\n".join(lines))


def _data(r: Reports, params: ClassifierConfig) -> str:
    d, ingest, prepare = params.data, r.ingest, r.prepare
    if ingest.get("source") == "vader":
        origin = f"the VADER corpora {', '.join(ingest.get('corpora', {}))}; {count(ingest['rows_read'])} rows read"
    elif ingest:
        origin = f"the file(s) {ingest.get('path')}; {count(ingest['rows_read'])} rows read"
    else:
        origin = "data/raw/corpus.parquet, written in place (no ingest report)"
    splits = prepare["splits"]
    rows = [
        [s, count(v["rows"]), ", ".join(f"{k} {count(n)}" for k, n in v["labels"].items())] for s, v in splits.items()
    ]
    held = [f"{k} held out: {', '.join(g)}" for k, g in (("validation", d.val_groups), ("test", d.test_groups)) if g]
    dropped = ", ".join(f"{k.replace('_', ' ')} {count(n)}" for k, n in prepare["dropped"].items() if n) or "none"
    return section(
        "Data",
        f"Corpus: {origin}; {count(prepare['rows_in'])} rows labelled, {count(prepare['rows_kept'])} kept after "
        f"cleaning and de-duplication (dropped: {dropped}); split seed {d.seed}"
        + (f"; {'; '.join(held)}" if held else "")
        + ".",
        table(["split", "rows", "labels"], rows),
        "The hashes of the files trained on are under Lineage.",
    )


def _limits(r: Reports, labels: list[str]) -> str:
    m = r.metrics
    sources = sorted(m.get("test_by_source", {})) or ["the corpus"]
    weak = [f"{k} {v:.2f}" for k, v in m.get("behaviour", {}).items() if k != "overall" and v < 0.9]
    test_rows = r.prepare["splits"]["test"]["rows"]
    low, high = wilson_interval(round(m["test"]["accuracy"] * test_rows), test_rows)
    lines = [
        f"- Intended use: labelling texts like its training corpus ({', '.join(sources)}) as one of "
        f"{', '.join(f'`{x}`' for x in labels)}, with calibrated probabilities. No other label is possible.",
        f"- Measured only on held-out rows of that corpus: test accuracy {low:.3f}–{high:.3f} (95%). "
        "Other domains, registers or languages are unmeasured; check a labelled sample first.",
        f"- Language: the tokenizer is spaCy's `{r.tokenizer.get('language')}`; "
        f"{r.tokens['splits']['val']['unknown_rate']:.1%} of validation tokens were not in the vocabulary.",
        f"- Trained on texts cut at {r.tokens['max_length']} tokens ({r.tokens.get('max_length_rule', '')}).",
    ]
    if weak:
        lines.append(f"- Weak behaviour (test-suite pass rate below 0.9): {', '.join(weak)}.")
    if m.get("versus_baseline", {}).get("test_mcnemar", {}).get("p_value", 0.0) >= 0.05:
        lines.append("- On test it is not significantly better than a TF-IDF linear model; that one is cheaper.")
    return section("Intended use and limits", "\n".join(lines))


def render(r: Reports, decision: dict, params: ClassifierConfig, run: dict, labels: list[str]) -> str:
    """The version's model card (markdown). `run`: the training run's tags and params, as MLflow holds them."""
    name, version = decision["name"], decision["version"]
    run_tags, logged = run["tags"], run["params"]
    shape = (
        f"{'bidirectional ' if logged.get('train.bidirectional') == 'True' else ''}{logged.get('train.cell')}, "
        f"{logged.get('train.num_layers')} x {logged.get('train.hidden_size')}, {logged.get('train.pooling')} pooling"
    )
    use = f'sentipipe predict --model-uri models:/{name}/{version} "a text to label"'
    return "\n\n".join(
        [
            f"# {name} version {version}: {decision['decision']}",
            f"A recurrent text classifier ({shape}) that takes raw text and returns one of "
            f"{', '.join(f'`{x}`' for x in labels)} with probabilities. Card written by the register stage from "
            "the pipeline's reports.",
            card.decision_section(decision, use),
            _data(r, params),
            section(
                "Figures",
                "Validation chose the training step, the serving options, the temperature and the baseline's C"
                + (
                    f"; the registry gated on a test figure (`register.metric: {decision['metric']}`), so test is "
                    "no longer untouched and its figures are optimistic."
                    if decision["metric"].startswith("test_")
                    else "; test was used for nothing but these figures."
                ),
                _figures_table(r),
                _comparison(r),
                _by_source(r),
            ),
            _behaviour(r),
            _calibration(r),
            _serving(r, run_tags),
            _limits(r, labels),
            card.lineage_section(run_tags),
        ]
    )


def model_description(params: ClassifierConfig) -> str:
    """The registered model's description: what it is, its aliases and the policy."""
    p = params.classifier.register
    extra = [f"its validation behavioural pass rate reaches `register.behaviour_floor` ({p.behaviour_floor})"]
    return card.model_description(
        p,
        "Recurrent text classifiers trained by sentipipe's default pipeline (`dvc repro`): raw text in, a label "
        "and one probability per label out (tokenizer, vocabulary, network and calibration in one model).",
        ["sentipipe predict", "sentipipe serve"],
        extra if p.behaviour_floor is not None else (),
    )
