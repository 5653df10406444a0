"""The lexical path's starting point: naive Bayes log-count ratios of the words and word pairs (Wang and Manning).

With `lexical_init: nb`, each word's (and hashed word pair's) weight for a class
starts at the log-ratio of the share of the class's training texts that hold it
to the share of the other texts that do (one against the rest; add-one
smoothing), times `scale`: the network starts as a naive Bayes classifier over
binary n-gram features, which the recurrent path and training then refine. The
features are the network's own (network.ClassifierNetwork._lexical: word ids,
pairs hashed into its buckets), counted once per text as NBSVM does.
"""

from __future__ import annotations

import numpy as np
import torch

from sentipipe.tasks.classifier.network import ClassifierNetwork
from sentipipe.text.encoding import EncodedSplit

PAIR_PRIME = 1_000_003  # as network.ClassifierNetwork._lexical hashes a pair


def _presence(keys: np.ndarray, docs: np.ndarray, size: int, labels: np.ndarray, classes: int) -> np.ndarray:
    """(size, classes): how many texts of each class hold each key at least once."""
    both = np.unique(docs.astype(np.int64) * size + keys.astype(np.int64))
    doc, key = both // size, both % size
    counts = np.zeros((size, classes), dtype=np.float64)
    np.add.at(counts, (key, labels[doc]), 1.0)
    return counts


def log_count_ratios(counts: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """(size, classes): per class, log(p / |p|) - log(q / |q|) with p its texts' counts and q the others'."""
    total = counts.sum(1, keepdims=True)
    p = counts + alpha
    q = total - counts + alpha
    return np.log(p / p.sum(0, keepdims=True)) - np.log(q / q.sum(0, keepdims=True))


def nb_weights(split: EncodedSplit, vocab_size: int, buckets: int, classes: int, pairs: bool):
    """The word and pair weights of a naive Bayes start, from the labelled rows of `split` (-1: no label)."""
    labelled = np.flatnonzero(split.labels >= 0)
    lengths = split.lengths[labelled]
    starts = split.offsets[labelled]
    index = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    words = split.ids[index].astype(np.int64)
    words = np.where(words >= vocab_size, 1, words)
    docs = np.repeat(np.arange(len(labelled)), lengths)
    labels = split.labels[labelled]
    word_ratios = log_count_ratios(_presence(words, docs, vocab_size, labels, classes))
    word_ratios[0] = 0.0  # padding
    pair_ratios = None
    if pairs:
        same = docs[1:] == docs[:-1]
        keys = (words[:-1][same] * PAIR_PRIME + words[1:][same]) % buckets
        counts = _presence(keys, docs[1:][same], buckets, labels, classes)
        pair_ratios = log_count_ratios(counts)
        pair_ratios[counts.sum(1) == 0] = 0.0  # a bucket no training pair falls in starts at zero
    return word_ratios, pair_ratios


@torch.no_grad()
def init_nb(model: ClassifierNetwork, split: EncodedSplit, scale: float) -> dict:
    """Set the lexical path's weights to the naive Bayes start; what was set, for the report."""
    spec = model.spec
    words, pairs = nb_weights(split, spec.vocab_size, spec.lexical_buckets, spec.num_classes, spec.lexical == "bigrams")
    model.lexical_words.weight.copy_(torch.from_numpy(scale * words).to(model.lexical_words.weight))
    if pairs is not None:
        model.lexical_pairs.weight.copy_(torch.from_numpy(scale * pairs).to(model.lexical_pairs.weight))
    return {"init": "nb", "scale": scale, "pairs_seen": int((pairs != 0).any(1).sum()) if pairs is not None else 0}
