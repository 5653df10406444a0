"""The lexical path's naive Bayes start: the ratios of texts holding each n-gram, in the network's own features."""

import numpy as np
import torch

from sentipipe.tasks.classifier import lexical
from sentipipe.tasks.classifier.network import ClassifierSpec, build_model
from sentipipe.text.encoding import EncodedSplit


def _split(seqs, labels) -> EncodedSplit:
    ids = np.concatenate(seqs).astype(np.int32)
    return EncodedSplit(ids, np.r_[0, np.cumsum([len(s) for s in seqs])].astype(np.int64), np.array(labels))


def test_nb_ratios_favour_the_class_whose_texts_hold_the_word_once_per_text():
    # word 2 only in positive texts (once and twice: counted once each), word 3 only in negative ones
    split = _split([[2, 4], [2, 2, 4], [3, 4], [3, 4, 5], [3, 9]], [1, 1, 0, 0, -1])  # -1: no label, not counted
    words, pairs = lexical.nb_weights(split, 6, 64, 2, pairs=True)
    assert words[2, 1] > 0 > words[2, 0] and words[3, 0] > 0 > words[3, 1]
    assert 0 < words[5, 0] < words[3, 0], "one negative text holds word 5, two hold word 3"
    assert words[0].tolist() == [0.0, 0.0], "padding has no weight"
    assert (pairs != 0).any(1).sum() == 4, "four distinct pairs in labelled texts; other buckets stay zero"


def test_the_network_starts_as_the_naive_bayes_classifier():
    split = _split([[2, 4], [2, 4, 4], [3, 4], [3, 4, 5]], [1, 1, 0, 0])
    model = build_model(
        ClassifierSpec(vocab_size=6, embed_dim=4, num_classes=2, hidden_size=4, lexical="bigrams", lexical_buckets=64)
    )
    report = lexical.init_nb(model, split, scale=0.5)
    logits = model._lexical(torch.tensor([[2, 4], [3, 4]]), torch.tensor([2, 2]))
    assert logits.argmax(1).tolist() == [1, 0] and report["init"] == "nb" and report["pairs_seen"] == 4
