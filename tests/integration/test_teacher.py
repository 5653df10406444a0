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

    from sentipipe.tasks.classifier import teacher as teacher_stage

    folder = tiny_checkpoint(tmp_path / "encoder")
    overrides = distill(str(folder))
    monkeypatch.setattr(teacher_stage, "TRAIN_PROGRESS_TEXTS", 16)  # a progress line every 16 texts, not 10,000
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
