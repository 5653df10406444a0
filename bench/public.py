"""The public benchmarks: SST-2, SemEval 2013-2016 and IMDB, by params alone, against linear baselines.

Each corpus runs the real stages (ingest ... evaluate, register) on the committed
params.yaml with only `data.*` changed (and, for SemEval, the metric keys
`classifier.train.monitor` and `classifier.register.metric`), in a throw-away
workspace and MLflow store: what a user who points the pipeline at the corpus
gets, search included. Beside it, the TF-IDF word+char LR (the evaluate stage's
reference), NB-LR and NBSVM (Wang and Manning 2012), each tuned on the same
validation data and figure (22 or 11 candidates of C and class weights, more than
the search's trials). Decisions (stopping, search, temperature, gate, C) see
validation data only; the held-out test part decides nothing, so its rows are the
held-out figures. The official test parts are not here: those figures are the
judges', not ours.

    python bench/public.py                     # every corpus (hours on 2 CPU cores: IMDB is most of it)
    python bench/public.py --corpus sst2       # one corpus; the others' last results stay in the table
    python bench/public.py --distill           # the distill set too (`make distill-params`; a teacher per corpus)
    options: --set section.key=value (any depth; recorded: a changed param is no longer the committed default),
             --benchmarks DIR (../shared/benchmarks), --keep DIR (the workspaces and the baselines' predictions),
             --reuse (with --keep: read finished workspaces and baselines fitted on the same splits), --no-docs

Writes docs/benchmarks/<corpus>.json and regenerates docs/benchmarks.md from every JSON there (--docs DIR: elsewhere).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_info

from sentipipe import stats
from sentipipe.config import DataConfig, parse
from sentipipe.data.paths import prepared
from sentipipe.io import read_json, write_json
from sentipipe.tasks.classifier import baseline, paths
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.predictor import Predictor
from sentipipe.tracking import cpu_model

from common import parse_override
from quality import REFERENCE, NBFeatures

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


@dataclass
class Corpus:
    title: str
    files: list[str]
    data: dict  # data.* of the run (paths relative to the benchmarks folder)
    protocol: str
    published: list[tuple[str, str]]
    metric: str = "accuracy"  # what the field judges this corpus by
    classifier: dict = field(default_factory=dict)  # the metric keys (SemEval only)
    prepare: str | None = None  # a file the bench derives first
    # what the current defaults' own history makes of this corpus's held-out part (printed with every result)
    caveat: str = ""
    # why the table has no distill-set row, printed only while it has none (a link to the evidence, no figures)
    no_distill: str = ""


CORPORA = {
    "sst2": Corpus(
        title="SST-2 (GLUE: train phrases, dev sentences)",
        caveat=(
            "**Not a held-out figure for the defaults of 2026-12-05:** exploratory runs that chose them (256 "
            "units, the weights' moving average, passes with patience) validated on the whole GLUE dev set, so "
            "both halves informed those decisions. The official SST-2 test part is the clean measure."
        ),
        files=["sst2-train.parquet", "sst2-dev.parquet"],
        data={
            "source": "file",
            "path": ["sst2-train.parquet", "sst2-dev-val.parquet", "sst2-dev-test.parquet"],
            "val_groups": ["sst2-dev-val"],
            "test_groups": ["sst2-dev-test"],
        },
        protocol=(
            "validation: a seeded, stratified half of the GLUE dev sentences (436); held-out test: the other half "
            "(436). The train part holds every phrase of the training sentences, so a split of it would test on "
            "phrases of trained sentences; dev sentences are whole and unseen. A user's run holds the whole dev set "
            "out with `data.val_groups: [sst2-dev]`."
        ),
        published=[
            ("BiLSTM (Tang et al. 2019)", "86.7"),
            ("CNN multichannel (Kim 2014)", "88.1"),
            ("BiLSTM distilled from BERT-large (Tang et al. 2019)", "90.7"),
            ("BERT-base", "93.5"),
        ],
        prepare="sst2-halves",
    ),
    "semeval": Corpus(
        title="SemEval 2013-2016 task 4A (tweets, 3 classes)",
        files=["semeval2013-2016.parquet"],
        data={
            "source": "file",
            "path": "semeval2013-2016.parquet",
            "group_column": "source",
            "unescape": True,
            "val_groups": ["twitter-2016dev", "twitter-2016devtest"],
        },
        classifier={"train": {"monitor": "val_macro_recall"}, "register": {"metric": "val_macro_recall"}},
        metric="macro_recall",
        protocol=(
            "validation: the 2016 dev and devtest files (3,999 tweets); held-out test: a seeded, stratified 10% of "
            "the other files (`data.test_size`). Judged, as the task is, on recall averaged over the three classes."
        ),
        published=[
            ("SemEval-2017 winners (BiLSTM + attention; CNN+LSTM ensemble), 2017 test", "average recall 0.681"),
            ("the same, accuracy", "0.651-0.658"),
        ],
    ),
    "imdb": Corpus(
        title="IMDB (Large Movie Review Dataset, whole reviews)",
        files=["imdb-train.parquet"],
        data={"source": "file", "path": "imdb-train.parquet", "clean_html": True},
        protocol=(
            "validation and held-out test: seeded, stratified 10% parts of the 25,000 training reviews "
            "(`data.val_size`, `data.test_size`)."
        ),
        no_distill=(
            "No distill-set row: on 2 CPU cores the set takes hours over these reviews, more than the project's "
            "machine keeps between sessions. What one epoch of its teacher reached, why the set is not expected to "
            "beat the default here, and the command for a GPU: [the evidence](evidence.md#imdb-teacher-2026-12-07)."
        ),
        published=[
            ("NBSVM with bigrams (Wang and Manning 2012)", "91.2"),
            ("LSTM pretrained as a language model (Dai and Le 2015)", "92.8"),
            ("DistilBERT", "92.8"),
        ],
    ),
}


def sst2_halves(folder: Path, benchmarks: Path, seed: int = 13) -> None:
    """The GLUE dev sentences in two seeded, stratified halves: validation and held-out test."""
    from sklearn.model_selection import train_test_split

    dev = pd.read_parquet(benchmarks / "sst2-dev.parquet")
    val, test = train_test_split(dev, test_size=0.5, stratify=dev["label"], random_state=seed)
    val.to_parquet(folder / "sst2-dev-val.parquet", index=False)
    test.to_parquet(folder / "sst2-dev-test.parquet", index=False)


def run_params(corpus: Corpus, files: Path, overrides: list[str], distill: list[str] | None) -> dict:
    """The committed params.yaml with the corpus's data.* (and metric keys), as a user's run would have it."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    data = dict(corpus.data)
    data["path"] = (
        [str(files / p) for p in data["path"]] if isinstance(data["path"], list) else str(files / data["path"])
    )
    raw["data"].update(data)
    for section, values in corpus.classifier.items():
        raw["classifier"][section].update(values)
    for item in [*(distill or []), *overrides]:
        parse_override(raw, item)
    return raw


