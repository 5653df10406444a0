"""Malformed requests to a real `sentipipe serve`: a 4xx with a JSON message each, never a 5xx, and the server
answers the next valid request.

The requests go out on raw sockets, so the bytes on the wire are exactly the case (a body cut short, a huge
head, a header h11 accepts but `requests` would not send). Hypothesis generates bodies, content types and
headers; it is seeded (`derandomize`), so CI sees the same examples every run.
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import json
import socket
import threading
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sentipipe.server import FORMATS, MAX_BODY_BYTES, MAX_HEADER_BYTES
from tests.integration.conftest import BODY_TIMEOUT

pytestmark = pytest.mark.integration

FUZZ = settings(
    derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
VALID = b'{"inputs": ["a wonderful film", "an awful film"]}'


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    body: bytes = b"",
    content_type: str | bytes | None = "application/json",
    headers: tuple = (),
    length: int | None = None,
    method: str = "POST",
    path: str = "/invocations",
) -> bytes:
    """A request as bytes on the wire; `length` overrides the Content-Length (a body cut short)."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    if content_type is not None:
        lines.append(b"Content-Type: " + as_bytes(content_type))
    lines += [as_bytes(name) + b": " + as_bytes(value) for name, value in headers]
    lines.append(b"Content-Length: %d" % (len(body) if length is None else length))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def exchange(url: str, data: bytes, then_close: bool = False, timeout: float = 30) -> Reply | None:
    """Send `data` as is and read until the server closes; None if it closed without a word.

    A thread sends while this one reads: a server may answer and close before it has read everything
    (a huge head), and that answer must still be read. A server that neither answers nor closes fails
    the test with socket.timeout: a hung connection is a failure too. `then_close`: close right after
    sending (a client that gives up), and return None.
    """
    with socket.create_connection(address(url), timeout=timeout) as sock:
        if then_close:
            with contextlib.suppress(OSError):
                sock.sendall(data)
            return None
        sender = threading.Thread(target=send_all, args=(sock, data), daemon=True)
        sender.start()
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:  # what was read before the reset stands
                break
            if not chunk:
                break
            chunks.append(chunk)
        sender.join(timeout)
    return parse(b"".join(chunks)) if chunks else None


def send_all(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server may close first; the reader sees what it said
        sock.sendall(data)


class Wire:
    """Received bytes as the socket http.client parses a response from."""

    def __init__(self, raw: bytes):
        self.raw = raw

    def makefile(self, *args, **kwargs) -> io.BytesIO:
        return io.BytesIO(self.raw)


def parse(raw: bytes) -> Reply:
    response = http.client.HTTPResponse(Wire(raw))
    response.begin()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())


def refusal(reply: Reply | None, status: int | None = None) -> str:
    """The message of a 4xx answered as JSON (status `status` if given)."""
    assert reply is not None, "the server closed the connection without an answer"
    assert 400 <= reply.status < 500, reply
    assert status is None or reply.status == status, reply
    assert reply.headers.get("content-type") == "application/json", reply
    answer = json.loads(reply.body)
    assert set(answer) == {"error_code", "message"} and answer["error_code"], answer
    assert isinstance(answer["message"], str) and answer["message"].strip(), answer
    return answer["message"]


def predictions(reply: Reply | None) -> list[dict]:
    assert reply is not None and reply.status == 200, reply
    assert reply.headers.get("content-type") == "application/json", reply
    return json.loads(reply.body)["predictions"]


def answered(reply: Reply | None) -> None:
    """Any answer but a 5xx: a prediction, or a refusal with a JSON message."""
    assert reply is not None, "the server closed the connection without an answer"
    assert reply.status < 500, reply
    if reply.status == 200:
        assert isinstance(predictions(reply), list)
    else:
        refusal(reply)


def assert_still_serving(url: str, log: Path) -> None:
    """A valid request is scored after the malformed ones, and the server logged no traceback for them."""
    labels = [row["label"] for row in predictions(exchange(url, request(VALID)))]
    assert labels == ["positive", "negative"]
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "Exception in ASGI" not in text, text[-3000:]


# ---------------------------------------------------------------- each named case


