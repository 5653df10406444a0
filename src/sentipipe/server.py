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
CSV (`text/csv`, a header row naming the input column).

No request a client can send gets a 5xx: every refusal is JSON,
`{"error_code": ..., "message": ...}`, with a 4xx status. 400: the body is not
JSON or CSV of one of the protocol's shapes, a row is not a text, or the bytes
do not decode (UTF-8 unless Content-Type names a charset: a charset Python
knows, such as `latin-1`, is honoured, since clients do send one); 408: the
body stopped arriving for `SENTIPIPE_SERVE_BODY_TIMEOUT` seconds (default 10);
413: the body is over `SENTIPIPE_SERVE_MAX_BODY_BYTES` (default 16 MiB, some
80,000 reviews); 415: a content type or charset the server does not read;
431: headers over 12 KiB; 404/405 for other routes and methods. A request
that is not HTTP, or whose head grows past 16 KiB before it ends, never
reaches this app: the HTTP layer (uvicorn's h11) answers it with its own
plain-text 400 and closes the connection.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import json
import os
import time
from typing import Any

import mlflow.pyfunc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import sentipipe
from sentipipe.config import MonitoringParams
from sentipipe.errors import SentipipeError
from sentipipe.monitoring.log import PredictionLog, new_request_id
from sentipipe.scoring_queue import Batcher
from sentipipe.serving import Served, check_texts

MODEL_URI_ENV = "SENTIPIPE_SERVE_MODEL_URI"
LOG_ENV = "SENTIPIPE_SERVE_LOG"  # JSON: the monitoring params and the served version's name, version, run id
MAX_BODY_ENV = "SENTIPIPE_SERVE_MAX_BODY_BYTES"
BODY_TIMEOUT_ENV = "SENTIPIPE_SERVE_BODY_TIMEOUT"
MAX_BODY_BYTES = 16 * 2**20
BODY_TIMEOUT = 10.0  # seconds without a byte of a started body
MAX_HEADER_BYTES = 12 * 2**10  # below h11's 16 KiB, so the refusal is this app's JSON where it can be
MAX_MESSAGE = 1000  # characters of a refusal's message (they quote the client's keys and columns)
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CONTENT_TYPES = ("application/json", "text/csv")
# codecs Python decodes with that are no character set a client means (punycode is also quadratic)
NOT_CHARSETS = {"punycode", "idna", "undefined", "unicode_escape", "raw_unicode_escape"}
ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
    500: "INTERNAL_ERROR",
}


class Refused(SentipipeError):
    """A request refused with a status other than 400; `close` when its body is left unread on the wire."""

    def __init__(self, status: int, message: str, close: bool = False):
        super().__init__(message)
        self.status, self.close = status, close


class ClientGone(Exception):
    """The client closed the connection before its body was complete: nobody is left to answer."""


def error_response(status: int, message: str, close: bool = False, headers: dict | None = None) -> JSONResponse:
    """A refusal as JSON; the message is cut short and kept encodable (a lone surrogate is escaped)."""
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " [...]"
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    headers = {**(headers or {}), **({"Connection": "close"} if close else {})}
    code = ERROR_CODES.get(status, "CLIENT_ERROR" if status < 500 else "INTERNAL_ERROR")
    return JSONResponse({"error_code": code, "message": message}, status_code=status, headers=headers)


def bad_request(message: str) -> JSONResponse:
    return error_response(400, message)


