"""Behavioural cases in syntax the suite's templates do not use: verbs, idioms, double negation, other domains.

The suite (behaviour.py) fills one grammar, "the film is not X" and "X, but Y". A model
can pass it by learning that grammar rather than the capability; these cases say what
reviewers say the way they say it: "it failed to hold my attention", "it runs out of
steam", "there is no shortage of laughs", "the waiter ignored us for half an hour".

Two parts, each with words of its own:

- `VALIDATION`: templates and hand-written sentences, what choices are made on
  (the rule clauses' syntax and count, augment.py);
- `HELD_OUT`: smaller, hand-written before any choice was made and never looked at
  while choosing: its pass rate is the honest figure.

No content word (anything outside `FUNCTION_WORDS`) of either part is a word of the
suite's two lexicons, of the other part, or of augmentation's lists (unit-tested); both
parts' words join `behaviour.held_out()`, the words training never shows. So the rule
clauses teach syntax, and these cases measure it on words and sentences not shown.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import NamedTuple

CAPABILITIES = ("verbs", "idioms", "double_negation", "other_domains")

# Closed-class words: syntax, which every text shares. Everything else is a content word.
FUNCTION_WORDS = frozenset(
    """a an the this that these those it its i me my myself we us our you your he she
    his her they them their there here who what which whose whom when where how why if than as so too yourself
    is was are were be been being am 's 're 'm 've 'd 'll do does did doing done have has had having
    will would shall should can could may might must ca wo sha
    not n't never no nobody none nothing nowhere neither nor without hardly barely cannot fail fails failed failing
    of to in on at for with by from about into onto over under after before through during until up down
    out off again once just only also even still all any some every each both either more much many
    few less least other another such own same and or but yet although though however because while
    whether anything something everything anyone someone everyone""".split()
)

_CONTRACTIONS = (("can't", "can not"), ("won't", "will not"), ("n't", " not"), ("'s", " 's"), ("'re", " 're"))


def content_words(text: str) -> set[str]:
    """A text's words that are not syntax, lower-cased; contractions read as their parts ("can't": can, not)."""
    text = text.lower()
    for short, long in _CONTRACTIONS:
        text = text.replace(short, long)
    return {w for w in re.findall(r"[a-z]+|'[a-z]+", text) if w not in FUNCTION_WORDS}


@dataclass(frozen=True)
class Part:
    """One part's words: template fillers and hand-written sentences, (text, label) per capability."""

    name: str
    sentences: dict[tuple[str, str], tuple[str, ...]]  # (capability, label): hand-written texts
    objects: tuple[str, ...] = ()  # what a verb acts on: "this thriller"
    liked: tuple[tuple[str, str], ...] = ()  # (base, past) verbs of a viewer who liked it: ("admire", "admired")
    disliked: tuple[tuple[str, str], ...] = ()
    pleasing: tuple[tuple[str, str], ...] = ()  # it ___ me: ("thrill", "thrilled")
    displeasing: tuple[tuple[str, str], ...] = ()
    virtues: tuple[str, ...] = ()  # nouns a work has when it is good: "wit"
    flaws: tuple[str, ...] = ()
    acclaim: tuple[str, ...] = ()  # idioms of praise, as verb phrases: "delivers the goods"
    scorn: tuple[str, ...] = ()
    domains: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()  # (subject, praises, complaints)


