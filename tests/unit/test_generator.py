"""The generator task's parts: units, streams, TBPTT batches, the n-gram reference, sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentipipe.errors import ConfigError, SentipipeError
from sentipipe.tasks.generator.mixture import MixedGenerator, Mixture, choose_weight, mixed_bits
from sentipipe.tasks.generator.network import GeneratorNetwork, GeneratorSpec
from sentipipe.tasks.generator.ngram import KneserNey, discounts, search_order
from sentipipe.tasks.generator.objective import NextUnit, lanes, stream_scores, windows
from sentipipe.tasks.generator.params import SampleParams
from sentipipe.tasks.generator.params import parse as parse_generator
from sentipipe.tasks.generator.pyfunc import generation_options
from sentipipe.tasks.generator.sampler import Generator
from sentipipe.tasks.generator.units import (
    EOS,
    EOS_ID,
    UnitSettings,
    build_vocab,
    cap_characters,
    encode_stream,
    from_units,
    split_documents,
    to_units,
)
from sentipipe.text.vocab import PAD, PAD_ID, UNK, UNK_ID


def test_char_units_round_trip_and_the_vocabulary_comes_from_train_only():
    settings = UnitSettings("char")
    train = to_units(["abba", "cab"], settings)
    vocab = build_vocab(train, min_freq=1, max_size=100)
    assert vocab.tokens[:3] == [PAD, UNK, EOS] and set(vocab.tokens[3:]) == {"a", "b", "c"}
    assert from_units(train[0], settings) == "abba"
    stream = encode_stream(to_units(["abz"], settings), vocab)
    assert stream.tolist() == [vocab.index["a"], vocab.index["b"], UNK_ID, EOS_ID]


def test_token_units_come_from_spacy_and_detokenize_readably():
    settings = UnitSettings("token", lowercase=True)
    units = to_units(["It wasn't great, was it?"], settings)[0]
    assert units == ["it", "was", "n't", "great", ",", "was", "it", "?"]
    assert from_units(units, settings) == "it wasn't great, was it?"


def test_documents_split_by_seed_into_three_disjoint_parts():
    docs = [f"doc {i}" for i in range(20)]
    parts = split_documents(docs, 0.1, 0.2, seed=3)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [14, 2, 4]
    assert sorted(sum(parts.values(), [])) == sorted(docs)
    assert parts == split_documents(docs, 0.1, 0.2, seed=3)
    with pytest.raises(SentipipeError, match="at least 3"):
        split_documents(["a", "b"], 0.1, 0.1, seed=0)


def test_lanes_shift_targets_by_one_and_windows_tile_the_lanes():
    stream = np.arange(23)
    x, y = lanes(stream, 2)
    assert x.tolist() == [list(range(0, 11)), list(range(11, 22))]
    assert (y == x + 1).all()
    parts = windows(x, y, 4)
    assert [w[0].shape[1] for w in parts] == [4, 4, 3]
    assert np.concatenate([w[0] for w in parts], axis=1).tolist() == x.tolist()
    with pytest.raises(ValueError, match="lanes"):
        lanes(np.arange(3), 5)


def test_the_hidden_state_carries_between_windows_and_resets_each_epoch():
    torch.manual_seed(0)
    model = GeneratorNetwork(GeneratorSpec(vocab_size=10, embed_dim=4, hidden_size=8, num_layers=1, dropout=0.0))
    stream = np.random.default_rng(0).integers(3, 10, size=200)
    objective = NextUnit(stream, stream, batch_size=4, bptt=10)
    batches = objective.batches(None)
    objective.start_epoch()
    objective.step(model, batches[0], torch.device("cpu"))
    carried = objective.hidden
    assert carried is not None and not carried[0].requires_grad  # detached: gradients stop at the window
    # the second window's loss depends on the first window's state
    with torch.no_grad():
        fresh, _ = model(torch.from_numpy(np.ascontiguousarray(batches[1][0])))
        continued, _ = model(torch.from_numpy(np.ascontiguousarray(batches[1][0])), carried)
    assert not torch.allclose(fresh, continued)
    objective.start_epoch()
    assert objective.hidden is None
    # every epoch moves the window boundaries by a random offset below bptt
    offsets = {objective.batches(np.random.default_rng(s))[0][0][0, 0] for s in range(20)}
    assert len(offsets) > 1


def test_stream_scores_report_perplexity_and_bits_per_character_consistently():
    model = GeneratorNetwork(GeneratorSpec(vocab_size=12, embed_dim=4, hidden_size=8, num_layers=1, dropout=0.0))
    stream = np.random.default_rng(1).integers(3, 12, size=300)
    scores = stream_scores(model, stream, 4, 16, torch.device("cpu"), chars_per_unit=2.0, exclude=(PAD_ID,))
    assert scores["perplexity"] == pytest.approx(np.exp(scores["loss"]))
    assert scores["bpc"] == pytest.approx(scores["loss"] / np.log(2) / 2.0)


def test_kneser_ney_is_a_distribution_at_every_order():
    rng = np.random.default_rng(0)
    stream = rng.integers(3, 12, size=4000)
    stream[::5] = EOS_ID
    model = KneserNey(12, max_order=4).fit(stream, EOS_ID)
    for context in (rng.integers(3, 12, size=5), np.array([EOS_ID, 4, 4, 4, 4])):
        for order in range(1, 5):
            total = sum(model.probabilities(np.append(context, w), order)[-1] for w in range(12))
            assert total == pytest.approx(1.0, abs=1e-9), (context, order)


def test_the_order_search_grows_until_validation_stops_improving():
    rng = np.random.default_rng(0)

    def noisy(copies: int) -> np.ndarray:  # a pattern that three units of context determine, 5% noise
        stream = np.tile(np.array([3, 4, 5, 3, 6, 7]), copies)
        noise = rng.random(len(stream)) < 0.05
        stream[noise] = rng.integers(3, 8, size=int(noise.sum()))
        return stream

    train, val = noisy(400), noisy(100)
    model, order, scores, val_probabilities = search_order(train, val, 8, EOS_ID)
    assert scores[1] > 2.0  # unigram: about log2(5) bits
    assert order >= 3 and scores[order] < 0.6
    assert max(scores) == order + 1 and scores[order + 1] >= scores[order], "it stopped where val stopped improving"
    assert model.max_order == order + 1
    # lean: the raw counts of the top two orders only, and every order's validation probabilities exactly those
    # of a model that kept everything
    assert sorted(model.raw) == [order, order + 1]
    whole = KneserNey(8, max_order=order + 1, history=30).fit(train, EOS_ID)
    for m in scores:
        assert np.array_equal(val_probabilities[m], whole.probabilities(val, m)), m
        assert scores[m] == pytest.approx(-np.log2(whole.probabilities(val, m)).mean(), rel=1e-12)
    assert np.array_equal(model.probabilities(val[:50], order), whole.probabilities(val[:50], order))
    with pytest.raises(ValueError, match="order 1's raw counts were not kept"):
        model.probabilities(val, 1)


def test_modified_discounts_follow_chen_and_goodman():
    # n1..n4 = 4, 2, 1, 1: Y = 4 / (4 + 2 * 2) = 0.5
    assert discounts(np.array([1, 1, 1, 1, 2, 2, 3, 4])) == pytest.approx(
        (1 - 2 * 0.5 * 2 / 4, 2 - 3 * 0.5 * 1 / 2, 3 - 4 * 0.5)
    )
    # without all four counts of counts (a tiny corpus), Y serves for all three; without Y, 0.5
    assert discounts(np.array([1, 1, 2, 2])) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert discounts(np.array([2, 4])) == (0.5, 0.5, 0.5)


def test_kneser_ney_probabilities_match_a_hand_computation():
    """Stream a b a b a a (a=3, b=4), vocabulary of 5, order 2, padded with 2 (<eos>); worked out by hand.

    Bigrams (2,a):1 (a,b):2 (b,a):2 (a,a):1: n1 = n2 = 2, n3 = 0, so every discount is Y = 2 / 6 = 1/3.
    Continuation counts: a follows 2, b and a (3); b follows a (1); Y = 1, every discount 1.
    Unigram: gamma = (1 * 1 + 1 * 1) / 4 = 1/2, so p(a) = (3 - 1) / 4 + 1/2 * 1/5 = 0.6, p(b) = 0 + 0.1 = 0.1.
    After a (total 3, one bigram seen once, one twice): gamma = (1/3 + 1/3) / 3 = 2/9.
    After b (total 2, one bigram seen twice): gamma = (1/3) / 2 = 1/6. After <eos> (total 1): gamma = 1/3.
    """
    a, b = 3, 4
    stream = np.array([a, b, a, b, a, a])
    model = KneserNey(5, max_order=2).fit(stream, EOS_ID)
    p_a, p_b = 0.6, 0.1
    after_a = {a: (1 - 1 / 3) / 3 + 2 / 9 * p_a, b: (2 - 1 / 3) / 3 + 2 / 9 * p_b}
    after_b = {a: (2 - 1 / 3) / 2 + 1 / 6 * p_a}
    after_eos = {a: (1 - 1 / 3) / 1 + 1 / 3 * p_a}
    expected = [after_eos[a], after_a[b], after_b[a], after_a[b], after_b[a], after_a[a]]
    assert model.probabilities(stream, 2) == pytest.approx(expected)
    # order 1 alone: raw counts a 4, b 2 (n1 = 0: discounts 0.5), gamma = (0.5 + 0.5) / 6
    raw = [(4 - 0.5) / 6 + 1 / 6 / 5, (2 - 0.5) / 6 + 1 / 6 / 5, 1 / 6 / 5]
    assert model.probabilities(np.array([a, b, 0]), 1) == pytest.approx(raw)


def _generator(unit: str = "char") -> Generator:
    torch.manual_seed(0)
    vocab = build_vocab([list("the movie was great")], 1, 100)
    model = GeneratorNetwork(
        GeneratorSpec(vocab_size=len(vocab), embed_dim=8, hidden_size=16, num_layers=1, dropout=0.0)
    )
    return Generator(model, vocab, UnitSettings(unit))


def test_the_same_seed_gives_the_same_text_and_another_seed_another():
    gen = _generator()
    first, _ = gen.generate("the", max_length=60, temperature=1.0, seed=5)
    assert first == gen.generate("the", max_length=60, temperature=1.0, seed=5)[0]
    others = {gen.generate("the", max_length=60, temperature=1.0, seed=s)[0] for s in range(6, 10)}
    assert others - {first}
    assert len(first) <= 60


def test_greedy_and_top_1_agree_and_special_units_are_never_written():
    gen = _generator()
    greedy, _ = gen.generate("mov", max_length=40, temperature=0.0)
    assert greedy == gen.generate("mov", max_length=40, temperature=1.5, top_k=1, seed=99)[0]
    text, _ = gen.generate("", max_length=200, temperature=3.0, seed=1)
    assert "<" not in text and set(text) <= set("the movie was great")


def test_units_the_vocabulary_lacks_are_read_as_unknown_not_crashed_on():
    gen = _generator()
    text, unknown = gen.generate("Zürich 😀 the", max_length=20, seed=1)
    assert unknown == 4  # Z, ü, c and the emoji: each unknown character is counted
    frame = gen.generate_frame(["Zürich", ""], max_length=10, temperature=0.5, top_k=3, seed=2)
    assert frame["prompt"].tolist() == ["Zürich", ""] and frame["unknown_units"].tolist() == [3, 0]
    assert (frame["text"] == frame["prompt"] + frame["generated"]).all()


def test_the_generator_file_round_trips(tmp_path):
    gen = _generator()
    gen.save(tmp_path / "g.pt")
    again = Generator.load(tmp_path / "g.pt")
    assert again.generate("the", seed=3, max_length=30) == gen.generate("the", seed=3, max_length=30)


def test_generation_options_are_checked_against_the_params_bounds():
    defaults = SampleParams().model_dump()
    assert generation_options({"temperature": 0.5}, defaults)["temperature"] == 0.5
    with pytest.raises(SentipipeError, match="unknown parameter 'temp'"):
        generation_options({"temp": 1}, defaults)
    with pytest.raises(SentipipeError, match="max_length must be between 1 and 10000"):
        generation_options({"max_length": 0}, defaults)
    for wrong, message in (
        ({"temperature": "hot"}, "a number"),
        ({"seed": None}, "a whole number"),
        ({"top_k": True}, "a whole number"),
        ({"max_length": 2.5}, "a whole number"),
    ):
        with pytest.raises(SentipipeError, match=f"{next(iter(wrong))} must be {message}"):
            generation_options(wrong, defaults)
    assert generation_options({"max_length": 3.0, "temperature": 1}, defaults)["max_length"] == 3
    with pytest.raises(ConfigError, match="generator.sample.max_length"):
        parse_generator({"generator": {"sample": {"max_length": 0}}})


def test_the_corpus_cap_keeps_whole_documents_in_order():
    docs = ["a" * 400, "b" * 400, "c" * 400]
    assert cap_characters(docs, 1000) == docs[:2]
    assert cap_characters(docs, 10) == docs[:1], "at least one document"


def test_the_prepared_splits_are_read_no_further_than_the_cap(tmp_path, monkeypatch):
    """The classifier's corpus may be far larger than memory: the generator reads batches until its cap."""
    import pandas as pd

    from sentipipe.tasks.generator.tokenize import capped_prepared

    (tmp_path / "data/prepared").mkdir(parents=True)
    docs = [f"{i:04d}" + "x" * 95 for i in range(1000)]  # 100 characters + the end of each document
    pd.DataFrame({"text": docs, "label": "positive"}).to_parquet(tmp_path / "data/prepared/train.parquet")
    monkeypatch.chdir(tmp_path)
    kept, rows = capped_prepared("train", 5050, batch_rows=7)
    assert kept == cap_characters(docs, 5050) == docs[:50] and rows == 1000
    assert capped_prepared("train", 10, batch_rows=7)[0] == docs[:1], "at least one document"
    assert capped_prepared("train", 10**9, batch_rows=7)[0] == docs


