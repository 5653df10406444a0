"""Quality evidence: the classifier against linear baselines, with intervals and paired tests.

Every baseline gets its C chosen on the same validation split our model stops
and calibrates on (the grid of sentipipe.tasks.classifier.baseline); test data
decides nothing. Our model runs the real stages (tokenize, embed, train,
evaluate) in a throw-away workspace and MLflow store, and is scored as served.

    python bench/quality.py                 # one seeded split (not the pipeline's rows): Wilson intervals, McNemar
    python bench/quality.py --cv 10         # stratified 10-fold CV on the default corpus (the published protocol)
    python bench/quality.py --corpora       # each corpus of several shapes on its own split
    python bench/quality.py --corpora --seeds 4 --arm 'no clauses:classifier.train.rule_clauses=0'
                                            # each corpus on 4 seeded splits; an arm: ours again with these
                                            # overrides, on the same splits, paired with ours
    python bench/quality.py --seeds 3 --distill   # repeated hold-out: the teacher, its student, the default
    python bench/quality.py --seeds 4 --arm 'wide:classifier.train.hidden_size=512'   # the default and an arm
    options: --set section.key=value (overrides, any depth; data.max_rows=N: a stratified sample of the corpus
             first, the same for every split), --json FILE, --markdown FILE, --params FILE,
             --teacher-cache DIR (keep each split's teacher outputs; a later run with the same teacher inputs
             reuses them instead of fine-tuning again: a student variant then costs half the time)

Baselines: TF-IDF word+char logistic regression (the evaluate stage's reference), NB-LR and
NBSVM (Wang and Manning 2012: binary uni- and bigrams scaled by the NB log-count ratio, then
logistic regression or a linear SVM).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.svm import LinearSVC

from sentipipe import stats
from sentipipe.config import DataConfig, parse
from sentipipe.data.ingest import read_corpus
from sentipipe.data.paths import prepared
from sentipipe.data.split import clean, sample
from sentipipe.data.vader import fetch_sdist, read_vader_corpora
from sentipipe.io import read_json, write_parquet
from sentipipe.tasks.classifier import baseline, paths
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.predictor import Predictor
from sentipipe.tracking import file_md5

from common import load_raw

REPO = Path(__file__).resolve().parents[1]

C_GRID = baseline.C_GRID
REFERENCE = "TF-IDF word+char LR"
NETWORK = "ours (the network alone)"  # the served model without its blend with the reference (blend.py)
TEACHER_CACHE: Path | None = None  # --teacher-cache


def teacher_key(params: ClassifierConfig) -> str:
    """What the teacher's outputs depend on: the files of its dvc.yaml deps (the code from the repository, the
    data from the working directory) and its params; the same key means the same soft targets."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["teacher"]
    deps = {dep: file_md5((Path.cwd() if dep.startswith("data/") else REPO) / dep) for dep in stage["deps"]}
    c = params.classifier
    fixed = {"distill": c.distill.model_dump(mode="json"), "experiment": c.experiment, "device": c.train.device}
    return hashlib.sha256(json.dumps({"deps": deps, **fixed}, sort_keys=True).encode()).hexdigest()[:20]


def copy_teacher_outputs(source: Path, target: Path) -> None:
    """The teacher stage's outputs, from under `source` to under `target`, replacing what is there."""
    for out in (paths.TEACHER_DIR, paths.TEACHER_REPORT):
        if (target / out).is_dir():
            shutil.rmtree(target / out)
        (target / out).unlink(missing_ok=True)
        (target / out).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (source / out).is_dir() else shutil.copy2)(source / out, target / out)


def teacher_stage(params: ClassifierConfig) -> None:
    """The teacher stage; with --teacher-cache, its outputs are reused when every input is the same."""
    from sentipipe.tasks.classifier.teacher import teacher

    if TEACHER_CACHE is None or not params.classifier.distill.enabled:
        teacher(params)
        return
    entry = TEACHER_CACHE / teacher_key(params)
    if (entry / "complete").exists():
        copy_teacher_outputs(entry, Path.cwd())
        report = read_json(paths.TEACHER_REPORT)
        print(f"teacher: reused from {entry} (val {report['val_accuracy']:.4f}, test {report['test_accuracy']:.4f})")
        return
    teacher(params)
    (entry / "complete").unlink(missing_ok=True)
    copy_teacher_outputs(Path.cwd(), entry)
    (entry / "complete").touch()


