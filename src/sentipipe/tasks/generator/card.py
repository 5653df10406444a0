"""The generator's model card: what the registry shows on a version's page, from the files the stages wrote.

`read()` gathers the reports before a version exists; `render()` is pure. The figures are bits per
character (lower is better) against the n-gram reference fitted on the same streams, and the samples
the evaluate stage drew.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sentipipe import card
from sentipipe.card import count, number, section, table
from sentipipe.io import read_json, require
from sentipipe.tasks.generator.paths import METRICS, SAMPLES, TOKENS_REPORT, TRAIN_REPORT

if TYPE_CHECKING:
    from sentipipe.tasks.generator.params import GeneratorConfig

FILES = (METRICS, TRAIN_REPORT, TOKENS_REPORT, SAMPLES)
SAMPLE_CHARS = 300  # of each sample shown


@dataclass(frozen=True)
class Reports:
    metrics: dict
    train: dict
    tokens: dict
    samples: list[dict]


def read(root: Path = Path(".")) -> Reports:
    require(*(root / f for f in FILES))
    return Reports(*(read_json(root / f) for f in FILES))


def _cell(split: dict, key: str, digits: int = 4) -> str:
    return number(split[key], digits) if key in split else ""


def _figures(r: Reports) -> str:
    m = r.metrics
    served = m.get("served", {}).get("model", "the network alone")
    rows = [
        ["this model", s, _cell(m[s], "bpc"), _cell(m[s], "perplexity", 2), _cell(m[s], "accuracy")]
        for s in ("val", "test")
    ]
    if "network" in m and "mixture" in m and m["mixture"]["used"]:
        n = m["network"]
        rows += [
            ["the network alone", s, _cell(n[s], "bpc"), _cell(n[s], "perplexity", 2), _cell(n[s], "accuracy")]
            for s in ("val", "test")
        ]
    base = m.get("baseline")
    if base:
        rows += [[base["name"], s, number(base[s]["bpc"]), "", ""] for s in ("val", "test")]
    parts = [
        table(["model", "split", "bits per character", "perplexity (per unit)", "next-unit accuracy"], rows),
    ]
    mix = m.get("mixture")
    if mix and mix["used"]:
        parts.append(
            f"This model, as served, samples every unit from {served}: the network's next-unit distribution mixed with "
            f"the n-gram's, order {mix['order']} and weight {mix['weight']} chosen on validation "
            f"(`generator.evaluate.mixture: {mix['mode']}`). The served file ({m['served']['size_mb']} MB) carries the "
            "n-gram's training ids and refits it when loaded. Next-unit accuracy is not computed for a mixture."
        )
    elif mix:
        parts.append(
            f"The network is served alone: mixing in an n-gram did not lower validation bpc "
            f"(`generator.evaluate.mixture: {mix['mode']}`)."
        )
    if base:
        gap = {s: m[s]["bpc"] - base[s]["bpc"] for s in ("val", "test")}
        verdict = "below (better than)" if gap["test"] < 0 else "not below"
        orders = ", ".join(f"{k}: {v:.4f}" for k, v in base.get("val_bpc_by_order", {}).items())
        parts.append(
            f"Against the n-gram reference (order {base['order']}, chosen on validation; val bpc by order: "
            f"{orders}): {gap['val']:+.4f} bpc on val, {gap['test']:+.4f} on test, {verdict} the reference on test."
            + (" The order search stopped at its limit." if base.get("order_limit_reached") else "")
        )
    else:
        parts.append("No n-gram reference was fitted (`generator.evaluate.baseline` is false).")
    if base and all("difference" in base[s] for s in ("val", "test")):
        gaps = {s: base[s]["difference"] for s in ("val", "test")}
        level = f"{gaps['val']['confidence']:.0%}"
        spans = ", ".join(f"{s} {g['interval'][0]:+.4f} to {g['interval'][1]:+.4f}" for s, g in gaps.items())
        parts.append(
            f"{level} intervals on this model's difference from the reference (bits per character, a bootstrap of "
            f"{gaps['val']['blocks']} contiguous blocks of each stream, so neighbouring units are resampled "
            f"together): {spans}."
        )
    else:
        parts.append("Bits per character are a mean over the whole stream; no interval is computed for them.")
    return section("Figures", *parts)


def _data(r: Reports, params: GeneratorConfig) -> str:
    d, t = params.generator.data, r.tokens
    origin = "the classifier's prepared splits (data/prepared)" if d.source == "prepared" else f"the file {d.path}"
    rows = [
        [
            s,
            count(v["documents"]),
            count(v["characters"]),
            count(v["units"]),
            f"{v['unknown_rate']:.2%}",
            count(v["documents_over_max_chars"]),
        ]
        for s, v in t["splits"].items()
    ]
    return section(
        "Data",
        f"Text: {origin}, at most {count(d.max_chars)} characters of training text (`generator.data.max_chars`; "
        f"val and test an eighth each). Units: `{t['unit']}`, a vocabulary of {count(t['vocabulary'])}.",
        table(["split", "documents", "characters", "units", "unknown units", "documents left out by the cap"], rows),
        "The hashes of the files trained on are under Lineage.",
    )


def _samples(r: Reports) -> str:
    rows = [
        [
            s["prompt"],
            s["temperature"],
            s["seed"],
            s["text"][:SAMPLE_CHARS] + ("…" if len(s["text"]) > SAMPLE_CHARS else ""),
        ]
        for s in r.samples
    ]
    parts = [table(["prompt", "temperature", "seed", "text"], rows)]
    quality = r.metrics.get("samples_quality")
    if quality:
        signals = "; ".join(
            f"{name if name == 'validation text' else f'temperature {name}'}: {q['in_vocabulary']:.3f}, "
            f"{q['repeated_3grams']:.3f}, {q['distinct_2']:.3f}"
            for name, q in quality.items()
        )
        parts.append(
            "Over more seeds of the same prompts, the share of generated words found in the training text, of word "
            f"3-grams repeating an earlier one in the same sample, and distinct-2: {signals}."
        )
    return section("Samples (from the evaluate stage)", *parts)


def _training(r: Reports, logged: dict, params: GeneratorConfig) -> str:
    t, s = r.train, params.generator.sample
    shape = f"{logged.get('train.cell')}, {logged.get('train.num_layers')} x {logged.get('train.hidden_size')}"
    return section(
        "Training and serving choices",
        "\n".join(
            [
                f"- network: {shape}, embeddings of {logged.get('train.embed_dim')}, truncated BPTT over "
                f"{logged.get('train.bptt')} units",
                f"- training: best evaluation at step {t['best_step']} of {t['steps_run']}, stopped by "
                f"`{t['stop_reason']}`, {t['train_seconds']} s on {t['device']}",
                f"- sampling defaults packed with the model (`generator.sample`): temperature {s.temperature}, "
                f"top-k {s.top_k} (0: all), {s.max_length} units, seed {s.seed}; a request may override each "
                "within bounds",
            ]
        ),
    )


def _limits(r: Reports) -> str:
    unknown = r.tokens["splits"]["val"]["unknown_rate"]
    return section(
        "Intended use and limits",
        "\n".join(
            [
                "- Intended use: continuing a prompt in the style of its training text, as a demonstration and "
                "for experiments with recurrent models.",
                "- It states nothing reliably: its text is sampled, may be false, and may repeat training text.",
                f"- It knows only its vocabulary: {unknown:.2%} of validation units were unknown and come out as "
                "<unk>; other languages, domains and scripts are outside what it has seen.",
                "- Bits per character compare only models measured on the same validation stream.",
            ]
        ),
    )


def render(r: Reports, decision: dict, params: GeneratorConfig, run: dict) -> str:
    """The version's model card (markdown). `run`: the training run's tags and params, as MLflow holds them."""
    name, version = decision["name"], decision["version"]
    use = f'sentipipe generate --model-uri models:/{name}/{version} "The movie"'
    return "\n\n".join(
        [
            f"# {name} version {version}: {decision['decision']}",
            "A recurrent generator of text, trained to predict the next unit: a prompt in, its continuation out. "
            "Card written by the register stage from the pipeline's reports.",
            card.decision_section(decision, use),
            _data(r, params),
            _figures(r),
            _samples(r),
            _training(r, run["params"], params),
            _limits(r),
            card.lineage_section(run["tags"]),
        ]
    )


def model_description(params: GeneratorConfig) -> str:
    return card.model_description(
        params.generator.register,
        "Recurrent text generators trained by sentipipe's opt-in generator pipeline "
        "(`dvc repro pipeline/generator/dvc.yaml`): a prompt in, its continuation out.",
        ["sentipipe generate", "sentipipe serve --task generator"],
    )
