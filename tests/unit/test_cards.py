"""Model cards: rendered from the reports and the decision, figures with their intervals, nothing typed by hand."""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest

from sentipipe.card import table
from sentipipe.tasks.classifier import card as classifier_card
from sentipipe.tasks.classifier.params import parse as parse_classifier
from sentipipe.tasks.generator import card as generator_card
from sentipipe.tasks.generator.params import parse as parse_generator
from tests.helpers import REPO

FIGURES = {"accuracy": 0.8, "macro_f1": 0.79, "roc_auc": 0.88, "log_loss": 0.42, "ece": 0.02}
METRICS = {
    "val": dict(FIGURES),
    "test": {**FIGURES, "accuracy": 0.9},
    "serving": {"int8": True, "temperature": 1.2, "unseen_words": "unk", "max_length": 64, "max_length_rule": "r"},
    "quantization": {"mode": "auto", "tolerance": 0.003, "val_accuracy_fp32": 0.799, "val_accuracy_int8": 0.8},
    "unseen_words": {"mode": "auto", "val_accuracy_subwords": 0.79, "val_accuracy_unk": 0.8, "chosen": "unk"},
    "calibration": {
        "temperature": 1.2,
        **{
            s: {
                "before": {"ece": 0.05, "log_loss": 0.5, "brier": 0.3},
                "after": {"ece": 0.02, "log_loss": 0.4, "brier": 0.29},
            }
            for s in ("val", "test")
        },
    },
    "test_by_source": {"movie": {"rows": 100, "accuracy": 0.9}},
    "baseline": {
        "name": "TF-IDF LR",
        "C": 8.0,
        "val": {**FIGURES, "accuracy": 0.75},
        "test": {**FIGURES, "accuracy": 0.85},
    },
    "versus_baseline": {
        "test_accuracy_difference": 0.05,
        "test_mcnemar": {"only_a_correct": 9, "only_b_correct": 1, "p_value": 0.0215},
    },
    "behaviour": {"negation_of_positive": 0.5, "typo": 1.0, "overall": 0.75},
    "behaviour_validation": {"negation_of_positive": 0.6, "typo": 0.95, "overall": 0.8},
}
SPLIT = {"labels": {"negative": 1, "positive": 1}}
REPORTS = classifier_card.Reports(
    metrics=METRICS,
    train={
        "best_step": 300,
        "steps_run": 450,
        "best_epoch": 2.0,
        "stop_reason": "patience",
        "train_seconds": 12.5,
        "device": "cpu",
    },
    tokens={"vocabulary": 5000, "max_length": 40, "max_length_rule": "p99", "splits": {"val": {"unknown_rate": 0.05}}},
    embeddings={"source": "random", "dim": 64},
    teacher={"enabled": False},
    prepare={
        "rows_in": 1300,
        "rows_kept": 1200,
        "dropped": {"duplicate_text": 100, "empty_text": 0},
        "splits": {"train": {"rows": 100, **SPLIT}, "val": {"rows": 1000, **SPLIT}, "test": {"rows": 100, **SPLIT}},
    },
    failures=[
        *(
            {
                "capability": "negation_of_positive",
                "text": f"not good {i}",
                "expected": "negative",
                "predicted": "positive",
            }
            for i in range(5)
        ),
        {"capability": "contrast", "text": "fine | but awful", "expected": "negative", "predicted": "positive"},
    ],
    ingest={"source": "vader", "corpora": {"movie": {}}, "rows_read": 1400, "rows_kept": 1300},
    tokenizer={"language": "en", "lowercase": True, "truncation": "head+tail"},
)
DECISION = {
    "name": "m",
    "version": 3,
    "metric": "val_accuracy",
    "direction": "maximize",
    "value": 0.8,
    "previous_champion": 2,
    "previous_value": 0.95,
    "comparable": False,
    "validation": "b" * 32,
    "previous_validation": "a" * 32,
    "baseline_value": 0.75,
    "promoted": True,
    "decision": "champion",
    "reason": "the champion was validated on other data; x",
}
RUN = {
    "tags": {
        "git.commit": "c" * 40,
        "git.dirty": "true",
        "git.dirty_files": "params.yaml",
        "device": "cpu",
        "data.md5.data/classifier/tokens/val": "d" * 32,
        "data.validation.md5": "b" * 32,
        "versions.torch": "2.13.0",
    },
    "params": {
        "train.cell": "gru",
        "train.bidirectional": "True",
        "train.num_layers": "1",
        "train.hidden_size": "64",
        "train.pooling": "max",
    },
}


def render(reports=REPORTS, decision=DECISION, raw=None) -> str:
    return classifier_card.render(reports, decision, parse_classifier(raw or {}), RUN, ["negative", "positive"])


def test_accuracy_carries_wilsons_interval_on_the_splits_rows():
    text = render()
    # 800 of 1000 right: (0.8 + z²/2n) / (1 + z²/n) ± ..., z = 1.96 -> 0.7741 .. 0.8236
    assert re.search(r"\| this model \| val \(1,000 rows\) \| 0\.8000 \| 0\.774–0\.824 \| 0\.7900 \|", text)
    assert re.search(r"\| TF-IDF LR \| test \(100 rows\) \| 0\.8500 \| 0\.7\d\d–0\.9\d\d \|", text)
    assert "test accuracy +0.0500; McNemar's exact test p = 0.0215" in text and "a significant difference" in text


