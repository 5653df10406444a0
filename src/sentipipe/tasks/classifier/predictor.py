"""The whole predictor in one file: network, vocabulary, tokenizer settings, labels, and how it is served.

Everything that turns raw text into probabilities travels together, so a
checkpoint, the evaluation stage and the served MLflow model cannot disagree.
The serving choices the evaluate stage makes on validation data go in the same
file: the temperature that calibrates the probabilities, int8 recurrent
weights, vectors for words the vocabulary lacks, from their spelling, and the
TF-IDF reference the network's probabilities are blended with, and its weight
(blend.py). On
a CPU the network runs through folded.py (its input projection folded into a
word table); elsewhere, or for shapes it does not cover, as trained.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sentipipe.io import write_bytes
from sentipipe.tasks.classifier import folded
from sentipipe.tasks.classifier.blend import LinearReference, mix
from sentipipe.tasks.classifier.network import ClassifierNetwork, ClassifierSpec
from sentipipe.text.batching import iterate
from sentipipe.text.encoding import EncodedSplit
from sentipipe.text.subwords import SubwordIndex
from sentipipe.text.tokenizer import TokenizerSettings, tokenize
from sentipipe.text.vocab import UNK_ID, Vocab

FORMAT_VERSION = 3  # 3: the blend with the TF-IDF reference (a reader of 2 would serve the network alone)
MAX_TOKENS = 32_768  # padded tokens per forward pass when scoring
_SEEN_UNKNOWN = 10_000  # unseen words whose vectors are kept between calls


def quantize(model: ClassifierNetwork) -> nn.Module:
    """int8 dynamic quantization of the LSTM/GRU and linear layers (weights int8, activations quantized on the fly)."""
    with warnings.catch_warnings():  # PyTorch announces a successor API (torchao); this one is what 2.13 ships
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8)


SCORE_CHUNK = 8192  # texts a chunk when scoring many


class OpenVocabulary:
    """Pretrained vectors of words the training vocabulary lacks (the embed stage's): read, never trained."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray):
        self.words, self.vectors = list(words), np.asarray(vectors, dtype=np.float32)
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def vector(self, word: str) -> np.ndarray | None:
        i = self.index.get(word)
        return None if i is None else self.vectors[i]

    @classmethod
    def read(cls, path: str | Path) -> OpenVocabulary:
        with np.load(path) as bundle:
            return cls(bundle["words"].tolist(), bundle["vectors"])


@dataclasses.dataclass
class _Shared:
    """What a predictor and every way of serving it (same network, same vocabulary) work out once: the word
    vectors on the host, and unseen words' spelling-neighbour vectors."""

    matrix: np.ndarray | None = None
    index: SubwordIndex | None = None
    unseen: dict[str, np.ndarray | None] = dataclasses.field(default_factory=dict)


class Predictor:
    def __init__(
        self,
        model: ClassifierNetwork,
        vocab: Vocab,
        labels: list[str],
        tokenizer: TokenizerSettings,
        device: torch.device | str = "cpu",
        temperature: float = 1.0,
        quantized: bool = False,
        subwords: bool = False,
        open_vocabulary: OpenVocabulary | None = None,
        reference: LinearReference | None = None,
        blend: float = 0.0,
    ):
        """`open_vocabulary`: vectors for words the vocabulary lacks, read before any spelling neighbour.
        `reference`, `blend`: the TF-IDF reference the probabilities are mixed with, and its share (blend.mix)."""
        self.network = model.to(device).eval()  # fp32, as trained: what is saved
        if folded.applies(self.network, torch.device(device)):  # the CPU serving path (folded.py)
            self.model = folded.FoldedRecurrent(self.network, quantized)
        else:
            self.model = quantize(self.network) if quantized else self.network
        self.vocab, self.labels, self.tokenizer = vocab, list(labels), tokenizer
        self.device = torch.device(device)
        self.temperature, self.quantized, self.subwords = float(temperature), quantized, subwords
        self.open_vocabulary = open_vocabulary if open_vocabulary is not None and len(open_vocabulary) else None
        self.reference, self.blend = (reference, float(blend)) if reference is not None and blend > 0 else (None, 0.0)
        self._shared = _Shared()

    def serving(
        self,
        temperature: float,
        quantized: bool,
        subwords: bool,
        max_length: int | None = None,
        open_vocabulary: OpenVocabulary | None | bool = True,
    ) -> Predictor:
        """The same network and vocabulary, served another way (the weights are shared, not copied).

        `max_length`: where texts are cut (the same truncation rule); None keeps this predictor's.
        `open_vocabulary`: True keeps this predictor's, False drops it, or another one.
        """
        tokenizer = self.tokenizer if max_length is None else dataclasses.replace(self.tokenizer, max_length=max_length)
        opened = {True: self.open_vocabulary, False: None}.get(open_vocabulary, open_vocabulary)  # type: ignore[arg-type]
        served = Predictor(
            self.network,
            self.vocab,
            self.labels,
            tokenizer,
            self.device,
            temperature,
            quantized,
            subwords,
            opened,
            self.reference,
            self.blend,
        )
        served._shared = self._shared  # the same network and vocabulary
        return served

    def blended(self, reference: LinearReference | None, weight: float) -> Predictor:
        """The same predictor, its probabilities mixed with `reference`'s at `weight` (0 or None: the network's)."""
        served = self.serving(self.temperature, self.quantized, self.subwords)
        served.reference, served.blend = (
            (reference, float(weight)) if reference is not None and weight > 0 else (None, 0.0)
        )
        return served

    def combine(self, probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """The network's calibrated probabilities of `texts`, blended with the reference's when one is served."""
        if self.reference is None:
            return probs
        return mix(probs, self.reference.predict_proba(texts), self.blend)

    def save(self, path: str | Path) -> None:
        bundle = {
            "format_version": FORMAT_VERSION,
            "spec": self.network.spec.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "vocab": self.vocab.tokens,
            "labels": self.labels,
            "tokenizer": self.tokenizer.to_dict(),
            "serving": {"temperature": self.temperature, "quantized": self.quantized, "subwords": self.subwords},
        }
        if self.reference is not None:
            parts = self.reference.to_bundle()
            arrays = {k: torch.from_numpy(v) for k, v in parts.items() if isinstance(v, np.ndarray)}
            bundle["blend"] = {"weight": self.blend, "reference": {**parts, **arrays}}
        if self.open_vocabulary is not None:
            bundle["open_vocabulary"] = {
                "words": self.open_vocabulary.words,
                "vectors": torch.from_numpy(self.open_vocabulary.vectors),
            }
        # Serialise to memory first: torch.save names the archive after the file,
        # and the temp file's random name would make identical models differ.
        buffer = io.BytesIO()
        torch.save(bundle, buffer)
        write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> Predictor:
        # map_location lets a model trained on CUDA load on a CPU-only host.
        bundle = torch.load(path, map_location="cpu", weights_only=True)
        if bundle.get("format_version") not in (1, 2, FORMAT_VERSION):
            raise ValueError(f"{path}: unsupported model format {bundle.get('format_version')!r}")
        model = ClassifierNetwork(ClassifierSpec(**bundle["spec"]))
        model.load_state_dict(bundle["state_dict"])
        serving = bundle.get("serving", {})
        tokenizer = TokenizerSettings(**bundle["tokenizer"])
        opened = bundle.get("open_vocabulary")
        table = OpenVocabulary(opened["words"], opened["vectors"].numpy()) if opened else None
        blended = bundle.get("blend")
        reference = LinearReference.from_bundle(blended["reference"]) if blended else None
        weight = float(blended["weight"]) if blended else 0.0
        vocab = Vocab(bundle["vocab"])
        return cls(
            model,
            vocab,
            bundle["labels"],
            tokenizer,
            device,
            **serving,
            open_vocabulary=table,
            reference=reference,
            blend=weight,
        )

    # ---------------------------------------------------------------- text to ids

    def _unseen_vector(self, word: str) -> np.ndarray | None:
        """The open vocabulary's vector, else (with subwords on) its spelling neighbours', else None (<unk>)."""
        if self.open_vocabulary is not None:
            vector = self.open_vocabulary.vector(word)
            if vector is not None or not self.subwords:
                return vector
        spelling = self._shared
        if word not in spelling.unseen:
            if spelling.index is None:
                spelling.index = SubwordIndex(self.vocab.tokens)
            if len(spelling.unseen) >= _SEEN_UNKNOWN:
                spelling.unseen.clear()
            spelling.unseen[word] = spelling.index.vector(word, self._embeddings())
        return spelling.unseen[word]

    def _embeddings(self) -> np.ndarray:
        """The network's word vectors on the host, as an array (copied once from a GPU)."""
        if self._shared.matrix is None:
            self._shared.matrix = self.network.embedding.weight.detach().cpu().numpy()
        return self._shared.matrix

    def encode(self, token_lists: list[list[str]]) -> tuple[EncodedSplit, torch.Tensor | None]:
        """Ids for the tokens; with subwords or an open vocabulary, an unseen word gets a row of its own."""
        extra_rows: list[np.ndarray] = []
        extra_ids: dict[str, int] = {}
        seqs = []
        for tokens in token_lists:
            ids = self.vocab.encode(tokens) if tokens else np.array([UNK_ID], dtype=np.int32)
            if self.subwords or self.open_vocabulary is not None:
                for position in np.flatnonzero(ids == UNK_ID):
                    word = tokens[position] if tokens else ""
                    if word not in extra_ids:
                        vector = self._unseen_vector(word)
                        extra_ids[word] = len(self.vocab) + len(extra_rows) if vector is not None else UNK_ID
                        if vector is not None:
                            extra_rows.append(vector)
                    ids[position] = extra_ids[word]
            seqs.append(ids)
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.concatenate(seqs).astype(np.int32) if seqs else np.zeros(0, dtype=np.int32)
        extra = torch.from_numpy(np.stack(extra_rows)) if extra_rows else None
        return EncodedSplit(flat, offsets, np.zeros(len(seqs), dtype=np.int64)), extra

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        return list(tokenize(texts, self.tokenizer))

    # ---------------------------------------------------------------- scores

    @torch.no_grad()
    def logits_encoded(self, split: EncodedSplit, extra: torch.Tensor | None, batch_size: int = 256) -> np.ndarray:
        """Raw logits (n, classes) in the split's order, before the temperature."""
        out = np.zeros((len(split), len(self.labels)), dtype=np.float32)
        order = np.argsort(split.lengths, kind="stable")
        start = 0
        for ids, lengths, _ in iterate(split, batch_size, shuffle=False, max_tokens=MAX_TOKENS):
            logits = self.model(ids.to(self.device), lengths, extra)
            out[order[start : start + len(lengths)]] = logits.float().cpu().numpy()
            start += len(lengths)
        return out

    def logits(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Raw logits of texts, tokenized and scored SCORE_CHUNK texts at a time (the token lists of a
        hundred thousand reviews would take gigabytes)."""
        if len(texts) > SCORE_CHUNK:
            parts = [self.logits(texts[i : i + SCORE_CHUNK], batch_size) for i in range(0, len(texts), SCORE_CHUNK)]
            return np.concatenate(parts)
        return self.logits_encoded(*self.encode(self.tokens(texts)), batch_size=batch_size)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        scaled = torch.from_numpy(logits) / self.temperature
        return torch.softmax(scaled, dim=-1).numpy()

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Calibrated class probabilities (n, classes), blended with the reference when one is served: as served."""
        return self.combine(self.probabilities(self.logits(texts, batch_size)), texts)

    def predict_with_features(self, texts: Sequence[str], batch_size: int = 256) -> tuple[np.ndarray, dict]:
        """`predict_proba`, and what drift monitoring needs of each text, from the same pass over it.

        `tokens`: its token count (after truncation); `unseen`: how many of them the training vocabulary
        lacks; `vector`: its sentence vector, the mean of its word vectors as the network reads them
        (pretrained or spelling vectors for unseen words, <unk>'s row otherwise). Tokenizing again for the
        log would double the cost of a request: the tokens are the expensive part on a CPU.
        """
        token_lists = self.tokens(texts)
        split, extra = self.encode(token_lists)
        probs = self.combine(self.probabilities(self.logits_encoded(split, extra, batch_size)), texts)
        matrix = self._embeddings()
        # Summed in place by embedding_bag: gathering every token's row first (tokens x dim floats) cost as
        # much as a tenth of the forward pass. Rows past the table (unseen words' own vectors) weigh 0 there
        # and are added after.
        ids, known = split.ids.astype(np.int64), len(matrix)
        outside = ids >= known
        weights = torch.from_numpy((~outside).astype(matrix.dtype)) if outside.any() else None
        starts = split.offsets[:-1].astype(np.int64)
        sums = torch.nn.functional.embedding_bag(
            torch.from_numpy(np.where(outside, 0, ids)),
            torch.from_numpy(matrix),
            torch.from_numpy(starts),
            mode="sum",
            per_sample_weights=weights,
        ).numpy()
        if weights is not None:
            text_of = np.searchsorted(split.offsets, np.flatnonzero(outside), side="right") - 1
            np.add.at(sums, text_of, extra.numpy()[ids[outside] - known])
        lengths = np.diff(split.offsets)
        vector = sums / lengths[:, None]
        counts = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        unseen_ids = (ids == UNK_ID) | (ids >= len(self.vocab))
        unseen = np.minimum(np.add.reduceat(unseen_ids.astype(np.int64), split.offsets[:-1]), counts)
        return probs, {"tokens": counts, "unseen": unseen, "vector": vector.astype(np.float32)}