def pipeline(raw: dict, work: Path, resume: bool = False) -> dict:
    """Every stage of the default pipeline in `work`, timed; the served model's predictions and the reports.

    Each stage that ends is recorded in `work/stages_done.json` with a key of the params and the code; with
    `resume` (--reuse) a stage recorded under the same key is not run again (its outputs are in `work`), so a
    bench killed mid-corpus goes on where it stopped, as `dvc repro` would: the teacher from its last epoch and
    the student from its last checkpoint (their own checkpoints), every finished stage skipped.
    """
    from sentipipe.data.ingest import ingest
    from sentipipe.data.prepare import prepare
    from sentipipe.tasks.classifier.embed import embed
    from sentipipe.tasks.classifier.evaluate import evaluate
    from sentipipe.tasks.classifier.register import register
    from sentipipe.tasks.classifier.teacher import teacher
    from sentipipe.tasks.classifier.tokenize import tokenize
    from sentipipe.tasks.classifier.train import train
    from sentipipe.training.checkpoints import code_digest

    work.mkdir(parents=True, exist_ok=True)
    trained_at = _git("rev-parse", "--short", "HEAD") + (" (uncommitted changes)" if _dirty() else "")
    (work / "trained_at.txt").write_text(trained_at + "\n")  # the workspace has no git: --reuse reads it here
    here = Path.cwd()
    os.chdir(work)
    seconds: dict[str, float] = {}
    # the package's code, not this script's: editing the bench's page does not make its stages run again
    key = hashlib.md5(json.dumps({"params": raw, "code": code_digest(script="")}, sort_keys=True).encode()).hexdigest()
    progress = work / "stages_done.json"
    done = read_json(progress) if resume and progress.is_file() else {}
    done = done.get("seconds", {}) if done.get("key") == key else {}
    try:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        data, params = parse(raw, DataConfig, "bench"), parse(raw, ClassifierConfig, "bench")
        for name, stage, arg in (
            ("ingest", ingest, data),
            ("prepare", prepare, data),
            ("tokenize", tokenize, params),
            ("embed", embed, params),
            ("teacher", teacher, params),
            ("train", train, params),
            ("evaluate", evaluate, params),
            ("register", register, params),
        ):
            if name in done:
                print(f"bench: stage {name} ran before in {work} with the same params and code: not run again")
                seconds[name] = done[name]
                continue
            start = time.perf_counter()
            with stage_script(name):
                stage(arg)
            seconds[name] = round(time.perf_counter() - start, 1)
            write_json(progress, {"key": key, "seconds": seconds})
        (work / "stage_seconds.json").write_text(json.dumps(seconds))
    finally:
        os.chdir(here)
    return {**finished(work), "resumed_stages": list(done)}