def test_generator_params_are_validated_with_their_keys():
    with pytest.raises(ConfigError) as err:
        parse_generator({"generator": {"tokenize": {"unit": "word"}, "train": {"bptt": 1}, "data": {"source": "file"}}})
    text = str(err.value)
    assert "generator.tokenize.unit: 'word' is not allowed" in text
    assert "generator.train.bptt" in text
    with pytest.raises(ConfigError, match="generator.data.path is required"):
        parse_generator({"generator": {"data": {"source": "file"}}})


def test_prompts_generated_together_get_the_texts_they_get_alone():
    gen = _generator()
    prompts = ["the", "mov", "", "the movie was"]
    together = gen.generate_batch(prompts, max_length=40, temperature=1.0, top_k=0, seed=5)
    alone = [gen.generate(p, max_length=40, temperature=1.0, top_k=0, seed=5) for p in prompts]
    assert together == alone, "one random generator per prompt: its neighbours in the batch change nothing"
    assert gen.generate_batch([], max_length=5) == []


def test_the_ngram_distribution_after_a_context_is_what_probabilities_scores_there():
    rng = np.random.default_rng(1)
    stream = rng.integers(3, 12, size=3000)
    stream[::7] = EOS_ID
    model = KneserNey(12, max_order=5).fit(stream, EOS_ID)
    held = rng.integers(2, 12, size=40)
    for order in (1, 3, 5):
        scored = model.probabilities(held, order)
        for i in range(len(held)):
            dist = model.distribution(held[:i], order)
            assert dist.sum() == pytest.approx(1.0, abs=1e-9)
            assert dist[held[i]] == pytest.approx(scored[i], rel=1e-12), (order, i)
    lean = KneserNey(12, max_order=5, lean=True).fit(stream, EOS_ID)  # what a served mixture of order 5 holds
    assert sorted(lean.raw) == [4, 5]
    assert np.array_equal(lean.probabilities(held, 5), model.probabilities(held, 5))
    assert np.array_equal(lean.distribution(held[:9], 5), model.distribution(held[:9], 5))


