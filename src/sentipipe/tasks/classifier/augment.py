"""Texts for the student to learn the teacher from: variants of the training texts (Tang et al., 2019).

Each training text, as the classifier's tokens, yields up to `n` variants:
every word is masked (the student sees `<unk>`, the teacher `[MASK]`) with
probability 0.1, else swapped with probability 0.1 for a word of the training
vocabulary (half the time one of its 10 nearest neighbours in the embedding
matrix, a stand-in for a part-of-speech tagger; else a word of the same
frequency), and with probability 0.25 only an n-gram (n from 1 to 5) is kept.

With `contrast` on, negation and contrast edits as well: an existing negator
removed, a "not" inserted after a copula or before a sentiment adjective, an
adjective swapped for one of the opposite polarity, two training texts joined
by a connective, short n-grams of texts of opposite labels joined by "but".
The adjective lists here share no word with the behavioural suite's
(behaviour.py): the suite stays a test of what was not shown.

The teacher labels every variant; a variant's label is only ever the
teacher's logits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from sentipipe.tasks.classifier import clause_syntax

MASK_STUDENT, MASK_TEACHER = "<unk>", "[MASK]"
POSITIVE = """great funny fun entertaining enjoyable clever touching engaging smart witty
compelling fresh original memorable powerful impressive hilarious solid likable sweet fine
strong interesting thoughtful intelligent inventive satisfying warm amazing remarkable effective rich
poignant refreshing perfect pleasant watchable worthwhile stunning affecting heartfelt absorbing inspired
exciting fascinating""".split()
NEGATIVE = """bad stupid predictable lame weak flat bland mediocre tiresome unfunny forgettable incoherent
pretentious silly shallow sloppy annoying painful disappointing uninspired ridiculous trite generic tired
messy dreary hollow overlong lazy poor horrible cheap unpleasant empty slow banal tepid bloated contrived
formulaic mindless dumb ugly wasted""".split()
COPULAS = {"is", "are", "was", "were", "be", "'s", "'re", "seems", "feels"}
NEGATORS = {"not", "n't", "never"}
CONTRACTIONS = {"ca": "can", "wo": "will", "sha": "shall"}  # "ca n't" without "n't"
CONNECTIVES = ("but", "although", "yet", "however")
CLOSERS = {".", "!", "?", "...", ";", ":", ","}


def render(tokens: Sequence[str], spaces: Sequence[bool]) -> str:
    """The teacher's text: masks as [MASK], the original spacing."""
    return "".join(
        (MASK_TEACHER if t == MASK_STUDENT else t) + (" " if s else "") for t, s in zip(tokens, spaces)
    ).strip()


def _is_word(token: str) -> bool:
    return any(c.isalpha() for c in token)


NEIGHBOUR_ROWS = 256  # words a block of the similarity search: 256 x 50,000 is 0.2 GB with argpartition's copies


class Swapper:
    """Replacement words: nearest neighbours in the embedding matrix, or words of the same frequency."""

    def __init__(
        self, tokens: list[str], counts: np.ndarray, matrix: np.ndarray, rng: np.random.Generator, k: int = 10
    ):
        self.tokens, self.rng = tokens, rng
        self.index = {t: i for i, t in enumerate(tokens)}
        words = np.array([i for i, t in enumerate(tokens) if i >= 2 and t.isalpha()])
        bins = np.floor(np.log2(np.maximum(counts, 1))).astype(int)
        self.bins = bins
        self.by_bin = {b: words[bins[words] == b] for b in np.unique(bins[words])} if len(words) else {}
        unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True).clip(1e-8)
        self.neighbours: dict[int, np.ndarray] = {}
        k = min(k, max(len(words) - 1, 1))
        for start in range(0, len(words), NEIGHBOUR_ROWS):
            block = words[start : start + NEIGHBOUR_ROWS]
            sims = unit[block] @ unit[words].T
            sims[np.arange(len(block)), np.arange(start, start + len(block))] = -2.0  # not the word itself
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if len(words) > 1 else np.zeros((len(block), 1), int)
            for row, i in enumerate(block):
                self.neighbours[int(i)] = words[top[row]]

    def swap(self, word: str) -> str:
        i = self.index.get(word)
        if i is None or i not in self.neighbours:
            return word
        pool = self.neighbours[i] if self.rng.random() < 0.5 else self.by_bin.get(int(self.bins[i]), self.neighbours[i])
        return self.tokens[int(pool[self.rng.integers(len(pool))])]


def tang(tokens, spaces, n, rng, swapper, p_mask=0.1, p_swap=0.1, p_ngram=0.25) -> list[tuple[list, list]]:
    """Up to n distinct variants of one text: masks, swaps, n-grams."""
    seen, out = {tuple(tokens)}, []
    for _ in range(n * 2):
        if len(out) >= n:
            break
        words = list(tokens)
        for i, token in enumerate(words):
            if _is_word(token):
                draw = rng.random()
                if draw < p_mask:
                    words[i] = MASK_STUDENT
                elif draw < p_mask + p_swap:
                    words[i] = swapper.swap(token)
        gaps = list(spaces)
        if rng.random() < p_ngram and len(words) > 1:
            size = min(int(rng.integers(1, 6)), len(words))
            start = int(rng.integers(0, len(words) - size + 1))
            words, gaps = words[start : start + size], gaps[start : start + size]
        if tuple(words) in seen or all(w == MASK_STUDENT for w in words):
            continue
        seen.add(tuple(words))
        out.append((words, gaps))
    return out