class NBFeatures:
    """Binary uni+bigram counts scaled by the naive Bayes log-count ratio (binary labels; one-vs-rest otherwise)."""

    def __init__(self, texts, y, classes: int):
        self.vec = CountVectorizer(ngram_range=(1, 2), binary=True)
        x = self.vec.fit_transform(texts)
        self.ratios = []
        for c in range(classes if classes > 2 else 1):
            positive = y == (c if classes > 2 else 1)
            p = np.asarray(x[positive].sum(0)).ravel() + 1.0
            q = np.asarray(x[~positive].sum(0)).ravel() + 1.0
            self.ratios.append(np.log((p / p.sum()) / (q / q.sum())))

    def transform(self, texts, c: int = 0):
        return self.vec.transform(texts).multiply(self.ratios[c]).tocsr()


def nb_linear(frames: dict, y: dict, classes: int, kind: str) -> tuple[np.ndarray, float]:
    """NB-LR or NBSVM: test predictions (labels) with C chosen on val."""
    features = NBFeatures(frames["train"].text, y["train"], classes)
    best, best_c, best_pred = -1.0, None, None
    for c in C_GRID:
        scores = {}
        for split in ("val", "test"):
            columns = []
            for k in range(len(features.ratios)):
                target = (y["train"] == (k if classes > 2 else 1)).astype(int)
                model = LogisticRegression(C=c, max_iter=3000) if kind == "lr" else LinearSVC(C=c / 10, max_iter=20000)
                model.fit(features.transform(frames["train"].text, k), target)
                columns.append(model.decision_function(features.transform(frames[split].text, k)))
            scores[split] = np.stack(columns, 1).argmax(1) if classes > 2 else (columns[0] > 0).astype(int)
        accuracy = float((scores["val"] == y["val"]).mean())
        if accuracy > best:
            best, best_c, best_pred = accuracy, c, scores["test"]
    return best_pred, best_c


def baselines(frames: dict, y: dict, classes: int) -> dict[str, dict]:
    out = {}
    reference = baseline.fit(frames["train"].text.tolist(), y["train"], frames["val"].text.tolist(), y["val"])
    probs = {s: reference.predict_proba(frames[s].text.tolist()) for s in ("val", "test")}
    out[REFERENCE] = {"pred": probs["test"].argmax(1), "C": reference.c, "probs": probs}
    for name, kind in (("NB-LR", "lr"), ("NBSVM", "svm")):
        pred, c = nb_linear(frames, y, classes, kind)
        out[name] = {"pred": pred, "C": c}
    return out


def ours(frames: dict, raw: dict, work: Path) -> dict:
    """Our stages on these splits, in `work`; the served model's test predictions."""
    from sentipipe.tasks.classifier.embed import embed
    from sentipipe.tasks.classifier.evaluate import evaluate
    from sentipipe.tasks.classifier.tokenize import tokenize
    from sentipipe.tasks.classifier.train import train

    work.mkdir(parents=True, exist_ok=True)
    here = Path.cwd()
    os.chdir(work)
    try:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        for split, frame in frames.items():
            write_parquet(prepared(split), frame.reset_index(drop=True))
        params = parse(raw, ClassifierConfig, "bench")
        start = time.perf_counter()
        for stage in (tokenize, embed, teacher_stage, train, evaluate):
            stage(params)
        seconds = time.perf_counter() - start
        served = Predictor.load(paths.SERVED)
        metrics, report = read_json(paths.METRICS), read_json(paths.TRAIN_REPORT)
        probs = {s: served.predict_proba(frames[s].text.tolist()) for s in ("val", "test")}
        network = served.blended(None, 0.0).predict_proba(frames["test"].text.tolist())
    finally:
        os.chdir(here)
    teacher = work / paths.TEACHER_TEST_LOGITS
    return {
        "pred": probs["test"].argmax(1),
        "probs": probs,
        "network_pred": network.argmax(1),  # the same model, its blend with the reference left out
        "blend_weight": served.blend,
        "seconds": seconds,
        "metrics": metrics,
        "train": report,
        "labels": served.labels,
        "teacher_pred": np.load(teacher).argmax(1) if teacher.exists() else None,
        "served": served,
    }