STAGE_SCRIPTS = {"tokenize": "tokenize_texts"}  # a stage whose script has another name (pipeline/classifier/)


@contextmanager
def stage_script(name: str) -> Iterator[None]:
    """While a stage runs here, the script `dvc repro` would run for it stands as __main__: the teacher's and the
    student's checkpoints are keyed by the code, that script's included (training/checkpoints.py), so an edit
    to this bench does not keep a killed bench's stages from resuming."""
    main = sys.modules["__main__"]
    before = getattr(main, "__file__", None)
    script = f"{name}.py" if name in ("ingest", "prepare") else f"classifier/{STAGE_SCRIPTS.get(name, name)}.py"
    main.__file__ = str(REPO / "pipeline" / script)
    try:
        yield
    finally:
        main.__file__ = before


def finished(work: Path) -> dict:
    """A workspace whose stages all ran (`pipeline`'s, or a kept one with --reuse): the served model's predictions,
    the reports, each stage's time and the commit it ran at."""
    frames = {s: pd.read_parquet(work / prepared(s)) for s in ("train", "val", "test")}
    served = Predictor.load(work / paths.SERVED)
    probs = {s: served.predict_proba(frames[s]["text"].astype(str).tolist()) for s in ("val", "test")}
    reports = {
        "metrics": read_json(work / paths.METRICS),
        "train": read_json(work / paths.TRAIN_REPORT),
        "registration": read_json(work / paths.REGISTRATION),
        "prepare": read_json(work / "reports/data/prepare.json"),
        "teacher": read_json(work / paths.TEACHER_REPORT),  # the stage writes it on or off ({"enabled": false})
    }
    seconds = read_json(work / "stage_seconds.json") if (work / "stage_seconds.json").is_file() else {}
    stamp = work / "trained_at.txt"
    trained_at = stamp.read_text().strip() if stamp.is_file() else "not recorded"
    return {
        "frames": frames,
        "labels": served.labels,
        "probs": probs,
        "seconds": seconds,
        "trained_at": trained_at,
        **reports,
    }


