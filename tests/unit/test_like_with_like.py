"""The registry compares a version's metric only with a champion validated on the same data (registry.decide)."""

from __future__ import annotations

from sentipipe.registry import Evidence, decide
from sentipipe.tasks.classifier.params import ClassifierRegisterParams

OLD, NEW = "a" * 32, "b" * 32


def test_the_same_validation_data_is_compared_on_the_metric():
    promote, reasons = decide(0.78, 0.80, ClassifierRegisterParams(), validation=OLD, champion_validation=OLD)
    assert not promote and reasons == ["val_accuracy 0.7800 does not beat the champion's 0.8000 by more than 0.0"]


def test_a_new_corpus_replaces_a_better_champion_of_other_data_and_says_it_was_not_compared():
    promote, reasons = decide(0.60, 0.95, ClassifierRegisterParams(), validation=NEW, champion_validation=OLD)
    assert promote
    (reason,) = reasons
    assert "validated on other data (hash aaaaaaaaaaaa, this version's bbbbbbbbbbbb)" in reason
    assert "val_accuracy is not comparable and was not compared" in reason and "replaces it" in reason
    assert "0.95" not in reason, "the other data's figure is not put beside this one"


def test_a_new_corpus_still_passes_its_own_gates():
    below_baseline = Evidence(baseline=0.70, baseline_name="TF-IDF LR")
    promote, reasons = decide(0.60, 0.95, ClassifierRegisterParams(), "cpu", below_baseline, NEW, OLD)
    assert not promote and "worse than TF-IDF LR's 0.7000" in reasons[0]
    assert "the champion stays only because this version failed a gate above" in reasons[1]
    floor = ClassifierRegisterParams(floor=0.7)
    assert not decide(0.60, 0.5, floor, validation=NEW, champion_validation=OLD)[0]
    gpu = ClassifierRegisterParams(require_gpu=True)
    assert not decide(0.99, 0.5, gpu, device="cpu", validation=NEW, champion_validation=OLD)[0]


def test_a_champion_without_a_hash_is_compared_and_the_reasons_say_so():
    promote, reasons = decide(0.85, 0.80, ClassifierRegisterParams(), validation=NEW, champion_validation=None)
    assert promote and reasons[0].startswith("the champion records no validation-data hash")
    assert "beats the champion's 0.8000" in reasons[1]
    assert decide(0.85, 0.80, ClassifierRegisterParams())[1] == [
        "val_accuracy 0.8500 beats the champion's 0.8000 by more than 0.0"
    ], "nothing recorded on either side: as before"


def test_a_champion_of_other_data_without_its_metric_is_replaced_not_kept():
    """The register step passes no current value when the champion lacks the metric's tag."""
    promote, reasons = decide(0.7, None, ClassifierRegisterParams(), validation=NEW, champion_validation=OLD)
    assert promote and "not comparable" in reasons[0] and "no champion yet" not in " ".join(reasons)


def test_minimised_metrics_follow_the_same_rule():
    p = ClassifierRegisterParams(metric="val_log_loss", direction="minimize")
    assert decide(0.9, 0.3, p, validation=NEW, champion_validation=OLD)[0]
    assert not decide(0.9, 0.3, p, validation=OLD, champion_validation=OLD)[0]
