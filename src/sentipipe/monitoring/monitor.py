"""`sentipipe monitor`: the newest windows of a served version's log against its reference, and live figures.

Each window (`monitoring.window` consecutive rows of the version, in time order) is
tested once: the monitor run of a version in MLflow (experiment `monitoring.experiment`,
one run a version, resumed by every call) records the last window tested, and a call
tests the full windows after it (the newest `monitoring.windows` at most). So a
scheduled monitor raises an alarm on the call that first sees a drifted window, and
the false-alarm rate is a rate per window. Labels fed back (`sentipipe feedback`) give
live accuracy and macro-F1, per window of the version and per version overall.

Outputs: `report.json` (what a machine reads), `report.html` (what a person reads), both
logged to the monitor run (under `windows-<first>-<last>/`), whose metrics have one step
a window: each test's p-value and statistic, the live figures, and the version's
validation figures beside them. Exit status: 0 nothing crossed, 3 an alarm.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds
from fsspec.core import url_to_fs

from sentipipe.errors import SentipipeError
from sentipipe.io import write_bytes, write_json
from sentipipe.monitoring.drift import TESTS, Features, window_tests
from sentipipe.monitoring.log import FEEDBACK, vectors_of
from sentipipe.monitoring.report import render_html

if TYPE_CHECKING:
    from sentipipe.config import MonitoringParams

ALARM = 3  # the exit status of a call that raised an alarm
LAST_WINDOW_TAG = "sentipipe.monitor.last_window"
SEED = 0


@dataclass
class Served:
    """The version monitored: its identity and its python model (which scores the reference)."""

    name: str
    version: str
    run_id: str
    model: object


def log_dataset(uri: str, feedback: bool = False) -> ds.Dataset | None:
    fs, root = url_to_fs(uri)
    root = root.rstrip("/") + (f"/{FEEDBACK}" if feedback else "")
    if not fs.exists(root):
        return None
    files = [
        f
        for f in sorted(fs.find(root))
        if f.endswith(".parquet")
        and not Path(f).name.startswith(".")
        and (feedback or f"/{FEEDBACK}/" not in f[len(root) :])
    ]
    if not files:
        return None
    return ds.dataset(files, filesystem=fs, format="parquet")


def read_log(uri: str, columns: list[str] | None = None, name: str | None = None) -> pd.DataFrame:
    """Every logged row (of model `name`, if given), oldest first; `columns` None: all but the vectors."""
    found = log_dataset(uri)
    if found is None:
        return pd.DataFrame()
    columns = columns or [c for c in found.schema.names if c != "vector"]
    where = ds.field("model_name") == name if name else None
    return _oldest_first(found.to_table(columns=columns, filter=where)).to_pandas()


def _oldest_first(table):
    """Files in name order (each name starts with its first row's time), rows in file order: a stable sort
    on time keeps a request's rows in their order."""
    return table.take(pc.sort_indices(table, [("time", "ascending")]))  # Arrow's sort is stable


def read_vectors(uri: str, name: str, version: str) -> np.ndarray:
    """The sentence vectors of one version's rows, in read_log's order, as one float16 matrix (not a column
    of arrays per row: a million rows of 384 numbers stay 0.8 GB)."""
    found = log_dataset(uri)
    where = (ds.field("model_name") == name) & (ds.field("model_version") == version)
    return vectors_of(_oldest_first(found.to_table(columns=["time", "vector"], filter=where))["vector"])


def read_feedback(uri: str) -> pd.DataFrame:
    """The labels sent back: the newest label of each row id."""
    found = log_dataset(uri, feedback=True)
    if found is None:
        return pd.DataFrame({"id": pd.Series(dtype=str), "true_label": pd.Series(dtype=str)})
    frame = found.to_table().to_pandas().sort_values("received", kind="stable")
    return frame.drop_duplicates("id", keep="last")[["id", "true_label"]]


def log_features(frame: pd.DataFrame, vectors: np.ndarray, labels: list[str]) -> Features:
    probs = frame[[f"prob_{c}" for c in labels]].to_numpy(np.float64)
    return Features(
        label=frame["label"].to_numpy(str),
        confidence=probs.max(axis=1),
        tokens=frame["tokens"].to_numpy(np.int64),
        unseen=frame["unseen"].to_numpy(np.int64),
        vector=vectors.astype(np.float32),
    )


def reference_features(model, path: Path, rows: int) -> Features:
    """The version scoring its validation texts (a seeded sample of `rows` at most), as it scores traffic."""
    if not path.is_file():
        raise SentipipeError(
            f"{path}: the reference (the champion's validation split) is missing; run `dvc pull` or `dvc repro` "
            "first, or name another file with --reference"
        )
    texts = pd.read_parquet(path, columns=["text"])["text"]
    if len(texts) > rows:
        texts = texts.sample(rows, random_state=SEED)
    return scored_features(model, texts.tolist())


def scored_features(model, texts: list[str], chunk: int = 1000) -> Features:
    """What drift compares, for texts the served model scores as it scores traffic (vectors rounded to the
    log's float16)."""
    parts = [model.scored(texts[start : start + chunk])[1] for start in range(0, len(texts), chunk)]
    joined = {key: np.concatenate([p[key] for p in parts]) for key in ("probs", "tokens", "unseen", "vector")}
    labels = np.asarray(model.predictor.labels)
    return Features(
        label=labels[joined["probs"].argmax(axis=1)],
        confidence=joined["probs"].max(axis=1),
        tokens=joined["tokens"],
        unseen=joined["unseen"],
        vector=joined["vector"].astype(np.float16).astype(np.float32),
    )


def live_figures(frame: pd.DataFrame, labels: list[str]) -> dict:
    """Accuracy and macro-F1 of the rows with a label fed back."""
    known = frame.dropna(subset=["true_label"])
    if known.empty:
        return {"labelled": 0, "accuracy": None, "macro_f1": None}
    truth, predicted = known["true_label"].to_numpy(str), known["label"].to_numpy(str)
    f1s = []
    for c in labels:
        tp = np.sum((predicted == c) & (truth == c))
        denominator = np.sum(predicted == c) + np.sum(truth == c)
        if np.sum(truth == c) or np.sum(predicted == c):
            f1s.append(2 * tp / denominator)
    return {
        "labelled": int(len(known)),
        "accuracy": float(np.mean(truth == predicted)),
        "macro_f1": float(np.mean(f1s)) if f1s else None,
    }


def monitor(
    params: MonitoringParams,
    served: Served,
    reference: Path,
    output: Path,
    tracking_uri: str,
    retest: bool = False,
) -> dict:
    """Test the version's new windows, write and log the report; the report says whether to raise an alarm."""
    from mlflow import MlflowClient  # noqa: PLC0415

    client = MlflowClient(tracking_uri)
    labels = list(served.model.predictor.labels)
    log = read_log(params.log, name=served.name)
    if log.empty:  # a first deployment: nothing to test yet is no failure of a scheduled monitor
        log = pd.DataFrame({c: pd.Series(dtype=str) for c in ("id", "model_version", "label", "time")})
    log = log.merge(read_feedback(params.log), on="id", how="left")
    versions = {}
    for version, rows in log.groupby("model_version", sort=True):
        versions[str(version)] = live_figures(rows, labels)
    mine = log[log["model_version"] == served.version].reset_index(drop=True)
    vectors = read_vectors(params.log, served.name, served.version) if len(mine) else None
    training = client.get_run(served.run_id).data.metrics
    validation = {k: training[k] for k in ("val_accuracy", "val_macro_f1") if k in training}

    run_id, last = _monitor_run(client, params.experiment, served, params.log)
    full = len(mine) // params.window
    first = 0 if retest or last is None else last + 1
    first = max(first, full - params.windows)
    windows = list(range(first, full))
    replaced = last is not None and last >= full and not retest
    report = {
        "model": {"name": served.name, "version": served.version, "run_id": served.run_id},
        "log": params.log,
        "reference": {"path": str(reference)},
        "window_rows": params.window,
        "alpha": params.alpha,
        "rows_logged": int(len(mine)),
        "rows_waiting": int(len(mine) - full * params.window),
        "validation": validation,
        "live_by_version": versions,
        "windows": [],
        "alarm": False,
        "monitor_run_id": run_id,
        "note": (
            f"the log holds {full} full windows of this version, fewer than the last call tested "
            f"({last + 1}): was it replaced? --retest tests its newest windows again"
            if replaced
            else f"no logged rows of {served.name} version {served.version} in {params.log} yet (serve it with "
            "monitoring.enabled: true, or name the log with --log)"
            if mine.empty
            else None
        ),
    }
    if windows:
        ref = reference_features(served.model, reference, params.reference_rows)
        report["reference"]["rows"] = len(ref)
        for k in windows:
            part = slice(k * params.window, (k + 1) * params.window)
            rows = mine.iloc[part]
            tested = window_tests(ref, log_features(rows, vectors[part], labels), params.alpha, seed=SEED + k)
            live = live_figures(rows, labels)
            accuracy_alarm = (
                live["labelled"] >= params.min_labelled
                and "val_accuracy" in validation
                and live["accuracy"] < validation["val_accuracy"] - params.max_accuracy_drop
            )
            report["windows"].append(
                {
                    "index": k,
                    "first_time": str(rows["time"].iloc[0]),
                    "last_time": str(rows["time"].iloc[-1]),
                    **tested,
                    "live": live,
                    "accuracy_alarm": bool(accuracy_alarm),
                    "alarm": bool(tested["drifted"] or accuracy_alarm),
                }
            )
        report["alarm"] = any(w["alarm"] for w in report["windows"])
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / "report.json", report)
    write_bytes(output / "report.html", render_html(report).encode("utf-8"))
    _log_run(client, run_id, report, output, windows, validation)
    return report