def test_the_card_states_the_decision_the_data_and_the_serving_choices():
    text = render()
    assert "Decision: **champion**" in text and "**not compared** with the champion's" in text
    assert "| the champion before it (version 2) | 0.9500 | `aaaaaaaaaaaa` |" in text
    assert "the VADER corpora movie; 1,400 read" not in text and "the VADER corpora movie; 1,400 rows read" in text
    assert "dropped: duplicate text 100)" in text and "empty text" not in text
    assert "int8 quantized: yes (`auto`: val accuracy 0.7990 fp32, 0.8000 int8" in text
    assert "| val | 0.0500 → 0.0200 | 0.5000 → 0.4000 | 0.3000 → 0.2900 |" in text and "T = 1.2" in text
    assert "bidirectional gru, 1 x 64, max pooling" in text
    assert "git commit `" + "c" * 40 + "`, with edits not in the commit: params.yaml" in text
    assert "sentipipe predict --model-uri models:/m/3" in text
    for title in ("Data", "Figures", "Behaviour", "Calibration", "Serving and training choices", "Intended use"):
        assert f"\n## {title}" in text


def test_failures_are_sampled_per_capability_and_table_cells_stay_cells():
    text = render()
    assert text.count("| negation_of_positive | not good") == classifier_card.PER_CAPABILITY
    assert "Notable failures (3 of 6 on the test suite" in text
    assert "| contrast | fine \\| but awful | negative | positive |" in text
    assert "Weak behaviour (test-suite pass rate below 0.9): negation_of_positive 0.50." in text


def test_a_gate_on_test_is_said_to_spoil_the_test_figures():
    assert "test was used for nothing but these figures" in render()
    on_test = render(decision={**DECISION, "metric": "test_accuracy"})
    assert "gated on a test figure (`register.metric: test_accuracy`)" in on_test and "optimistic" in on_test


def test_a_run_without_baseline_or_behaviour_still_renders():
    metrics = {k: v for k, v in copy.deepcopy(METRICS).items() if k not in ("baseline", "versus_baseline", "behaviour")}
    reports = classifier_card.Reports(**{**REPORTS.__dict__, "metrics": metrics, "failures": [], "ingest": {}})
    text = render(reports, {**DECISION, "previous_champion": None, "comparable": True})
    assert "No reference baseline was fitted" in text and "The behavioural suite did not run" in text
    assert "no champion to compare with" in text and "written in place (no ingest report)" in text


def test_the_registered_models_description_explains_aliases_and_the_policy_from_params():
    text = classifier_card.model_description(
        parse_classifier({"classifier": {"register": {"floor": 0.7, "behaviour_floor": 0.9, "min_improvement": 0.01}}})
    )
    assert "`champion`: the version that `sentipipe predict`, `sentipipe serve` and" in text
    assert "--model-uri models:/sentipipe-classifier@challenger" in text
    assert "by more than `register.min_improvement` (0.01)" in text and "`register.floor` (0.7)" in text
    assert "`register.behaviour_floor` (0.9)" in text and "require_gpu" not in text
    assert "validated on other data" in text
    assert "behaviour_floor" not in classifier_card.model_description(parse_classifier({}))


def test_the_card_renders_from_the_reports_the_pipeline_commits():
    """The real files' shapes (reports/ in the repository), not only the fixture's."""
    metrics = pytest.importorskip("json").loads((REPO / "reports/classifier/metrics.json").read_text())
    reports = classifier_card.read({"language": "en", "lowercase": True, "truncation": "head"}, REPO)
    decision = {**DECISION, "value": metrics["val"]["accuracy"], "comparable": True}
    text = render(reports, decision)
    assert (
        f"| this model | val ({reports.prepare['splits']['val']['rows']:,} rows) | {metrics['val']['accuracy']:.4f} |"
        in text
    )


GENERATOR = generator_card.Reports(
    metrics={
        "val": {"bpc": 2.1, "perplexity": 4.4, "accuracy": 0.5, "loss": 1.5},
        "test": {"bpc": 2.2, "perplexity": 4.6, "accuracy": 0.49, "loss": 1.5},
        "baseline": {
            "name": "a 5-gram",
            "order": 5,
            "val": {"bpc": 2.3},
            "test": {"bpc": 2.25},
            "val_bpc_by_order": {"4": 2.4, "5": 2.3},
        },
    },
    train={"best_step": 400, "steps_run": 800, "stop_reason": "patience", "train_seconds": 60.0, "device": "cpu"},
    tokens={
        "unit": "char",
        "vocabulary": 90,
        "splits": {
            s: {
                "documents": 10,
                "characters": 5000,
                "units": 5000,
                "unknown_rate": 0.001,
                "documents_over_max_chars": 0,
            }
            for s in ("train", "val", "test")
        },
    },
    samples=[{"prompt": "The movie", "temperature": 0.5, "seed": 13, "text": "The movie " + "x" * 400}],
)


