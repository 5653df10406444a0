"""The teacher stage with an encoder chosen by params: a local checkpoint folder, fine-tuned and recorded."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from mlflow import MlflowClient

from sentipipe.data.paths import prepared
from sentipipe.errors import ConfigError
from sentipipe.io import read_json
from sentipipe.tasks.classifier import paths
from sentipipe.tasks.classifier.predictor import Predictor
from sentipipe.tasks.classifier.teacher import TEACHER_CHECKPOINT
from tests.helpers import REPO, run_tiny_pipeline, tiny_raw
from tests.unit.test_teacher_encoders import tiny_checkpoint

pytestmark = pytest.mark.integration


def distill(teacher: str) -> dict:
    return {
        "classifier": {
            "distill": {
                "enabled": True,
                "teacher": teacher,
                "teacher_epochs": 1,
                "teacher_max_length": 32,
                "variants": 1,
                "contrast": False,
            }
        }
    }


def test_the_teacher_stage_fine_tunes_a_local_checkpoint_and_records_which_it_was(
    tiny_workspace, tmp_path, monkeypatch, capsys
):
    from transformers import AutoModel

    from sentipipe.tasks.classifier import teacher_model

    folder = tiny_checkpoint(tmp_path / "encoder")
    overrides = distill(str(folder))
    # balanced class weights, as a macro-recall monitor chooses: the student's variants are labelled -1
    overrides["classifier"]["train"] = {"class_weights": "balanced"}
    monkeypatch.setattr(teacher_model, "TRAIN_PROGRESS_TEXTS", 16)  # a progress line every 16 texts, not 10,000
    run_tiny_pipeline(overrides, only=("prepare", "tokenize", "embed", "teacher", "train", "evaluate"))
    train_rows = len(pd.read_parquet(tiny_workspace / prepared("train")))
    line = r"teacher: epoch 1/1: ([\d,]+) of ([\d,]+) training texts, \d+ texts/s"
    progress = re.findall(line, capsys.readouterr().out)
    assert len(progress) >= train_rows // 48  # batches of 32: a line every one or two batches
    assert {int(total.replace(",", "")) for _, total in progress} == {train_rows}

    report = read_json(paths.TEACHER_REPORT)
    teacher = report["teacher"]
    parameters = sum(p.numel() for p in AutoModel.from_pretrained(str(folder)).parameters())
    assert teacher["source"] == "folder" and teacher["path"] == str(folder.resolve())
    assert teacher["model"] == "unknown" and teacher["training_data"] == "unknown: see the checkpoint's own card"
    assert teacher["parameters"] == parameters and teacher["max_length"] == 32
    soft = pd.read_parquet(paths.SOFT_TARGETS)
    assert len(soft) == report["soft_targets"] > 0 and set(soft["kind"]) == {"train", "variant"}
    assert {len(row) for row in soft["logits"]} == {2}

    run = MlflowClient().get_run(report["run_id"])
    assert run.data.tags["teacher.path"] == str(folder.resolve())
    assert run.data.tags["teacher.training_data"].startswith("unknown")
    assert run.data.params["distill.teacher"] == str(folder)
    assert run.data.params["teacher.parameters"] == str(parameters)
    student = read_json(paths.TRAIN_REPORT)
    assert MlflowClient().get_run(student["run_id"]).data.tags["teacher.run_id"] == report["run_id"]

    # the bench's throughput runs the same encoder the params name
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    from quality import throughput

    speed = throughput(Predictor.load(paths.SERVED), ["a fine film", "a dull film"], tiny_raw(overrides), 2, repeats=1)
    assert speed["teacher"] == str(folder.resolve()) and speed["teacher_per_second"] > 0


def test_a_folder_that_is_no_checkpoint_stops_the_stage_before_it_writes_anything(tiny_workspace, tmp_path):
    (tmp_path / "empty").mkdir()
    run_tiny_pipeline(only=("prepare", "tokenize", "embed"))
    with pytest.raises(ConfigError, match=r"classifier.distill.teacher '.*empty': .* has no config.json"):
        run_tiny_pipeline(distill(str(tmp_path / "empty")), only=("teacher",))
    assert not paths.TEACHER_REPORT.exists() and not paths.SOFT_TARGETS.exists()


def test_the_soft_targets_are_made_a_chunk_at_a_time_by_the_same_teacher(tiny_workspace, tmp_path):
    """compute.chunk_rows training texts are read, varied, labelled and appended at a time; the fine-tuned teacher and
    its reading of the training texts do not depend on the chunk."""
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    torch.manual_seed(0)  # the same random checkpoint for both runs
    folder = tiny_checkpoint(tmp_path / "encoder")
    overrides = distill(str(folder))
    overrides["classifier"]["distill"].update(variants=2, contrast=True)
    run_tiny_pipeline(overrides, only=("prepare", "tokenize", "embed", "teacher"))
    whole, whole_test = pd.read_parquet(paths.SOFT_TARGETS), np.load(paths.TEACHER_TEST_LOGITS)
    run_tiny_pipeline({**overrides, "compute": {"chunk_rows": 7}}, only=("teacher",))
    chunked, report = pd.read_parquet(paths.SOFT_TARGETS), read_json(paths.TEACHER_REPORT)

    groups = pq.ParquetFile(paths.SOFT_TARGETS).metadata
    assert groups.num_row_groups > 1 and max(groups.row_group(i).num_rows for i in range(groups.num_row_groups)) <= 7
    assert np.array_equal(np.load(paths.TEACHER_TEST_LOGITS), whole_test)  # fine-tuning never saw the chunks
    assert len(chunked) == report["soft_targets"] and report["by_kind"] == chunked["kind"].value_counts().to_dict()
    assert {"negator_removed", "not_inserted", "opposite_adjective", "joined"} & set(chunked["kind"])

    def runs_of_originals(frame: pd.DataFrame) -> list[int]:
        is_train = (frame["kind"] == "train").to_numpy()
        starts = np.flatnonzero(is_train & ~np.r_[False, is_train[:-1]])
        ends = np.flatnonzero(is_train & ~np.r_[is_train[1:], False])
        return (ends - starts + 1).tolist()

    n = int((whole["kind"] == "train").sum())
    assert runs_of_originals(whole) == [n]  # one chunk: the originals, then their variants and edits
    assert runs_of_originals(chunked) == [7] * (n // 7) + ([n % 7] if n % 7 else [])  # each chunk's the same way
    originals = [c[c["kind"] == "train"].reset_index(drop=True) for c in (whole, chunked)]
    assert originals[0]["tokens"].map(list).tolist() == originals[1]["tokens"].map(list).tolist()
    assert originals[0]["label"].tolist() == originals[1]["label"].tolist()
    for column in (o["logits"] for o in originals):
        assert np.stack(column.map(np.asarray)).shape == (n, 2)
    np.testing.assert_allclose(  # batched with other texts: float rounding only
        np.stack(originals[0]["logits"].map(np.asarray)), np.stack(originals[1]["logits"].map(np.asarray)), atol=1e-5
    )


class Killed(Exception):
    pass


@pytest.mark.parametrize(
    "dies",
    [("epoch", 1), ("epoch", 2), ("labelled_parts", 2)],  # mid-fine-tuning; after it; mid-labelling
)
def test_a_teacher_killed_resumes_where_it_stopped_and_ends_like_an_uninterrupted_one(
    tiny_workspace, tmp_path, monkeypatch, capsys, dies
):
    import numpy as np
    import torch

    from sentipipe.training import checkpoints

    torch.manual_seed(0)
    overrides = distill(str(tiny_checkpoint(tmp_path / "encoder")))
    overrides["classifier"]["distill"]["teacher_epochs"] = 2
    overrides["compute"] = {"chunk_rows": 20}  # the texts and their variants labelled 20 at a time: six parts
    save, last_epoch = checkpoints.save, []

    def save_and_keep_the_last_epoch(path, state):  # its weights: the best epoch may be the first
        save(path, state)
        if state.get("epoch") == 2 and "model" in state:
            last_epoch.append({k: v.clone() for k, v in state["model"].items()})

    monkeypatch.setattr(checkpoints, "save", save_and_keep_the_last_epoch)
    run_tiny_pipeline(overrides, only=("prepare", "tokenize", "embed", "teacher"))
    straight, straight_test = read_json(paths.TEACHER_REPORT), np.load(paths.TEACHER_TEST_LOGITS)
    straight_soft = pd.read_parquet(paths.SOFT_TARGETS)
    assert torch.load(TEACHER_CHECKPOINT, weights_only=False)["complete"]  # finished: not resumed

    def save_then_die(path, state):
        save(path, state)
        kind, at = dies
        if (kind == "epoch" and "model" in state and state["epoch"] == at) or len(state.get("logits", [])) == at:
            raise Killed

    monkeypatch.setattr(checkpoints, "save", save_then_die)
    with pytest.raises(Killed):
        run_tiny_pipeline(overrides, only=("teacher",))
    monkeypatch.setattr(checkpoints, "save", save_and_keep_the_last_epoch)
    capsys.readouterr()

    run_tiny_pipeline(overrides, only=("teacher",))  # what the next `dvc repro` does
    out = capsys.readouterr().out
    if dies == ("epoch", 1):  # the second epoch, run after the resume, ends with the same weights
        assert len(last_epoch) == 2 and all(torch.equal(last_epoch[0][k], last_epoch[1][k]) for k in last_epoch[0])
    after_epoch = dies[1] if dies[0] == "epoch" else 2
    assert f"teacher: resumed after epoch {after_epoch}/2 from its checkpoint" in out
    resumed = read_json(paths.TEACHER_REPORT)
    assert resumed["resumed_after_epoch"] == after_epoch and straight["resumed_after_epoch"] is None
    kept = dies[1] if dies[0] == "labelled_parts" else 0
    assert resumed["resumed_labelled_parts"] == kept and straight["resumed_labelled_parts"] == 0
    assert (f"teacher: {kept} labelled parts of 20 texts kept by the checkpoint" in out) == (kept > 0)
    without_time = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert without_time(resumed["history"]) == without_time(straight["history"])
    assert np.array_equal(np.load(paths.TEACHER_TEST_LOGITS), straight_test)  # bit for bit on the CPU
    soft = pd.read_parquet(paths.SOFT_TARGETS)
    assert len(soft) == len(straight_soft) == resumed["soft_targets"] > 5 * 20
    for column in ("kind", "label"):
        assert soft[column].tolist() == straight_soft[column].tolist()
    assert soft["tokens"].map(list).tolist() == straight_soft["tokens"].map(list).tolist()  # the same variants
    assert np.array_equal(np.stack(soft["logits"].map(np.asarray)), np.stack(straight_soft["logits"].map(np.asarray)))


def test_a_teacher_checkpoint_of_other_params_is_not_resumed(tiny_workspace, tmp_path, monkeypatch, capsys):
    import torch

    from sentipipe.training import checkpoints

    overrides = distill(str(tiny_checkpoint(tmp_path / "encoder")))
    overrides["classifier"]["distill"]["teacher_epochs"] = 2
    run_tiny_pipeline(overrides, only=("prepare", "tokenize", "embed"))
    save = checkpoints.save

    def save_then_die(path, state):
        save(path, state)
        if state.get("epoch") == 1:
            raise Killed

    monkeypatch.setattr(checkpoints, "save", save_then_die)
    with pytest.raises(Killed):
        run_tiny_pipeline(overrides, only=("teacher",))
    monkeypatch.setattr(checkpoints, "save", save)
    overrides["classifier"]["distill"]["teacher_lr"] = 0.0001  # another learning rate: the epoch is not the same
    capsys.readouterr()
    run_tiny_pipeline(overrides, only=("teacher",))
    assert "resumed" not in capsys.readouterr().out
    assert read_json(paths.TEACHER_REPORT)["resumed_after_epoch"] is None
    assert len(read_json(paths.TEACHER_REPORT)["history"]) == 2
    assert torch.load(TEACHER_CHECKPOINT, weights_only=False) == {
        "fingerprint": torch.load(TEACHER_CHECKPOINT, weights_only=False)["fingerprint"],
        "complete": True,
    }


def test_a_teacher_process_killed_with_sigkill_resumes_after_its_last_epoch(tiny_workspace, tmp_path):
    """The stage's own script, killed (SIGKILL) once an epoch is checkpointed, then run again: as `dvc repro` would."""
    import signal
    import subprocess
    import sys
    import time

    import numpy as np
    import torch

    from tests.helpers import tiny_corpus, venv_env, write_params

    torch.manual_seed(0)
    tiny_corpus(copies=20).to_parquet(tiny_workspace / "data/raw/corpus.parquet", index=False)
    overrides = distill(str(tiny_checkpoint(tmp_path / "encoder")))
    overrides["classifier"]["distill"].update(teacher_epochs=3, teacher_batch_size=4)  # epochs of ~60 steps
    run_tiny_pipeline(overrides, only=("prepare", "tokenize", "embed"))
    write_params(tiny_workspace, tiny_raw(overrides))
    script = [sys.executable, str(REPO / "pipeline/classifier/teacher.py")]

    def stage() -> subprocess.CompletedProcess:
        done = subprocess.run(script, env=venv_env(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    stage()
    straight = read_json(paths.TEACHER_REPORT)
    straight_test = np.load(paths.TEACHER_TEST_LOGITS)

    proc = subprocess.Popen(script, env=venv_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, state = time.monotonic() + 300, {}
    while proc.poll() is None and time.monotonic() < deadline and not state.get("epoch"):
        time.sleep(0.005)
        if TEACHER_CHECKPOINT.is_file():
            state = torch.load(TEACHER_CHECKPOINT, weights_only=False)  # the finished run's marker has no epoch
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the stage must be killed mid-fine-tuning"
    killed = torch.load(TEACHER_CHECKPOINT, weights_only=False)
    assert not killed["complete"] and 1 <= killed["epoch"] < 3

    resumed = stage()
    assert f"teacher: resumed after epoch {killed['epoch']}/3 from its checkpoint" in resumed.stdout
    report = read_json(paths.TEACHER_REPORT)
    assert report["resumed_after_epoch"] == killed["epoch"] and straight["resumed_after_epoch"] is None
    assert [h["val_accuracy"] for h in report["history"]] == [h["val_accuracy"] for h in straight["history"]]
    assert np.array_equal(np.load(paths.TEACHER_TEST_LOGITS), straight_test)
    assert torch.load(TEACHER_CHECKPOINT, weights_only=False)["complete"]  # the next run starts afresh


def test_the_disabled_stage_writes_empty_outputs_and_nothing_to_resume_without_importing_torch(tiny_workspace):
    """The default pipeline's teacher stage: the real script, the committed params (distill off)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from sentipipe.tasks.classifier.teacher_off import SCHEMA  # noqa: PLC0415
    from sentipipe.training import checkpoints  # noqa: PLC0415

    (tiny_workspace / "params.yaml").write_text((REPO / "params.yaml").read_text())
    probe = (
        "import runpy, sys; script = sys.argv[1]; sys.argv = [script]\n"
        "try:\n    runpy.run_path(script, run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "assert not {'torch', 'transformers', 'mlflow', 'spacy'} & set(sys.modules), 'a heavy import'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(REPO / "pipeline/classifier/teacher.py")],
        cwd=tiny_workspace,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "no teacher, no soft targets" in done.stdout
    soft = pd.read_parquet(paths.SOFT_TARGETS)
    assert len(soft) == 0 and list(soft.columns) == SCHEMA.names
    assert read_json(paths.TEACHER_REPORT) == {"enabled": False}
    assert checkpoints.load(TEACHER_CHECKPOINT, "any fingerprint", fresh=False) is None
