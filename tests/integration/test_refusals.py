"""A store where the gate refused both tasks' models: every command says what to do, and what it says works.

The `sentipipe` entry point runs as a process, as a user types it; the models are trained for real on
the tiny corpus (once for the module) and refused by the real gate: worse than their baselines.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sentipipe.io import read_json
from sentipipe.tasks.classifier import paths as classifier_paths
from sentipipe.tasks.generator import paths as generator_paths
from tests.helpers import run_tiny_generator, run_tiny_pipeline, tiny_raw, write_params, write_raw_corpus
from tests.servers import free_port, stop, wait_until_up

pytestmark = pytest.mark.integration

# Barely trained, and the generator held to its n-gram: both worse than their baselines, so both challengers.
# Both serve their network alone here: mixed with the n-gram (or blended with the TF-IDF reference) at a weight
# chosen on val, a network this poor would give the reference the weight and tie it instead of losing to it.
REFUSED = {
    "classifier": {"train": {"max_steps": 2, "lr": 1e-5}, "evaluate": {"blend": "off"}},
    "generator": {"train": {"max_steps": 10}, "evaluate": {"mixture": "off"}, "register": {"beat_baseline": True}},
}
SENTIPIPE = str(Path(sys.executable).parent / "sentipipe")


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> tuple[Path, str]:
    """(workspace, what the register stages printed): a classifier and a generator, each a challenger only."""
    work = tmp_path_factory.mktemp("refused")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.chdir(work)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
        write_raw_corpus(work)
        run_tiny_pipeline(REFUSED)
        run_tiny_generator(REFUSED)
    write_params(work, tiny_raw(REFUSED))
    return work, printed.getvalue()


def sentipipe(work: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    return subprocess.run(
        [SENTIPIPE, *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def printed_commands(text: str, start: str) -> list[list[str]]:
    """The command lines in a message that begin with `start`, split as a shell would."""
    return [shlex.split(line.strip()) for line in text.splitlines() if line.strip().startswith(start)]


def follow(work: Path, argv: list[str], **kw) -> subprocess.CompletedProcess:
    assert argv[0] == "sentipipe", argv
    return sentipipe(work, *argv[1:], **kw)


def assert_one_clear_error(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("sentipipe: error:") == 1, proc.stderr


def test_predict_without_a_champion_lists_versions_and_reasons_and_its_command_labels_text(refused):
    work, _ = refused
    proc = sentipipe(work, "predict", "a wonderful film")
    assert_one_clear_error(proc)
    err = proc.stderr
    assert "cannot load models:/tiny-classifier@champion: no version has alias 'champion'" in err
    assert "version 1 (alias challenger); registered as challenger: val_accuracy" in err
    assert "worse than TF-IDF" in err and "(register.beat_baseline)" in err
    assert "set classifier.register.beat_baseline: false in params.yaml, then make run" in err
    commands = printed_commands(err, "sentipipe predict")
    assert [c[3] for c in commands] == ["models:/tiny-classifier@challenger", "models:/tiny-classifier/1"]
    for argv in commands:
        done = follow(work, argv)
        assert done.returncode == 0, done.stderr
        label, probabilities, text = done.stdout.strip().split("\t")
        assert label in ("positive", "negative") and "positive=" in probabilities and text == argv[-1]


def test_generate_without_a_champion_lists_versions_and_reasons_and_its_command_generates(refused):
    work, _ = refused
    proc = sentipipe(work, "generate", "a wonderful")
    assert_one_clear_error(proc)
    err = proc.stderr
    assert "cannot load models:/tiny-generator@champion: no version has alias 'champion'" in err
    assert "version 1 (alias challenger); registered as challenger: val_bpc" in err and "Kneser-Ney" in err
    assert "set generator.register.beat_baseline: false in params.yaml, then make generator" in err
    (argv, _) = printed_commands(err, "sentipipe generate")
    assert argv[:3] == ["sentipipe", "generate", "--model-uri"] and argv[3] == "models:/tiny-generator@challenger"
    done = follow(work, argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(argv[-1]) and len(done.stdout.strip()) > len(argv[-1])


def test_serve_without_a_champion_refuses_before_starting_and_its_command_serves(refused):
    work, _ = refused
    proc = sentipipe(work, "serve", "--port", str(free_port()), timeout=60)
    assert_one_clear_error(proc)
    assert "version 1 (alias challenger); registered as challenger" in proc.stderr
    argv = printed_commands(proc.stderr, "sentipipe serve")[0]
    assert argv == ["sentipipe", "serve", "--model-uri", "models:/tiny-classifier@challenger"]
    port = free_port()
    log = work / "serve.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [SENTIPIPE, *argv[1:], "--port", str(port)],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, f"{url}/ping", "sentipipe serve", log, timeout=120)
        reply = requests.post(f"{url}/invocations", json={"inputs": ["a wonderful film"]}, timeout=30)
        assert reply.status_code == 200, reply.text
        assert reply.json()["predictions"][0]["label"] in ("positive", "negative")
        assert requests.get(f"{url}/version", timeout=5).json()["model"] == "models:/tiny-classifier@challenger"
    finally:
        stop(server)


def test_summary_ends_with_each_refusal_its_figures_and_the_commands(refused):
    work, _ = refused
    proc = sentipipe(work, "summary")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    classifier = read_json(work / classifier_paths.REGISTRATION)
    generator = read_json(work / generator_paths.REGISTRATION)
    # the samples first, then the refusals: what the user reads last is what to do
    assert out.index("sample generation:") < out.index("tiny-classifier version 1 is registered as challenger")
    tail = out[out.index("tiny-classifier version 1 is registered as challenger") :]
    for task, reg in (("classifier", classifier), ("generator", generator)):
        assert f"why: {reg['reason']}" in tail
        assert f"this version {reg['value']:.4f}, the baseline {reg['baseline_value']:.4f}, no champion yet" in tail
        assert f"set {task}.register.beat_baseline: false in params.yaml" in tail
    assert 'use it anyway: sentipipe predict --model-uri models:/tiny-classifier@challenger "a text to label"' in tail
    assert "serve it:      sentipipe serve --model-uri models:/tiny-generator@challenger --task generator" in tail
    assert out.rstrip().endswith("make generator (or dvc repro pipeline/generator/dvc.yaml)")


def test_the_register_stage_says_what_to_do_as_it_refuses(refused):
    _, printed = refused
    assert "register: tiny-classifier version 1 is registered as challenger, not champion" in printed
    assert "use it anyway: sentipipe predict --model-uri models:/tiny-classifier@challenger" in printed
    assert "WARNING: this model is worse than the reference baseline on val_accuracy" in printed
    assert "generator register: tiny-generator version 1 is registered as challenger" in printed


def test_a_model_name_the_store_never_registered_says_which_pipeline_to_run(refused):
    work, _ = refused
    proc = sentipipe(work, "generate", "--model-uri", "models:/nobody@champion")
    assert_one_clear_error(proc)
    assert "no model named 'nobody' is registered in sqlite:///" in proc.stderr
    assert "train and register one: make generator" in proc.stderr
    assert "this store holds tiny-classifier, tiny-generator" in proc.stderr


def test_the_store_read_directly_and_through_mlflow_lists_the_same_versions(refused, monkeypatch):
    """SQLite is read with one query; any other store (a tracking server) through MLflow: the same answer."""
    from sentipipe import model_cache

    work, _ = refused
    uri = f"sqlite:///{work / 'mlflow.db'}"
    direct = model_cache.versions(uri, "tiny-classifier"), model_cache.model_names(uri)
    assert direct[0] == [
        model_cache.RegisteredVersion(
            1, ("challenger",), "challenger", read_json(work / classifier_paths.REGISTRATION)["reason"]
        )
    ]
    monkeypatch.setattr(model_cache, "_versions_from_sqlite", lambda path, name: None)
    monkeypatch.setattr(model_cache, "_names_from_sqlite", lambda path: None)
    assert (model_cache.versions(uri, "tiny-classifier"), model_cache.model_names(uri)) == direct
    assert model_cache.versions(uri, "nobody") == []
