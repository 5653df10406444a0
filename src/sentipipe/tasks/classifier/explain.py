"""Why the served classifier decided: each token's contribution, by occlusion, on the served artifact itself.

A token's contribution to a class is how much that class's probability falls
when the token is taken out of the text: p(class | text) - p(class | text
without the token). All the shortened texts of a request go through the
network in one batch, so explaining a sentence costs one forward pass of about
as many rows as it has tokens. Occlusion needs no gradients, so it explains the
int8 model exactly as served (integrated gradients could not), with the same
tokenizer, unseen-word vectors and temperature; a served blend (blend.py) reads
each shortened text as its tokens joined by spaces.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from sentipipe.tasks.classifier.predictor import Predictor


def explain(predictor: Predictor, texts: Sequence[str]) -> list[dict]:
    """Per text: the label, its probability, the tokens, and every token's contribution to every class."""
    token_lists = predictor.tokens(texts)
    variants, starts = [], []
    for tokens in token_lists:  # the text, then the text without each of its tokens in turn
        starts.append(len(variants))
        variants.append(tokens)
        variants.extend(tokens[:j] + tokens[j + 1 :] for j in range(len(tokens)))
    probs = predictor.probabilities(predictor.logits_encoded(*predictor.encode(variants)))
    if predictor.reference is not None:  # the blend reads text: each variant is its tokens joined by spaces
        texts_of = [" ".join(v) for v in variants]
        for start, text in zip(starts, texts, strict=True):
            texts_of[start] = text  # the whole text as sent, so the label is the one `predict` gives
        probs = predictor.combine(probs, texts_of)
    out = []
    for start, tokens in zip(starts, token_lists, strict=True):
        full = probs[start]
        contributions = full[None, :] - probs[start + 1 : start + 1 + len(tokens)]
        best = int(full.argmax())
        out.append(
            {
                "label": predictor.labels[best],
                "probability": round(float(full[best]), 4),
                "probabilities": [float(x) for x in full],
                "tokens": tokens,
                "contributions": {
                    label: [round(float(x), 4) for x in contributions[:, c]] for c, label in enumerate(predictor.labels)
                },
            }
        )
    return out


def _colour(score: float, scale: float) -> str:
    """Green for tokens that push towards the shown label, red for those that push away."""
    strength = min(1.0, abs(score) / scale) if scale > 0 else 0.0
    hue = "0, 140, 70" if score > 0 else "200, 40, 40"
    return f"rgba({hue}, {0.15 + 0.7 * strength:.2f})"


def html_page(title: str, items: list[dict]) -> str:
    """A page of explained texts; each item holds `explanation` (from explain) and optional `label` (the truth)."""
    blocks = []
    for item in items:
        e = item["explanation"]
        scores = e["contributions"][e["label"]]
        scale = max((abs(s) for s in scores), default=0.0)
        words = "".join(
            f'<span style="background:{_colour(s, scale)}" title="{s:+.3f}">{html.escape(t)}</span> '
            for t, s in zip(e["tokens"], scores, strict=True)
        )
        truth = f" &middot; true label <b>{html.escape(item['label'])}</b>" if "label" in item else ""
        blocks.append(f"<p>predicted <b>{html.escape(e['label'])}</b> at {e['probability']:.3f}{truth}<br>{words}</p>")
    legend = "green: pushes towards the predicted label; red: pushes away (hover for the change in probability)"
    if not blocks:
        blocks.append("<p>Nothing to show: no test errors.</p>")
    return (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<body style='font-family:sans-serif;max-width:60em'><h1>{html.escape(title)}</h1><p>{legend}</p>"
        + "".join(blocks)
        + "</body>"
    )


def terminal_lines(explanation: dict, colour: bool = True) -> str:
    """The text with each token marked: green (or +) towards the predicted label, red (or -) away from it."""
    scores = explanation["contributions"][explanation["label"]]
    scale = max((abs(s) for s in scores), default=0.0) or 1.0
    parts = []
    for token, score in zip(explanation["tokens"], scores, strict=True):
        if abs(score) < 0.1 * scale:
            parts.append(token)
        elif colour:
            parts.append(f"\033[{'32' if score > 0 else '31'}m{token}\033[0m")
        else:
            parts.append(f"{token}({'+' if score > 0 else '-'}{abs(score):.2f})")
    return " ".join(parts)