def score(pred: np.ndarray, truth: np.ndarray) -> dict:
    correct = pred == truth
    low, high = stats.wilson_interval(int(correct.sum()), len(truth))
    classes = np.unique(truth)
    f1 = np.mean(
        [2 * ((pred == c) & (truth == c)).sum() / max(((pred == c).sum() + (truth == c).sum()), 1) for c in classes]
    )
    return {"accuracy": float(correct.mean()), "interval": [low, high], "macro_f1": float(f1)}


def arm_name(name: str) -> str:
    """The method name of an arm (`--arm`): ours again, with its overrides."""
    return f"ours ({name})"


def is_arm(method: str) -> bool:
    return method.startswith("ours (")


def is_baseline(method: str) -> bool:
    return method != "ours" and not is_arm(method)


def parse_arms(items: list[str]) -> dict[str, list[str]]:
    """`--arm NAME:section.key=value`, repeatable; the items of one NAME are one arm's overrides, in order."""
    arms: dict[str, list[str]] = {}
    for item in items:
        name, sep, override = item.partition(":")
        if not sep or not name.strip() or "=" not in override:
            raise SystemExit(f"--arm {item!r}: expected NAME:section.key=value")
        arms.setdefault(name.strip(), []).append(override)
    return arms


def arm_runs(frames: dict, arms: dict[str, dict] | None, labels: list[str], work: Path) -> dict[str, dict]:
    """Ours again with each arm's params (name -> params) on the same splits, in work-arm0, work-arm1, ..."""
    runs = {}
    for k, (name, arm_raw) in enumerate((arms or {}).items()):
        runs[arm_name(name)] = ours(frames, arm_raw, work.with_name(f"{work.name}-arm{k}"))
        assert runs[arm_name(name)]["labels"] == labels
    return runs


def one_split(frames: dict, raw: dict, work: Path, arms: dict[str, dict] | None = None) -> dict:
    """Ours, ours without its blend, each arm (ours with other params: name -> params) and every baseline on one
    split: scores, and McNemar's test of ours against each other method."""
    result = ours(frames, raw, work)
    runs = {"ours": result, **arm_runs(frames, arms, result["labels"], work)}
    index = {c: i for i, c in enumerate(result["labels"])}
    y = {s: f["label"].map(index).to_numpy() for s, f in frames.items()}
    methods = {**{n: {"pred": r["pred"]} for n, r in runs.items()}, NETWORK: {"pred": result["network_pred"]}}
    methods.update(baselines(frames, y, len(index)))
    table = {
        name: {**score(m["pred"], y["test"]), **{k: m[k] for k in ("C",) if k in m}} for name, m in methods.items()
    }
    table["ours"]["blend_weight"] = result["blend_weight"]
    for name, m in methods.items():
        if name != "ours":
            table[name]["mcnemar_ours_vs"] = stats.mcnemar(result["pred"] == y["test"], m["pred"] == y["test"])
    for name, r in runs.items():
        table[name]["behaviour"] = r["metrics"].get("behaviour", {}).get("overall")
        table[name]["train"] = {k: r["train"][k] for k in ("steps_run", "stop_reason", "best_step", "train_seconds")}
        table[name]["val_accuracy"] = r["metrics"].get("val", {}).get("accuracy")
    return {"sizes": {s: len(f) for s, f in frames.items()}, "methods": table}