def nb_linear(frames: dict, y: dict, classes: int, kind: str, metric: str) -> tuple[dict, dict]:
    """NB-LR or NBSVM, C and class weights chosen on the validation figure: val and test predictions, the choice."""
    features = NBFeatures(frames["train"].text, y["train"], classes)
    # each class's scaled features, computed once for every candidate
    scaled = [
        {s: features.transform(frames[s].text, k) for s in ("train", "val", "test")}
        for k in range(len(features.ratios))
    ]
    best = None
    for c, weights in baseline.grid(y["train"]):
        columns: dict[str, list] = {"val": [], "test": []}
        for k, x in enumerate(scaled):  # one model per class (one-vs-rest), fitted once, scored on both
            target = (y["train"] == (k if classes > 2 else 1)).astype(int)
            cw = None if weights == "none" else "balanced"
            if kind == "lr":
                model = LogisticRegression(C=c, max_iter=3000, class_weight=cw)
            else:
                model = LinearSVC(C=c / 10, max_iter=20000, class_weight=cw)
            model.fit(x["train"], target)
            for split in ("val", "test"):
                columns[split].append(model.decision_function(x[split]))
        preds = {
            s: np.stack(cols, 1).argmax(1) if classes > 2 else (cols[0] > 0).astype(int) for s, cols in columns.items()
        }
        value = baseline.figure(metric, y["val"], preds["val"])
        if best is None or value > best[0]:
            best = (value, preds, {"C": c, "class_weight": weights})
    return best[1], best[2]


def baseline_fits(frames: dict, y: dict, classes: int, metric: str) -> dict:
    """Each baseline as a fit to run: its val and test predictions and its row (the choice made on validation)."""

    def reference() -> tuple[dict, dict]:
        text = {s: frames[s]["text"].astype(str).tolist() for s in ("train", "val", "test")}
        model = baseline.fit(text["train"], y["train"], text["val"], y["val"], metric)
        p = {s: model.predict_proba(text[s]).argmax(1) for s in ("val", "test")}
        choice = {"C": model.c, "class_weight": model.class_weight}
        return p, {"choice": choice, "candidates": len(model.val_by_candidate)}

    def nb(kind: str) -> tuple[dict, dict]:
        p, choice = nb_linear(frames, y, classes, kind, metric)
        return p, {"choice": choice, "candidates": len(baseline.grid(y["train"]))}

    return {REFERENCE: reference, "NB-LR": partial(nb, "lr"), "NBSVM": partial(nb, "svm")}


class BaselineCache:
    """The baselines' predictions of a kept workspace, keyed by the splits, the figure, the baselines' code and threads.

    With --keep each fitted baseline is written here as soon as it is done; --reuse reads it back instead of
    fitting again (SemEval's three took 74 min on 2 cores), only while the key is the same.
    """

    def __init__(self, path: Path, frames: dict, metric: str):
        digest = hashlib.md5(metric.encode())
        for s in ("train", "val", "test"):
            digest.update(pd.util.hash_pandas_object(frames[s][["text", "label"]], index=False).to_numpy().tobytes())
        for source in (inspect.getsource(baseline), inspect.getsource(nb_linear), inspect.getsource(NBFeatures)):
            digest.update(source.encode())
        # and the math libraries' threads: L-BFGS stops within its tolerance at another point when BLAS sums in
        # another order (SemEval's TF-IDF LR fitted on one thread: test macro recall 68.0 against 67.8 on two)
        digest.update(json.dumps(sorted((t["internal_api"], t["num_threads"]) for t in threadpool_info())).encode())
        self.path, self.key = path, digest.hexdigest()

    def _read(self) -> dict:
        if not self.path.is_file():
            return {}
        stored = read_json(self.path)
        return stored.get("methods", {}) if stored.get("key") == self.key else {}

    def get(self, label: str) -> dict | None:
        hit = self._read().get(label)
        if hit is None:
            return None
        print(f"{label}: read from {self.path} (fitted {hit['row']['seconds']} s, same splits and code)", flush=True)
        return {**hit, "preds": {s: np.asarray(v, dtype=np.int64) for s, v in hit["preds"].items()}}

    def put(self, label: str, hit: dict) -> None:
        methods = self._read()  # another bench on the same workspace may have written its own meanwhile
        methods[label] = {**hit, "preds": {s: np.asarray(v).tolist() for s, v in hit["preds"].items()}}
        write_json(self.path, {"key": self.key, "methods": methods})