def _monitor_run(client, experiment: str, served: Served, log: str) -> tuple[str, int | None]:
    """The monitor run of the version's rows in this log (created on first use) and the last window it tested."""
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    query = (
        f"tags.`sentipipe.monitored_run_id` = '{served.run_id}' and tags.`sentipipe.model_version` = '{served.version}'"
        f" and tags.`sentipipe.monitor.log` = '{log.replace(chr(39), '')}'"
    )
    runs = client.search_runs([experiment_id], query, max_results=1, order_by=["attributes.start_time DESC"])
    if runs:
        last = runs[0].data.tags.get(LAST_WINDOW_TAG)
        return runs[0].info.run_id, None if last is None else int(last)
    run = client.create_run(
        experiment_id,
        run_name=f"monitor {served.name} v{served.version}",
        tags={
            "sentipipe.monitored_run_id": served.run_id,
            "sentipipe.model_name": served.name,
            "sentipipe.model_version": served.version,
            "sentipipe.monitor.log": log.replace("'", ""),
            "mlflow.note.content": (
                f"The served log of {served.name} version {served.version} (training run {served.run_id}): "
                "one step a window of traffic; drift p-values, live accuracy from fed-back labels, and the "
                "version's validation figures beside them."
            ),
        },
    )
    return run.info.run_id, None


