"""The `sentipipe` command: predict, generate, serve, summary, train, stage.

Light at import: argparse and the project's error type only, so `--help` is
instant; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from sentipipe.cli_models import (
    checked_model,
    monitoring_params,
    served_folder,
    served_identity,
    served_model,
    store_uri,
)
from sentipipe.errors import SentipipeError
from sentipipe.monitoring import commands

TASKS = ("classifier", "generator")
# `sentipipe stage NAME`: the task-free data stages, then each task's (module sentipipe.tasks.<task>.<name>).
DATA_STAGES = ("ingest", "prepare")
TASK_STAGES = {
    "classifier": ("tokenize", "embed", "teacher", "train", "evaluate", "register"),
    "generator": ("tokenize", "train", "evaluate", "register"),
}


def cmd_predict(args) -> None:
    if bool(args.input) != bool(args.output):
        raise SentipipeError("--input and --output go together")
    if not args.input and not args.texts:
        raise SentipipeError("give texts to label, or --input FILE --output FILE")
    if args.input:
        _predict_file(args)
        return
    model = served_model(args, "classifier")
    rows = model.predict_rows(args.texts, {"explain": True} if args.explain else {})
    for text, row in zip(args.texts, rows, strict=True):
        probs = "  ".join(f"{k.removeprefix('prob_')}={v:.3f}" for k, v in row.items() if k.startswith("prob_"))
        if args.explain:
            from sentipipe.tasks.classifier.explain import terminal_lines  # noqa: PLC0415

            text = terminal_lines({**row, "label": row["label"]}, colour=sys.stdout.isatty())
        print(f"{row['label']}\t{probs}\t{text}")


def _predict_file(args) -> None:
    """`predict --input`: chunks scored here or on a Ray cluster (compute.engine), written in order either way."""
    from functools import partial  # noqa: PLC0415

    import pandas as pd  # noqa: PLC0415

    from sentipipe import compute, config, model_cache  # noqa: PLC0415
    from sentipipe.batch import frame_rows, predict_file, scored_rows  # noqa: PLC0415

    params = config.load(args.params, config.ComputeConfig).compute
    monitoring, log = monitoring_params(args), None
    folder, model_class = served_folder(args, "classifier")
    model = None
    if params.engine == "local" or monitoring.enabled:
        model = model_cache.load_python_model(folder, model_class)
    # local: the model loaded here; ray: each worker loads it from the cache folder once
    build = (lambda: model) if params.engine == "local" else partial(model_cache.load_python_model, folder, model_class)
    usage = compute.Usage(params.engine)
    map_chunks = lambda chunks: compute.map_with(build, frame_rows, chunks, params, usage)
    if monitoring.enabled:
        from sentipipe.monitoring.log import PredictionLog, new_request_id, row_ids  # noqa: PLC0415

        identity = served_identity(*checked_model(args, "classifier"))
        log = PredictionLog.from_params(monitoring, identity, model.predictor.labels, source="predict")

        def map_chunks(chunks):
            scored = lambda texts: compute.map_with(build, scored_rows, texts, params, usage)
            for texts, (rows, features, latency_ms) in compute.with_inputs(chunks, scored):
                request_id = new_request_id()
                log.append(request_id, texts, rows, features, latency_ms)
                yield pd.DataFrame(rows).assign(log_id=row_ids(request_id, len(texts)))

    try:
        rows = predict_file(
            map_chunks,
            Path(args.input),
            Path(args.output),
            text_column=args.text_column,
            chunk_rows=args.chunk_rows or params.chunk_rows,
        )
    finally:
        if log is not None:
            log.close()
    print(f"wrote {rows} predictions to {args.output} ({usage.summary()})")
    if log is not None:
        print(f"logged {log.written_rows} rows to {monitoring.log} (column `log_id` names them for feedback)")


def cmd_generate(args) -> None:
    model = served_model(args, "generator")
    options = {key: getattr(args, key) for key in ("max_length", "temperature", "top_k", "seed")}
    for row in model.predict_rows(args.prompts or [""], {k: v for k, v in options.items() if v is not None}):
        print(row["text"])
        if row["unknown_units"]:
            print(f"  ({row['unknown_units']} unit(s) of the prompt are not in the vocabulary; read as <unk>)")


def cmd_serve(args) -> None:
    uri, model_uri = checked_model(args, args.task)  # before the workers start: each would fail with MLflow's traceback
    import uvicorn  # noqa: PLC0415

    from sentipipe import server  # noqa: PLC0415

    os.environ.update({"MLFLOW_TRACKING_URI": uri, server.MODEL_URI_ENV: model_uri})
    monitoring = monitoring_params(args)
    if monitoring.enabled and args.task == "classifier":
        setup = {"params": monitoring.model_dump(), "model": served_identity(uri, model_uri)}
        os.environ[server.LOG_ENV] = json.dumps(setup)
        print(f"logging every scored row to {monitoring.log} (monitoring.enabled)", flush=True)
    elif monitoring.enabled:
        print("monitoring.enabled: the prediction log covers the classifier; the generator is served without it")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # each worker: the HTTP loop and torch threads
    print(f"serving {model_uri} from {uri} on http://{args.host}:{args.port}/invocations", flush=True)
    uvicorn.run(
        "sentipipe.server:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info" if args.verbose else "warning",
        access_log=args.verbose,
    )


def cmd_summary(args) -> None:
    """What `make run` and `make generator` print at the end: each task's registered version, its test figures
    and a sample; last, for each version the gate kept from champion, why and how to use it anyway."""
    from sentipipe import refusal  # noqa: PLC0415
    from sentipipe.io import read_json  # noqa: PLC0415
    from sentipipe.tasks.classifier import paths as classifier  # noqa: PLC0415
    from sentipipe.tasks.generator import paths as generator  # noqa: PLC0415

    found = {
        task: (read_json(paths.REGISTRATION), read_json(paths.METRICS))
        for task, paths in (("classifier", classifier), ("generator", generator))
        if paths.REGISTRATION.is_file() and paths.METRICS.is_file()
    }
    if not found:
        raise SentipipeError(
            f"{classifier.REGISTRATION} not found: run the pipeline first (make run, or make generator)"
        )
    args.input = args.output = None
    args.explain = False
    args.max_length = args.temperature = args.top_k = args.seed = None
    for task, (reg, metrics) in found.items():
        champion = f"version {reg['champion_version']}" if reg["champion_version"] is not None else "none"
        print(f"registered {task}: {reg['name']} version {reg['version']} (champion: {champion}; {reg['reason']})")
        args.model_uri = f"models:/{reg['name']}/{reg['version']}"
        test = metrics["test"]
        if task == "classifier":
            line = (
                f"test accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}, ROC-AUC {test['roc_auc']:.4f}"
            )
            mixed = metrics.get("blend", {})
            if mixed.get("weight"):
                alone = mixed["network_alone"]["test"]["accuracy"]
                line += (
                    f" (blended with the TF-IDF reference at weight {mixed['weight']:g}; the network alone {alone:.4f})"
                )
            print(line)
            args.texts = ["A warm, funny and beautifully acted film.", "A dull, lifeless mess of a movie."]
            print("sample predictions (label, probabilities, text):")
            cmd_predict(args)
        else:
            line = f"test bits per character {test['bpc']:.4f}, perplexity {test['perplexity']:.2f}"
            if "baseline" in metrics:
                line += f" ({metrics['baseline']['name']}: {metrics['baseline']['test']['bpc']:.4f})"
            print(line)
            args.prompts = ["The movie"]
            print("sample generation:")
            cmd_generate(args)
    for task, (reg, _) in found.items():
        if not reg["promoted"]:
            print("\n" + "\n".join(refusal.after_registration(task, reg)), flush=True)


def cmd_check_store(args) -> None:
    """Fail at once, with the address, when the tracking store cannot be reached: before hours of training."""
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    uri = store_uri(args)
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=args.timeout) as reply:
                reply.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SentipipeError(
                f"the tracking server at {uri} does not answer ({reason}); nothing was trained"
            ) from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise SentipipeError(f"the tracking store's folder {folder} is missing or not writable")
    print(f"tracking store {uri}: reachable")


def _stage(task: str | None, name: str):
    """The stage function and its params loader."""
    if name in DATA_STAGES:
        config = importlib.import_module("sentipipe.config")
        return getattr(importlib.import_module(f"sentipipe.data.{name}"), name), config.load_data
    task = task or "classifier"
    if name not in TASK_STAGES[task]:
        raise SentipipeError(f"the {task} has no stage {name!r}; its stages are {', '.join(TASK_STAGES[task])}")
    module = importlib.import_module(f"sentipipe.tasks.{task}.{name}")
    return getattr(module, name), importlib.import_module(f"sentipipe.tasks.{task}.params").load


def cmd_train(args) -> None:
    stage, load = _stage(args.task, "train")
    stage(load(args.params), fresh=args.fresh)


def cmd_stage(args) -> None:
    stage, load = _stage(args.task, args.name)
    stage(load(args.params))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentipipe", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--verbose", action="store_true", help="show the libraries' logs and progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="label texts, or a CSV/TSV/JSONL/Parquet file, with the champion classifier")
    p.add_argument("texts", nargs="*", help="one or more texts")
    p.add_argument(
        "--model-uri",
        help="default: models:/<classifier.register.model_name>@champion (or models:/NAME@challenger, models:/NAME/3)",
    )
    p.add_argument("--input", help="a CSV, TSV, JSONL or Parquet file to label, streamed in chunks")
    p.add_argument("--output", help="where to write it (format from the suffix): input columns + label + prob_*")
    p.add_argument("--text-column", default="text")
    p.add_argument("--chunk-rows", type=int, help="rows scored at a time (default: compute.chunk_rows)")
    p.add_argument(
        "--explain",
        action="store_true",
        help="mark the words that pushed towards the label (green, or +) and away from it (red, or -)",
    )
    p.set_defaults(func=cmd_predict)

    g = sub.add_parser("generate", help="continue prompts with the champion generator")
    g.add_argument("prompts", nargs="*", help="prompts (none: start a text from nothing)")
    g.add_argument(
        "--model-uri",
        help="default: models:/<generator.register.model_name>@champion (or models:/NAME@challenger, models:/NAME/3)",
    )
    g.add_argument("--max-length", type=int, help="units to generate (default: generator.sample.max_length)")
    g.add_argument("--temperature", type=float, help="0: greedy; higher: more random")
    g.add_argument("--top-k", type=int, help="sample among the k likeliest units; 0: all")
    g.add_argument("--seed", type=int, help="the same seed gives the same text")
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("serve", help="serve a task's champion over REST (MLflow's scoring protocol)")
    s.add_argument("--task", choices=TASKS, default="classifier", help="which champion")
    s.add_argument(
        "--model-uri",
        help="default: models:/<TASK.register.model_name>@champion (or models:/NAME@challenger, models:/NAME/3)",
    )
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5001)
    s.add_argument("--workers", type=int, default=1, help="server processes, each with the model loaded")
    s.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    s.set_defaults(func=cmd_serve)

    mo = sub.add_parser(
        "monitor", help="test the served classifier's newest logged windows for drift; exit 3 on an alarm"
    )
    mo.add_argument("--model-uri", help="default: models:/<classifier.register.model_name>@champion (its logged rows)")
    mo.add_argument("--log", help="the prediction log (default: monitoring.log)")
    mo.add_argument("--reference", default="data/prepared/val.parquet", help="the version's validation texts")
    mo.add_argument("--output", default="reports/monitoring", help="where report.html and report.json go")
    mo.add_argument("--retest", action="store_true", help="test the newest windows again, not only new ones")
    mo.set_defaults(func=commands.monitor)

    fb = sub.add_parser("feedback", help="attach true labels (a file of id,label) to logged predictions")
    fb.add_argument("file", help="CSV, TSV, JSONL or Parquet with columns id and label")
    fb.add_argument("--log", help="the prediction log (default: monitoring.log)")
    fb.set_defaults(func=commands.feedback)

    ex = sub.add_parser("export-feedback", help="labelled traffic as training rows for data.train_extra")
    ex.add_argument("--output", default="data/feedback/feedback.csv")
    ex.add_argument("--log", help="the prediction log (default: monitoring.log)")
    ex.add_argument("--prepared", default="data/prepared", help="the folder of the validation and test splits")
    ex.set_defaults(func=commands.export_feedback)

    m = sub.add_parser("summary", help="print the last registrations, test metrics and samples")
    m.set_defaults(func=cmd_summary)

    t = sub.add_parser("train", help="run a task's train stage; resumes from its checkpoint when it matches")
    t.add_argument("--task", choices=TASKS, default="classifier")
    mode = t.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="resume a matching checkpoint (the default)")
    mode.add_argument("--fresh", action="store_true", help="ignore any checkpoint and train from scratch")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("check-store", help="check that the tracking store (MLFLOW_TRACKING_URI) answers")
    c.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a tracking server")
    c.set_defaults(func=cmd_check_store)

    st = sub.add_parser("stage", help="run one pipeline stage outside DVC")
    names = sorted({*DATA_STAGES, *(n for stages in TASK_STAGES.values() for n in stages)})
    st.add_argument("name", choices=names)
    st.add_argument("--task", choices=TASKS, help="whose stage (default: classifier; ingest and prepare have none)")
    st.set_defaults(func=cmd_stage)
    return parser


def _quiet() -> None:
    """What the user asked for, and nothing else: MLflow's progress bars, INFO logs and warnings go."""
    import logging  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")  # read when mlflow is imported (and by server workers)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=FutureWarning)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        _quiet()
    try:
        return args.func(args) or 0
    except SentipipeError as exc:
        print(f"sentipipe: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