def _without_end(tokens, spaces):
    words, gaps = list(tokens), list(spaces)
    while words and words[-1] in CLOSERS:
        words, gaps = words[:-1], gaps[:-1]
    if gaps:
        gaps[-1] = False
    return words, gaps


def contrast(
    texts: list[tuple[list, list]], labels: np.ndarray, rng: np.random.Generator
) -> Iterator[tuple[list, list, str]]:
    """Negation and contrast edits of the training texts (binary labels 0/1); (tokens, spaces, kind), made as they
    are asked for (the teacher labels them in chunks)."""
    positive, negative = set(POSITIVE), set(NEGATIVE)
    by_label = {int(k): np.flatnonzero(labels == k) for k in np.unique(labels)}
    short = np.array([len(t) <= 25 for t, _ in texts])
    for i, (tokens, spaces) in enumerate(texts):
        negators = [j for j, t in enumerate(tokens) if t in NEGATORS]
        adjectives = [j for j, t in enumerate(tokens) if t in positive or t in negative]
        words, gaps = list(tokens), list(spaces)
        if negators:
            j = int(rng.choice(negators))
            if words[j] == "n't" and j > 0:
                words[j - 1], gaps[j - 1] = CONTRACTIONS.get(words[j - 1], words[j - 1]), gaps[j]
            del words[j], gaps[j]
            if words:
                yield (words, gaps, "negator_removed")
        else:
            copulas = [j for j, t in enumerate(tokens) if t in COPULAS and j + 1 < len(tokens)]
            if copulas or adjectives:
                j = int(rng.choice(copulas)) + 1 if copulas else int(rng.choice(adjectives))
                if copulas:
                    gaps[j - 1] = True
                words.insert(j, "not")
                gaps.insert(j, True)
                yield (words, gaps, "not_inserted")
        if adjectives:
            j = int(rng.choice(adjectives))
            words = list(tokens)
            words[j] = str(rng.choice(NEGATIVE if tokens[j] in positive else POSITIVE))
            yield (words, list(spaces), "opposite_adjective")
        other = 1 - int(labels[i])
        if short[i] and other in by_label:
            pool = by_label[other] if rng.random() < 0.5 else by_label[int(labels[i])]
            k = int(rng.choice(pool))
            if short[k] and k != i:
                a, a_gaps = _without_end(tokens, spaces)
                b, b_gaps = list(texts[k][0]), list(texts[k][1])
                connective = CONNECTIVES[int(rng.integers(len(CONNECTIVES)))]
                if a and b:
                    if connective == "although":
                        yield (["although", *a, ",", *b], [True, *a_gaps[:-1], False, True, *b_gaps], "joined")
                    elif connective == "however":
                        yield (
                            ([*a, ";", "however", ",", *b], [*a_gaps[:-1], False, True, False, True, *b_gaps], "joined")
                        )
                    else:
                        yield ([*a, ",", connective, *b], [*a_gaps[:-1], False, True, True, *b_gaps], "joined")
        if len(tokens) >= 2 and other in by_label:
            k = int(rng.choice(by_label[other]))
            pieces = []
            for words, gaps in (texts[i], texts[k]):
                words, _ = _without_end(words, gaps)
                if words:
                    size = min(int(rng.integers(2, 7)), len(words))
                    start = int(rng.integers(0, len(words) - size + 1))
                    pieces.append(words[start : start + size])
            if len(pieces) == 2:
                first, second = pieces if rng.random() < 0.5 else pieces[::-1]
                words = [*first, "but", *second]
                yield (words, [True] * (len(words) - 1) + [False], "short_contrast")


DETERMINERS = {"the", "this", "that", "its", "his", "her", "their", "our"}
SUBJECT_ROWS = 100_000  # training sequences scanned for subjects at most
SYNTAX_SHARE = 0.5  # of the rule clauses, those in clause_syntax.py's varied syntax (decided on validation cases)
NEGATIONS = (("not",), ("never",), ("n't",))


def subjects(texts: Sequence[Sequence[str]], exclude: set[str]) -> list[tuple[str, ...]]:
    """Subjects as the corpus writes them before "is" or "was": "the plot", "this flick", "it".

    A subject whose noun is a word of `exclude` (every word of the behavioural suite) is left out.
    """
    found, banned = {("it",)}, exclude | DETERMINERS
    for tokens in texts:
        for det, noun, verb in zip(tokens, tokens[1:], tokens[2:]):
            if verb in ("is", "was") and det in DETERMINERS and noun.isalpha() and noun not in banned:
                found.add((det, noun))
    return sorted(found)


