"""PredictionLog on its own: what it writes, when it writes a file, and what it does when the writer falls behind."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sentipipe.monitoring.log import PredictionLog
from sentipipe.monitoring.monitor import read_log

LABELS = ["negative", "positive"]
MODEL = {"name": "clf", "version": "3", "run_id": "abc123"}
DIM = 4


def scored(texts: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    """Rows and features as a served model gives them for `texts` (made up, but of the real shapes)."""
    rng = np.random.default_rng(seed)
    p = rng.random(len(texts))
    rows = [
        {"label": LABELS[int(q > 0.5)], "prob_negative": float(1 - q), "prob_positive": float(q)} for q in p.tolist()
    ]
    features = {
        "tokens": np.array([len(t.split()) for t in texts], dtype=np.int64),
        "unseen": np.array([t.count("zz") for t in texts], dtype=np.int64),
        "vector": rng.standard_normal((len(texts), DIM)).astype(np.float32),
        "probs": np.stack([1 - p, p], axis=1).astype(np.float32),
    }
    return rows, features


def files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def rows_per_file(root: Path) -> list[int]:
    return sorted(pq.ParquetFile(f).metadata.num_rows for f in files(root))


def read_all(root: Path):
    """The log as `sentipipe monitor` reads it (hidden and temporary files passed over), vectors included."""
    frame = read_log(str(root), columns=pq.read_schema(files(root)[0]).names)
    frame["vector"] = [np.frombuffer(v, dtype=np.float16) for v in frame["vector"]]  # float16 bytes a row
    return frame


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_file_holds_each_row_as_it_was_scored(tmp_path):
    log = PredictionLog(str(tmp_path), MODEL, LABELS, flush_rows=10_000, flush_seconds=60)
    texts = ["a good film", "zz awful zz", ""]
    rows, features = scored(texts)
    log.append("req1", texts, rows, features, 12.5)
    log.close()

    frame = read_all(tmp_path)
    assert frame["id"].tolist() == ["req1/0", "req1/1", "req1/2"]
    assert frame["request_id"].tolist() == ["req1"] * 3
    assert frame["text"].tolist() == texts
    assert frame["text_sha256"].tolist() == [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    assert frame["label"].tolist() == [r["label"] for r in rows]
    for c in LABELS:
        np.testing.assert_allclose(frame[f"prob_{c}"], [r[f"prob_{c}"] for r in rows], rtol=1e-6)
    assert frame["tokens"].tolist() == [3, 3, 0] and frame["unseen"].tolist() == [0, 2, 0]
    np.testing.assert_allclose(np.stack(frame["vector"]), features["vector"], rtol=1e-3, atol=1e-3)  # float16
    assert (frame["model_name"] == "clf").all() and (frame["model_version"] == "3").all()
    assert (frame["run_id"] == "abc123").all() and (frame["source"] == "serve").all()
    assert frame["latency_ms"].tolist() == [12.5] * 3 and frame["dropped_before"].tolist() == [0, 0, 0]
    (path,) = files(tmp_path)
    assert path.parent.name.startswith("date=") and not list(tmp_path.rglob("*.tmp"))


def test_text_hash_keeps_no_text_only_its_sha256(tmp_path):
    log = PredictionLog(str(tmp_path), MODEL, LABELS, text="hash", flush_rows=10_000, flush_seconds=60)
    texts = ["my card number is 1234", "héllo wörld"]
    log.append("r", texts, *scored(texts), 1.0)
    log.close()

    frame = read_log(str(tmp_path))
    assert frame["text"].isna().all()
    assert frame["text_sha256"].tolist() == [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    raw = b"".join(f.read_bytes() for f in files(tmp_path))
    assert b"1234" not in raw and "wörld".encode() not in raw


def test_a_file_is_written_when_flush_rows_rows_wait_and_close_writes_the_rest(tmp_path):
    log = PredictionLog(str(tmp_path), MODEL, LABELS, flush_rows=10, flush_seconds=600)
    for i in range(10):
        log.append(f"a{i}", ["x"], *scored(["x"]), 1.0)
    wait_for(lambda: log.written_files == 1)
    for i in range(4):
        log.append(f"b{i}", ["y", "y y"], *scored(["y", "y y"]), 1.0)  # 8 rows: under flush_rows, so they wait
    time.sleep(0.3)
    assert log.written_files == 1 and rows_per_file(tmp_path) == [10]
    log.append("c", ["z", "z"], *scored(["z", "z"]), 1.0)  # 10 waiting: the second file
    wait_for(lambda: log.written_files == 2)
    log.append("d", ["w"] * 3, *scored(["w"] * 3), 1.0)
    log.close()  # writes the 3 that wait, long before flush_seconds
    assert rows_per_file(tmp_path) == [3, 10, 10] and log.written_rows == 23
    with pytest.raises(RuntimeError, match="closed"):
        log.append("late", ["x"], *scored(["x"]), 1.0)


def test_a_file_is_written_every_flush_seconds_while_rows_wait(tmp_path):
    log = PredictionLog(str(tmp_path), MODEL, LABELS, flush_rows=10_000, flush_seconds=0.4)
    try:
        log.append("a", ["one", "two"], *scored(["one", "two"]), 1.0)
        appended = time.monotonic()
        wait_for(lambda: log.written_files == 1, timeout=5)
        assert time.monotonic() - appended < 3  # flush_seconds (0.4 s), with room for a busy machine
        log.append("b", ["three"], *scored(["three"]), 1.0)
        wait_for(lambda: log.written_files == 2, timeout=5)
        time.sleep(0.5)  # a period with nothing waiting writes no empty file
        assert log.written_files == 2 and rows_per_file(tmp_path) == [1, 2]
    finally:
        log.close()
    assert log.written_files == 2


def test_past_max_pending_rows_rows_are_dropped_and_counted_and_append_never_waits(tmp_path):
    """The writer is held inside a write (a disk that hangs): appends go on at once, memory stays bounded."""
    log = PredictionLog(str(tmp_path), MODEL, LABELS, flush_rows=5, flush_seconds=600, max_pending_rows=20)
    gate, writing, real_write = threading.Event(), threading.Event(), log._write

    def hanging_write(batch, dropped):
        writing.set()
        assert gate.wait(30)
        real_write(batch, dropped)

    log._write = hanging_write
    for i in range(5):
        log.append(f"first{i}", ["x"], *scored(["x"]), 1.0)
    assert writing.wait(10)  # the writer took those 5 rows and hangs writing them

    slowest = 0.0
    for i in range(30):  # 20 fit under max_pending_rows, 10 do not
        rows, features = scored(["y"], seed=i)
        started = time.perf_counter()
        log.append(f"more{i}", ["y"], rows, features, 1.0)
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.1  # the writer is stuck; append does not wait for it
    assert log.pending_rows == 20 and log.dropped_total == 10

    gate.set()
    log.close()
    frame = read_log(str(tmp_path))
    assert len(frame) == 25 and frame["dropped_before"].sum() == 10
    kept = sorted(frame["request_id"][frame["request_id"].str.startswith("more")], key=lambda r: int(r[4:]))
    assert kept == [f"more{i}" for i in range(20)]  # the newest rows are the ones dropped
    assert rows_per_file(tmp_path)[0] == 5 and sum(rows_per_file(tmp_path)) == 25 and log.written_rows == 25


def test_a_write_that_fails_is_raised_by_close_and_append_goes_on(tmp_path):
    blocker = tmp_path / "log"
    blocker.write_text("a file where the log's folder should be")
    log = PredictionLog(str(blocker), MODEL, LABELS, flush_rows=1, flush_seconds=600)
    log.append("a", ["x"], *scored(["x"]), 1.0)
    wait_for(lambda: log.error is not None)
    log.append("b", ["x"], *scored(["x"]), 1.0)  # the request path is not broken by the writer's failure
    with pytest.raises(OSError):
        log.close()