def teacher_summary(report: dict) -> dict | None:
    """The distill set's teacher, from the teacher stage's report: which encoder, its own val and test accuracy."""
    if not report.get("enabled"):
        return None
    keep = (
        "best_epoch",
        "val_accuracy",
        "test_accuracy",
        "train_seconds",
        "soft_targets",
        "scored_texts_per_second",
        "resumed_after_epoch",
        "resumed_labelled_parts",
    )
    return {
        "model": report["teacher"].get("model"),
        "parameters": report["teacher"].get("parameters"),
        "epochs_run": len(report.get("history", [])),
        **{k: report.get(k) for k in keep},
    }


def _resumed(row: dict) -> str:
    """What of a row ran before a kill and was not run again: finished stages, teacher epochs, labelled parts."""
    said = []
    if row.get("resumed_stages"):
        said.append(f"stages {', '.join(row['resumed_stages'])} finished before it")
    teacher = row.get("teacher") or {}
    if teacher.get("resumed_after_epoch"):
        said.append(f"the teacher resumed after epoch {teacher['resumed_after_epoch']}")
    if teacher.get("resumed_labelled_parts"):
        said.append(f"{teacher['resumed_labelled_parts']} labelled parts kept")
    return "; ".join(said)


def figures(truth: np.ndarray, pred: np.ndarray) -> dict:
    correct = pred == truth
    low, high = stats.wilson_interval(int(correct.sum()), len(truth))
    return {
        "accuracy": float(correct.mean()),
        "accuracy_interval": [low, high],
        "macro_f1": baseline.figure("macro_f1", truth, pred),
        "macro_recall": baseline.figure("macro_recall", truth, pred),
    }


