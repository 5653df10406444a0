"""Real pip download of the default corpus, real spaCy, real MiniLM vectors."""

import numpy as np
import pytest

from sentipipe.config import DataParams
from sentipipe.data import vader
from sentipipe.data.ingest import read_corpus
from sentipipe.errors import DataError
from sentipipe.tasks.classifier import embed
from sentipipe.tasks.classifier.embed import build_matrix
from sentipipe.tasks.classifier.minilm import minilm_dir
from sentipipe.tasks.classifier.params import EmbedParams
from sentipipe.text.tokenizer import TokenizerSettings, tokenize
from sentipipe.text.vocab import PAD_ID, Vocab

pytestmark = pytest.mark.integration


def test_default_corpus_comes_from_pip_verified_and_labelled():
    table, report = read_corpus(DataParams(corpora=["movie", "tweets"], threshold=0.0))
    assert list(table.columns) == ["id", "text", "label", "source"]
    assert set(table["source"]) == {"movie", "tweets"}
    assert set(table["label"]) == {"positive", "negative"}
    assert report["corpora"]["movie"]["lines"] == 10605
    assert (
        report["rows_kept"] + report["dropped"]["neutral_rating"] + report["dropped"]["malformed_line"]
        == (report["rows_read"])
    )
    assert table["id"].is_unique


def test_a_tampered_archive_is_refused_and_removed(tmp_path):
    (tmp_path / vader.SDIST_NAME).write_bytes(b"not the real archive")
    with pytest.raises(DataError, match="does not match the pinned"):
        vader.fetch_sdist(tmp_path)
    assert not (tmp_path / vader.SDIST_NAME).exists()


def test_spacy_tokenizer_splits_clitics_and_punctuation_and_truncates():
    settings = TokenizerSettings(lowercase=True, max_length=6)
    tokens = list(tokenize(["It isn't GOOD, sadly.", "  "], settings))
    assert tokens[0] == ["it", "is", "n't", "good", ",", "sadly"]
    assert tokens[1] == []
    cased = list(tokenize(["Great film!"], TokenizerSettings(lowercase=False)))
    assert cased == [["Great", "film", "!"]]


@pytest.mark.parametrize("mode", ["pieces", "encoder"])
def test_minilm_vectors_cover_real_words_and_place_synonyms_close(mode):
    vocab = Vocab(["<pad>", "<unk>", "good", "great", "terrible", "zzqxv"])
    counts = {"good": 5, "great": 3, "terrible": 2, "zzqxv": 1}
    matrix, report = build_matrix(vocab, counts, EmbedParams(source="minilm", mode=mode, dim=384))
    assert matrix.shape == (6, 384) and not matrix[PAD_ID].any()
    assert report["coverage_vocab"] >= 0.75 and report["coverage_train_tokens"] >= 10 / 11

    def cos(a, b):
        return float(matrix[a] @ matrix[b] / np.linalg.norm(matrix[a]) / np.linalg.norm(matrix[b]))

    assert cos(2, 3) > cos(2, 5)


def test_encoder_vectors_are_sentence_transformers_encode_byte_for_byte_without_importing_it():
    words = embed.encoder_words(minilm_dir(), set())[::97][:150] + ["", "  ", "don't", "ok-ish"]
    ours, found = embed._encoder_vectors(words, minilm_dir(), batch_size=16)  # 10 batches, longest first
    theirs = embed._sentence_transformers_vectors(words, minilm_dir(), batch_size=16)
    assert ours.dtype == theirs.dtype == np.float32 and ours.shape == (len(words), 384)
    assert np.array_equal(ours, theirs), "the same floats, not close ones: the committed dvc.lock's vectors"
    assert found.tolist() == [True] * 150 + [False, False, True, True]
    assert embed._mean_pooled_max_length(minilm_dir()) == 256


def test_an_encoder_folder_of_another_layout_goes_through_sentence_transformers(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "model.safetensors"):
        (folder / name).symlink_to(minilm_dir() / name)
    (folder / "modules.json").write_text(
        '[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},'
        ' {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]'
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}'
    )
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 256, "do_lower_case": false}')
    assert embed._mean_pooled_max_length(folder) is None
    vectors, _ = embed._encoder_vectors(["good", "terrible"], folder)
    minilm, _ = embed._encoder_vectors(["good", "terrible"], minilm_dir())
    assert vectors.shape == (2, 384) and not np.allclose(np.linalg.norm(vectors, axis=1), 1.0), "CLS, not normalised"
    assert not np.allclose(vectors, minilm)


