"""Rule-labelled clauses in the syntax reviews use beyond "the plot is not bad": verbs, idioms, double
negation, other domains, first person, passive, questions.

Trained only on adjective clauses, a model learns one grammar ("X is not Y") and reads "it failed to
engage me" or "there is not a hint of humor in it" by its words alone. Each frame here carries one
polarity-bearing slot (a verb, an idiom, a noun, an adjective) and says whether the frame keeps or
flips it, so the label comes from the rule: "{o} failed to {c.base} me ." flips, "i was {c.past} by
{o} ." keeps. Some frames say their label outright ("i could n't stand {o} .").

The words are this module's own: no word of any behavioural set (behaviour.held_out()) but syntax
(behaviour_other_syntax.FUNCTION_WORDS), unit-tested; texts are spaCy's lower-cased tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

WHO = ("i", "we", "my wife", "my husband", "my kids", "my brother", "my parents", "the critics")
LIKING = (("like", "liked"), ("enjoy", "enjoyed"), ("respect", "respected"), ("dig", "dug"))  # {who} ___ {o}
PLEASING = (  # {o} ___ me
    ("entertain", "entertained"),
    ("engage", "engaged"),
    ("please", "pleased"),
    ("touch", "touched"),
    ("excite", "excited"),
    ("intrigue", "intrigued"),
    ("satisfy", "satisfied"),
    ("fascinate", "fascinated"),
    ("interest", "interested"),
    ("reward", "rewarded"),
    ("absorb", "absorbed"),
    ("stun", "stunned"),
    ("awe", "awed"),
)
DISPLEASING = (
    ("bore", "bored"),
    ("disappoint", "disappointed"),
    ("puzzle", "puzzled"),
    ("exhaust", "exhausted"),
    ("depress", "depressed"),
    ("disgust", "disgusted"),
    ("baffle", "baffled"),
    ("appall", "appalled"),
    ("horrify", "horrified"),
    ("embarrass", "embarrassed"),
    ("repel", "repelled"),
)
VIRTUES = ("humor", "energy", "style", "imagination", "insight", "beauty", "craft", "skill", "warmth", "intelligence")
FLAWS = ("flaws", "sentimentality", "pretension", "confusion", "boredom", "excess", "silliness", "contrivance")
GOOD_ADVICE = ("rent", "seek out", "track down")  # what to do with it: {r} {o}
BAD_ADVICE = ("turn off", "ignore", "forget about")
PRAISE_IDIOMS = (  # noun phrases
    "a masterpiece",
    "a triumph",
    "a winner",
    "a knockout",
    "a treat",
    "magic",
    "a breath of fresh air",
    "a revelation",
    "a class act",
)
SCORN_IDIOMS = ("a stinker", "a catastrophe", "a cure for insomnia", "a headache", "a bomb", "a yawner", "a joke")
PRAISE_ACTS = ("nails it", "fires on all cylinders", "pulls it off", "rises to the occasion")  # verb phrases
SCORN_ACTS = ("comes up short", "is out of its depth", "lays an egg", "bombs", "fizzles", "collapses under its weight")
THINGS = (  # other domains' subjects
    *("the food", "the service", "the meal", "the dinner", "the coffee", "the bread", "the burger", "the wine"),
    *("the phone", "the device", "the product", "the software", "the game", "the manual", "the car"),
    *("the store", "the shop", "the house", "the apartment", "the beach", "the museum", "the holiday"),
    *("the teacher", "the course", "the guide", "the delivery", "the seller"),
)
GOOD_THINGS = (
    *("tasty", "friendly", "helpful", "reliable", "cozy", "convenient", "efficient", "polite", "generous"),
    *("sturdy", "durable", "responsive", "clean"),
)
BAD_THINGS = ("dirty", "noisy", "expensive", "stale", "greasy", "cold", "dusty", "flimsy", "buggy", "useless")
GOOD_DEEDS = ("does the job", "does what it promises", "was a bargain", "was great value", "is a smash")
BAD_DEEDS = ("showed up late", "never showed up", "is a nightmare", "was a joke", "was a disappointment")

# (template, flip): the slot's polarity, kept (0) or flipped (1). Slots: {o} what is judged, {who} a
# viewer, {v.*} a viewer's verb, {c.*} a verb of what it did to the viewer, {n} a noun it has, {a} an
# adjective, {i} an idiom (noun phrase), {act} an idiom (verb phrase), {s} a thing of another domain,
# {t} its adjective, {d} what it did.
FRAMES = {
    "verbs": (
        ("{who} {v.past} {o} .", 0),
        ("{who} did n't {v.base} {o} .", 1),
        ("{who} never {v.past} {o} .", 1),
        ("{who} could n't {v.base} {o} .", 1),
        ("nobody could {v.base} {o} .", 1),
        ("who would n't {v.base} {o} ?", 0),
        ("i wo n't pretend i did n't {v.base} {o} .", 0),
        ("{o} {c.past} me .", 0),
        ("{o} did n't {c.base} me .", 1),
        ("{o} failed to {c.base} me .", 1),
        ("{o} managed to {c.base} me .", 0),
        ("{o} never {c.past} me .", 1),
        ("i was {c.past} by {o} .", 0),
        ("i was n't {c.past} by {o} .", 1),
        ("i was never {c.past} .", 1),
        ("did {o} {c.base} me ? absolutely .", 0),
        ("did {o} {c.base} me ? not at all .", 1),
        ("{o} is sure to {c.base} you .", 0),
        ("at no point did {o} {c.base} me .", 1),
        ("{o} never once {c.past} me .", 1),
        ("never have i been so {c.past} .", 0),
        ("i have never been more {c.past} .", 0),
        ("what is there not to {v.base} about {o} ?", 0),
        ("you should {r} {o} .", 0),
        ("everyone should {r} {o} .", 0),
        ("you should n't {r} {o} .", 1),
        ("nobody should {r} {o} .", 1),
        ("do n't {r} {o} .", 1),
    ),
    "idioms": (
        ("{o} is {i} .", 0),
        ("{o} was {i} .", 0),
        ("{i} .", 0),
        ("what {i} !", 0),
        ("i thought {o} was {i} .", 0),
        ("{o} {act} .", 0),
        ("i thought {o} {act} .", 0),
    ),
    "double_negation": (
        ("{o} is not without {n} .", 0),
        ("{o} has no {n} .", 1),
        ("{o} has plenty of {n} .", 0),
        ("{o} is short on {n} .", 1),
        ("{o} is not short on {n} .", 0),
        ("there is not a hint of {n} in {o} .", 1),
        ("there is not an ounce of {n} in {o} .", 1),
        ("{o} has zero {n} .", 1),
        ("{o} has barely any {n} .", 1),
        ("{n} is in short supply .", 1),
        ("{o} is bursting with {n} .", 0),
        ("{o} is packed with {n} .", 0),
        ("{o} has nothing but {n} .", 0),
        ("{o} has its share of {n} .", 0),
        ("{o} never fails to {c.base} me .", 0),
        ("{o} did n't fail to {c.base} me .", 0),
        ("{o} is anything but {a} .", 1),
        ("{o} could n't be more {a} .", 0),
        ("{o} could n't have been less {a} .", 1),
        ("{o} is not exactly {a} .", 1),
        ("{o} seemed {a} to me .", 0),
        ("{o} did n't seem {a} to me .", 1),
        ("i ca n't imagine anyone who would n't {v.base} {o} .", 0),
    ),
    "other_domains": (
        ("{s} was {t} .", 0),
        ("{s} is {t} .", 0),
        ("{s} was n't {t} .", 1),
        ("{s} is not {t} .", 1),
        ("{s} was never {t} .", 1),
        ("{s} {d} .", 0),
        ("{who} {v.past} {s} .", 0),
        ("{who} did n't {v.base} {s} .", 1),
        ("{s} did n't {c.base} me .", 1),
    ),
}
SAID = {  # frames that say their label
    "verbs": (
        ("i could n't stand {o} .", 0),
        ("i could barely stand {o} .", 0),
        ("i had to endure {o} .", 0),
        ("i suffered through {o} .", 0),
        ("i could n't get into {o} .", 0),
        ("i would recommend {o} .", 1),
        ("i would n't recommend {o} .", 0),
        ("i would never recommend {o} .", 0),
        ("i ca n't recommend {o} enough .", 1),
        ("never again .", 0),
    ),
    "other_domains": (
        ("we will be returning .", 1),
        ("we will never return .", 0),
        ("five stars .", 1),
        ("zero stars .", 0),
    ),
}
SLOTS = {  # slot: (negative fillers, positive fillers)
    "v": ((), LIKING),
    "r": (BAD_ADVICE, GOOD_ADVICE),
    "c": (DISPLEASING, PLEASING),
    "n": (FLAWS, VIRTUES),
    "i": (SCORN_IDIOMS, PRAISE_IDIOMS),
    "act": (SCORN_ACTS, PRAISE_ACTS),
    "t": (BAD_THINGS, GOOD_THINGS),
    "d": (BAD_DEEDS, GOOD_DEEDS),
}
_SLOT = re.compile(r"\{(\w+)(?:\.(base|past))?\}")


def words() -> set[str]:
    """Every word this module can write (before the mined subjects and the adjectives it is given)."""
    fillers = [WHO, THINGS, *(x for pools in SLOTS.values() for x in pools)]
    text = " ".join(" ".join(f if isinstance(f, str) else " ".join(f) for f in pool) for pool in fillers)
    templates = [t for frames in (*FRAMES.values(), *SAID.values()) for t, _ in frames]
    return set(_SLOT.sub(" ", " ".join(templates)).split()) | set(text.split())


def _fill(template: str, choose: Callable[[str], str], polarity_slot: tuple[str, str | tuple] | None) -> list[str]:
    """The template's tokens, each slot replaced by a chosen filler (a verb's base or past form)."""

    def sub(match: re.Match) -> str:
        slot, form = match.group(1), match.group(2)
        filler = polarity_slot[1] if polarity_slot and slot == polarity_slot[0] else choose(slot)
        return filler[("base", "past").index(form)] if form else filler

    return _SLOT.sub(sub, template).split()


def clauses(
    subjects: Sequence[Sequence[str]],
    adjectives: tuple[Sequence[str], Sequence[str]],
    vocab: set[str],
    n: int,
    rng: np.random.Generator,
) -> list[tuple[list[str], int]]:
    """n clauses labelled by rule (1 positive, 0 negative), the four kinds in turn.

    `subjects`: what a review judges, as the corpus writes it ("the plot", "it"); `adjectives`: (negative,
    positive) words for {a}. A frame or filler with a word outside `vocab` is never used (it would read
    as <unk>); none usable, no clause.
    """

    def known(text: str | tuple[str, str]) -> bool:
        return all(w in vocab for w in _SLOT.sub(" ", " ".join([text] if isinstance(text, str) else text)).split())

    def usable_filler(filler: str | tuple[str, str]) -> bool:  # a verb: a form some frame asks for is known
        return known(filler) if isinstance(filler, str) else known(filler[0]) or known(filler[1])

    pools = {slot: tuple([f for f in side if usable_filler(f)] for side in sides) for slot, sides in SLOTS.items()}
    pools["a"] = tuple([w for w in side if w in vocab] for side in adjectives)
    plain = {"o": [" ".join(s) for s in subjects if tuple(s) != ("it",) and known(" ".join(s))]}
    plain.update(who=[w for w in WHO if known(w)], s=[w for w in THINGS if known(w)])

    def choose(slot: str) -> str:
        if slot == "o" and (not plain["o"] or rng.random() < 1 / 3):
            return "it"
        pool = plain[slot] if slot in plain else pools[slot][0] + pools[slot][1]
        return pool[int(rng.integers(len(pool)))]

    def writable(template: str, slot: str) -> tuple[list, list]:
        """The slot's (negative, positive) fillers whose forms this template asks for are known (verbs)."""
        forms = [
            ("base", "past").index(m.group(2)) for m in _SLOT.finditer(template) if m.group(1) == slot and m.group(2)
        ]
        return tuple([f for f in side if all(known(f[i]) for i in forms)] for side in pools[slot])

    def usable(template: str) -> bool:
        slots = {m.group(1) for m in _SLOT.finditer(template)}
        return known(template) and all(
            s == "o" or (plain[s] if s in plain else any(writable(template, s))) for s in slots
        )

    options = {
        kind: [(t, f, False) for t, f in FRAMES[kind] if usable(t)]
        + [(t, y, True) for t, y in SAID.get(kind, ()) if usable(t)]
        for kind in sorted(FRAMES)
    }
    kinds = [kind for kind, frames in options.items() if frames]
    out: list[tuple[list[str], int]] = []
    for k in range(n if kinds else 0):
        frames = options[kinds[k % len(kinds)]]
        template, rule, said = frames[int(rng.integers(len(frames)))]
        if said:
            out.append((_fill(template, choose, None), rule))
            continue
        slot = next(m.group(1) for m in _SLOT.finditer(template) if m.group(1) in pools)
        sides = writable(template, slot)
        polarity = int(rng.integers(2)) if all(sides) else int(bool(sides[1]))
        filler = sides[polarity][int(rng.integers(len(sides[polarity])))]
        out.append((_fill(template, choose, (slot, filler)), polarity ^ rule))
    return [(_spelled_out(words) if rng.random() < 0.5 else words, label) for words, label in out]


def _spelled_out(words: list[str]) -> list[str]:
    """ "did n't" as "did not", "ca n't" as "can not": reviews write both."""
    out = list(words)
    for j, w in enumerate(out):
        if w == "n't":
            out[j] = "not"
            if j and out[j - 1] in ("ca", "wo"):
                out[j - 1] = {"ca": "can", "wo": "will"}[out[j - 1]]
    return out