def _mixed_generator(weight: float = 0.6, order: int = 3) -> MixedGenerator:
    gen = _generator()
    ids = gen.vocab.encode(list("the movie was great. the movie was not great. ")).astype(np.int64)
    stream = np.concatenate([np.tile(np.append(ids, EOS_ID), 20)])
    return MixedGenerator(
        gen.model, gen.vocab, gen.settings, mixture=Mixture.fit(stream, len(gen.vocab), order, weight)
    )


def test_the_mixture_is_a_distribution_of_weight_times_the_network_plus_the_rest_times_the_ngram():
    gen = _mixed_generator(weight=0.6)
    ids, _ = gen.encode_prompt("the mov")
    with torch.no_grad():
        logits, _ = gen.model.prime(torch.tensor([ids]), torch.tensor([len(ids)]))
    mixed = gen.next_probabilities(logits, [ids])[0].numpy()
    scores = logits[0].double()
    scores[PAD_ID] = float("-inf")
    network = torch.softmax(scores, -1).numpy()
    ngram = gen.mixture.ngram.distribution(ids, 3)
    assert mixed.sum() == pytest.approx(1.0, abs=1e-12) and (mixed >= 0).all()
    assert mixed == pytest.approx(0.6 * network + 0.4 * ngram)
    assert mixed[gen.vocab.index["i"]] > network[gen.vocab.index["i"]], "the n-gram has seen 'the movi'"