def test_context_vectors_come_from_the_words_occurrences_in_the_training_texts():
    vocab = Vocab(["<pad>", "<unk>", "good", "great", "terrible", "absent"])
    texts = ["A good film.", "Great fun, good cast!", "Terrible acting, a great shame."]
    settings = TokenizerSettings(lowercase=True)
    counts = {"good": 2, "great": 2, "terrible": 1, "absent": 0}
    matrix, report = build_matrix(vocab, counts, EmbedParams(source="minilm", mode="context", dim=384), texts, settings)
    assert report["coverage_vocab"] == 0.75, "a word that never occurs gets no context vector"
    assert report["coverage_train_tokens"] == 1.0
    assert np.isfinite(matrix).all() and matrix.shape == (6, 384)


TEXTS = ["A good film, a great cast.", "A terrible film and a dull plot.", "Good acting, great fun."] * 5


@pytest.mark.parametrize("source", ["word2vec", "fasttext"])
def test_vectors_trained_on_the_training_split(source):
    vocab = Vocab(["<pad>", "<unk>", "good", "great", "film", "never-in-training"])
    counts = {"good": 10, "great": 10, "film": 10, "never-in-training": 0}
    params = EmbedParams(source=source, dim=8, epochs=2)
    matrix, report = build_matrix(vocab, counts, params, TEXTS, TokenizerSettings())
    assert matrix.shape == (6, 8) and not matrix[PAD_ID].any()
    expected = 1.0 if source == "fasttext" else 0.75  # fastText builds any word from character n-grams
    assert report["coverage_vocab"] == expected and report["coverage_train_tokens"] == 1.0


@pytest.mark.parametrize("fmt", ["word2vec_text", "word2vec_binary", "glove"])
def test_vectors_from_a_file_with_a_stated_fallback_for_missing_words(tmp_path, fmt):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["Good", "film"], np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32))
    path = tmp_path / "vectors.txt"
    kv.save_word2vec_format(str(path), binary=fmt == "word2vec_binary", write_header=fmt != "glove")
    vocab = Vocab(["<pad>", "<unk>", "good", "film", "absent"])
    params = EmbedParams(source="file", path=str(path), format=fmt, scale=1.0)
    matrix, report = build_matrix(vocab, {"good": 3, "film": 1, "absent": 1}, params, settings=TokenizerSettings())
    assert matrix.shape == (5, 3)
    assert report["coverage_vocab"] == pytest.approx(2 / 3, abs=1e-4) and report["coverage_train_tokens"] == 0.8
    cos = matrix[2] @ matrix[3] / np.linalg.norm(matrix[2]) / np.linalg.norm(matrix[3])
    assert cos == pytest.approx(10 / 14, abs=1e-5), "the file's vectors, rescaled together"
    assert report["missing_init"].startswith("random normal")


def test_a_missing_or_broken_vectors_file_is_a_clear_error(tmp_path):
    from sentipipe.errors import SentipipeError

    vocab = Vocab(["<pad>", "<unk>", "a"])
    with pytest.raises(SentipipeError, match="not found"):
        build_matrix(vocab, {"a": 1}, EmbedParams(source="file", path=str(tmp_path / "none.vec")))
    (tmp_path / "bad.vec").write_text("this is not\na vectors file\n")
    with pytest.raises(SentipipeError, match="is not a word2vec_text vectors file"):
        build_matrix(vocab, {"a": 1}, EmbedParams(source="file", path=str(tmp_path / "bad.vec")))


def test_context_and_word2vec_vectors_read_a_training_split_in_chunks_as_they_read_one_list(tmp_path):
    """embed reads a large training split a chunk at a time; the vectors are those of the whole list."""
    vocab = Vocab(["<pad>", "<unk>", "good", "great", "terrible", "film"])
    texts = ["A good film.", "Great fun, good cast!", "Terrible acting, a great shame.", "A great film."] * 40
    settings = TokenizerSettings(lowercase=True)
    counts = {"good": 80, "great": 120, "terrible": 40, "film": 80}

    def in_chunks():  # chunks of 64 texts, the context encoder's batch, as embed.training_texts reads them
        return (texts[i : i + 64] for i in range(0, len(texts), 64))

    for params in (EmbedParams(source="minilm", mode="context", dim=384), EmbedParams(source="word2vec", dim=16)):
        whole, _ = build_matrix(vocab, counts, params, texts, settings)
        chunked, _ = build_matrix(vocab, counts, params, in_chunks, settings)
        assert np.array_equal(whole, chunked), params.source