def bench_corpus(name: str, args, work: Path, distill: list[str] | None) -> dict:
    corpus = CORPORA[name]
    benchmarks = Path(args.benchmarks).resolve()
    files = work / "files"
    files.mkdir(parents=True, exist_ok=True)
    for f in corpus.files:
        target = files / f
        if not target.exists():
            target.symlink_to(benchmarks / f)
    if corpus.prepare == "sst2-halves":
        sst2_halves(files, benchmarks)
    rows: dict[str, dict] = {}
    runs = {"default": run_params(corpus, files, args.set, None)}
    if distill is not None:
        runs["distill set"] = run_params(corpus, files, args.set, distill)
    ours: dict[str, dict] = {}
    for method, raw in runs.items():
        start = time.perf_counter()
        folder = work / method.replace(" ", "-")
        if args.reuse and (folder / paths.REGISTRATION).is_file():
            result = finished(folder)  # a kept workspace whose stages all ran: read, not rerun
        else:
            result = pipeline(raw, folder, args.reuse)
        wall = time.perf_counter() - start
        if args.reuse and result["seconds"]:
            wall = sum(result["seconds"].values())  # the stages' own time when they ran, not the time to read them
        ours[method] = {**result, "wall_seconds": round(wall, 1)}
        print(f"{name} {method}: {result['seconds']}", flush=True)
    first = next(iter(ours.values()))
    frames, labels = first["frames"], first["labels"]
    index = {c: i for i, c in enumerate(labels)}
    y = {s: frames[s]["label"].map(index).to_numpy() for s in ("train", "val", "test")}
    metric = corpus.metric
    preds = {f"sentipipe, {m}": {s: r["probs"][s].argmax(1) for s in ("val", "test")} for m, r in ours.items()}
    for method, r in ours.items():
        m = r["metrics"]
        rows[f"sentipipe, {method}"] = {
            "kind": "ours",
            "seconds": r["wall_seconds"],
            "stages_seconds": r["seconds"],
            "train": {
                k: r["train"].get(k)
                for k in ("stop_reason", "steps_run", "epochs_run", "best_step", "best_epoch", "train_seconds")
            },
            "budget": r["train"].get("budget"),
            "search": r["train"].get("search"),
            "registration": {k: r["registration"].get(k) for k in ("decision", "reason", "value", "baseline_value")},
            "trained_at": r.get("trained_at", ""),  # with --reuse: not the commit of this run
            "serving": m.get("serving"),
            "behaviour": m.get("behaviour", {}).get("overall"),
            "teacher": teacher_summary(r["teacher"]),
            "resumed_stages": r.get("resumed_stages", []),  # ran in an earlier bench that a kill stopped
        }
    kept = BaselineCache(work / "baselines.json", frames, metric) if args.keep else None
    for label, fit in baseline_fits(frames, y, len(labels), metric).items():
        hit = kept.get(label) if kept is not None and args.reuse else None
        if hit is None:  # fitted here (and kept for a later --reuse); else read: the same data, figure and code
            start = time.perf_counter()
            p, row = fit()
            hit = {"preds": p, "row": {"kind": "baseline", "seconds": round(time.perf_counter() - start, 1), **row}}
            if kept is not None:
                kept.put(label, hit)
        preds[label], rows[label] = hit["preds"], dict(hit["row"])
    for method, p in preds.items():
        rows[method]["val"] = figures(y["val"], p["val"])
        rows[method]["test"] = figures(y["test"], p["test"])
    best = max((m for m in rows if rows[m]["kind"] == "baseline"), key=lambda m: rows[m]["val"][metric])
    for method in (m for m in rows if rows[m]["kind"] == "ours"):
        rows[method]["versus"] = best
        rows[method]["mcnemar"] = stats.mcnemar(preds[method]["test"] == y["test"], preds[best]["test"] == y["test"])
        rows[method]["bootstrap"] = {
            k: stats.paired_bootstrap(
                y["test"], preds[method]["test"], preds[best]["test"], lambda t, p, k=k: baseline.figure(k, t, p)
            )
            for k in ("accuracy", "macro_recall")
        }
    for method in rows:
        t = rows[method]["test"]
        print(f"{name} {method}: test accuracy {t['accuracy']:.4f}, macro recall {t['macro_recall']:.4f}", flush=True)
    sizes = first["prepare"]["splits"]
    return {
        "corpus": name,
        "title": corpus.title,
        "protocol": corpus.protocol,
        "metric": metric,
        "published": corpus.published,
        "sizes": {s: sizes[s]["rows"] for s in ("train", "val", "test")},
        "data_params": corpus.data,
        "classifier_params": corpus.classifier,
        "overrides": args.set,
        "distill_flags": distill,
        "best_baseline_on_val": best,
        "methods": rows,
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} ({cpu_model()}), {os.cpu_count()} CPUs, torch threads {_threads()}",
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": _dirty(),
    }


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def _dirty() -> bool:
    return bool(_git("status", "--porcelain", "--untracked-files=no"))


def _p(p: float) -> str:
    """A bootstrap p-value: 0 means no resample of the default count went the other way."""
    resamples = inspect.signature(stats.paired_bootstrap).parameters["resamples"].default
    return f"p = {p:.3g}" if p > 0 else f"p < {2 / resamples:.2g}, none of {resamples:,} resamples"