@pytest.mark.parametrize(
    "content_type, body",
    [("application/json", b'{"inputs": ["caf\xe9 \xff"]}'), ("text/csv", b"text\ncaf\xe9 \xff\n")],
    ids=["json", "csv"],
)
def test_a_body_that_is_not_utf8_is_a_400_that_says_so(server, server_log, content_type, body):
    message = refusal(exchange(server, request(body, content_type)), 400)
    assert "not valid UTF-8: byte 0xe9 at position" in message and "charset" in message
    message = refusal(exchange(server, request(body, content_type + "; charset=utf-8")), 400)
    assert "not valid utf-8" in message
    assert_still_serving(server, server_log)


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json; charset=latin-1", '{"inputs": ["a wonderful café"]}'.encode("latin-1")),
        ('application/json; charset="ISO-8859-1"', '{"inputs": ["a wonderful café"]}'.encode("latin-1")),
        ("text/csv; charset=cp1252", "text\na wonderful café\n".encode("cp1252")),
        ("application/json; charset=utf-16", '{"inputs": ["a wonderful café"]}'.encode("utf-16")),
        ("application/json", '{"inputs": ["a wonderful café"]}'.encode("utf-16")),  # a BOM, as json.loads reads
    ],
    ids=["latin-1", "quoted", "csv-cp1252", "utf-16", "utf-16-undeclared"],
)
def test_a_declared_charset_is_honoured(server, content_type, body):
    """Bytes valid in the charset Content-Type names are read in it: the same answer as the text in UTF-8."""
    in_utf8 = predictions(exchange(server, request('{"inputs": ["a wonderful café"]}'.encode())))
    assert predictions(exchange(server, request(body, content_type))) == in_utf8


@pytest.mark.parametrize("charset", ["klingon", "rot13", "base64", "punycode", "undefined", "x" * 300])
def test_a_charset_python_cannot_read_text_in_is_a_415(server, server_log, charset):
    message = refusal(exchange(server, request(VALID, f"application/json; charset={charset}")), 415)
    assert f"unknown charset {charset[:40]!r}" in message
    assert_still_serving(server, server_log)


@pytest.mark.parametrize(
    "content_type", [None, "", "application/xml", "text/plain", "multipart/form-data; boundary=x", "application/jsonx"]
)
def test_a_content_type_other_than_json_or_csv_is_a_415(server, content_type):
    message = refusal(exchange(server, request(VALID, content_type)), 415)
    assert "use Content-Type application/json or text/csv" in message


@pytest.mark.parametrize(
    "body, content_type, says",
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "not valid JSON: maximum recursion depth"),
        (b'{"inputs": [' + b"9" * 5000 + b"]}", "application/json", "not valid JSON: Exceeds the limit"),
        (b"", "application/json", "the body is empty"),
        (b" \r\n", "application/json", "the body is empty"),
        (b"", "text/csv", "the body is empty"),
        (b"[1, 2]", "application/json", "must be a JSON object"),
        (b'"a text"', "application/json", "must be a JSON object"),
        (b"null", "application/json", "must be a JSON object"),
        (b"{}", "application/json", "exactly one of"),
        (b'{"inputs": ["a"], "instances": ["b"]}', "application/json", "exactly one of"),
        (b'{"inputs": ["a"], "params": []}', "application/json", "params must be a mapping"),
        (b'{"dataframe_split": {"columns": ["text"], "data": 5}}', "application/json", "`data` must be a list"),
        (b'{"dataframe_split": {"data": [["a"]]}}', "application/json", "needs `columns` and `data`"),
        (b'{"dataframe_records": {"text": "a"}}', "application/json", "must be a list of mappings"),
        (b'{"inputs": 5}', "application/json", "must be a list of texts"),
        (b'{"inputs": ["fine", "\\ud800"]}', "application/json", "row 1: text holds a lone surrogate"),
        (b'{"inputs": ["a"], "params": {"explain": "yes"}}', "application/json", "explain must be true or false"),
        (b'{"\\ud800": 1}', "application/json", "exactly one of"),  # the key, quoted back, is escaped
        (b"review\ngood\n", "text/csv", "missing inputs ['text']"),
        (b"text\n" + b"x" * 200_000 + b"\n", "text/csv", "not a CSV table: field larger than field limit"),
    ],
    ids=lambda value: f"{len(value)}-bytes" if len(value) > 60 else None,
)
def test_a_body_that_is_not_the_scoring_protocol_is_a_400_that_says_why(server, server_log, body, content_type, says):
    message = refusal(exchange(server, request(body, content_type)), 400)
    assert says in message
    assert len(message) <= 1010, "a refusal quotes the client's input only in part"
    assert_still_serving(server, server_log)