def test_the_generators_card_compares_bits_per_character_with_the_ngram():
    decision = {**DECISION, "metric": "val_bpc", "direction": "minimize", "value": 2.1, "comparable": True}
    text = generator_card.render(GENERATOR, decision, parse_generator({}), {"tags": RUN["tags"], "params": {}})
    assert "| this model | val | 2.1000 | 4.40 | 0.5000 |" in text and "| a 5-gram | test | 2.2500 |" in text
    assert "-0.2000 bpc on val, -0.0500 on test, below (better than) the reference on test" in text
    assert "x" * generator_card.SAMPLE_CHARS not in text and "x" * (generator_card.SAMPLE_CHARS - 20) in text
    assert "sentipipe generate --model-uri models:/m/3" in text and "0.10% of validation units were unknown" in text
    description = generator_card.model_description(parse_generator({}))
    assert "its `val_bpc` beats the champion's (lower is better)" in description


def test_a_table_has_one_row_per_item_and_a_separator():
    assert table(["a", "b"], [[1, "x\ny"]]).splitlines() == ["| a | b |", "|---|---|", "| 1 | x y |"]


def test_a_distilled_model_card_names_its_teacher_and_the_teacher_s_training_data():
    import dataclasses

    teacher = {
        "enabled": True,
        "val_accuracy": 0.9,
        "teacher": {
            "model": "sentence-transformers/all-mpnet-base-v2",
            "parameters": 109486464,
            "training_data": "MPNet pretrained on 160 GB of English text",
        },
    }
    card = render(dataclasses.replace(REPORTS, teacher=teacher))
    assert "fine-tuned sentence-transformers/all-mpnet-base-v2 (109,486,464 parameters)" in card
    assert "the teacher's own training data: MPNet pretrained on 160 GB of English text" in card


def test_a_card_longer_than_a_sql_store_s_column_keeps_whole_sections_and_says_where_the_rest_is():
    from sentipipe.registry import DESCRIPTION_LIMIT, fit_description

    card = "# m version 1\n\nintro\n\n" + "\n\n".join(f"## part {i}\n\n" + "x" * 900 for i in range(8))
    assert len(card) > DESCRIPTION_LIMIT
    short = fit_description(card, "abc")
    assert len(short) <= DESCRIPTION_LIMIT and short.startswith("# m version 1")
    assert "## part 3" in short and "## part 7" not in short and "`model_card.md`, an artifact of run `abc`" in short
    assert fit_description("# small", "abc") == "# small"


def test_the_generators_card_gives_the_interval_on_the_gap_and_the_sample_signals_when_evaluate_wrote_them():
    import copy
    import dataclasses

    metrics = copy.deepcopy(GENERATOR.metrics)
    for split, (low, high) in {"val": (-0.25, -0.15), "test": (-0.1, 0.0)}.items():
        metrics["baseline"][split]["difference"] = {
            "difference": -0.2,
            "interval": [low, high],
            "confidence": 0.95,
            "blocks": 100,
            "resamples": 2000,
            "positions": 4000,
        }
    signals = {"samples": 8, "words": 120, "in_vocabulary": 0.95, "repeated_3grams": 0.01, "distinct_2": 0.9}
    metrics["samples_quality"] = {"0.5": signals, "validation text": signals}
    decision = {**DECISION, "metric": "val_bpc", "direction": "minimize", "value": 2.1, "comparable": True}
    run = {"tags": RUN["tags"], "params": {}}
    text = generator_card.render(dataclasses.replace(GENERATOR, metrics=metrics), decision, parse_generator({}), run)
    assert "a bootstrap of 100 contiguous blocks" in text and "val -0.2500 to -0.1500, test -0.1000 to +0.0000" in text
    assert "no interval is computed" not in text
    assert "temperature 0.5: 0.950, 0.010, 0.900; validation text: 0.950, 0.010, 0.900." in text
    plain = generator_card.render(GENERATOR, decision, parse_generator({}), run)  # an older metrics.json
    assert "no interval is computed" in plain and "distinct-2" not in plain


def test_the_card_gives_the_blend_s_weight_and_the_figures_it_was_chosen_on():
    assert "blended with the TF-IDF reference: none: the network alone" in render()
    blended = {"weight": 0.3, "mode": "auto", "tuned_on": "val_accuracy", "val": 0.82, "val_crossfit": 0.81}
    metrics = {**REPORTS.metrics, "blend": {**blended, "val_by_weight": {"0": 0.8, "0.3": 0.82}}}
    text = render(dataclasses.replace(REPORTS, metrics=metrics))
    assert "the network's log-probabilities x 0.7 + the TF-IDF reference's x 0.3" in text
    assert "0.8000 at 0, 0.8200 at the weight; 0.8100 with each half of val" in text
    unblended = {**REPORTS.metrics, "blend": {**blended, "weight": 0.0, "val_by_weight": {"0": 0.8}}}
    assert "none: the network alone (`auto`: no weight beat 0 on val_accuracy)" in render(
        dataclasses.replace(REPORTS, metrics=unblended)
    )