def _flags(result: dict, row: dict) -> list[str]:
    """The distill set's flags as that row ran them: a carried row's own, not this run's (None without --distill)."""
    return (row.get("carried") or {}).get("distill_flags") or result["distill_flags"] or []


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def page(results: list[dict], missing: tuple[str, ...] = ()) -> str:
    """docs/benchmarks.md, from every corpus's last result; `missing`: corpora with none yet."""
    lines = [
        "# Public benchmarks",
        "",
        "<!-- Written by `python bench/public.py` from docs/benchmarks/*.json: do not edit by hand. -->",
        "",
        "Each corpus is run as a user would run it: the committed `params.yaml` with only `data.*` changed "
        "(and, for SemEval, the metric keys), every stage real, search included. The baselines are tuned on "
        "the same validation data and figure. Test rows are held out: no decision (stopping, search, "
        "temperature, gate, C) saw them; validation figures are not held out. The published figures are on "
        "the official test parts, which are not in this repository: they are context, not a paired comparison.",
        "",
    ]
    for r in results:
        metric = r["metric"]
        lines += [f"## {r['title']}", "", r["protocol"], ""]
        caveat = CORPORA[r["corpus"]].caveat if r["corpus"] in CORPORA else ""
        lines += [caveat, ""] if caveat else []
        lines += [
            f"Rows: train {r['sizes']['train']:,}, validation {r['sizes']['val']:,}, test {r['sizes']['test']:,}. "
            f"Run {r['date']} at commit {r['git_commit']}{' (uncommitted changes)' if r['git_dirty'] else ''} "
            f"on {r['machine']}; judged on {metric.replace('_', ' ')}."
            + (f" Overrides: `{' '.join(r['overrides'])}`." if r["overrides"] else ""),
            "",
            "| method | test accuracy (95%) | test macro-F1 | test macro recall | val "
            + metric.replace("_", " ")
            + " | wall time |",
            "|---|---|---|---|---|---|",
        ]
        for name, m in r["methods"].items():
            t, v = m["test"], m["val"]
            lo, hi = t["accuracy_interval"]
            when = f" ({m['carried']['date']})" if m.get("carried") else ""
            lines.append(
                f"| {name}{when} | {_pct(t['accuracy'])} ({_pct(lo)}-{_pct(hi)}) | {_pct(t['macro_f1'])} | "
                f"{_pct(t['macro_recall'])} | {_pct(v[metric])} | {m['seconds'] / 60:.1f} min |"
            )
        lines.append("")
        for name, m in r["methods"].items():
            if m["kind"] != "ours":
                continue
            boot = m["bootstrap"][metric]
            low, high = (100 * x for x in boot["difference_interval"])
            mc, reg, tr = m["mcnemar"], m["registration"], m["train"]
            figure = metric.replace("_", " ")
            lines.append(
                f"- **{name}** against {m['versus']} (the best baseline on validation): test {figure} "
                f"{boot['difference'] * 100:+.1f} points (95% paired bootstrap {low:+.1f} to {high:+.1f}, "
                f"{_p(boot['p_value'])}); McNemar on accuracy p = {mc['p_value']:.3g}. Registered as "
                f"**{reg['decision']}**. Training stopped by {tr['stop_reason']} after {tr['steps_run']} steps "
                f"({tr['epochs_run']:.1f} passes), best at step {tr['best_step']}."
                + (f" Trained at commit {m['trained_at']}." if m.get("trained_at") else "")
            )
            if m.get("search"):
                s = m["search"]
                lines.append(f"  Search: {s['why']}; chosen {s['chosen']}.")
            if m.get("teacher"):
                t = m["teacher"]
                lines.append(
                    f"  Teacher: {t['model']} ({t['parameters'] / 1e6:.1f}M parameters), fine-tuned on the train part "
                    f"for {t['epochs_run']} epochs (best {t['best_epoch']} on validation): val accuracy "
                    f"{_pct(t['val_accuracy'])}, test accuracy {_pct(t['test_accuracy'])} (held out); "
                    f"{t['soft_targets']:,} soft targets labelled at {t['scored_texts_per_second']:.0f} texts/s; "
                    f"trained in {t['train_seconds'] / 60:.1f} min. The distill set: "
                    f"`{' '.join('-S ' + f for f in _flags(r, m))}` (`make distill-params`)."
                )
            if c := m.get("carried"):
                lines.append(
                    f"  Not run again with this table's other rows: measured {c['date']} at commit {c['git_commit']} "
                    "(its comparison is with that run's baselines, on the same splits); `--distill` runs it again."
                )
            if resumed := _resumed(m):
                lines.append(
                    f"  Resumed with `--reuse` after a kill ({resumed}): the wall time counts the runs that finished "
                    "each stage, not the work the kill lost; the teacher's training time counts every epoch."
                )
        known = CORPORA.get(r["corpus"])
        if known and known.no_distill and "sentipipe, distill set" not in r["methods"]:
            lines += ["", known.no_distill]
        lines += ["", "Published (official test part): " + "; ".join(f"{n} {v}" for n, v in r["published"]) + ".", ""]
    for name in missing:
        corpus = CORPORA[name]
        lines += [
            f"## {corpus.title}",
            "",
            f"No result yet: `python bench/public.py --corpus {name}` measures it. Published (official test part): "
            + "; ".join(f"{n} {v}" for n, v in corpus.published)
            + ".",
            "",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", action="append", choices=sorted(CORPORA), help="one corpus (repeatable); default all")
    ap.add_argument("--distill", action="store_true", help="the distill set too (make distill-params)")
    ap.add_argument("--set", action="append", default=[], help="section.key=value override, any depth")
    ap.add_argument("--benchmarks", default=str(REPO.parent / "shared" / "benchmarks"))
    ap.add_argument("--keep", help="keep the workspaces in this folder")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: read a workspace whose stages all ran and kept baselines; go on with one a kill stopped",
    )
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks*")
    ap.add_argument("--docs", default=str(DOCS), help="the docs folder to write (a trial run: elsewhere)")
    ap.add_argument("--page", action="store_true", help="only write benchmarks.md again from the results there")
    args = ap.parse_args()
    docs = Path(args.docs).resolve()
    results = docs / "benchmarks"
    if args.page:
        write_page(docs, results)
        return 0
    distill = None
    if args.distill:
        flags = subprocess.run(["make", "-s", "distill-params"], cwd=REPO, capture_output=True, text=True, check=True)
        distill = [f for f in flags.stdout.split() if f != "-S"]
    results.mkdir(parents=True, exist_ok=True)
    root = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="sentipipe-public-"))
    try:
        for name in args.corpus or list(CORPORA):
            result = bench_corpus(name, args, root / name, distill)
            carry_rows(result, results / f"{name}.json")
            if not args.no_docs:
                (results / f"{name}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
            print(json.dumps({k: v for k, v in result.items() if k != "methods"}, default=str), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if not args.no_docs:
        write_page(docs, results)
    return 0


def carry_rows(result: dict, previous: Path) -> None:
    """Our rows of the corpus's last result that this run did not run again (the distill set, without --distill),
    kept in the table with the commit and date they were measured at: a run of one set leaves the other's row
    standing, marked, rather than dropping it."""
    if not previous.is_file():
        return
    before = json.loads(previous.read_text())
    for name, row in before["methods"].items():
        if row["kind"] == "ours" and name not in result["methods"]:
            origin = row.get("carried") or {
                "git_commit": before["git_commit"],
                "date": before["date"],
                "distill_flags": before["distill_flags"],
            }
            result["methods"][name] = {**row, "carried": origin}


def write_page(docs: Path, results: Path) -> None:
    order = [n for n in CORPORA if (results / f"{n}.json").exists()]
    missing = tuple(n for n in CORPORA if n not in order)
    (docs / "benchmarks.md").write_text(page([json.loads((results / f"{n}.json").read_text()) for n in order], missing))
    print(f"wrote {docs / 'benchmarks.md'}")


if __name__ == "__main__":
    sys.exit(main())
