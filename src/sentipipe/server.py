"""`sentipipe serve`: a registered model over REST, speaking MLflow's scoring protocol.

The model is the registry's artifact, loaded by MLflow (`models:/NAME@champion`);
the server around it is this module rather than `mlflow models serve`, for two
reasons measured on the champion: MLflow's server turns a null or a number in an
`inputs` list into the text "None" or "1.5" before the model can refuse it, and
it scores every request on its own. Here each row is checked as it arrives, and
requests that arrive together are scored together in one forward pass (a
request waits for nothing: the batch is whatever queued while the previous one
ran).

Routes: GET /ping, /health, /version; POST /invocations with JSON
(`dataframe_split`, `dataframe_records`, `instances`, `inputs`; `params`) or
CSV (`text/csv`, a header row naming the input column). Errors a client can
cause are HTTP 400 with `{"error_code": "BAD_REQUEST", "message": ...}`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from typing import Any

import mlflow.pyfunc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import sentipipe
from sentipipe.errors import SentipipeError
from sentipipe.serving import Served, check_texts

MODEL_URI_ENV = "SENTIPIPE_SERVE_MODEL_URI"
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error_code": "BAD_REQUEST", "message": message}, status_code=400)


def _column(values: list, column: str, where: str) -> list:
    """The input column out of rows given as mappings (records)."""
    if any(not isinstance(row, dict) for row in values):
        raise SentipipeError(f"{where}: every row must be a mapping of column to value, or every row a text")
    missing = [i for i, row in enumerate(values) if column not in row]
    if missing:
        raise SentipipeError(f"{where}: row {missing[0]} has no {column!r} (missing inputs [{column!r}])")
    return [row[column] for row in values]


def texts_from_json(body: Any, column: str) -> tuple[list, dict]:
    """The input column's values and the params of a JSON request in any of the protocol's forms."""
    if not isinstance(body, dict):
        raise SentipipeError(f"the body must be a JSON object with one of {list(FORMATS)}")
    found = [k for k in FORMATS if k in body]
    if len(found) != 1:
        raise SentipipeError(f"the body must hold exactly one of {list(FORMATS)}; it holds {sorted(body)}")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise SentipipeError("params must be a mapping of name to value")
    key, data = found[0], body[found[0]]
    if key == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
            raise SentipipeError("dataframe_split needs `columns` and `data`")
        if column not in data["columns"]:
            raise SentipipeError(f"missing inputs [{column!r}]; the columns are {data['columns']}")
        index, rows = data["columns"].index(column), data.get("data") or []
        if any(not isinstance(row, list) or len(row) != len(data["columns"]) for row in rows):
            raise SentipipeError("dataframe_split: every row of `data` must be a list with one value per column")
        return [row[index] for row in rows], params
    if key == "dataframe_records":
        if not isinstance(data, list):
            raise SentipipeError("dataframe_records must be a list of mappings")
        return _column(data, column, key), params
    # instances / inputs: a list of texts, a list of records, a mapping of columns, or one text
    if isinstance(data, str):
        return [data], params
    if isinstance(data, dict):
        if column not in data:
            raise SentipipeError(f"missing inputs [{column!r}]; the columns are {sorted(data)}")
        values = data[column]
        return (values if isinstance(values, list) else [values]), params
    if not isinstance(data, list):
        raise SentipipeError(f"{key} must be a list of texts")
    if data and all(isinstance(row, dict) for row in data):
        return _column(data, column, key), params
    return data, params


def texts_from_csv(body: bytes, column: str) -> list:
    try:
        reader = csv.reader(io.StringIO(body.decode("utf-8")))
        header = next(reader, None)
        if header is None:
            raise SentipipeError("the CSV is empty: it needs a header row")
        if column not in header:
            raise SentipipeError(f"missing inputs [{column!r}]; the CSV's columns are {header}")
        index = header.index(column)
        return [row[index] if index < len(row) else None for row in reader]
    except UnicodeDecodeError as exc:
        raise SentipipeError(f"the CSV is not UTF-8: {exc}") from None
    except csv.Error as exc:
        raise SentipipeError(f"not a CSV table: {exc}") from None


class Batcher:
    """Requests that arrive while a batch is being scored are scored together in the next one."""

    def __init__(self, model: Served, max_rows: int = 256):
        self.model, self.max_rows = model, max_rows
        self.queue: asyncio.Queue | None = None

    async def score(self, texts: list[str], params: dict) -> list[dict]:
        if params or len(texts) >= self.max_rows:  # options, or a batch of its own: scored on its own
            return await asyncio.to_thread(self.model.predict_rows, texts, params)
        if self.queue is None:
            self.queue = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._run())
        done = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, done))
        return await done

    async def _run(self) -> None:
        while True:
            waiting = [await self.queue.get()]
            rows = len(waiting[0][0])
            while rows < self.max_rows and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
                rows += len(waiting[-1][0])
            texts = [t for batch, _ in waiting for t in batch]
            try:
                out = await asyncio.to_thread(self.model.predict_rows, texts, {})
            except Exception as exc:  # noqa: BLE001 - every waiting request must hear of it
                for _, done in waiting:
                    done.set_exception(exc)
                continue
            start = 0
            for batch, done in waiting:
                done.set_result(out[start : start + len(batch)])
                start += len(batch)


def create_app(model: Served, model_uri: str) -> Starlette:
    batcher = Batcher(model)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    async def version(request: Request) -> Response:
        return JSONResponse(
            {"sentipipe": sentipipe.__version__, "mlflow": mlflow.__version__, "model": model_uri, "pid": os.getpid()}
        )

    async def invocations(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        body = await request.body()
        try:
            if content_type == "application/json":
                try:
                    texts, params = texts_from_json(json.loads(body), model.column)
                except json.JSONDecodeError as exc:
                    raise SentipipeError(f"the body is not valid JSON: {exc}") from None
            elif content_type == "text/csv":
                texts, params = texts_from_csv(body, model.column), {}
            else:
                return PlainTextResponse(
                    f"use Content-Type application/json or text/csv, not {content_type!r}", status_code=415
                )
            check_texts(texts, model.column)
            rows = await batcher.score(texts, params)
        except SentipipeError as exc:
            return bad_request(str(exc))
        return JSONResponse({"predictions": rows})

    routes = [
        Route("/ping", ping),
        Route("/health", ping),
        Route("/version", version),
        Route("/invocations", invocations, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def app_from_env() -> Starlette:
    """The app for `uvicorn --factory` (each worker process loads the model once)."""
    uri = os.environ[MODEL_URI_ENV]
    return create_app(mlflow.pyfunc.load_model(uri).unwrap_python_model(), uri)
