"""The monitoring workflow, replayed here: every step of .github/workflows/monitor.yml, in order, on the CPU.

The steps are read from the workflow file, so the test follows it. A tiny classifier is trained and
registered as champion in a real MLflow store (the SQLite store of the checkout: the workflow's secrets
are empty here, so the job falls back to it), and traffic is scored by the real `sentipipe predict
--input` with monitoring.enabled, which writes the prediction log (the repository secret
PREDICTION_LOG names its folder). After each window of traffic arrives, the job is replayed as a
scheduled run would run it, on a fresh runner's files: the reference (the champion's validation
split) comes from the checkout's DVC remote, a local folder. In-domain windows raise no alarm and
dispatch nothing; a window of long film reviews raises one, and the dispatch step runs once, naming
what moved; a run with no new window dispatches nothing.

What is not real: GitHub's `gh` cannot reach GitHub from here, so an executable `gh` first on PATH
records its arguments to a file (the only stand-in). GitHub's own steps (`uses:`) are not run.
`${{ ... }}` expressions get the values a scheduled run would have (secrets empty), and an `if:` is
evaluated from the outputs the steps wrote to $GITHUB_OUTPUT (only the forms monitor.yml uses; any
other fails the test, so a new form is noticed rather than guessed).
"""

from __future__ import annotations

import json
import os
import random
import re
import stat
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from tests.e2e.test_retrain_workflow import clone, expand
from tests.helpers import REPO, merge, run_tiny_pipeline, venv_env, write_raw_corpus

pytestmark = pytest.mark.e2e

WORKFLOW = REPO / ".github/workflows/monitor.yml"
WINDOW = 40  # rows a monitored window: small, so that a window of traffic is one `predict` call
MODEL = "tiny-classifier"  # tests/helpers.TINY's registered name
REPOSITORY = "team/sentipipe"
# The only `if:` form monitor.yml uses; anything else is refused (see condition_holds).
STEP_KEYS = {"name", "id", "if", "env", "run", "uses", "with"}  # what a step may say; the replay models each
CONDITION = re.compile(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+) == '([^']*)'")

# Long film reviews in words the tiny corpus never uses: out of domain in length and vocabulary.
# Built here, not read from ../shared/benchmarks (IMDB), which the CI runner does not have.
REVIEW_SENTENCES = [
    "I caught this at a late screening after a long week at the office",
    "the cinematographer frames every landscape as though it were a painting hung in a museum",
    "halfway through, the screenplay abandons its detective subplot for a courtroom procedural",
    "my grandmother, who remembers the original novel, kept whispering about the changes",
    "the soundtrack leans heavily on synthesizers borrowed from nineteen eighties television",
    "several sequences were apparently shot on location in Lisbon and Marrakesh",
    "a runtime of nearly three hours tested the patience of the people around me",
    "critics at the festival argued for weeks about its ambiguous final shot",
    "the supporting actors include a retired boxer and a former weather presenter",
    "production reportedly stalled twice when the financing collapsed",
    "the costumes recreate Victorian mourning dress with obsessive accuracy",
    "there is an extended dream sequence involving lighthouses, clocks and migrating geese",
    "the director previously made documentaries about beekeeping in the Carpathians",
    "dialogue switches between Portuguese, French and occasional Latin",
    "the second act is narrated by a parrot belonging to the harbour master",
    "its distributor released an extended cut with forty minutes of additional footage",
]


# ---------------------------------------------------------------- the workflow, read and replayed


def job() -> dict:
    (only,) = yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
    return only


class Values(dict):
    """`${{ expression }}` values: those given, and every secret empty (a repository without them)."""

    def __missing__(self, key: str) -> str:
        if key.startswith("secrets."):
            return ""
        raise KeyError(f"monitor.yml uses ${{{{ {key} }}}}, which the replay gives no value: add one")