def subjects_of_ids(
    ids: np.ndarray, offsets: np.ndarray, rows: np.ndarray, tokens: Sequence[str], exclude: set[str]
) -> list[tuple[str, ...]]:
    """`subjects` of the sequences `rows` (a boolean mask) of a split stored as ids: the same pairs, found with
    array operations a slice of ids at a time. The train stage passes the first SUBJECT_ROWS sequences of a
    larger split (subjects are common words: a hundred thousand reviews name them all)."""
    index = {t: i for i, t in enumerate(tokens)}
    dets = np.array([index[d] for d in DETERMINERS if d in index], dtype=np.int64)
    verbs = np.array([index[v] for v in ("is", "was") if v in index], dtype=np.int64)
    found, banned = {("it",)}, exclude | DETERMINERS
    step = 1 << 24
    for start in range(0, max(len(ids) - 2, 0), step):
        window = np.asarray(ids[start : start + step + 2])
        at = np.flatnonzero(np.isin(window[:-2], dets) & np.isin(window[2:], verbs)) + start
        row = np.searchsorted(offsets, at, side="right") - 1  # the sequence each triple starts in
        at = at[(at + 3 <= offsets[row + 1]) & rows[row]]
        for det, noun in set(zip(np.asarray(ids[at]).tolist(), np.asarray(ids[at + 1]).tolist(), strict=True)):
            word = tokens[noun]
            if word.isalpha() and word not in banned:
                found.add((tokens[det], word))
    return sorted(found)


def _clause(found, pools, rng: np.random.Generator, polarity: int, negated: bool) -> list[str]:
    """A subject, "is" or "was", a negator if `negated`, and an adjective; its rule label is polarity ^ negated."""
    adjective = pools[polarity][int(rng.integers(len(pools[polarity])))]
    negator = list(NEGATIONS[int(rng.integers(len(NEGATIONS)))]) if negated else []
    if negated and rng.random() < 0.15:
        return ["not", adjective]  # the bare phrase, as a one-line review writes it
    return [*found[int(rng.integers(len(found)))], str(rng.choice(("is", "was"))), *negator, adjective]


def _joined(first: list[str], second: list[str], rng: np.random.Generator) -> list[str]:
    """ "A , but B .", "A , yet B ." or "although A , B .": B's label, whatever A says."""
    a, _ = _without_end(first, [True] * len(first))
    b, _ = _without_end(second, [True] * len(second))
    connective = str(rng.choice(("but", "yet", "although")))
    return ["although", *a, ",", *b, "."] if connective == "although" else [*a, ",", connective, *b, "."]


def rule_clauses(
    texts: Sequence[Sequence[str]],
    vocab: set[str],
    n: int,
    rng: np.random.Generator,
    exclude: set[str],
    syntax: float = SYNTAX_SHARE,
    found: list[tuple[str, ...]] | None = None,
) -> list[tuple[list[str], int]]:
    """n short texts labelled by rule (1 positive, 0 negative): a share `syntax` in the varied syntax of
    clause_syntax.py (verbs, idioms, double negation, other domains), the rest built from a corpus subject,
    "is" or "was", maybe a negator, and an adjective of this module's lists.

    - two thirds of the adjective clauses are one clause: the adjective's polarity, flipped by "not",
      "never" or "n't"; a quarter of them affirmed, so that a negator is no cue on its own;
    - a third join two clauses of opposite labels: "A, but B" and "A, yet B" take B's label,
      "although A, B" too; "A but B" with the clauses swapped keeps it honest about order. The varied
      clauses are joined the same way, a third of them.

    The teacher reads "the plot is not bad" as negative too (the corpus barely negates a negative word),
    so these labels come from the rule, not from the teacher.
    """
    pools = [[w for w in NEGATIVE if w in vocab], [w for w in POSITIVE if w in vocab]]
    found = subjects(texts, exclude) if found is None else found  # found: subjects_of_ids, already scanned
    if not all(pools) or n <= 0:
        return []
    varied = clause_syntax.clauses(found, (pools[0], pools[1]), vocab, round(n * syntax), rng)
    out = []
    for _ in range(n - len(varied)):
        polarity, negated = int(rng.integers(2)), bool(rng.random() >= 0.25)
        first = _clause(found, pools, rng, polarity, negated)
        label = polarity ^ int(negated)
        if rng.random() < 1 / 3:
            other, negated = 1 - label, bool(rng.random() < 0.25)
            second = _clause(found, pools, rng, other ^ int(negated), negated)
            out.append((_joined(first, [*second, "."], rng), other))
        else:
            out.append(([*first, "."], label))
    by_label = [[c for c, y in varied if y == k] for k in (0, 1)]
    for words, label in varied:
        if rng.random() < 1 / 3 and by_label[1 - label]:
            first = by_label[1 - label][int(rng.integers(len(by_label[1 - label])))]
            out.append((_joined(first, words, rng), label))
        else:
            out.append((words, label))
    return out