def env_number(name: str, default: float, kind: type = float) -> float:
    """A positive number from the environment (the server's workers read their limits there)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SentipipeError(f"{name}={raw!r}: must be a positive {kind.__name__} (default {default})")
    return value


def media_type(header: str) -> tuple[str, str | None]:
    """The media type (lower case) and the charset parameter, if any, of a Content-Type header."""
    kind, *parameters = header.split(";")
    charset = None
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').strip()
    return kind.strip().lower(), charset


def decode(body: bytes, kind: str, charset: str | None) -> str:
    """The body as text: in the declared charset, else UTF-8 (JSON: UTF-8/16/32 found as the json module does).

    A declared charset is honoured rather than refused: `charset=latin-1` with
    latin-1 bytes is what such a client means. One Python has no codec for is 415.
    """
    codec = charset or (json.detect_encoding(body) if kind == "application/json" else "utf-8-sig")
    try:
        if codecs.lookup(codec).name in NOT_CHARSETS:
            raise LookupError(codec)
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        name, byte = (charset or codec.replace("-sig", "").upper())[:40], body[exc.start : exc.start + 1].hex()
        raise SentipipeError(
            f"the body is not valid {name}: byte 0x{byte} at position {exc.start} does not decode; send UTF-8, "
            f"or name the body's charset in Content-Type (e.g. '{kind}; charset=latin-1')"
        ) from None
    except (LookupError, ValueError):
        raise Refused(
            415, f"unknown charset {codec[:40]!r} in Content-Type: send UTF-8 (or a charset such as latin-1)"
        ) from None


def check_unicode(texts: list[str], column: str) -> None:
    """A lone surrogate (a JSON escape such as \\ud800 can make one) is no text the tokenizer can read."""
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SentipipeError(
                f"row {i}: {column} holds a lone surrogate at position {exc.start}: not Unicode text"
            ) from None


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, refused as soon as it is known to be over `limit` or stops arriving for `timeout` s."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the body is {int(declared)} bytes; the limit is {limit} (send fewer rows)", close=True)
    chunks, size = [], 0
    while True:
        try:
            message = await asyncio.wait_for(request.receive(), timeout)
        except asyncio.TimeoutError:
            raise Refused(408, f"the body stopped arriving for {timeout:g} s (got {size} bytes)", close=True) from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise Refused(413, f"the body is over {limit} bytes, the limit (send fewer rows)", close=True)
        if not message.get("more_body", False):
            return b"".join(chunks)


def header_limit(app: ASGIApp, limit: int = MAX_HEADER_BYTES) -> ASGIApp:
    """431 for headers over `limit` bytes, whichever HTTP implementation let them through."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and sum(len(k) + len(v) for k, v in scope["headers"]) > limit:
            await error_response(431, f"the headers are over {limit} bytes", close=True)(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded


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
    params = body.get("params")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise SentipipeError("params must be a mapping of name to value")
    key, data = found[0], body[found[0]]
    if key == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
            raise SentipipeError("dataframe_split needs `columns` and `data`")
        if column not in data["columns"]:
            raise SentipipeError(f"missing inputs [{column!r}]; the columns are {data['columns']}")
        index, rows = data["columns"].index(column), data.get("data")
        rows = [] if rows is None else rows
        if not isinstance(rows, list) or any(
            not isinstance(row, list) or len(row) != len(data["columns"]) for row in rows
        ):
            raise SentipipeError("dataframe_split: `data` must be a list of rows, each a list of one value per column")
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


def texts_from_csv(body: str, column: str) -> list:
    try:
        reader = csv.reader(io.StringIO(body))
        header = next(reader, None)
        if header is None:
            raise SentipipeError("the CSV is empty: it needs a header row")
        if column not in header:
            raise SentipipeError(f"missing inputs [{column!r}]; the CSV's columns are {header}")
        index = header.index(column)
        return [row[index] if index < len(row) else None for row in reader]
    except csv.Error as exc:
        raise SentipipeError(f"not a CSV table: {exc}") from None


def create_app(model: Served, model_uri: str, log: PredictionLog | None = None) -> Starlette:
    """The app; with `log`, every scored row is appended to the prediction log and each answer carries its
    request id (the `X-Request-Id` header and `request_id` in the body: feedback names rows by it)."""
    batcher = Batcher(model, features=log is not None)
    max_body = int(env_number(MAX_BODY_ENV, MAX_BODY_BYTES, int))
    body_timeout = env_number(BODY_TIMEOUT_ENV, BODY_TIMEOUT)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    async def version(request: Request) -> Response:
        return JSONResponse(
            {"sentipipe": sentipipe.__version__, "mlflow": mlflow.__version__, "model": model_uri, "pid": os.getpid()}
        )

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        try:
            kind, charset = media_type(request.headers.get("content-type", ""))
            if kind not in CONTENT_TYPES:
                raise Refused(415, f"use Content-Type application/json or text/csv, not {kind[:80]!r}")
            body = await read_body(request, max_body, body_timeout)
            if not body.strip():
                example = '{"inputs": ["a text"]}' if kind == "application/json" else "a header row naming the column"
                raise SentipipeError(f"the body is empty: send {example}")
            text = decode(body, kind, charset)
            if kind == "application/json":
                try:
                    texts, params = texts_from_json(json.loads(text), model.column)
                except (ValueError, RecursionError) as exc:  # JSONDecodeError; integers of over 4300 digits
                    raise SentipipeError(f"the body is not valid JSON: {exc}") from None
            else:
                texts, params = texts_from_csv(text, model.column), {}
            check_unicode(check_texts(texts, model.column), model.column)
            rows, features = await batcher.score(texts, params)
        except ClientGone:
            return Response(status_code=400)  # nobody reads it; uvicorn drops it
        except Refused as exc:
            return error_response(exc.status, str(exc), exc.close)
        except SentipipeError as exc:
            return bad_request(str(exc))
        if log is None:
            return JSONResponse({"predictions": rows})
        request_id = new_request_id()
        log.append(request_id, texts, rows, features, (time.perf_counter() - started) * 1000)
        return JSONResponse({"predictions": rows, "request_id": request_id}, headers={"X-Request-Id": request_id})

    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = f"{exc.detail}: {request.method} {request.url.path[:200]}"
        return error_response(exc.status_code, message, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        """A fault of the server, not the request (logged with its traceback by uvicorn): JSON all the same."""
        return error_response(500, f"the server failed on this request ({type(exc).__name__}); see its log")

    routes = [
        Route("/ping", ping),
        Route("/health", ping),
        Route("/version", version),
        Route("/invocations", invocations, methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        if log is not None:  # SIGTERM and SIGINT end here: what waits is written before the process exits
            await asyncio.to_thread(log.close)

    return Starlette(
        routes=routes,
        middleware=[Middleware(header_limit)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """The app for `uvicorn --factory` (each worker process loads the model once, and has its own log writer)."""
    uri = os.environ[MODEL_URI_ENV]
    model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    log = None
    if os.environ.get(LOG_ENV):
        setup = json.loads(os.environ[LOG_ENV])
        params = MonitoringParams(**setup["params"])
        log = PredictionLog.from_params(params, setup["model"], model.predictor.labels, source="serve")
    return create_app(model, uri, log)
