"""The prediction log: every scored row, appended as Parquet files in a folder (local or any fsspec URI).

Written off the request path: a request hands its rows to `PredictionLog.append`
(a lock and a list append; the hashing, the columns and the file are the writer
thread's), and the writer thread writes a file whenever `flush_rows` rows wait or
`flush_seconds` pass. Each file is written whole and then renamed into place (a
local folder) or put in one request (an object store), so a reader never sees half
a file, and the folder is append-only: files are only ever added. That is also
the rotation: a file holds what waited when it was written, `flush_rows` rows or
`flush_seconds` of traffic while the writer keeps up (more if it fell behind),
under a folder a day (`date=YYYY-MM-DD`, Hive style, which pyarrow and Spark read
as a column).

What can be lost: on SIGTERM (or SIGINT), nothing: the server closes the log, which
writes what waits. On SIGKILL, the rows not yet written: while the writer keeps
up, fewer than `flush_rows` rows or `flush_seconds` of traffic; if it fell behind
(a store that is slow or down), up to `max_pending_rows`. Memory is bounded the
same way: past `max_pending_rows` waiting rows, new rows are dropped (and counted
in the next file's `dropped_before` column) rather than make a request wait or the
process grow.

With `text: hash` the log holds the text's SHA-256 and not the text: drift still
has what it needs (length, unseen words, the sentence vector), and the log cannot
be exported for training.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

if TYPE_CHECKING:
    from sentipipe.config import MonitoringParams

FEEDBACK = "feedback"  # the sub-folder of labels sent back (sentipipe feedback)
SCHEMA_VERSION = 1
# Parquet's dictionary encoding and min/max statistics where they pay: trying a dictionary on every column
# and statistics on the vectors were half the writer's time (a thread that shares the server's CPU).
DICTIONARY_COLUMNS = ["source", "model_name", "model_version", "run_id", "label"]
NO_STATISTICS = ("vector",)


def vectors_of(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The `vector` column as an (rows, dim) float16 matrix, without a Python object per row."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.byte_width
    data = np.frombuffer(array.buffers()[1], dtype=np.uint8)[array.offset * width : (array.offset + len(array)) * width]
    return data.view(np.float16).reshape(len(array), width // 2)


def new_request_id() -> str:
    return uuid.uuid4().hex


def row_ids(request_id: str, n: int) -> list[str]:
    """A request's row ids: `<request id>/<row>`; feedback names a row by it (or a one-row request by its id)."""
    return [f"{request_id}/{i}" for i in range(n)]


