"""The served blend (blend.py): the TF-IDF reference computed as baseline.py computes it, the mix, the weight."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from sentipipe.tasks.classifier import baseline, blend
from sentipipe.tasks.classifier.blend import LinearReference
from sentipipe.tasks.classifier.explain import explain
from sentipipe.tasks.classifier.network import ClassifierSpec, build_model
from sentipipe.tasks.classifier.predictor import Predictor
from sentipipe.text.tokenizer import TokenizerSettings
from sentipipe.text.vocab import Vocab

ODD = [
    "A  film\tthat\n\nworks , mostly !",
    "Café déjà-vu: naïve, über-long… 10/10 ★★★",
    "I a b c x",  # one-letter words: no word token; char_wb keeps " i " whole
    "",
    "   ",
    "don't won't can't — it's the 'best' (really) worst",
    "ÀÉÎ İstanbul straße ΣΊΣΥΦΟΣ",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa aaaa aaa",
]


def _corpus(classes: int, rows: int = 240, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    words = {
        0: "awful dull boring tedious mess bad worst flat",
        1: "great superb moving fun brilliant good best warm",
        2: "plot runtime director cast scene film studio sequel",
    }
    labels = rng.integers(0, classes, rows)
    texts = []
    for label in labels:
        own = words[int(label)].split()
        other = words[int(rng.integers(0, 3))].split()
        tokens = list(rng.choice(own, 4)) + list(rng.choice(other, 3)) + [ODD[int(rng.integers(0, len(ODD)))]]
        texts.append(" ".join(str(t) for t in tokens))
    return texts, labels.astype(np.int64)


@pytest.mark.parametrize(
    "analyzer, vectorizer",
    [
        (blend.word_grams, CountVectorizer(ngram_range=(1, 2))),
        (blend.char_grams, CountVectorizer(analyzer="char_wb", ngram_range=(2, 5))),
    ],
)
def test_the_analyzers_give_scikit_learn_s_n_grams(analyzer, vectorizer):
    reference = vectorizer.build_analyzer()
    texts = ODD + _corpus(3, rows=40)[0]
    for text in texts:
        assert analyzer(text) == reference(text), text


@pytest.mark.parametrize("classes", [2, 3])
def test_the_exact_reference_as_served_gives_the_baseline_s_probabilities(classes, tmp_path):
    texts, y = _corpus(classes)
    fitted = baseline.fit(texts[:160], y[:160], texts[160:200], y[160:200])
    served = LinearReference.from_baseline(fitted)
    held = texts[200:] + ODD
    expected = fitted.predict_proba(held)
    assert not served.hashed and served.predict_proba(held) == pytest.approx(expected, abs=1e-6)
    alone = np.vstack([served.predict_proba([text]) for text in held])
    assert served.predict_proba(held) == pytest.approx(alone, abs=1e-12), "a text alone or in a batch: the same"
    assert served.predict_proba([]).shape == (0, classes if classes > 2 else 2)
    served.save(tmp_path / "reference.npz")
    again = LinearReference.read(tmp_path / "reference.npz")
    assert again.predict_proba(held) == pytest.approx(expected, abs=1e-6)
    bundle = served.to_bundle()
    assert isinstance(bundle["vocab_char"], str), "the served file carries each block's n-grams as one string"
    assert LinearReference.from_bundle(bundle).vocab == served.vocab
    as_lists = {**bundle, "vocab_word": served.vocab[0], "vocab_char": served.vocab[1]}  # the format's first files
    assert LinearReference.from_bundle(as_lists).predict_proba(held) == pytest.approx(expected, abs=1e-6)
    broken = LinearReference(served.idf, served.coef, served.intercept, [["a\nb"], served.vocab[1]])
    with pytest.raises(ValueError, match="line break"):
        broken.to_bundle()


def test_the_hashed_reference_as_served_gives_the_streamed_baseline_s_probabilities():
    texts, y = _corpus(2, seed=1)  # three classes take the softmax path the exact test covers, and 26 s here
    vectorizer, _ = baseline.Hashed.fit(texts[:160])  # fit_sampled's features; one C of its grid (a grid is slow)
    model = LogisticRegression(C=4.0, max_iter=300).fit(vectorizer.transform(texts[:160]), y[:160])
    fitted = baseline.Baseline(vectorizer, model, 4.0, {})
    served = LinearReference.from_baseline(fitted)
    held = texts[160:] + ODD
    assert served.hashed
    assert served.predict_proba(held) == pytest.approx(fitted.predict_proba(held), abs=1e-5)
    alone = np.vstack([served.predict_proba([text]) for text in held])
    assert served.predict_proba(held) == pytest.approx(alone, abs=1e-12), "colliding n-grams add up per text"
    assert blend._hashed("good") == baseline.Hashed.WORD.transform(["good"]).indices[0]


def test_the_mix_is_the_network_at_weight_0_and_a_distribution_at_any_weight():
    rng = np.random.default_rng(0)
    network = rng.dirichlet(np.ones(3), 50).astype(np.float32)
    reference = rng.dirichlet(np.ones(3), 50)
    assert blend.mix(network, reference, 0.0) is network
    for w in blend.BLEND_WEIGHTS[1:]:
        mixed = blend.mix(network, reference, w)
        assert mixed.dtype == np.float32 and mixed.sum(1) == pytest.approx(np.ones(50), abs=1e-5)
    geometric = network**0.5 * reference**0.5
    expected = geometric / geometric.sum(1, keepdims=True)
    assert blend.mix(network, reference, 0.5) == pytest.approx(expected, abs=1e-5)


def test_the_weight_is_chosen_on_validation_ties_keep_the_smaller_and_crossfit_uses_the_other_half():
    truth = np.array([0, 1] * 50)
    right = np.eye(2)[truth] * 0.8 + 0.1
    assert blend.best_weight(blend.by_weight(right, right, truth, "accuracy")) == 0.0, "no gain: the network alone"
    network = right.copy()
    network[:30] = network[:30, ::-1] * 0.9 + 0.05  # the network wrong on 30 rows, mildly confident
    reference = np.eye(2)[truth] * 0.98 + 0.01  # the reference right everywhere, confident
    figures = blend.by_weight(network, reference, truth, "accuracy")
    assert figures[0.0] == 0.7 and max(figures.values()) == 1.0
    chosen = blend.best_weight(figures)
    assert figures[chosen] == 1.0 and all(figures[w] < 1.0 for w in blend.BLEND_WEIGHTS if w < chosen)
    predicted, weights = blend.crossfit(network, reference, truth, "accuracy")
    assert len(weights) == 2 and all(w > 0 for w in weights) and (predicted == truth).all()
    again, _ = blend.crossfit(network, reference, truth, "accuracy")
    assert (again == predicted).all(), "seeded"


def _predictor() -> Predictor:
    torch.manual_seed(0)
    words = ["<pad>", "<unk>", "great", "awful", "film"]
    model = build_model(ClassifierSpec(vocab_size=len(words), embed_dim=4, num_classes=2, hidden_size=3))
    return Predictor(model, Vocab(words), ["negative", "positive"], TokenizerSettings())


def test_the_blend_travels_in_the_served_file_and_every_way_of_scoring_serves_it(tmp_path: Path):
    texts, y = _corpus(2)
    reference = LinearReference.from_baseline(baseline.fit(texts[:200], y[:200], texts[200:], y[200:]))
    alone = _predictor()
    served = alone.blended(reference, 0.7)
    queries = ["a great film", "awful , dull and boring", "superb warm fun"]
    network = alone.predict_proba(queries)
    expected = blend.mix(network, reference.predict_proba(queries), 0.7)
    assert served.predict_proba(queries) == pytest.approx(expected, abs=1e-6)
    assert not np.allclose(expected, network, atol=1e-3), "the reference moves the served probabilities"
    served.save(tmp_path / "served.pt")
    loaded = Predictor.load(tmp_path / "served.pt")
    assert loaded.blend == 0.7 and loaded.predict_proba(queries) == pytest.approx(expected, abs=1e-6)
    assert loaded.serving(loaded.temperature, True, False).blend == 0.7, "serving another way keeps the blend"
    probs, features = loaded.predict_with_features(queries)
    assert probs == pytest.approx(expected, abs=1e-6) and features["tokens"].tolist() == [3, 5, 3]
    explained = explain(loaded, queries)
    assert np.array([e["probabilities"] for e in explained]) == pytest.approx(expected, abs=1e-6)
    assert loaded.blended(None, 0.0).predict_proba(queries) == pytest.approx(network, abs=1e-6)
    alone.save(tmp_path / "alone.pt")
    assert Predictor.load(tmp_path / "alone.pt").reference is None