def corpus(data: dict) -> pd.DataFrame:
    """The cleaned, de-duplicated corpus that `data` params describe (ingest, then prepare's cleaning); with
    `data.max_rows`, a stratified sample of that many rows seeded by `data.seed` (the same for every split)."""
    params = parse({"data": data}, DataConfig).data
    table, _ = read_corpus(params)
    cleaned, _ = clean(table)
    rows = sample(np.arange(len(cleaned)), cleaned["label"].to_numpy(), params.max_rows, params.seed)
    if len(rows) < len(cleaned):
        print(f"bench: a stratified sample of {len(rows)} of the corpus's rows (data.max_rows)", flush=True)
    return cleaned.iloc[rows]


def split_frame(frame: pd.DataFrame, seed: int, val: float = 0.1, test: float = 0.1) -> dict:
    rest, test_part = train_test_split(frame, test_size=test, stratify=frame["label"], random_state=seed)
    train_part, val_part = train_test_split(rest, test_size=val / (1 - test), stratify=rest["label"], random_state=seed)
    return {"train": train_part, "val": val_part, "test": test_part}


def long_documents(folder: Path) -> Path:
    """Reviews (Amazon) and editorials (NYT) of several hundred words, rebuilt from their rated snippets.

    Each document's label is the sign of its snippets' mean human rating (documents within 0.25 of
    zero are left out): about 800 documents of about 1,100 characters, built offline.
    """
    raw, _ = read_vader_corpora(["amazon", "nyt"], fetch_sdist())
    raw["doc"] = raw["source"] + ":" + raw["id"].str.split(":").str[1].str.split("_").str[0]
    docs = raw.groupby("doc", sort=False).agg(text=("text", " ".join), rating=("rating", "mean")).reset_index()
    docs = docs[docs["rating"].abs() >= 0.25]
    docs["label"] = np.where(docs["rating"] > 0, "positive", "negative")
    path = folder / "long_documents.csv"
    docs[["text", "label"]].to_csv(path, index=False)
    return path


def three_class(folder: Path) -> Path:
    """Amazon snippets in three classes by their mean human rating: below -0.5, -0.5 to 0.5, above 0.5."""
    raw, _ = read_vader_corpora(["amazon"], fetch_sdist())
    raw["label"] = np.select([raw["rating"] < -0.5, raw["rating"] > 0.5], ["negative", "positive"], "neutral")
    path = folder / "amazon_three_class.csv"
    raw[["text", "label"]].to_csv(path, index=False)
    return path


def run_corpora(
    raw: dict,
    tmp: Path,
    seed: int,
    only: str | None = None,
    seeds: int = 1,
    arms: dict[str, dict] | None = None,
) -> dict:
    """Each corpus on `seeds` seeded splits (seed, seed + 1, ...): one split's table, or with several the splits
    and their summary (summarise_splits: mean and t interval per method, ours against each)."""
    shapes = {
        "movie snippets": {"corpora": ["movie"]},
        "product reviews (Amazon snippets)": {"corpora": ["amazon"]},
        "news editorials (NYT snippets)": {"corpora": ["nyt"]},
        "tweets": {"corpora": ["tweets"]},
        "Amazon snippets, 3 classes": {"source": "file", "path": str(three_class(tmp))},
        "long documents (whole reviews and editorials)": {"source": "file", "path": str(long_documents(tmp))},
    }
    out = {}
    for name, data in shapes.items():
        if only and only.lower() not in name.lower():
            continue
        frame, runs = corpus(data), []
        for k in range(seeds):
            work = tmp / f"{name.split()[0]}-{seed + k}"
            runs.append({"seed": seed + k, **one_split(split_frame(frame, seed + k), raw, work, arms)})
            scores = {n: round(v["accuracy"], 4) for n, v in runs[-1]["methods"].items()}
            print(f"{name}, seed {seed + k}: {json.dumps(scores)}", flush=True)
        out[name] = runs[0] if seeds == 1 else {"splits": runs, **summarise_splits(runs, "ours")}
    return out