# Written first, before any choice was made; never looked at while choosing. Hand-written only.
HELD_OUT = Part(
    name="held_out",
    sentences={
        ("verbs", "positive"): (
            "I cherished every second of it.",
            "It won me over within minutes.",
            "We laughed from start to finish.",
            "It kept me glued to my seat.",
            "Nobody should pass this up.",
            "It never fails to cheer me up.",
            "I could not stop grinning.",
            "It exceeded my expectations.",
            "My whole family raves about it.",
            "I would gladly pay to watch it again.",
            "Everyone around me applauded at the end.",
            "It deserves every award it gets.",
        ),
        ("verbs", "negative"): (
            "I dozed off halfway through.",
            "It failed to hold my attention.",
            "I regretted buying a ticket.",
            "We walked out after twenty minutes.",
            "Nobody should bother with this.",
            "It never manages to surprise anyone.",
            "I kept checking my watch.",
            "It insults the audience.",
            "I resented paying for it.",
            "It squanders a talented crew.",
            "I could barely stay awake.",
            "It made me want to leave early.",
        ),
        ("idioms", "positive"): (
            "It is a feast for the eyes.",
            "It blew me away.",
            "This is a keeper.",
            "It knocks it out of the park.",
            "Thumbs up from me.",
            "It is the genuine article.",
            "It steals the show.",
            "Worth the price of admission.",
            "An instant crowd-pleaser.",
            "It struck a chord with me.",
            "It is head and shoulders above the rest.",
            "It left me on cloud nine.",
        ),
        ("idioms", "negative"): (
            "It is a snoozefest.",
            "It misses by a mile.",
            "It falls apart in the second half.",
            "It is a train wreck.",
            "It runs out of steam early.",
            "It is a recipe for disaster.",
            "It is dead on arrival.",
            "It left a sour taste in my mouth.",
            "It never gets off the ground.",
            "It goes nowhere fast.",
            "It is all sizzle and no steak.",
            "Everyone involved phoned it in.",
        ),
        ("double_negation", "positive"): (
            "It is not without merit.",
            "I would hardly describe it as unwatchable.",
            "There is no shortage of laughs.",
            "Not once did I feel restless.",
            "You can't help but smile.",
            "It is hard to find fault with it.",
            "I cannot think of anything it does wrong.",
            "It is impossible not to root for them.",
            "I did not dislike a single thing about it.",
            "It is no mean achievement.",
            "Far from unbearable.",
            "Nobody leaves without a grin.",
        ),
        ("double_negation", "negative"): (
            "It isn't that it lacks talent, it just never gels.",
            "It is not without problems, and they sink it.",
            "Not for a second did it fail to irritate me.",
            "There was nothing in it I did not find grating.",
            "I cannot claim I wasn't let down.",
            "It is not unlike watching paint dry.",
            "It is impossible not to cringe.",
            "You cannot help but wince.",
            "It never misses a chance to lecture its viewers.",
            "I could not find a single redeeming quality.",
            "Nobody could accuse it of lacking ambition, but nothing works.",
            "It is not that it lacks heart; it lacks everything else.",
        ),
        ("other_domains", "positive"): (
            "The chef clearly knows what she is doing.",
            "The soup was piping hot and full of flavor.",
            "We will definitely eat here again.",
            "This handset takes crisp photos even at night.",
            "The battery easily lasts all weekend.",
            "The hotel staff went out of their way to help us.",
            "Our room overlooked the harbor and was spotless.",
            "I could not put the book down.",
            "The novel's prose sparkles.",
            "The checkout was quick and painless.",
            "The app never crashes.",
            "The receptionist upgraded us for free.",
        ),
        ("other_domains", "negative"): (
            "The waiter ignored us for half an hour.",
            "The fish had clearly been frozen for months.",
            "We waited forever and the order was still wrong.",
            "The handset overheats whenever I open an app.",
            "The screen cracked within a week.",
            "Customer support never answered my emails.",
            "The room smelled of smoke and the sheets were stained.",
            "The walls were so thin we heard every word next door.",
            "The pool was closed and nobody told us.",
            "I gave up on the book after a few chapters.",
            "The characters in this novel are cardboard cutouts.",
            "The charger stopped working after a month.",
        ),
    },
)


