"""The monitor judged by replay: false alarms on in-domain windows, alarms on other domains, live accuracy.

Run in a workspace whose champion is trained and registered (`make run`), from its root:

    python bench/monitor.py [--repeats 200] [--page]

What it measures, with the champion as served and `monitoring.*` from params.yaml:

1. False alarms, in-domain. Windows of `monitoring.window` rows of the test split (never
   the reference, never trained on), drawn at random `--repeats` times, each tested against
   the reference (the validation split) as `sentipipe monitor` tests a window; and windows of
   validation data against a reference of the other half of the validation split (split at
   random each time). The alarm rate has a Wilson interval; the target is at most 1%.
2. Alarms, other domains: a window of texts from each other corpus (tweets, product reviews,
   news, long film reviews), and windows mixing a share of them into test traffic; what moved.
3. Live accuracy: the test split logged by the real PredictionLog, its true labels fed back by
   `sentipipe feedback`'s code, read back as the monitor reads them: it must equal the test
   accuracy evaluate recorded (reports/classifier/metrics.json), the artifact being the same.

`--page` writes the tables into docs/monitoring.md (between the bench's markers) and the figures
to docs/benchmarks/monitoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sentipipe import config, model_cache, tracking
from sentipipe.io import read_json, write_json
from sentipipe.monitoring.drift import TESTS, Features, window_tests
from sentipipe.monitoring.log import PredictionLog, new_request_id
from sentipipe.monitoring.monitor import live_figures, read_feedback, read_log, scored_features
from sentipipe.stats import wilson_interval
from sentipipe.tasks.classifier import params as classifier_params
from sentipipe.tasks.classifier.served import ServedClassifier

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "monitoring.md"
FIGURES = ROOT / "docs" / "benchmarks" / "monitoring.json"
START, END = "<!-- bench/monitor.py: start -->", "<!-- bench/monitor.py: end -->"
BENCHMARKS = ROOT.parent / "shared" / "benchmarks"


def champion(params_path: str) -> tuple[ServedClassifier, dict]:
    params = classifier_params.load(params_path)
    uri = tracking.tracking_uri(config.load(params_path, config.TrackingConfig).tracking)
    model_uri = f"models:/{params.classifier.register.model_name}@champion"
    name, version, identity = model_cache.resolve(uri, model_uri)
    model = model_cache.load_python_model(model_cache.local_model(uri, model_uri), ServedClassifier)
    return model, {"name": name, "version": version, "run_id": identity.split(":")[0]}


def alarm_rate(alarms: list[bool]) -> dict:
    low, high = wilson_interval(int(sum(alarms)), len(alarms))
    return {
        "windows": len(alarms),
        "alarms": int(sum(alarms)),
        "rate": float(np.mean(alarms)),
        "low": low,
        "high": high,
    }


def other_domains(benchmarks: Path, n: int, seed: int) -> dict[str, list[str]]:
    """Texts of other domains: the VADER corpora the default run leaves out, and the public benchmarks."""
    from sentipipe.data.vader import fetch_sdist, read_vader_corpora

    found: dict[str, list[str]] = {}
    raw, _ = read_vader_corpora(["amazon", "nyt", "tweets"], fetch_sdist())
    names = {"amazon": "product reviews (VADER amazon)", "nyt": "news (VADER nyt)", "tweets": "tweets (VADER)"}
    for corpus, rows in raw.groupby("source"):
        found[names.get(corpus, corpus)] = rows["text"].sample(n, random_state=seed).tolist()
    files = {
        "tweets (SemEval 2013-2016)": "semeval2013-2016.parquet",
        "long film reviews (IMDB train)": "imdb-train.parquet",
        "movie sentences, lowercased and tokenised (SST-2 dev)": "sst2-dev.parquet",
    }
    for name, file in files.items():
        path = benchmarks / file
        if path.is_file():
            texts = pd.read_parquet(path, columns=["text"])["text"]
            found[name] = texts.sample(min(n, len(texts)), random_state=seed).tolist()
        else:
            print(f"  ({path} not found: {name} left out)", file=sys.stderr)
    return found


def live_check(model, identity: dict, texts: list[str], truth: list[str], monitoring) -> dict:
    """The real log and the real feedback path, read back as `sentipipe monitor` reads them."""
    from sentipipe.monitoring import feedback

    with tempfile.TemporaryDirectory() as tmp:
        params = monitoring.model_copy(update={"log": f"{tmp}/log", "flush_rows": 400})
        log = PredictionLog.from_params(params, identity, model.predictor.labels, source="bench")
        ids = []
        for start in range(0, len(texts), 100):
            batch, request_id = texts[start : start + 100], new_request_id()
            rows, feats = model.scored(batch)
            log.append(request_id, batch, rows, feats, 0.0)
            ids += [f"{request_id}/{i}" for i in range(len(batch))]
        log.close()
        labels = Path(tmp) / "labels.csv"
        pd.DataFrame({"id": ids, "label": truth}).to_csv(labels, index=False)
        feedback.record(params, labels)
        frame = read_log(params.log).merge(read_feedback(params.log), on="id", how="left")
        return live_figures(frame, list(model.predictor.labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--repeats", type=int, default=200, help="random in-domain windows per false-alarm figure")
    parser.add_argument("--benchmarks", type=Path, default=BENCHMARKS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--page", action="store_true", help="write docs/monitoring.md's tables and the JSON")
    args = parser.parse_args()
    monitoring = config.load(args.params, config.MonitoringConfig).monitoring
    w, alpha, rng = monitoring.window, monitoring.alpha, np.random.default_rng(args.seed)
    model, identity = champion(args.params)
    val = pd.read_parquet("data/prepared/val.parquet")
    test = pd.read_parquet("data/prepared/test.parquet")
    if len(val) > monitoring.reference_rows:
        val = val.sample(monitoring.reference_rows, random_state=0)
    ref = scored_features(model, val["text"].tolist())
    tested = scored_features(model, test["text"].tolist())
    if len(test) < w:
        raise SystemExit(f"the test split has {len(test)} rows, fewer than monitoring.window={w}")
    out: dict = {
        "model": identity,
        "window": w,
        "alpha": alpha,
        "reference_rows": len(ref),
        "test_rows": len(test),
        "machine": f"{os.cpu_count()} CPUs",
    }
    started = time.perf_counter()

    # 1. false alarms in-domain
    per_test = {name: 0 for name in TESTS}
    alarms = []
    for k in range(args.repeats):
        result = window_tests(ref, tested.take(rng.choice(len(test), w, replace=False)), alpha, seed=k)
        alarms.append(result["drifted"])
        for name in result["moved"]:
            per_test[name] += 1
    out["test_windows"] = {**alarm_rate(alarms), "by_test": per_test}
    seconds_per_window = (time.perf_counter() - started) / args.repeats
    half = len(val) // 2
    val_w = min(w, len(val) - half)
    alarms = []
    for k in range(args.repeats):
        order = rng.permutation(len(val))
        result = window_tests(ref.take(order[:half]), ref.take(order[half : half + val_w]), alpha, seed=k)
        alarms.append(result["drifted"])
    out["validation_windows"] = {**alarm_rate(alarms), "window": val_w, "reference": half}
    shuffled = rng.permutation(len(test))
    out["consecutive_test_windows"] = [
        window_tests(ref, tested.take(shuffled[i * w : (i + 1) * w]), alpha)["drifted"] for i in range(len(test) // w)
    ]

    # 2. other domains: a whole window, and a share mixed into test traffic
    out["domains"] = {}
    for name, texts in other_domains(args.benchmarks, w, args.seed).items():
        found = scored_features(model, texts)
        whole = window_tests(ref, found, alpha)
        mixed = {}
        for share in (0.1, 0.25, 0.5):
            hits = []
            for k in range(20):
                k_other = int(round(share * w))
                rows_other = rng.choice(len(found), k_other, replace=False)
                rows_test = rng.choice(len(test), w - k_other, replace=False)
                window = Features(
                    *(
                        np.concatenate([getattr(found, f)[rows_other], getattr(tested, f)[rows_test]])
                        for f in ("label", "confidence", "tokens", "unseen", "vector")
                    )
                )
                hits.append(window_tests(ref, window, alpha, seed=k)["drifted"])
            mixed[str(share)] = float(np.mean(hits))
        out["domains"][name] = {
            "rows": len(found),
            "alarm": whole["drifted"],
            "moved": {n: f"{whole['tests'][n]['reference']} -> {whole['tests'][n]['window']}" for n in whole["moved"]},
            "p_values": {n: whole["tests"][n]["p_value"] for n in TESTS},
            "detected_when_mixed": mixed,
        }
        print(f"{name}: alarm {whole['drifted']}, moved {list(out['domains'][name]['moved'])}", flush=True)

    # 3. live accuracy through the real log and feedback
    truth = test["label"].astype(str).tolist()
    live = live_check(model, identity, test["text"].tolist(), truth, monitoring)
    metrics = read_json("reports/classifier/metrics.json") if Path("reports/classifier/metrics.json").is_file() else {}
    out["live"] = {**live, "evaluate_test_accuracy": metrics.get("test", {}).get("accuracy")}
    out["seconds_per_window"] = seconds_per_window
    head = lambda where: subprocess.run(
        ["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    out["commit"], out["workspace_commit"] = head(ROOT), head(Path.cwd())  # the code; what trained the champion

    t, v = out["test_windows"], out["validation_windows"]
    print(
        f"false alarms, test windows of {w}: {t['alarms']}/{t['windows']} = {t['rate']:.3f} "
        f"({t['low']:.3f}-{t['high']:.3f})"
    )
    print(
        f"false alarms, validation windows of {v['window']}: {v['alarms']}/{v['windows']} = {v['rate']:.3f} "
        f"({v['low']:.3f}-{v['high']:.3f})"
    )
    print(f"consecutive test windows: {out['consecutive_test_windows']}")
    print(
        f"live accuracy {live['accuracy']:.4f} on {live['labelled']} labelled rows; evaluate's test accuracy "
        f"{out['live']['evaluate_test_accuracy']}"
    )
    print(f"{seconds_per_window:.2f} s a window (five tests)")
    if args.page:
        write_json(FIGURES, out)
        write_page(out)
    else:
        print(json.dumps(out, indent=2, default=str))


def write_page(out: dict) -> None:
    t, v = out["test_windows"], out["validation_windows"]
    lines = [
        START,
        f"Written by `python bench/monitor.py --page` at commit {out['commit']} on {out['model']['name']} version "
        f"{out['model']['version']} (trained by `make run` at {out['workspace_commit']}; window {out['window']} rows, "
        f"alpha {out['alpha']}, reference {out['reference_rows']} validation rows).",
        "",
        "| in-domain windows | windows | alarms | rate | 95% interval |",
        "|---|---|---|---|---|",
        f"| test split, random windows of {out['window']} | {t['windows']} | {t['alarms']} | {t['rate']:.3f} | "
        f"{t['low']:.3f}-{t['high']:.3f} |",
        f"| validation split, windows of {v['window']} against the other {v['reference']} rows | {v['windows']} | "
        f"{v['alarms']} | {v['rate']:.3f} | {v['low']:.3f}-{v['high']:.3f} |",
        "",
        "| other domain (a window of it) | alarm | what moved | detected at 10% / 25% / 50% of a window |",
        "|---|---|---|---|",
    ]
    for name, d in out["domains"].items():
        moved = "; ".join(f"{k}: {v}" for k, v in d["moved"].items()) or "nothing"
        mixed = " / ".join(f"{d['detected_when_mixed'][s]:.0%}" for s in ("0.1", "0.25", "0.5"))
        lines.append(f"| {name} | {'yes' if d['alarm'] else 'no'} | {moved} | {mixed} |")
    live = out["live"]
    lines += [
        "",
        f"Live accuracy of the test split logged and labelled back: {live['accuracy']:.4f} on {live['labelled']} "
        f"rows; evaluate's test accuracy of the same version: {live['evaluate_test_accuracy']:.4f}. Five tests take "
        f"{out['seconds_per_window']:.2f} s a window ({out['machine']}).",
        END,
    ]
    text = PAGE.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    PAGE.write_text(head + "\n".join(lines) + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
