from pathlib import Path

import pytest

from sentipipe.config import DataConfig, load, parse
from sentipipe.errors import ConfigError
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.params import load as load_classifier
from sentipipe.tasks.classifier.params import parse as parse_classifier
from sentipipe.tasks.generator.params import GeneratorConfig
from sentipipe.tasks.generator.params import load as load_generator

REPO = Path(__file__).resolve().parents[2]


def test_repository_params_file_is_valid_for_every_reader():
    params = load_classifier(REPO / "params.yaml")
    assert params.classifier.train.cell in {"lstm", "gru", "rnn_tanh", "rnn_relu"}
    assert params.classifier.register.model_name == "sentipipe-classifier"
    assert load_generator(REPO / "params.yaml").generator.register.model_name == "sentipipe-generator"
    assert load(REPO / "params.yaml", DataConfig).data == params.data


def test_empty_params_fall_back_to_defaults():
    assert parse_classifier({}) == ClassifierConfig()


def test_unknown_cell_names_the_key_the_value_and_the_choices():
    with pytest.raises(ConfigError) as err:
        parse_classifier({"classifier": {"train": {"cell": "transformer"}}})
    message = str(err.value)
    assert "classifier.train.cell" in message and "'transformer'" in message and "'gru'" in message


def test_negative_size_names_the_key():
    with pytest.raises(ConfigError, match=r"classifier\.train\.hidden_size: -4 is not allowed"):
        parse_classifier({"classifier": {"train": {"hidden_size": -4}}})


def test_every_bad_key_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_classifier({"classifier": {"tokenize": {"min_freq": 0}, "train": {"max_steps": 0, "lr": -1}}})
    message = str(err.value)
    for key in ("classifier.tokenize.min_freq", "classifier.train.max_steps", "classifier.train.lr"):
        assert key in message


def test_misspelt_keys_are_refused_at_any_depth():
    with pytest.raises(ConfigError, match=r"classifier\.train\.max_step: unknown key"):
        parse_classifier({"classifier": {"train": {"max_step": 3}}})
    with pytest.raises(ConfigError, match=r"clasifier: unknown key"):
        parse_classifier({"clasifier": {}})


def test_moved_keys_name_their_new_place():
    with pytest.raises(ConfigError) as err:
        parse_classifier({"train": {"cell": "gru"}, "register": {}, "tracking": {"experiment": "x"}})
    message = str(err.value)
    assert "train: moved to classifier.train" in message and "register: moved to classifier.register" in message
    assert "tracking.experiment: moved to classifier.experiment" in message
    assert "unknown key" not in message, "a moved key is said once, with its new place"


def test_each_task_validates_its_own_sections_and_passes_over_the_others():
    broken_generator = {"generator": {"train": {"bptt": 1}}}
    assert parse_classifier(broken_generator) == ClassifierConfig(), "the classifier does not read the generator"
    with pytest.raises(ConfigError, match=r"generator\.train\.bptt"):
        parse(broken_generator, GeneratorConfig)


def test_splits_must_leave_training_data():
    with pytest.raises(ConfigError, match="val_size \\+ data.test_size"):
        parse({"data": {"val_size": 0.45, "test_size": 0.45}}, DataConfig)


def test_minilm_vectors_need_their_own_dimension():
    with pytest.raises(ConfigError, match="classifier.embed.dim must be 384"):
        parse_classifier({"classifier": {"embed": {"source": "minilm", "dim": 128}}})