def _log_run(client, run_id, report, output, windows, validation) -> None:
    """The windows as steps of the monitor run; the newest also on the version's logged model, and tags on the version.

    A reader of the champion sees the monitoring where they look for it: the version's page (tags: the
    monitor run, alarm, drift, live accuracy beside the `val_accuracy` tag registration set), its logged
    model's page (the newest window's figures beside its validation metrics, the monitor run as their
    source), and the training run's page (a tag naming the monitor run).
    """
    from mlflow.entities import Metric  # noqa: PLC0415

    model_id = _logged_model_id(client, report["model"])
    metrics = []
    for w in report["windows"]:
        at = int(pd.Timestamp(w["last_time"]).timestamp() * 1000)
        values = {f"drift_p_{name}": w["tests"][name]["p_value"] for name in TESTS}
        values["drift_auc_sentence_vectors"] = w["tests"]["sentence_vectors"]["statistic"]
        values["drift_alarm"] = float(w["drifted"])
        values["alarm"] = float(w["alarm"])
        if w["live"]["labelled"]:
            values.update(live_accuracy=w["live"]["accuracy"], live_labelled=float(w["live"]["labelled"]))
            if w["live"]["macro_f1"] is not None:
                values["live_macro_f1"] = w["live"]["macro_f1"]
        # the newest window's figures go to the logged model too (its metrics are append-only: one window a call)
        on_model = model_id if w is report["windows"][-1] else None
        metrics += [Metric(k, float(v), at, w["index"], model_id=on_model) for k, v in values.items()]
        # the version's validation figures, a line beside the live ones (the logged model has them already)
        metrics += [Metric(k, float(v), at, w["index"]) for k, v in validation.items()]
    for start in range(0, len(metrics), 900):
        client.log_batch(run_id, metrics=metrics[start : start + 900])
    if windows:
        folder = f"windows-{windows[0]:05d}-{windows[-1]:05d}"
        client.log_artifact(run_id, str(output / "report.html"), folder)
        client.log_artifact(run_id, str(output / "report.json"), folder)
        client.set_tag(run_id, LAST_WINDOW_TAG, str(windows[-1]))
    client.set_tag(run_id, "sentipipe.monitor.alarm", str(report["alarm"]).lower())
    _tag_version(client, run_id, report)
    # finished until the next call resumes it: the UI shows the run done, its duration the span of the calls
    client.set_terminated(run_id, "FINISHED")


