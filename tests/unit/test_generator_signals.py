"""The generator's signals beside bits per character: sample quality, and the interval on the n-gram gap."""

from __future__ import annotations

import numpy as np
import pytest

from sentipipe.tasks.generator.evaluate import documents
from sentipipe.tasks.generator.gap import block_bootstrap
from sentipipe.tasks.generator.quality import generated_words, sample_quality, vocabulary, words
from sentipipe.tasks.generator.units import UnitSettings, build_vocab, encode_stream, to_units


def test_words_are_lowercased_runs_of_letters_and_digits_split_at_spaces_and_punctuation():
    assert words("The film's END, (really) 10/10!--don't") == ["the", "film's", "end", "really", "10", "10", "don't"]
    assert words("") == [] and words(" ... ") == []
    assert vocabulary(["A cat.", "a dog"]) == {"a", "cat", "dog"}


def test_only_words_with_a_generated_character_count_and_a_word_cut_off_at_the_end_does_not():
    # "movie" + "s" was finished by the model: a generated word; "The" is the prompt's; "gre" is cut off
    assert generated_words("The movie", "s are gre") == ["movies", "are"]
    assert generated_words("The movie", " is fine.") == ["is", "fine"]
    assert generated_words("The movie ", "") == [] and generated_words("", "good") == []


def test_in_vocabulary_is_the_share_of_generated_words_the_training_text_has():
    vocab = vocabulary(["the film is good and the plot is fine"])
    q = sample_quality([("The film", " is gooood and fine. "), ("", "plot blorf is. ")], vocab)
    # generated words: is gooood and fine | plot blorf is -> 5 of 7 known
    assert q["samples"] == 2 and q["words"] == 7
    assert q["in_vocabulary"] == pytest.approx(5 / 7, abs=1e-6)


def test_repeated_3grams_count_a_loop_and_nothing_in_text_that_does_not_repeat():
    vocab = vocabulary(["a b c"])
    loop = sample_quality([("", "the film is the film is the film is. ")], vocab)
    # words: the film is the film is the film is -> 7 trigrams, the last 4 repeat an earlier one
    assert loop["repeated_3grams"] == pytest.approx(4 / 7, abs=1e-6)
    fresh = sample_quality([("", "one two three four five six. ")], vocab)
    assert fresh["repeated_3grams"] == 0.0 and fresh["distinct_2"] == 1.0
    # a repeat across two samples is not a repeat within a sample, but lowers distinct-2 (pooled)
    twice = sample_quality([("", "one two three. "), ("", "one two three. ")], vocab)
    assert twice["repeated_3grams"] == 0.0 and twice["distinct_2"] == pytest.approx(2 / 4)


def test_nothing_to_count_gives_zeros_not_an_error():
    assert sample_quality([], set()) == {
        "samples": 0,
        "words": 0,
        "in_vocabulary": 0.0,
        "repeated_3grams": 0.0,
        "distinct_2": 0.0,
    }


def test_a_stream_decodes_to_its_documents_cut_to_a_number_of_units():
    settings = UnitSettings()
    texts = ["the cat sat", "a dog", "on mats"]
    units = to_units(texts, settings)
    ids = encode_stream(units, build_vocab(units, 1, 100)).astype(np.int64)
    vocab = build_vocab(units, 1, 100)
    assert documents(ids, vocab, settings) == texts
    assert documents(ids, vocab, settings, 4) == ["the ", "a do", "on m"]
    tokens = UnitSettings(unit="token")
    units = to_units(["A good film.", "Bad"], tokens)
    ids = encode_stream(units, build_vocab(units, 1, 100)).astype(np.int64)
    assert documents(ids, build_vocab(units, 1, 100), tokens) == ["A good film.", "Bad"]


def test_the_block_bootstrap_covers_a_known_difference_and_is_seeded():
    rng = np.random.default_rng(0)
    reference = rng.gamma(2.0, 1.0, 20_000)
    # served = reference - 0.1 bits plus noise that drifts along the stream (neighbouring units alike)
    drift = np.repeat(rng.normal(0, 0.5, 200), 100)
    served = reference - 0.1 + drift + rng.normal(0, 0.3, 20_000)
    gap = block_bootstrap(served, reference, blocks=100, resamples=2000, seed=1)
    low, high = gap["interval"]
    assert low < gap["difference"] < high and low < -0.1 < high
    assert gap["blocks"] == 100 and gap["positions"] == 20_000
    assert gap == block_bootstrap(served, reference, blocks=100, resamples=2000, seed=1)
    # the interval scales as the figure does (units to characters)
    halved = block_bootstrap(served, reference, blocks=100, resamples=2000, seed=1, scale=0.5)
    assert halved["interval"] == pytest.approx([low / 2, high / 2], abs=2e-6)


def test_identical_bits_give_a_zero_difference_with_an_interval_of_no_width():
    bits = np.random.default_rng(2).uniform(0.1, 5.0, 1234)
    gap = block_bootstrap(bits, bits.copy())
    assert gap["difference"] == 0.0 and gap["interval"] == [0.0, 0.0]


def test_a_clearly_better_model_has_an_interval_below_zero_and_short_streams_use_fewer_blocks():
    rng = np.random.default_rng(3)
    worse = rng.uniform(1.0, 3.0, 5000)
    assert block_bootstrap(worse - 0.5, worse)["interval"][1] < 0
    assert block_bootstrap(np.ones(7), np.zeros(7))["blocks"] == 7
    with pytest.raises(ValueError, match="equally long"):
        block_bootstrap(np.ones(3), np.ones(4))