def test_a_body_over_the_limit_is_a_413(server, server_log):
    declared = exchange(server, request(b"", length=10**9))  # announced, none of it sent: refused at once
    assert "the limit is" in refusal(declared, 413)

    too_big = b"x" * (MAX_BODY_BYTES + 1)
    reply = requests.post(f"{server}/invocations", data=too_big, headers={"Content-Type": "application/json"})
    assert reply.status_code == 413 and "the limit is" in reply.json()["message"]

    chunked = (too_big[i : i + 2**20] for i in range(0, len(too_big), 2**20))  # no Content-Length: counted
    reply = requests.post(f"{server}/invocations", data=chunked, headers={"Content-Type": "text/csv"})
    assert reply.status_code == 413 and "the body is over" in reply.json()["message"]
    assert_still_serving(server, server_log)


@pytest.mark.parametrize("size", [MAX_HEADER_BYTES + 1000, 100_000, 2_000_000])
def test_a_huge_header_is_a_4xx_not_a_hang(server, server_log, size):
    """Over 12 KiB this app says 431 in JSON; a head h11 sees grow past 16 KiB is its plain-text 400."""
    reply = exchange(server, request(VALID, headers=[("X-Huge", "a" * size)]))
    assert reply is not None and reply.status in (400, 431), reply
    if size < 16 * 2**10:
        assert "the headers are over" in refusal(reply, 431)
    many = [(f"X-Many-{i}", "b" * 100) for i in range(size // 100)]
    reply = exchange(server, request(VALID, headers=many))
    assert reply is not None and reply.status in (400, 431), reply
    assert_still_serving(server, server_log)


def test_a_body_cut_short_then_silence_is_a_408(server, server_log):
    started = time.monotonic()
    reply = exchange(server, request(b'{"inputs": ["a wond', length=100), timeout=BODY_TIMEOUT + 30)
    assert "the body stopped arriving" in refusal(reply, 408)
    assert time.monotonic() - started >= BODY_TIMEOUT - 0.5
    assert reply.headers.get("connection") == "close"
    assert_still_serving(server, server_log)


def test_a_body_cut_short_then_a_closed_connection_leaves_the_server_serving(server, server_log):
    """The client is gone, so nobody can be answered: the server must neither crash nor log a traceback."""
    for _ in range(20):
        exchange(server, request(b'{"inputs": ["a wond', length=100), then_close=True)
    with socket.create_connection(address(server), timeout=30) as sock:  # half-closed: uvicorn closes it
        sock.sendall(request(b'{"inputs": ["a wond', length=100))
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(65536) == b""
    time.sleep(0.5)  # the server handles the disconnects before the check reads its log
    assert_still_serving(server, server_log)


def test_other_routes_and_methods_are_json_4xx(server):
    reply = exchange(server, request(method="GET"))
    assert "Method Not Allowed" in refusal(reply, 405) and reply.headers.get("allow") == "POST"
    assert "Not Found: POST /nope" in refusal(exchange(server, request(VALID, path="/nope")), 404)


# ---------------------------------------------------------------- generated requests

FIELD_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f")  # h11's field-vchar
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)  # lone surrogates too
CHARSETS = [None, "utf-8", "UTF-8", "latin-1", "iso-8859-1", "cp1252", "utf-16", "utf-16-le", "utf-32", "ascii"]
MEDIA = ["application/json", "text/csv", "Application/JSON", "text/plain", "", "application/x-www-form-urlencoded"]


@st.composite
def content_types(draw) -> str:
    kind = draw(st.sampled_from(MEDIA) | st.text(FIELD_CHARS, max_size=30))
    parameters = draw(
        st.lists(
            st.sampled_from([f"; charset={c}" for c in CHARSETS if c] + ["; charset=", '; charset="utf-8"'])
            | st.text(FIELD_CHARS, max_size=20).map(lambda value: f"; charset={value}")
            | st.text(FIELD_CHARS, max_size=20).map(lambda value: f";{value}"),
            max_size=2,
        )
    )
    return kind + "".join(parameters)


def json_values():
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT
    keys = st.sampled_from([*FORMATS, "params", "columns", "data", "text", "explain"]) | ANY_TEXT
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=16
    )


def documents():
    """A JSON document: any value, or a mapping with the protocol's keys over any values."""
    keys = st.sampled_from([*FORMATS, "params"])
    return json_values() | st.dictionaries(keys, json_values(), min_size=1, max_size=3)


def encode(text: str, charset: str | None) -> bytes:
    if charset in (None, "utf-8", "UTF-8"):
        return text.encode("utf-8", "surrogatepass")  # a lone surrogate as its (invalid) UTF-8 bytes
    return text.encode(charset, "replace")