class PredictionLog:
    """A background writer of scored rows; `append` never waits on disk or network."""

    def __init__(
        self,
        uri: str,
        model: dict[str, str],
        labels: Sequence[str],
        text: str = "full",
        flush_rows: int = 1000,
        flush_seconds: float = 10.0,
        max_pending_rows: int = 100_000,
        source: str = "serve",
    ):
        self.fs, self.root = url_to_fs(uri)
        self.model, self.labels, self.text = dict(model), list(labels), text
        self.flush_rows, self.flush_seconds, self.max_pending = flush_rows, flush_seconds, max_pending_rows
        self.source = source
        self.pending: list[tuple] = []
        self.pending_rows = 0
        self.dropped = 0  # rows dropped since the last file (memory bound), written in the next file
        self.written_rows = self.written_files = self.dropped_total = 0
        self.error: Exception | None = None
        self.closed = False
        self.sequence = 0
        self.lock = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self.thread.start()

    @classmethod
    def from_params(cls, params: MonitoringParams, model: dict[str, str], labels: Sequence[str], source: str):
        return cls(
            params.log,
            model,
            labels,
            text=params.text,
            flush_rows=params.flush_rows,
            flush_seconds=params.flush_seconds,
            max_pending_rows=params.max_pending_rows,
            source=source,
        )

    # ------------------------------------------------------------------ the request path

    def append(self, request_id: str, texts: list[str], rows: list[dict], features: dict, latency_ms: float) -> None:
        """Hand a scored request to the writer (a lock and a list append; nothing is converted here)."""
        with self.lock:
            if self.closed:
                raise RuntimeError("the prediction log is closed")
            if self.pending_rows + len(texts) > self.max_pending:
                self.dropped += len(texts)
                self.dropped_total += len(texts)
                return
            self.pending.append((time.time(), request_id, texts, rows, features, latency_ms))
            self.pending_rows += len(texts)
            if self.pending_rows >= self.flush_rows:
                self.lock.notify()

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        while True:
            with self.lock:
                deadline = time.monotonic() + self.flush_seconds
                while not self.closed and self.pending_rows < self.flush_rows:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.lock.wait(left)
                batch, dropped = self.pending, self.dropped
                self.pending, self.pending_rows, self.dropped = [], 0, 0
                closing = self.closed
            if batch:
                try:
                    self._write(batch, dropped)
                except Exception as exc:  # noqa: BLE001 - kept and raised by close(): the server must go on
                    self.error = exc
            if closing:
                return

    def _table(self, batch: list[tuple], dropped: int) -> pa.Table:
        times, request_ids, ids, texts, hashes, labels, latencies, tokens, unseen, vectors = ([] for _ in range(10))
        probs: list[np.ndarray] = []
        for at, request_id, batch_texts, rows, features, latency in batch:
            n = len(batch_texts)
            times.extend([at] * n)
            request_ids.extend([request_id] * n)
            ids.extend(row_ids(request_id, n))
            hashes.extend(hashlib.sha256(t.encode("utf-8")).hexdigest() for t in batch_texts)
            if self.text == "full":
                texts.extend(batch_texts)
            labels.extend(r["label"] for r in rows)
            probs.append(np.asarray(features["probs"], dtype=np.float32))  # the scored array, as the rows say
            latencies.extend([latency] * n)
            tokens.append(features["tokens"])
            unseen.append(features["unseen"])
            vectors.append(np.asarray(features["vector"], dtype=np.float16))
        n = len(ids)
        matrix = np.ascontiguousarray(np.concatenate(vectors), dtype=np.float16)
        prob = np.concatenate(probs)
        columns = {
            "time": pa.array(np.round(np.array(times) * 1e6).astype(np.int64), pa.timestamp("us", "UTC")),
            "id": pa.array(ids, pa.string()),
            "request_id": pa.array(request_ids, pa.string()),
            "source": pa.array([self.source] * n, pa.string()),
            "model_name": pa.array([self.model["name"]] * n, pa.string()),
            "model_version": pa.array([self.model["version"]] * n, pa.string()),
            "run_id": pa.array([self.model["run_id"]] * n, pa.string()),
            "text": pa.array(texts if self.text == "full" else [None] * n, pa.string()),
            "text_sha256": pa.array(hashes, pa.string()),
            "label": pa.array(labels, pa.string()),
            **{f"prob_{c}": pa.array(prob[:, i], pa.float32()) for i, c in enumerate(self.labels)},
            "latency_ms": pa.array(latencies, pa.float32()),
            "tokens": pa.array(np.concatenate(tokens), pa.int32()),
            "unseen": pa.array(np.concatenate(unseen), pa.int32()),
            # each row's float16 vector as one fixed-size binary value: a list of 384 values a row costs Parquet
            # 2 ms a thousand rows to encode, its bytes 0.1 ms (vectors_of reads them back)
            "vector": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(2 * matrix.shape[1]), n, [None, pa.py_buffer(matrix.tobytes())]
            ),
            "dropped_before": pa.array([dropped] + [0] * (n - 1), pa.int64()),
        }
        meta = {
            b"sentipipe.log_schema": str(SCHEMA_VERSION).encode(),
            b"sentipipe.text": self.text.encode(),
            b"sentipipe.vector": f"float16 x {matrix.shape[1]}".encode(),
        }
        return pa.table(columns).replace_schema_metadata(meta)

    def _write(self, batch: list[tuple], dropped: int) -> None:
        table = self._table(batch, dropped)
        first = datetime.fromtimestamp(batch[0][0], timezone.utc)
        folder = f"{self.root.rstrip('/')}/date={first:%Y-%m-%d}"
        name = f"part-{first:%Y%m%dT%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{self.sequence:06d}.parquet"
        self.sequence += 1
        self.fs.makedirs(folder, exist_ok=True)
        statistics = [c for c in table.column_names if c not in NO_STATISTICS]
        options = {"use_dictionary": DICTIONARY_COLUMNS, "write_statistics": statistics}
        if isinstance(self.fs, LocalFileSystem):
            tmp = f"{folder}/.{name}.tmp"
            pq.write_table(table, tmp, filesystem=self.fs, **options)
            os.replace(tmp, f"{folder}/{name}")  # whole or absent: a reader never sees half a file
        else:
            pq.write_table(table, f"{folder}/{name}", filesystem=self.fs, **options)  # an object store's put is whole
        self.written_rows += table.num_rows
        self.written_files += 1

    # ------------------------------------------------------------------ shutdown

    def close(self, timeout: float = 60.0) -> None:
        """Write what waits and stop the writer; raise what it failed with, if anything."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.lock.notify()
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