def _logged_model_id(client, model: dict) -> str | None:
    """The MLflow 3 logged model the version was registered from (source models:/m-...), if the store has it."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        version = client.get_model_version(model["name"], model["version"])
        source = version.source or ""
        model_id = getattr(version, "model_id", None) or (
            source.removeprefix("models:/") if source.startswith("models:/m-") and "/" not in source[8:] else None
        )
        return model_id and client.get_logged_model(model_id).model_id
    except MlflowException:  # a version registered from a run's path, or a logged model deleted since
        return None


def _tag_version(client, run_id: str, report: dict) -> None:
    """What the version's page shows of its monitoring: where the run is, whether it alarmed, the live figures."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    m = report["model"]
    run = client.get_run(run_id)
    newest = report["windows"][-1] if report["windows"] else None
    live = report["live_by_version"].get(m["version"], {"labelled": 0})
    tags = {
        "monitor.run": f"#/experiments/{run.info.experiment_id}/runs/{run_id}",
        "monitor.run_id": run_id,
        "monitor.log": report["log"],
        "monitor.alarm": str(report["alarm"]).lower(),
        "monitor.rows_logged": str(report["rows_logged"]),
        "monitor.live_labelled": str(live["labelled"]),
    }
    if live["labelled"]:
        tags["monitor.live_accuracy"] = repr(live["accuracy"])
        if live["macro_f1"] is not None:
            tags["monitor.live_macro_f1"] = repr(live["macro_f1"])
    if newest is not None:
        tags["monitor.last_window"] = f"{newest['index']} (to {newest['last_time']})"
        tags["monitor.drift"] = ", ".join(newest["moved"]) or "none"
    try:
        for key, value in tags.items():
            client.set_model_version_tag(m["name"], m["version"], key, value)
        client.set_tag(m["run_id"], "sentipipe.monitor_run_id", run_id)  # the training run names its monitor run
    except MlflowException:  # a version or training run deleted since it was served: the monitor run stands
        pass