# What choices are made on: templates filled with words of their own, and hand-written sentences.
VALIDATION = Part(
    name="validation",
    objects=("this thriller", "the sequel", "the remake", "this documentary"),
    liked=(("admire", "admired"), ("relish", "relished"), ("savor", "savored"), ("appreciate", "appreciated")),
    disliked=(("despise", "despised"), ("detest", "detested"), ("deplore", "deplored"), ("abhor", "abhorred")),
    pleasing=(("thrill", "thrilled"), ("captivate", "captivated"), ("enthrall", "enthralled"), ("amuse", "amused")),
    displeasing=(
        ("offend", "offended"),
        ("frustrate", "frustrated"),
        ("infuriate", "infuriated"),
        ("alienate", "alienated"),
    ),
    virtues=("wit", "grace", "flair", "ingenuity"),
    flaws=("cliches", "padding", "melodrama", "tedium"),
    acclaim=(
        "delivers the goods",
        "passes with flying colors",
        "raises the bar",
        "is a tour de force",
        "is money well spent",
        "is a home run",
        "is spot on",
        "is top notch",
        "is a slam dunk",
        "has me hooked",
    ),
    scorn=(
        "is a turkey",
        "drops the ball",
        "is a bust",
        "jumps the shark",
        "is a clunker",
        "overstays its welcome",
        "is a letdown",
        "is nothing to write home about",
        "is a rip-off",
        "is a muddle",
    ),
    domains=(
        ("the pasta", ("was delicious", "tasted homemade"), ("was soggy", "arrived lukewarm")),
        ("the waitress", ("was attentive", "was courteous"), ("was surly", "was rude to us")),
        ("the smartphone", ("performs flawlessly", "charges quickly"), ("keeps freezing", "died after a day")),
        ("the headphones", ("are comfortable", "sound crystal clear"), ("hurt my ears", "crackle constantly")),
        ("the suite", ("was immaculate", "was roomy"), ("was filthy", "was cramped")),
        ("the biography", ("is meticulously researched", "is a page-turner"), ("is riddled with errors", "is a slog")),
        ("the flight", ("was smooth", "landed on schedule"), ("was delayed twice", "was bumpy and miserable")),
    ),
    sentences={
        ("verbs", "positive"): (
            "It earned its standing ovation.",
            "I keep telling my friends about it.",
            "It rewards patience.",
            "I hung on every line.",
            "It had the entire theater cheering.",
            "You owe it to yourself to catch it.",
            "It lingered with me for days.",
            "I would happily rewatch it twice.",
        ),
        ("verbs", "negative"): (
            "It bores from the opening frame.",
            "I nodded off twice.",
            "It does nothing with its gifted ensemble.",
            "It strains for effect and achieves nothing.",
            "I wanted my money back.",
            "It meanders on and on.",
            "It puts you to sleep.",
            "Our entire row fell asleep.",
        ),
        ("idioms", "positive"): (
            "It is the cream of the crop.",
            "Hats off to its makers.",
            "It is gold, through and through.",
            "It is a dream come true for fans.",
            "It has legs.",
        ),
        ("idioms", "negative"): (
            "It is a dog's breakfast.",
            "It sinks without a trace.",
            "It pales beside its predecessor.",
            "It is not my cup of tea.",
            "It is a damp squib.",
        ),
        ("double_negation", "positive"): (
            "Not a frame is superfluous.",
            "I was never once unhappy with it.",
            "There is nothing to object to.",
            "It is not uninteresting.",
            "Nobody heads home unhappy.",
            "I never once begrudged the cost.",
            "Its appeal cannot be denied.",
            "You would struggle to name a flaw.",
            "It is never less than engrossing.",
            "I could not disagree more with its detractors.",
        ),
        ("double_negation", "negative"): (
            "It's not that the performers lack charisma; the writing lets them down.",
            "There is no denying it sags.",
            "Nobody would mistake it for a classic.",
            "I could not disagree more with its admirers.",
            "Not in a million years would I go back for more.",
            "It is never less than irksome.",
            "It is no better than a trip to the dentist.",
            "There is not a shred of suspense that is not telegraphed.",
            "I can't deny it grated on me.",
            "It is not that nothing happens; nothing matters.",
        ),
        ("other_domains", "positive"): (
            "The espresso was velvety smooth.",
            "Our server remembered our names.",
            "The mattress was heavenly.",
            "Check-in was a breeze.",
            "This laptop boots in a flash.",
            "The earbuds fit snugly and sound glorious.",
            "The paperback had me reading past midnight.",
            "The parcel arrived ahead of schedule.",
            "The concierge sorted out everything we asked for.",
        ),
        ("other_domains", "negative"): (
            "The lamb was overcooked and chewy.",
            "Our server forgot our drinks twice.",
            "The bed was lumpy and creaky.",
            "The laptop freezes constantly.",
            "The earbuds broke after a fortnight.",
            "The parcel arrived damaged.",
            "The elevator was broken for days.",
            "The wifi was unusable.",
            "The memoir is padded with trivia.",
        ),
    },
)

