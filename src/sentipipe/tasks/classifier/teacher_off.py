"""Stage teacher with `classifier.distill.enabled` false: an empty set of soft targets, and nothing to resume.

Apart from teacher.py so that the default pipeline's stage imports neither torch, transformers, spaCy nor
mlflow to write three small files: the stage script took 6.9 and 7.6 s with them, 0.9 s without (each run
twice, alone; docs/evidence.md#make-run-fixed-costs-2026-12-07). The file names and the soft targets'
columns live here, and teacher.py and soft_targets.py read them from here.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from sentipipe.io import atomic_write, write_json
from sentipipe.tasks.classifier.params import ClassifierConfig
from sentipipe.tasks.classifier.paths import MODELS, SOFT_TARGETS, TEACHER_REPORT
from sentipipe.training import checkpoints

# a soft-target row: a text's tokens, its label (-1: a variant, the teacher's logits alone), the logits, what it is
SCHEMA = pa.schema(
    [
        ("tokens", pa.list_(pa.string())),
        ("label", pa.int64()),
        ("logits", pa.list_(pa.float64())),
        ("kind", pa.string()),
    ]
)
COLUMNS = SCHEMA.names
# Rewritten after every fine-tuning epoch (a DVC persist output beside the student's checkpoint); here, not in
# paths.py, which every stage reads: a path only this stage and its tests use
TEACHER_CHECKPOINT = MODELS / "teacher_checkpoint.pt"


def teacher_off(params: ClassifierConfig) -> dict:
    """No teacher: empty soft targets (the student learns the labels alone) and a checkpoint with nothing to resume."""
    assert not params.classifier.distill.enabled
    atomic_write(SOFT_TARGETS, lambda tmp: pq.write_table(SCHEMA.empty_table(), tmp))
    report = {"enabled": False}
    write_json(TEACHER_REPORT, report)
    checkpoints.write_finished(TEACHER_CHECKPOINT)
    print("teacher: classifier.distill.enabled is false: no teacher, no soft targets")
    return report
