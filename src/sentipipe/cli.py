"""The `sentipipe` command: predict, generate, serve, summary, train, stage."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from sentipipe.config import load_params
from sentipipe.errors import SentipipeError


def _model_uri(args, params) -> str:
    if args.model_uri:
        return args.model_uri
    task = getattr(args, "task", "classifier")
    name = params.generator.register.model_name if task == "generator" else params.register.model_name
    return f"models:/{name}@champion"


def _load(uri: str):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise SentipipeError(
            f"cannot load {uri}: {exc.message.splitlines()[0]} (has `dvc repro` registered one?)"
        ) from None


def cmd_predict(args) -> None:
    import pandas as pd

    from sentipipe import tracking

    if bool(args.input) != bool(args.output):
        raise SentipipeError("--input and --output go together")
    if not args.input and not args.texts:
        raise SentipipeError("give texts to label, or --input FILE --output FILE")
    params = load_params(args.params)
    tracking.configure(params.tracking)
    model = _load(_model_uri(args, params))
    if args.input:
        from pathlib import Path

        from sentipipe.batch import predict_file

        rows = predict_file(
            lambda texts: model.predict(pd.DataFrame({"text": texts})),
            Path(args.input),
            Path(args.output),
            text_column=args.text_column,
            chunk_rows=args.chunk_rows,
        )
        print(f"wrote {rows} predictions to {args.output}")
        return
    out = model.predict(pd.DataFrame({"text": args.texts}))
    for text, (_, row) in zip(args.texts, out.iterrows(), strict=False):
        probs = "  ".join(f"{c.removeprefix('prob_')}={row[c]:.3f}" for c in out.columns if c.startswith("prob_"))
        print(f"{row['label']}\t{probs}\t{text}")


def cmd_generate(args) -> None:
    import pandas as pd

    from sentipipe import tracking

    params = load_params(args.params)
    tracking.configure(params.tracking)
    args.task = "generator"
    model = _load(_model_uri(args, params))
    defaults = params.generator.sample
    options = {
        "max_length": args.max_length if args.max_length is not None else defaults.max_length,
        "temperature": args.temperature if args.temperature is not None else defaults.temperature,
        "top_k": args.top_k if args.top_k is not None else defaults.top_k,
        "seed": args.seed if args.seed is not None else defaults.seed,
    }
    prompts = args.prompts or [""]
    out = model.predict(pd.DataFrame({"prompt": prompts}), params=options)
    for _, row in out.iterrows():
        print(row["text"])
        if row["unknown_units"]:
            print(f"  ({row['unknown_units']} unit(s) of the prompt are not in the vocabulary; read as <unk>)")


def cmd_serve(args) -> None:
    from sentipipe import tracking

    params = load_params(args.params)
    uri = tracking.tracking_uri(params.tracking)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        _model_uri(args, params),
        "--env-manager",
        "local",
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    print(f"serving {_model_uri(args, params)} from {uri} on http://{args.host}:{args.port}/invocations", flush=True)
    sys.exit(subprocess.call(cmd, env=env))


def cmd_summary(args) -> None:
    """What `make run` prints at the end: the registered version, its test accuracy, a sample prediction."""
    from sentipipe import stages
    from sentipipe.io import read_json

    for path in (stages.REGISTRATION, stages.METRICS):
        if not path.is_file():
            raise SentipipeError(f"{path} not found: run the pipeline first (make run)")
    reg, metrics = read_json(stages.REGISTRATION), read_json(stages.METRICS)
    test = metrics["test"]
    print(
        f"registered model: {reg['name']} version {reg['version']} "
        f"(champion: version {reg['champion_version']}; {reg['reason']})"
    )
    print(f"test accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}, ROC-AUC {test['roc_auc']:.4f}")
    args.texts = ["A warm, funny and beautifully acted film.", "A dull, lifeless mess of a movie."]
    args.model_uri = f"models:/{reg['name']}/{reg['version']}"
    args.input = args.output = None
    print("sample predictions (label, probabilities, text):")
    cmd_predict(args)
    if stages.LM_REGISTRATION.is_file() and stages.LM_METRICS.is_file():
        reg, metrics = read_json(stages.LM_REGISTRATION), read_json(stages.LM_METRICS)
        print(
            f"registered generator: {reg['name']} version {reg['version']} "
            f"(champion: version {reg['champion_version']}; {reg['reason']})"
        )
        line = f"test bits per character {metrics['test']['bpc']:.4f}, perplexity {metrics['test']['perplexity']:.2f}"
        if "baseline" in metrics:
            b = metrics["baseline"]
            line += f" (Kneser-Ney {b['kneser_ney_order']}-gram: {b['kneser_ney_test_bpc']:.4f})"
        print(line)
        args.prompts, args.model_uri = ["The movie"], f"models:/{reg['name']}/{reg['version']}"
        args.max_length = args.temperature = args.top_k = args.seed = None
        print("sample generation:")
        cmd_generate(args)


def cmd_train(args) -> None:
    from sentipipe.stages import lm_train, train

    (lm_train if args.task == "generator" else train)(load_params(args.params), fresh=args.fresh)


def cmd_stage(args) -> None:
    from sentipipe.stages import STAGES

    STAGES[args.name](load_params(args.params))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentipipe", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="label texts, or a CSV/TSV/JSONL/Parquet file, with the champion model")
    p.add_argument("texts", nargs="*", help="one or more texts")
    p.add_argument("--model-uri", help="default: models:/<register.model_name>@champion")
    p.add_argument("--input", help="a CSV, TSV, JSONL or Parquet file to label, streamed in chunks")
    p.add_argument("--output", help="where to write it (format from the suffix): input columns + label + prob_*")
    p.add_argument("--text-column", default="text")
    p.add_argument("--chunk-rows", type=int, default=10_000)
    p.set_defaults(func=cmd_predict)

    g = sub.add_parser("generate", help="continue prompts with the champion generator")
    g.add_argument("prompts", nargs="*", help="prompts (none: start a text from nothing)")
    g.add_argument("--model-uri", help="default: models:/<generator.register.model_name>@champion")
    g.add_argument("--max-length", type=int, help="units to generate (default: generator.sample.max_length)")
    g.add_argument("--temperature", type=float, help="0: greedy; higher: more random")
    g.add_argument("--top-k", type=int, help="sample among the k likeliest units; 0: all")
    g.add_argument("--seed", type=int, help="the same seed gives the same text")
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("serve", help="serve the champion over REST (mlflow models serve)")
    s.add_argument("--task", choices=["classifier", "generator"], default="classifier", help="which champion")
    s.add_argument("--model-uri")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5001)
    s.set_defaults(func=cmd_serve)

    m = sub.add_parser("summary", help="print the last registration, test metrics and a sample prediction")
    m.set_defaults(func=cmd_summary)

    t = sub.add_parser("train", help="run the train stage; resumes from models/checkpoint.pt when it matches")
    t.add_argument("--task", choices=["classifier", "generator"], default="classifier")
    mode = t.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="resume a matching checkpoint (the default)")
    mode.add_argument("--fresh", action="store_true", help="ignore any checkpoint and train from scratch")
    t.set_defaults(func=cmd_train)

    st = sub.add_parser("stage", help="run one pipeline stage outside DVC")
    from sentipipe.stages import STAGES

    st.add_argument("name", choices=list(STAGES))
    st.set_defaults(func=cmd_stage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SentipipeError as exc:
        print(f"sentipipe: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