def test_the_weight_is_the_one_that_minimises_the_bits_and_either_model_alone_can_win():
    rng = np.random.default_rng(0)
    network, ngram = rng.uniform(0.05, 1.0, 500), rng.uniform(0.05, 1.0, 500)
    weight, bits = choose_weight(network, ngram)
    grid = np.linspace(0, 1, 1001)
    best = grid[np.argmin([mixed_bits(network, ngram, w) for w in grid])]
    assert weight == pytest.approx(best, abs=2e-3) and bits == pytest.approx(mixed_bits(network, ngram, weight))
    assert bits <= min(mixed_bits(network, ngram, 0.0), mixed_bits(network, ngram, 1.0))
    assert choose_weight(ngram * 0 + 0.9, ngram * 0 + 0.1)[0] == 1.0  # a useless n-gram gets no weight
    assert choose_weight(ngram * 0 + 0.1, ngram * 0 + 0.9)[0] == 0.0


def test_a_mixed_generator_file_round_trips_refitting_the_same_ngram(tmp_path):
    gen = _mixed_generator()
    gen.save(tmp_path / "g.pt")
    again = MixedGenerator.load(tmp_path / "g.pt")
    assert again.mixture.order == 3 and again.mixture.weight == 0.6
    held = gen.vocab.encode(list("the movie was not")).astype(np.int64)
    assert again.mixture.ngram.probabilities(held, 3) == pytest.approx(gen.mixture.ngram.probabilities(held, 3))
    first = again.generate("the", seed=3, max_length=40, temperature=1.0)
    assert first == gen.generate("the", seed=3, max_length=40, temperature=1.0)
    assert first == again.generate("the", seed=3, max_length=40, temperature=1.0)
    greedy, _ = again.generate("the m", max_length=30, temperature=0.0)
    assert greedy == again.generate("the m", max_length=30, temperature=2.0, top_k=1, seed=8)[0]
    assert greedy.startswith("ovie was"), "greedy text follows the n-gram it was mixed with"