def test_missing_and_malformed_files_are_user_errors(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_classifier(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("classifier: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_classifier(bad)


def test_a_moved_nested_key_names_its_new_place():
    with pytest.raises(
        ConfigError, match=r"generator\.evaluate\.ngram_max_order: moved to generator\.evaluate\.ngram_order_limit"
    ):
        parse({"generator": {"evaluate": {"ngram_max_order": 8}}}, GeneratorConfig)


def test_epochs_became_a_budget_of_passes_and_say_so():
    with pytest.raises(ConfigError, match=r"classifier\.train\.epochs: moved to classifier\.train\.max_epochs"):
        parse_classifier({"classifier": {"train": {"epochs": 10}}})


def _keys(model_or_dict, prefix: str = "") -> set[str]:
    from pydantic import BaseModel

    items = model_or_dict.model_dump().items() if isinstance(model_or_dict, BaseModel) else model_or_dict.items()
    out = set()
    for key, value in items:
        if isinstance(value, dict) and key != "label_map":
            out |= _keys(value, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


def test_every_knob_is_written_out_in_params_yaml():
    """params.yaml is the interface: each field of each section is in it, and nothing else is."""
    import yaml

    written = _keys(yaml.safe_load((REPO / "params.yaml").read_text()))
    from sentipipe.config import ComputeConfig, MonitoringConfig, load

    known = _keys(load_classifier(REPO / "params.yaml")) | _keys(load_generator(REPO / "params.yaml"))
    known |= _keys(load(REPO / "params.yaml", MonitoringConfig)) | _keys(load(REPO / "params.yaml", ComputeConfig))
    assert written == known, {"missing from params.yaml": sorted(known - written), "unknown": sorted(written - known)}


def test_auto_class_weights_follow_the_monitored_figure():
    from sentipipe.tasks.classifier.params import TrainParams

    assert TrainParams(class_weights="auto").loss_weights == "none"
    assert TrainParams(class_weights="auto", monitor="val_macro_recall").loss_weights == "balanced"
    assert TrainParams(class_weights="none", monitor="val_macro_recall").loss_weights == "none"


def test_a_key_written_twice_in_a_params_file_is_an_error_not_a_silent_choice(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("classifier:\n  train:\n    lr: 0.1\n    dropout: 0.2\n    lr: 0.3\n")
    with pytest.raises(ConfigError, match=r"(?s)the key .lr. is written twice.*line 5"):
        load_classifier(path)
    assert load_classifier(Path(__file__).parents[2] / "params.yaml")  # the committed file has none


def test_the_compute_engine_is_local_unless_asked_and_refuses_an_unknown_one():
    from sentipipe.config import ComputeConfig

    assert parse({}, ComputeConfig).compute.engine == "local"
    assert parse({"compute": {"engine": "ray"}}, ComputeConfig).compute.engine == "ray"
    with pytest.raises(ConfigError, match=r"compute\.engine: 'spark' is not allowed; input should be 'local' or 'ray'"):
        parse({"compute": {"engine": "spark"}}, ComputeConfig)
    with pytest.raises(ConfigError, match=r"compute\.chunk_rows"):
        parse_classifier({"compute": {"chunk_rows": 0}})
    assert parse({"compute": {"engine": "spark"}}, GeneratorConfig) == GeneratorConfig(), "the generator passes over it"


def test_no_stage_hashes_the_compute_section():
    """Switching engines must rerun nothing: dvc.lock is the same whichever engine wrote the outputs."""
    import yaml

    for pipeline in (REPO / "dvc.yaml", REPO / "pipeline/generator/dvc.yaml"):
        for name, stage in yaml.safe_load(pipeline.read_text())["stages"].items():
            keys = [k if isinstance(k, str) else next(iter(k)) for k in stage.get("params", [])]
            assert not [k for k in keys if k == "compute" or k.startswith("compute.")], f"{name} lists compute"


def test_a_bare_on_or_off_in_yaml_is_the_word_where_a_key_takes_words(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("classifier:\n  evaluate:\n    blend: off\n    quantize: on\n    open_vocabulary: off\n")
    e = load(path, ClassifierConfig).classifier.evaluate
    assert (e.blend, e.quantize, e.open_vocabulary) == ("off", "on", "off")
    path.write_text("classifier:\n  evaluate:\n    blend: on\n")  # not one of blend's words: refused, saying which
    with pytest.raises(ConfigError, match="classifier.evaluate.blend.*'auto' or 'off'"):
        load(path, ClassifierConfig)
    path.write_text("classifier:\n  evaluate:\n    baseline: off\n")  # a boolean key stays a boolean
    assert load(path, ClassifierConfig).classifier.evaluate.baseline is False