PARTS = {part.name: part for part in (VALIDATION, HELD_OUT)}


class Case(NamedTuple):
    capability: str
    text: str
    expected: str


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def _templated(x: Part) -> list[Case]:
    """Verbs said and negated, a work's virtues under double negation, other domains' praises and complaints."""
    out: list[Case] = []
    add = out.append
    labels = ("negative", "positive")
    for polarity, verbs in ((1, x.liked), (0, x.disliked)):
        for (base, past), thing in zip(verbs, itertools.cycle(x.objects)):
            add(Case("verbs", f"I {past} {thing}.", labels[polarity]))
            add(Case("verbs", f"I did not {base} {thing}.", labels[1 - polarity]))
            add(Case("double_negation", f"I cannot say I {past} it.", labels[1 - polarity]))
            add(Case("double_negation", f"It is difficult to {base} {thing}.", labels[1 - polarity]))
    for polarity, verbs in ((1, x.pleasing), (0, x.displeasing)):
        for base, past in verbs:
            add(Case("verbs", f"It {past} me.", labels[polarity]))
            add(Case("verbs", f"It did not {base} me.", labels[1 - polarity]))
            add(Case("verbs", f"Not once did it {base} me.", labels[1 - polarity]))
            for thing in x.objects[:2]:
                add(Case("verbs", f"{_sentence(thing)} will {base} you.", labels[polarity]))
    for polarity, idioms in ((1, x.acclaim), (0, x.scorn)):
        for idiom, thing in zip(idioms, itertools.cycle(x.objects)):
            add(Case("idioms", f"It {idiom}.", labels[polarity]))
            add(Case("idioms", f"{_sentence(thing)} {idiom}.", labels[polarity]))
    for polarity, nouns in ((1, x.virtues), (0, x.flaws)):
        for noun in nouns:
            add(Case("double_negation", f"There is no lack of {noun}.", labels[polarity]))
            add(Case("double_negation", f"It is not devoid of {noun}.", labels[polarity]))
            add(Case("double_negation", f"Nobody could say it is without {noun}.", labels[polarity]))
    for subject, praises, complaints in x.domains:
        for polarity, predicates in ((1, praises), (0, complaints)):
            for predicate in predicates:
                add(Case("other_domains", f"{_sentence(subject)} {predicate}.", labels[polarity]))
                copula, *rest = predicate.split()
                if copula in ("is", "was", "are") and len(rest) == 1:
                    add(Case("other_domains", f"{_sentence(subject)} {copula} not {rest[0]}.", labels[1 - polarity]))
    return out


def cases(part: str = "validation") -> list[Case]:
    """The part's cases, the same every run: templates (validation only), then the hand-written sentences."""
    x = PARTS[part]
    return _templated(x) + [Case(cap, text, label) for (cap, label), texts in x.sentences.items() for text in texts]


def words(part: str | None = None) -> set[str]:
    """The content words of one part's cases, or of both: what training must not show."""
    names = [part] if part else list(PARTS)
    return {w for name in names for case in cases(name) for w in content_words(case.text)}