def condition_holds(expression: str, outputs: dict[str, dict[str, str]]) -> bool:
    """An `if:` as GitHub evaluates it, for the one form monitor.yml uses; any other fails loudly."""
    found = CONDITION.fullmatch(expression.strip())
    if found is None:
        raise AssertionError(
            f"monitor.yml has `if: {expression}`; the replay evaluates only "
            "steps.<id>.outputs.<name> == '<text>': teach condition_holds the new form"
        )
    step, name, value = found.groups()
    return outputs.get(step, {}).get(name, "") == value


def read_outputs(path: Path) -> dict[str, str]:
    """A step's $GITHUB_OUTPUT file: name=value lines (the only form monitor.yml writes)."""
    outputs = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if not sep or "<<" in name:
            raise AssertionError(f"$GITHUB_OUTPUT line {line!r}: the replay reads name=value lines only")
        outputs[name] = value
    return outputs


def replay(work: Path, env: dict[str, str], values: Values, tmp: Path) -> dict:
    """One run of the job on a fresh runner's files (the store and the log persist, as they do on servers)."""
    # A fresh runner: no report of an earlier run, and the reference only in the DVC remote.
    for stale in ("monitoring.txt", "monitoring", "data/prepared", ".dvc/cache"):
        subprocess.run(["rm", "-rf", stale], cwd=work, check=True)
    summary = tmp / f"summary-{values['github.run_id']}.md"
    summary.write_text("")
    spec = job()
    job_env = {k: expand(str(v), values) for k, v in spec.get("env", {}).items()}
    outputs: dict[str, dict[str, str]] = {}
    ran: dict[str, subprocess.CompletedProcess] = {}
    skipped, uploads = [], []
    for number, step in enumerate(spec["steps"]):
        name = step.get("name") or step.get("uses") or step["run"][:40]
        unknown = set(step) - STEP_KEYS
        assert not unknown, f"step {name!r} uses {sorted(unknown)}, which the replay does not model: teach it"
        if "if" in step and not condition_holds(step["if"], outputs):
            skipped.append(name)
            continue
        if "uses" in step:
            if step["uses"].startswith("actions/upload-artifact"):
                uploads += step["with"]["path"].split()
            continue
        output_file = tmp / f"output-{values['github.run_id']}-{number}"
        output_file.write_text("")
        full = {
            **env,
            **job_env,
            **{k: expand(str(v), values) for k, v in step.get("env", {}).items()},
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", expand(step["run"], values)],
            cwd=work,
            env=full,
            capture_output=True,
            text=True,
            timeout=600,
        )
        ran[name] = proc
        if "id" in step:
            outputs[step["id"]] = read_outputs(output_file)
        if proc.returncode != 0:
            raise AssertionError(
                f"step {name!r} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
    report = work / "monitoring/report.json"
    return {
        "ran": ran,
        "skipped": skipped,
        "outputs": outputs,
        "uploads": uploads,
        "summary": summary.read_text(),
        "text": (work / "monitoring.txt").read_text(),
        "report": json.loads(report.read_text()),
        "html": (work / "monitoring/report.html").read_text(),
        "uploaded_exist": all((work / p).exists() for p in uploads),
    }


# ---------------------------------------------------------------- the champion, its traffic and the runs


def fake_gh(folder: Path, calls: Path) -> Path:
    """The `gh` stand-in: GitHub cannot be reached from here. Each call's argv, NUL-separated, in a file."""
    folder.mkdir()
    calls.mkdir()
    gh = folder / "gh"
    gh.write_text(f'#!/bin/sh\nn=$(ls "{calls}" | wc -l)\nprintf "%s\\0" "$@" > "{calls}/call-$n"\n')
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    return folder


def gh_calls(calls: Path) -> list[list[str]]:
    files = sorted(calls.iterdir(), key=lambda p: int(p.name.split("-")[1]))
    return [p.read_bytes().decode().split("\0")[:-1] for p in files]


def in_domain(work: Path, seed: int) -> list[str]:
    """A window of texts like the champion's: its validation and test rows, drawn again in a new order."""
    texts = pd.concat([pd.read_parquet(work / f"data/prepared/{s}.parquet") for s in ("val", "test")])["text"]
    return texts.sample(WINDOW, replace=True, random_state=seed).tolist()


def film_reviews(seed: int) -> list[str]:
    rng = random.Random(seed)
    return [". ".join(rng.sample(REVIEW_SENTENCES, 8)) + "." for _ in range(WINDOW)]


def arrive(work: Path, env: dict[str, str], texts: list[str], name: str) -> None:
    """A window of traffic, scored (and logged) by the real command."""
    source = work.parent / f"{name}.csv"
    pd.DataFrame({"text": texts}).to_csv(source, index=False)
    command = [
        ".venv/bin/sentipipe",
        "predict",
        "--input",
        str(source),
        "--output",
        str(work.parent / f"{name}-out.csv"),
    ]
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"logged {WINDOW} rows" in proc.stdout, proc.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("monitor")
    work, _ = clone(tmp)  # a checkout whose DVC remote is a local folder, .venv current already
    log, calls = tmp / "prediction-log", tmp / "gh-calls"
    store = f"sqlite:///{work / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:  # the champion: trained and registered into the checkout's store
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", store)
        write_raw_corpus(work)
        run_tiny_pipeline()
    params = yaml.safe_load((work / "params.yaml").read_text())
    merge(
        params,
        {
            "classifier": {"register": {"model_name": MODEL}},
            "monitoring": {"enabled": True, "log": str(log), "window": WINDOW},
        },
    )
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # The champion's validation split in the team's DVC remote, recorded in dvc.lock as `dvc repro` leaves it:
    # the workflow's pull step fetches it (each replay starts without it, as a fresh runner does).
    for command in (["dvc", "commit", "-f", "prepare"], ["dvc", "push", "prepare"]):
        subprocess.run(command, cwd=work, env=venv_env(), check=True, capture_output=True, timeout=300)
    traffic = [in_domain(work, seed=1), in_domain(work, seed=2), film_reviews(seed=3), None]
    validation = (work / "data/prepared/val.parquet").read_bytes()

    env = {k: v for k, v in venv_env().items() if not k.startswith(("MLFLOW_", "DVC_", "GITHUB_"))}
    env.update(PYTHONPATH=str(work / "src"), OMP_NUM_THREADS="1", CI="true", GITHUB_ACTIONS="true")
    env["PATH"] = f"{fake_gh(tmp / 'bin', calls)}{os.pathsep}{env['PATH']}"
    values = Values(
        {
            "secrets.PREDICTION_LOG": str(log),
            "github.token": "replay-token",
            "github.server_url": "https://github.com",
            "github.repository": REPOSITORY,
        }
    )

    done = []
    for run_id, texts in zip((101, 102, 103, 104), traffic, strict=True):  # 104: the next run, no new window
        if texts is not None:
            arrive(work, env, texts, f"traffic-{run_id}")
        before = len(gh_calls(calls))
        result = replay(work, env, Values({**values, "github.run_id": str(run_id)}), tmp)
        result["gh"] = gh_calls(calls)[before:]
        done.append(result)
    client = MlflowClient(store, registry_uri=store)
    return {"work": work, "done": done, "client": client, "log": log, "validation": validation}


def test_in_domain_windows_raise_no_alarm_and_dispatch_nothing(runs):
    for k, run in enumerate(runs["done"][:2]):
        assert run["outputs"]["monitor"] == {"alarm": "false"}
        assert run["skipped"] == ["dispatch retraining on evidence"]
        assert run["gh"] == []
        assert [w["index"] for w in run["report"]["windows"]] == [k], "each window tested once, when it arrives"
        assert not run["report"]["alarm"] and run["report"]["windows"][0]["moved"] == []
        assert f"window {k}: no drift" in run["text"]


def test_a_drifted_window_dispatches_retraining_once_with_what_moved(runs):
    run = runs["done"][2]
    assert run["outputs"]["monitor"] == {"alarm": "true"}
    assert run["skipped"] == []
    assert run["ran"]["dispatch retraining on evidence"].returncode == 0
    (call,) = run["gh"]
    assert call[:6] == ["workflow", "run", "retrain.yml", "--ref", "main", "-f"]
    assert len(call) == 7
    reason = call[6]
    (window,) = run["report"]["windows"]
    assert window["index"] == 2 and window["drifted"]
    assert "length" in window["moved"], window["tests"]["length"]
    line = next(x for x in run["text"].splitlines() if x.startswith("window 2: DRIFT: "))
    assert reason == f"reason=monitor: {line} report: https://github.com/{REPOSITORY}/actions/runs/103"
    for name in window["moved"]:
        assert name in reason


def test_a_run_without_a_new_window_tests_nothing_and_dispatches_nothing(runs):
    run = runs["done"][3]
    assert run["outputs"]["monitor"] == {"alarm": "false"}
    assert run["skipped"] == ["dispatch retraining on evidence"] and run["gh"] == []
    assert run["report"]["windows"] == [] and not run["report"]["alarm"]
    assert "no new full window of 40 rows since the last call; nothing tested" in run["text"]
    assert "No new full window since the last call" in run["html"]


def test_each_run_pulls_the_champions_validation_split_from_the_dvc_remote(runs):
    rows = len(pd.read_parquet(runs["work"] / "data/prepared/val.parquet"))
    assert (runs["work"] / "data/prepared/val.parquet").read_bytes() == runs["validation"]
    for run in runs["done"]:
        pulled = run["ran"]["pull the validation split, the reference (when a DVC remote is configured)"]
        assert pulled.returncode == 0 and "data/prepared" in pulled.stdout, pulled.stdout
        if run["report"]["windows"]:
            assert run["report"]["reference"]["rows"] == rows


def test_the_reports_and_the_step_summary_say_what_moved(runs):
    for run in runs["done"]:
        assert run["summary"] == f"## Monitoring\n```\n{run['text']}```\n", "monitoring.txt, fenced, on the job page"
        assert run["uploaded_exist"], f"the artifact's paths: {run['uploads']}"
        assert run["report"]["model"]["name"] == MODEL and run["report"]["log"] == str(runs["log"])
    drifted = runs["done"][2]
    assert drifted["report"]["alarm"] and drifted["report"]["rows_logged"] == 3 * WINDOW
    assert f"{MODEL} version 1: ALARM" in drifted["html"]
    moved = ", ".join(drifted["report"]["windows"][0]["moved"])
    assert "<h2>Window 2 (" in drifted["html"] and f"ALARM: {moved}</h2>" in drifted["html"]
    assert "nothing moved" not in drifted["html"]


def test_the_monitor_run_records_each_window_once_and_the_last_tested(runs):
    client = runs["client"]
    experiment = client.get_experiment_by_name("sentipipe-monitoring")
    (run,) = client.search_runs([experiment.experiment_id])
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert run.data.tags["sentipipe.model_version"] == str(champion.version)
    assert run.data.tags["sentipipe.monitored_run_id"] == champion.run_id
    assert run.data.tags["sentipipe.monitor.last_window"] == "2"
    assert run.data.tags["sentipipe.monitor.alarm"] == "false", "the last call found nothing new"
    assert run.data.tags["sentipipe.monitor.log"] == str(runs["log"]), "the log the workflow names (PREDICTION_LOG)"
    moved = runs["done"][2]["report"]["windows"][0]["moved"]
    tags = client.get_model_version(MODEL, champion.version).tags  # what the version's page shows
    assert tags["monitor.run_id"] == run.info.run_id and tags["monitor.alarm"] == "false"
    assert tags["monitor.last_window"].startswith("2 (to ") and tags["monitor.drift"] == ", ".join(moved)
    assert tags["monitor.rows_logged"] == str(3 * WINDOW)
    assert client.get_run(champion.run_id).data.tags["sentipipe.monitor_run_id"] == run.info.run_id
    history = client.get_metric_history(run.info.run_id, "drift_alarm")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.0), (1, 0.0), (2, 1.0)]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "drift_p_length")] == [0, 1, 2]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"windows-00000-00000", "windows-00001-00001", "windows-00002-00002"}
    assert {a.path for a in client.list_artifacts(run.info.run_id, "windows-00002-00002")} == {
        "windows-00002-00002/report.html",
        "windows-00002-00002/report.json",
    }
