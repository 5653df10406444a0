"""Real pip download of the default corpus, real spaCy, real MiniLM vectors."""

import numpy as np
import pytest

from sentipipe.config import DataParams, EmbedParams
from sentipipe.data import vader
from sentipipe.data.corpus import ingest
from sentipipe.embeddings import build_matrix
from sentipipe.errors import DataError
from sentipipe.text.tokenizer import TokenizerSettings, tokenize
from sentipipe.text.vocab import PAD_ID, Vocab

pytestmark = pytest.mark.integration


def test_default_corpus_comes_from_pip_verified_and_labelled():
    table, report = ingest(DataParams(corpora=["movie", "tweets"], threshold=0.0))
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


def test_context_vectors_come_from_the_words_occurrences_in_the_training_texts():
    vocab = Vocab(["<pad>", "<unk>", "good", "great", "terrible", "absent"])
    texts = ["A good film.", "Great fun, good cast!", "Terrible acting, a great shame."]
    settings = TokenizerSettings(lowercase=True)
    counts = {"good": 2, "great": 2, "terrible": 1, "absent": 0}
    matrix, report = build_matrix(vocab, counts, EmbedParams(source="minilm", mode="context", dim=384), texts, settings)
    assert report["coverage_vocab"] == 0.75, "a word that never occurs gets no context vector"
    assert report["coverage_train_tokens"] == 1.0
    assert np.isfinite(matrix).all() and matrix.shape == (6, 384)