@FUZZ
@given(body=st.binary(max_size=2000), content_type=content_types())
def test_random_bytes_under_any_content_type_never_get_a_5xx(server, body, content_type):
    answered(exchange(server, request(body, content_type)))


@FUZZ
@given(
    document=documents(),
    charset=st.sampled_from(CHARSETS),
    declared=st.booleans(),
    ascii_only=st.booleans(),
    cut=st.integers(min_value=0, max_value=3),
)
def test_random_json_never_gets_a_5xx(server, document, charset, declared, ascii_only, cut):
    text = json.dumps(document, ensure_ascii=ascii_only)
    body = encode(text, charset)
    body = body[: len(body) - cut] if cut else body  # sometimes a few bytes short of a document
    content_type = "application/json" + (f"; charset={charset}" if declared and charset else "")
    answered(exchange(server, request(body, content_type)))


@FUZZ
@given(
    rows=st.lists(st.lists(ANY_TEXT, max_size=3), max_size=6),
    header=st.lists(st.sampled_from(["text", "review", "", "label"]) | ANY_TEXT, max_size=3),
    charset=st.sampled_from(CHARSETS),
)
def test_random_csv_never_gets_a_5xx(server, rows, header, charset):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    content_type = "text/csv" + (f"; charset={charset}" if charset else "")
    answered(exchange(server, request(encode(out.getvalue(), charset), content_type)))


@FUZZ
@given(
    texts=st.lists(st.text(max_size=40), max_size=6),
    form=st.sampled_from([*FORMATS, "dataframe_split", "csv"]),
    charset=st.sampled_from(CHARSETS),
)
def test_every_valid_request_in_any_charset_it_declares_is_scored(server, texts, form, charset):
    """Texts (no lone surrogates) in any form of the protocol, in any charset that can hold them: one row each."""
    if charset in ("latin-1", "iso-8859-1", "cp1252", "ascii"):
        try:
            "".join(texts).encode(charset)
        except UnicodeEncodeError:
            assume(False)
    if form == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([["text"], *([t] for t in texts)])
        text, content_type = out.getvalue(), "text/csv"
    elif form == "dataframe_split":
        text, content_type = json.dumps({form: {"columns": ["text"], "data": [[t] for t in texts]}}), "application/json"
    elif form == "dataframe_records":
        text, content_type = json.dumps({form: [{"text": t} for t in texts]}), "application/json"
    else:
        text, content_type = json.dumps({form: texts}, ensure_ascii=False), "application/json"
    content_type += f"; charset={charset}" if charset else ""
    rows = predictions(exchange(server, request(text.encode(charset or "utf-8"), content_type)))
    assert len(rows) == len(texts)
    assert all(row["label"] in ("positive", "negative") for row in rows)


RESERVED = {"host", "connection", "content-length", "content-type", "transfer-encoding", "expect", "upgrade"}
TOKEN = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~"))


def header_bytes(data: bytes) -> int:
    """The size of a request's headers as the app counts it: each name and value."""
    lines = data.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    return sum(len(line) - 2 for line in lines)  # less the ": " between name and value


def test_headers_up_to_the_limit_are_read_and_a_byte_more_is_a_431(server):
    base = header_bytes(request(VALID, headers=[("X-Pad", "")]))
    at_limit = request(VALID, headers=[("X-Pad", "p" * (MAX_HEADER_BYTES - base))])
    assert header_bytes(at_limit) == MAX_HEADER_BYTES
    assert len(predictions(exchange(server, at_limit))) == 2
    over = request(VALID, headers=[("X-Pad", "p" * (MAX_HEADER_BYTES - base + 1))])
    assert "the headers are over" in refusal(exchange(server, over), 431)


@FUZZ
@given(
    headers=st.lists(
        st.tuples(TOKEN.filter(lambda name: name and name.lower() not in RESERVED), st.text(FIELD_CHARS, max_size=40)),
        max_size=6,
    ),
    padding=st.integers(min_value=0, max_value=15_000),
)
def test_random_headers_are_scored_or_refused_by_their_size(server, headers, padding):
    """Headers h11 reads whole (under its 16 KiB): scored up to the app's limit, a 431 in JSON past it."""
    data = request(VALID, headers=(*headers, ("X-Pad", "p" * padding)))
    assume(len(data) < 15_500)
    reply = exchange(server, data)
    if header_bytes(data) > MAX_HEADER_BYTES:
        assert "the headers are over" in refusal(reply, 431)
    else:
        assert len(predictions(reply)) == 2


def test_the_server_serves_after_the_generated_requests(server, server_log):
    assert_still_serving(server, server_log)
