import numpy as np
import pandas as pd
import pytest

from sentipipe.errors import SentipipeError
from sentipipe.registry import Evidence, decide, evidence, metric_value
from sentipipe.serving import texts_from_input
from sentipipe.tasks.classifier.params import ClassifierRegisterParams
from sentipipe.tasks.classifier.pyfunc import predictions_frame


def policy(**kw) -> ClassifierRegisterParams:
    return ClassifierRegisterParams(**kw)


def test_first_model_becomes_champion():
    assert decide(0.7, None, policy())[0]


def test_champion_moves_only_to_a_better_model():
    assert decide(0.80, 0.79, policy())[0]
    assert not decide(0.79, 0.79, policy())[0], "a tie keeps the champion"
    assert not decide(0.78, 0.79, policy())[0]
    assert not decide(0.795, 0.79, policy(min_improvement=0.01))[0], "the minimum improvement is honoured"


def test_minimised_metrics_improve_downwards():
    p = policy(metric="val_log_loss", direction="minimize")
    assert decide(0.40, 0.45, p)[0] and not decide(0.50, 0.45, p)[0]


def test_floor_and_gpu_requirement_block_promotion_with_reasons():
    promote, reasons = decide(0.6, None, policy(floor=0.7))
    assert not promote and "misses the floor 0.7" in reasons[0]
    promote, reasons = decide(0.9, None, policy(require_gpu=True), device="cpu")
    assert not promote and "require_gpu" in reasons[0]
    assert decide(0.9, None, policy(require_gpu=True), device="NVIDIA H100")[0]


def test_unknown_metric_lists_the_available_ones():
    with pytest.raises(SentipipeError, match=r"'val_f2' is not in reports/x.json; one of \['val_accuracy'"):
        metric_value({"val": {"accuracy": 0.5}}, "val_f2", "reports/x.json")


def test_metric_names_resolve_into_the_metrics_report():
    assert metric_value({"val": {"accuracy": 0.5}}, "val_accuracy") == 0.5
    assert metric_value({"val": {"macro_f1": 0.4}}, "val_macro_f1") == 0.4


def test_inputs_accept_frames_series_lists_and_strings():
    assert texts_from_input(pd.DataFrame({"text": ["a", ""]})) == ["a", ""]
    assert texts_from_input(pd.Series(["a"])) == ["a"]
    assert texts_from_input(["a", "b"]) == ["a", "b"]
    assert texts_from_input("a") == ["a"]
    assert texts_from_input(pd.DataFrame()) == [], "an empty batch has no columns to name"
    assert texts_from_input(pd.DataFrame({"prompt": ["p"]}), "prompt") == ["p"]


@pytest.mark.parametrize(
    "bad, message",
    [
        (pd.DataFrame({"review": ["a"]}), "needs a 'text' column; got columns \\['review'\\]"),
        (["ok", None], "row 1: text is missing \\(null\\)"),
        (["ok", float("nan")], "row 1: text is missing \\(null\\)"),
        (pd.DataFrame({"text": [1.5]}), "row 0: text must be a string, got float"),
        (pd.DataFrame({"text": [["a", "b"]]}), "row 0: text must be a string, got list"),
        (pd.DataFrame({"text": [{"a": 1}]}), "row 0: text must be a string, got dict"),
        (pd.DataFrame({"text": ["ok", True]}), "row 1: text must be a string, got bool"),
        (42, "expected a list of texts"),
    ],
)
def test_bad_inputs_get_a_clear_error(bad, message):
    with pytest.raises(SentipipeError, match=message):
        texts_from_input(bad)


def test_predictions_have_a_label_and_one_probability_per_class():
    frame = predictions_frame(np.array([[0.2, 0.8], [0.9, 0.1]]), ["negative", "positive"])
    assert frame.columns.tolist() == ["label", "prob_negative", "prob_positive"]
    assert frame["label"].tolist() == ["positive", "negative"]


def test_a_model_below_its_own_baseline_is_not_champion_but_is_kept():
    promote, reasons = decide(0.75, None, policy(), seen=Evidence(baseline=0.93, baseline_name="TF-IDF LR"))
    assert not promote and "is worse than TF-IDF LR's 0.9300" in reasons[0] and "register.beat_baseline" in reasons[0]
    assert decide(0.93, None, policy(), seen=Evidence(baseline=0.93))[0], "equal to the baseline is not below it"
    promote, reasons = decide(0.93, None, policy(), seen=Evidence(baseline=0.93, blended=True))
    assert not promote and "a blend must beat it" in reasons[0], "served blended with the baseline: a tie refuses"
    assert decide(0.9301, None, policy(), seen=Evidence(baseline=0.93, blended=True))[0]
    assert evidence({"blend": {"weight": 0.2}, "baseline": {"val": {"accuracy": 0.8}}}, "val_accuracy").blended
    assert not evidence({"blend": {"weight": 0.0}}, "val_accuracy").blended, "weight 0 serves the network alone"
    assert evidence({"mixture": {"used": True}}, "val_bpc").blended, "the generator's n-gram mixture is one too"
    assert decide(0.75, None, policy(beat_baseline=False), seen=Evidence(baseline=0.93))[0]
    minimize = policy(metric="val_log_loss", direction="minimize")
    assert not decide(0.50, None, minimize, seen=Evidence(baseline=0.40))[0], "a higher loss is below"


def test_the_behaviour_floor_blocks_promotion_with_its_reason():
    promote, reasons = decide(0.9, None, policy(behaviour_floor=0.9), seen=Evidence(behaviour=0.85))
    assert not promote and "validation behavioural pass rate 0.850 is below register.behaviour_floor 0.9" in reasons[0]
    assert decide(0.9, None, policy(behaviour_floor=0.9), seen=Evidence(behaviour=0.95))[0]


def test_the_evidence_comes_from_the_metrics_file():
    from sentipipe.registry import evidence

    metrics = {
        "baseline": {"name": "B", "val": {"accuracy": 0.8}},
        "behaviour": {"overall": 0.5},  # the test suite: reported, never gated on
        "behaviour_validation": {"overall": 0.7},
    }
    seen = evidence(metrics, "val_accuracy")
    assert (seen.baseline, seen.baseline_name, seen.behaviour) == (0.8, "B", 0.7)
    assert evidence({}, "val_accuracy").baseline is None