def distill_flags() -> list[str]:
    """The documented distillation set: the flags of `make distill-params`, its one definition."""
    flags = subprocess.run(
        ["make", "-s", "distill-params"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    return [f for f in flags if f != "-S"]


def throughput(served: Predictor, texts: list[str], distilled: dict, classes: int, repeats: int = 3) -> dict:
    """Batched CPU sentences/s of the served student and of the teacher (the encoder `classifier.distill.teacher`
    names, and its head), same texts."""
    import torch

    from sentipipe.tasks.classifier import encoders
    from sentipipe.tasks.classifier.soft_targets import Pieces
    from sentipipe.tasks.classifier.teacher import TeacherNetwork, load_encoder, max_length, teacher_logits

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    distill = parse(distilled, ClassifierConfig, "bench").classifier.distill
    encoder = encoders.resolve(distill.teacher)
    pieces_of, config = load_encoder(encoder.path, distill.teacher)
    length = max_length(pieces_of, config, distill.teacher_max_length)
    network = TeacherNetwork(classes, encoder.path)  # the weights do not change its speed: the pretrained encoder

    def teacher_run():
        ids = Pieces.of([pieces_of(texts, truncation=True, max_length=length)["input_ids"]])
        teacher_logits(network, ids, pieces_of.pad_token_id, torch.device("cpu"))

    def best(fn) -> float:
        fn()  # warm
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return len(texts) / min(times)

    student = best(lambda: served.predict_proba(texts))
    teacher = best(teacher_run)
    return {
        "texts": len(texts),
        "teacher": encoder.model if encoder.model != "unknown" else encoder.path,
        "threads": torch.get_num_threads(),
        "student_per_second": round(student, 1),
        "teacher_per_second": round(teacher, 1),
        "ratio": round(student / teacher, 2),
    }


def run_record(run: dict) -> dict:
    """What a split's record keeps of one of our runs: its training summary and behavioural pass rates."""
    return {"train": run["train"], "behaviour": run["metrics"].get("behaviour", {})}


def run_seeds(
    raw: dict,
    tmp: Path,
    seeds: int,
    seed: int,
    distilled: dict | None,
    partial: Path | None = None,
    arms: dict[str, dict] | None = None,
) -> dict:
    """Repeated hold-out: `seeds` seeded 80/10/10 splits; the default (and the default's network without its
    blend), each arm (`--arm`), and with `distilled` params the teacher and its student. With
    `partial`, every finished split is written there at once (a run of hours can stop)."""
    frame = corpus(raw.get("data", {}))
    runs = []
    speed = None
    for k in range(seeds):
        frames = split_frame(frame, seed + k)
        work = tmp / f"seed{seed + k}"
        default = ours(frames, raw, work / "default")
        index = {c: i for i, c in enumerate(default["labels"])}
        y = {s: f["label"].map(index).to_numpy() for s, f in frames.items()}
        methods = {"default": default["pred"], "default (the network alone)": default["network_pred"]}
        extra = {"default": run_record(default)}
        for name, arm in arm_runs(frames, arms, default["labels"], work / "default").items():
            methods[name] = arm["pred"]
            extra[name] = run_record(arm)
        if distilled:
            student = ours(frames, distilled, work / "student")
            assert student["labels"] == default["labels"]
            methods["student"] = student["pred"]
            methods["teacher (MiniLM-L6 fine-tuned)"] = student["teacher_pred"]
            extra["student"] = run_record(student)
            if speed is None:
                texts = frames["test"]["text"].astype(str).tolist()
                speed = throughput(student["served"], texts, distilled, len(index))
                print(f"throughput: {speed}", flush=True)
        fitted = baselines(frames, y, len(index))
        methods.update({n: m["pred"] for n, m in fitted.items()})
        table = {name: score(pred, y["test"]) for name, pred in methods.items()}
        table["default"]["blend_weight"] = default["blend_weight"]
        main = "student" if distilled else "default"
        for name, pred in methods.items():
            if name != main:
                table[name]["mcnemar_vs_" + main] = stats.mcnemar(methods[main] == y["test"], pred == y["test"])
        runs.append(
            {"seed": seed + k, "sizes": {s: len(f) for s, f in frames.items()}, "methods": table, "runs": extra}
        )
        print(f"seed {seed + k}: " + ", ".join(f"{n} {m['accuracy']:.4f}" for n, m in table.items()), flush=True)
        if partial:
            partial.write_text(json.dumps({"splits": runs, "throughput": speed}, indent=1, default=str))
    return {"splits": runs, "throughput": speed, "main": "student" if distilled else "default"}


def summarise_splits(runs: list[dict], main: str) -> dict:
    """Mean +- t interval per method over the splits; the corrected resampled t-test of `main` against each."""
    names = list(runs[0]["methods"])
    accuracy = {n: [r["methods"][n]["accuracy"] for r in runs] for n in names}
    f1 = {n: [r["methods"][n]["macro_f1"] for r in runs] for n in names}
    fraction = float(np.mean([r["sizes"]["test"] / r["sizes"]["train"] for r in runs]))
    table = {n: {"accuracy": stats.mean_interval(accuracy[n]), "macro_f1": stats.mean_interval(f1[n])} for n in names}
    tests = {n: stats.corrected_resampled_ttest(accuracy[main], accuracy[n], fraction) for n in names if n != main}
    return {"table": table, "tests": tests, "test_fraction": fraction, "accuracy_by_split": accuracy}


def run_cv(
    raw: dict, tmp: Path, folds: int, seed: int, arms: dict[str, dict] | None = None, only: set[int] | None = None
) -> dict:
    """Each fold (or only the folds numbered in `only`, from 1: the others are not trained, their splits the same)."""
    frame = corpus(raw.get("data", {})).reset_index(drop=True)
    per_fold = []
    for k, (rest, test) in enumerate(
        StratifiedKFold(folds, shuffle=True, random_state=seed).split(frame, frame["label"])
    ):
        if only and k + 1 not in only:
            continue
        rest_frame = frame.iloc[rest]
        train, val = train_test_split(
            rest_frame, test_size=1 / (folds - 1), stratify=rest_frame["label"], random_state=seed
        )
        result = one_split({"train": train, "val": val, "test": frame.iloc[test]}, raw, tmp / f"fold{k}", arms)
        per_fold.append({**result, "fold": k + 1})
        print(fold_line(k + 1, folds, result), flush=True)
    fraction = float(np.mean([f["sizes"]["test"] / f["sizes"]["train"] for f in per_fold]))
    return {"folds": per_fold, "test_fraction": fraction}


def fold_line(fold: int, folds: int, result: dict) -> str:
    return f"fold {fold}/{folds}: " + ", ".join(f"{n} {m['accuracy']:.4f}" for n, m in result["methods"].items())


def summarise_folds(folds: list[dict], test_fraction: float) -> dict:
    names = list(folds[0]["methods"])
    accuracy = {n: [f["methods"][n]["accuracy"] for f in folds] for n in names}
    f1 = {n: [f["methods"][n]["macro_f1"] for f in folds] for n in names}
    table = {n: {"accuracy": stats.mean_interval(accuracy[n]), "macro_f1": stats.mean_interval(f1[n])} for n in names}
    best = max((n for n in names if is_baseline(n)), key=lambda n: np.mean(accuracy[n]))
    test = stats.corrected_resampled_ttest(accuracy["ours"], accuracy[best], test_fraction)
    arms = {
        n: stats.corrected_resampled_ttest(accuracy["ours"], accuracy[n], test_fraction) for n in names if is_arm(n)
    }
    return {
        "table": table,
        "best_baseline": best,
        "ours_vs_best": test,
        "ours_vs_arms": arms,
        "accuracy_by_fold": accuracy,
    }


def markdown(title: str, rows: dict[str, dict], note: str) -> str:
    lines = [f"### {title}", "", "| method | accuracy | 95% interval | macro-F1 |", "|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['accuracy']:.4f} | {r['low']:.4f}–{r['high']:.4f} | {r['macro_f1']:.4f} |")
    return "\n".join([*lines, "", note, ""])


def mean_rows(table: dict) -> dict[str, dict]:
    """Table rows of means over folds or splits: (mean, half-width) pairs as mean, low, high."""
    return {
        n: {
            "accuracy": v["accuracy"][0],
            "low": v["accuracy"][0] - v["accuracy"][1],
            "high": v["accuracy"][0] + v["accuracy"][1],
            "macro_f1": v["macro_f1"][0],
        }
        for n, v in table.items()
    }


def split_rows(methods: dict) -> dict[str, dict]:
    """Table rows of one split: accuracy with its Wilson interval."""
    return {
        n: {"accuracy": m["accuracy"], "low": m["interval"][0], "high": m["interval"][1], "macro_f1": m["macro_f1"]}
        for n, m in methods.items()
    }


def arms_note(methods: dict) -> str:
    """One split: ours against each arm, the difference and McNemar's p."""
    return "".join(
        f" Ours - {n} = {methods['ours']['accuracy'] - m['accuracy']:+.4f}"
        f" (McNemar p = {m['mcnemar_ours_vs']['p_value']:.3g})."
        for n, m in methods.items()
        if is_arm(n)
    )


def corpus_markdown(name: str, r: dict) -> str:
    """One corpus's table: one split's Wilson intervals and McNemar tests, or several splits' means and t tests."""
    if "splits" not in r:
        rows = split_rows(r["methods"])
        best = max((n for n in rows if is_baseline(n)), key=lambda n: rows[n]["accuracy"])
        p = r["methods"][best]["mcnemar_ours_vs"]["p_value"]
        note = (
            f"Split {r['sizes']}, seed {r['seed']}; ours - {best} = "
            f"{rows['ours']['accuracy'] - rows[best]['accuracy']:+.4f} (McNemar p = {p:.3g})."
        )
        return markdown(name, rows, note + arms_note(r["methods"]))
    rows = mean_rows(r["table"])
    splits = r["splits"]
    tests = "; ".join(f"{n} {t['mean_difference']:+.4f} (p = {t['p_value']:.3g})" for n, t in r["tests"].items())
    note = (
        f"{len(splits)} seeded splits (seeds {', '.join(str(x['seed']) for x in splits)}) of {splits[0]['sizes']}; "
        f"mean with its 95% t interval. Ours minus each, corrected resampled t-test: {tests}."
    )
    for n in ["ours", *filter(is_arm, rows)]:
        values = [x["methods"][n].get("val_accuracy") for x in splits]
        if all(v is not None for v in values):
            note += f" {n}: val accuracy by split {', '.join(f'{v:.4f}' for v in values)}"
            behaviour = [x["methods"][n].get("behaviour") for x in splits]
            if all(b is not None for b in behaviour):
                note += f", behavioural suite {np.mean(behaviour):.3f} on average"
            note += "."
    return markdown(f"{name}, {len(splits)} splits", rows, note)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--set", action="append", default=[], help="section.key=value override, any depth")
    ap.add_argument("--cv", type=int, help="stratified k-fold cross-validation on the default corpus")
    ap.add_argument("--folds", help="with --cv: only these folds, numbered from 1 (e.g. 3 or 3,7): a check, not a CV")
    ap.add_argument("--corpora", action="store_true", help="several corpora of different shapes")
    ap.add_argument("--only", help="with --corpora: the corpora whose name contains this (e.g. long)")
    ap.add_argument("--seeds", type=int, help="repeated hold-out: this many seeded 80/10/10 splits (--corpora: each's)")
    ap.add_argument(
        "--arm",
        action="append",
        default=[],
        help="NAME:section.key=value: ours again with this override (repeat a NAME for more), paired with ours",
    )
    ap.add_argument("--distill", action="store_true", help="with --seeds: the teacher and its student too")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--teacher-cache", help="keep and reuse each split's teacher outputs in this folder")
    ap.add_argument("--markdown", help="write the tables here")
    args = ap.parse_args()
    global TEACHER_CACHE
    TEACHER_CACHE = Path(args.teacher_cache).resolve() if args.teacher_cache else None
    raw = load_raw(args.params, args.set)
    arms = {name: load_raw(args.params, [*args.set, *items]) for name, items in parse_arms(args.arm).items()}
    if args.distill and (args.corpora or not args.seeds):
        ap.error("--distill runs with --seeds on the default corpus")
    params_path = Path(args.params).resolve()
    json_path, markdown_path = (Path(x).resolve() if x else None for x in (args.json, args.markdown))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sentipipe-quality-") as tmp_name:
        tmp = Path(tmp_name)
        os.chdir(tmp)
        if args.cv and args.folds:
            only = {int(k) for k in args.folds.split(",")}
            if not only <= set(range(1, args.cv + 1)):
                ap.error(f"--folds {args.folds}: folds are numbered 1..{args.cv}")
            result = run_cv(raw, tmp, args.cv, args.seed, arms, only)
            text = "".join(fold_line(f["fold"], args.cv, f) + "\n" for f in result["folds"])
            output = {"cv": args.cv, "only_folds": sorted(only), "folds": result["folds"]}
        elif args.cv:
            result = run_cv(raw, tmp, args.cv, args.seed, arms)
            summary = summarise_folds(result["folds"], result["test_fraction"])
            rows = mean_rows(summary["table"])
            t = summary["ours_vs_best"]
            note = (
                f"Stratified {args.cv}-fold CV, seed {args.seed}; mean over folds with its 95% t interval. "
                f"Ours against {summary['best_baseline']}: {t['mean_difference']:+.4f}, "
                f"corrected resampled t-test p = {t['p_value']:.3g}."
            )
            for name, t in summary["ours_vs_arms"].items():
                note += f" Ours against {name}: {t['mean_difference']:+.4f}, p = {t['p_value']:.3g}."
            text = markdown(f"{args.cv}-fold cross-validation", rows, note)
            output = {"cv": args.cv, **summary, "folds": result["folds"]}
        elif args.corpora:
            result = run_corpora(raw, tmp, args.seed, args.only, args.seeds or 1, arms)
            text = "".join(corpus_markdown(name, r) for name, r in result.items())
            output = {"corpora": result}
        elif args.seeds:
            distilled = load_raw(str(params_path), [*distill_flags(), *args.set]) if args.distill else None
            partial = json_path.with_suffix(".partial.json") if json_path else None
            result = run_seeds(raw, tmp, args.seeds, args.seed, distilled, partial, arms)
            main = result["main"]
            summary = summarise_splits(result["splits"], main)
            rows = mean_rows(summary["table"])
            tests = "; ".join(
                f"{n} {t['mean_difference']:+.4f} (p = {t['p_value']:.3g})" for n, t in summary["tests"].items()
            )
            note = (
                f"Repeated hold-out, {args.seeds} seeded splits (seeds {args.seed}..{args.seed + args.seeds - 1}); "
                f"mean with its 95% t interval. {main} minus each, corrected resampled t-test: {tests}."
            )
            if result["throughput"]:
                t = result["throughput"]
                note += (
                    f" Batched CPU throughput on {t['texts']} test sentences, {t['threads']} threads: student "
                    f"{t['student_per_second']:.0f}/s, teacher {t['teacher_per_second']:.0f}/s ({t['ratio']:.1f}x)."
                )
            text = markdown(f"{args.seeds} seeded splits", rows, note)
            output = {"seeds": args.seeds, **summary, **result}
        else:
            frames = split_frame(corpus(raw.get("data", {})), raw.get("data", {}).get("seed", args.seed))
            result = one_split(frames, raw, tmp / "split", arms)
            rows = split_rows(result["methods"])
            best = max((n for n in rows if is_baseline(n)), key=lambda n: rows[n]["accuracy"])
            p = result["methods"][best]["mcnemar_ours_vs"]["p_value"]
            note = f"One split {result['sizes']}; Wilson 95% intervals; ours against {best}: McNemar p = {p:.3g}."
            note += arms_note(result["methods"])
            text = markdown("One seeded split of the default corpus", rows, note)
            output = result
    output["params"] = {"file": str(params_path), "overrides": args.set}
    output["seconds"] = round(time.perf_counter() - start)
    print("\n" + text)
    print(f"({output['seconds']} s on {os.cpu_count()} CPUs)")
    if json_path:
        json_path.write_text(
            json.dumps(output, indent=1, default=lambda x: x.tolist() if hasattr(x, "tolist") else str(x))
        )
    if markdown_path:
        markdown_path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
