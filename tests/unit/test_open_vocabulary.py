"""The open vocabulary: pretrained vectors of words the corpus lacks, read by the served model before spelling."""

from pathlib import Path

import numpy as np
import torch

from sentipipe.tasks.classifier.embed import encoder_words, write_open_vocabulary
from sentipipe.tasks.classifier.network import ClassifierSpec, build_model
from sentipipe.tasks.classifier.predictor import OpenVocabulary, Predictor
from sentipipe.text.tokenizer import TokenizerSettings
from sentipipe.text.vocab import Vocab

WORDS = ["<pad>", "<unk>", "good", "bad", "film"]


def _predictor(tmp_path: Path, **serving) -> Predictor:
    torch.manual_seed(0)
    model = build_model(ClassifierSpec(vocab_size=len(WORDS), embed_dim=4, num_classes=2, hidden_size=3))
    return Predictor(model, Vocab(WORDS), ["negative", "positive"], TokenizerSettings(), **serving)


def test_an_unseen_word_in_the_open_vocabulary_reads_its_vector_and_the_rest_stay_unknown(tmp_path):
    table = OpenVocabulary(["despise", "adore"], np.arange(8, dtype=np.float32).reshape(2, 4))
    predictor = _predictor(tmp_path, open_vocabulary=table)
    split, extra = predictor.encode([["i", "despise", "film", "adore", "despise"]])
    ids = split.ids.tolist()
    assert ids[0] == 1 and ids[2] == 4, "'i' is in neither: <unk>; 'film' is in the vocabulary"
    assert ids[1] == ids[4] == len(WORDS) and ids[3] == len(WORDS) + 1, "one extra row per distinct word"
    assert extra.tolist() == table.vectors.tolist()
    plain_ids = _predictor(tmp_path).encode([["despise"]])[0].ids.tolist()
    assert plain_ids == [1], "without the table an unseen word is <unk>"
    logits = predictor.logits_encoded(split, extra)
    assert logits.shape == (1, 2) and np.isfinite(logits).all()


def test_the_open_vocabulary_travels_with_the_served_model_and_can_be_dropped(tmp_path):
    table = OpenVocabulary(["despise"], np.ones((1, 4), dtype=np.float32))
    _predictor(tmp_path, open_vocabulary=table).save(tmp_path / "served.pt")
    loaded = Predictor.load(tmp_path / "served.pt")
    assert loaded.open_vocabulary.words == ["despise"] and loaded.open_vocabulary.vectors.tolist() == [[1.0] * 4]
    assert loaded.serving(1.0, False, False).open_vocabulary is loaded.open_vocabulary
    dropped = loaded.serving(1.0, False, False, open_vocabulary=False)
    assert dropped.open_vocabulary is None
    dropped.save(tmp_path / "plain.pt")
    assert Predictor.load(tmp_path / "plain.pt").open_vocabulary is None


def test_the_open_vocabulary_is_the_encoder_s_whole_words_the_corpus_lacks(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\na\ngood\ndespise\n##ing\ncafé\nx2\nadore\n")
    assert encoder_words(tmp_path, {"good"}) == ["despise", "adore"]
    write_open_vocabulary(tmp_path / "open.npz", ["adore"], np.full((1, 4), 0.5, dtype=np.float32))
    read = OpenVocabulary.read(tmp_path / "open.npz")
    assert read.words == ["adore"] and read.vector("adore").tolist() == [0.5] * 4 and read.vector("x") is None


def test_many_texts_are_scored_a_chunk_at_a_time_with_the_logits_of_one_pass(tmp_path, monkeypatch):
    from sentipipe.tasks.classifier import predictor as module

    texts = [" ".join(["good", "bad", "film"][: 1 + i % 3] * (1 + i % 5)) for i in range(23)]
    whole = _predictor(tmp_path).logits(texts)
    monkeypatch.setattr(module, "SCORE_CHUNK", 4)
    assert np.allclose(_predictor(tmp_path).logits(texts), whole, atol=1e-6) and whole.shape == (23, 2)
