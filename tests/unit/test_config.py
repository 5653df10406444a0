from pathlib import Path

import pytest

from sentipipe.config import Params, load_params, parse_params
from sentipipe.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_repository_params_file_is_valid():
    params = load_params(REPO / "params.yaml")
    assert params.train.cell in {"lstm", "gru", "rnn_tanh", "rnn_relu"}
    assert params.register.model_name


def test_empty_params_fall_back_to_defaults():
    assert parse_params({}) == Params()


def test_unknown_cell_names_the_key_the_value_and_the_choices():
    with pytest.raises(ConfigError) as err:
        parse_params({"train": {"cell": "transformer"}})
    message = str(err.value)
    assert "train.cell" in message and "'transformer'" in message and "'gru'" in message


def test_negative_size_names_the_key():
    with pytest.raises(ConfigError, match=r"train\.hidden_size: -4 is not allowed"):
        parse_params({"train": {"hidden_size": -4}})


def test_every_bad_key_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_params({"tokenize": {"min_freq": 0}, "train": {"epochs": 0, "lr": -1}})
    message = str(err.value)
    for key in ("tokenize.min_freq", "train.epochs", "train.lr"):
        assert key in message


def test_misspelt_key_is_refused():
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key"):
        parse_params({"train": {"epoch": 3}})


def test_splits_must_leave_training_data():
    with pytest.raises(ConfigError, match="val_size \\+ data.test_size"):
        parse_params({"data": {"val_size": 0.45, "test_size": 0.45}})


def test_minilm_vectors_need_their_own_dimension():
    with pytest.raises(ConfigError, match="embed.dim must be 384"):
        parse_params({"embed": {"source": "minilm", "dim": 128}})


def test_missing_and_malformed_files_are_user_errors(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
