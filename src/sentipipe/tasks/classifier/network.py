"""The classifier's network: embeddings, a recurrent encoder, pooling, a linear head.

The encoder reads each text only up to its length. On CUDA it runs over packed sequences (cuDNN). On a
CPU it runs each direction over the padded batch instead, the backward direction on every text reversed
within its length, so that padding always comes after a text's last token and never reaches its states:
the same outputs at every valid step (unit tests compare both), but torch's CPU kernel for packed
sequences slices its input once per time step and pays for a zero-filled gradient of the whole input on
every slice, a cost that grows with the square of the length. On a 2-core CPU a training step on IMDB's
reviews (batches of 8 x 512 tokens) took about 8x longer packed (docs/evidence.md#cpu-recurrence).

With `lexical` on, a linear path over the text's words (and hashed word pairs) adds to the
head's logits, trained jointly: what a bag-of-words model sees directly, the recurrent encoder
then need not learn from a few hundred long documents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import _VF, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sentipipe.models.cells import recurrent_layer

_KERNELS = {"lstm": _VF.lstm, "gru": _VF.gru, "rnn_tanh": _VF.rnn_tanh, "rnn_relu": _VF.rnn_relu}


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row of x (batch, time, ...) reversed within its length; the steps past it stay where they are."""
    steps = torch.arange(x.size(1), device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


def run_padded(rnn: nn.RNNBase, cell: str, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, list]:
    """The recurrent layer over a padded batch, each text read only up to its length (see the module's note).

    Returns the outputs (batch, time, directions x hidden), valid up to each length, and the states after
    each text's last token, last layer, one (batch, hidden) per direction (forward, then backward).
    """
    kernel = _KERNELS[cell]
    directions = 2 if rnn.bidirectional else 1
    batch, hidden = x.size(0), rnn.hidden_size
    last = (lengths.to(x.device) - 1).view(batch, 1, 1).expand(batch, 1, hidden)
    finals: list[torch.Tensor] = []
    for layer in range(rnn.num_layers):
        outputs, finals = [], []
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            weights = [getattr(rnn, f"{name}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            h0 = x.new_zeros(1, batch, hidden)
            inputs = reverse_within(x, lengths) if direction else x
            state = (h0, h0) if cell == "lstm" else h0
            out = kernel(inputs, state, weights, True, 1, 0.0, rnn.training, False, True)[0]
            finals.append(out.gather(1, last).squeeze(1))
            outputs.append(reverse_within(out, lengths) if direction else out)
        x = torch.cat(outputs, dim=-1) if directions == 2 else outputs[0]
        if layer < rnn.num_layers - 1 and rnn.dropout > 0:
            x = nn.functional.dropout(x, rnn.dropout, rnn.training)
    return x, finals


def run_packed(rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, list]:
    """The same as run_padded, through torch's packed sequences (outputs zero past each length)."""
    out, hidden = rnn(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
    h = hidden[0] if isinstance(hidden, tuple) else hidden
    padded, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return padded, list(h[-(2 if rnn.bidirectional else 1) :])


@dataclass(frozen=True)
class ClassifierSpec:
    """Everything needed to rebuild the network from a checkpoint."""

    vocab_size: int
    embed_dim: int
    num_classes: int
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    embed_dropout: float = 0.3
    pooling: str = "max"
    padding_idx: int = 0
    lexical: str = "none"  # none | words | bigrams: a bag-of-words path added to the logits
    lexical_buckets: int = 262_144  # hashed word pairs (bigrams)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, train, vocab_size: int, embed_dim: int, num_classes: int) -> ClassifierSpec:
        """The network that `classifier.train` params (`train`: TrainParams or alike) describe."""
        return cls(
            vocab_size=int(vocab_size),
            embed_dim=int(embed_dim),
            num_classes=int(num_classes),
            cell=train.cell,
            hidden_size=train.hidden_size,
            num_layers=train.num_layers,
            bidirectional=train.bidirectional,
            dropout=train.dropout,
            embed_dropout=train.embed_dropout,
            pooling=train.pooling,
            lexical=train.lexical,
        )


class ClassifierNetwork(nn.Module):
    def __init__(self, spec: ClassifierSpec):
        super().__init__()
        self.spec = spec
        self.embedding = nn.Embedding(spec.vocab_size, spec.embed_dim, padding_idx=spec.padding_idx)
        self.embed_dropout = nn.Dropout(spec.embed_dropout)
        self.rnn = recurrent_layer(
            spec.cell, spec.embed_dim, spec.hidden_size, spec.num_layers, spec.bidirectional, spec.dropout
        )
        out_dim = spec.hidden_size * (2 if spec.bidirectional else 1)
        if spec.pooling == "attention":
            # additive attention over time steps: score_t = v . tanh(W h_t)
            self.attention = nn.Sequential(nn.Linear(out_dim, out_dim), nn.Tanh(), nn.Linear(out_dim, 1, bias=False))
        self.head = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(out_dim, spec.num_classes))
        if spec.lexical != "none":
            self.lexical_words = nn.Embedding(spec.vocab_size, spec.num_classes)
            nn.init.zeros_(self.lexical_words.weight)
        if spec.lexical == "bigrams":
            self.lexical_pairs = nn.Embedding(spec.lexical_buckets, spec.num_classes)
            nn.init.zeros_(self.lexical_pairs.weight)

    def _lexical(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits from the words (and word pairs) present, their sum scaled by 1/sqrt(how many there are)."""
        valid = torch.arange(ids.size(1), device=ids.device)[None, :] < lengths.to(ids.device)[:, None]
        words = torch.where(ids >= self.spec.vocab_size, torch.ones_like(ids), ids)  # unseen words: <unk>
        total = (self.lexical_words(words) * valid.unsqueeze(-1)).sum(1)
        count = valid.sum(1)
        if self.spec.lexical == "bigrams" and ids.size(1) > 1:
            pairs = (words[:, :-1] * 1_000_003 + words[:, 1:]) % self.spec.lexical_buckets
            both = valid[:, 1:]
            total = total + (self.lexical_pairs(pairs) * both.unsqueeze(-1)).sum(1)
            count = count + both.sum(1)
        return total / count.clamp(min=1).unsqueeze(-1).to(total.dtype).sqrt()

    def recurrence(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, list]:
        """(outputs, final states) of the recurrent layer: padded on a CPU, packed on CUDA (the module's note)."""
        if x.device.type == "cpu" and isinstance(self.rnn, nn.RNNBase):
            return run_padded(self.rnn, self.spec.cell, x, lengths)
        return run_packed(self.rnn, x, lengths)  # CUDA, or a module quantized by torch.ao

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """ids: (batch, time) padded; lengths: CPU int64 (batch,). Returns logits.

        `extra` (rows, embed_dim): vectors for words the vocabulary lacks, which `ids` address
        from vocab_size on (the predictor builds them from the words' character n-grams).
        """
        if extra is None:
            x = self.embedding(ids)
        else:
            x = nn.functional.embedding(ids, torch.cat([self.embedding.weight, extra.to(self.embedding.weight)]))
        x = self.embed_dropout(x)
        padded, finals = self.recurrence(x, lengths)
        if self.spec.pooling == "last":
            pooled = torch.cat(finals, dim=-1)
        else:
            steps = torch.arange(padded.size(1), device=padded.device)
            mask = (steps[None, :] < lengths.to(padded.device)[:, None]).unsqueeze(-1)
            if self.spec.pooling == "max":
                pooled = padded.masked_fill(~mask, float("-inf")).amax(dim=1)
            elif self.spec.pooling == "attention":
                scores = self.attention(padded).masked_fill(~mask, float("-inf"))
                pooled = (torch.softmax(scores, dim=1) * padded).sum(1)
            else:
                pooled = (padded * mask).sum(1) / lengths.to(padded.device).clamp(min=1)[:, None]
        logits = self.head(pooled)
        if self.spec.lexical != "none":
            logits = logits + self._lexical(ids, lengths).to(logits.dtype)
        return logits


def build_model(
    spec: ClassifierSpec, embeddings: torch.Tensor | None = None, freeze: bool = False
) -> ClassifierNetwork:
    model = ClassifierNetwork(spec)
    if embeddings is not None:
        if tuple(embeddings.shape) != (spec.vocab_size, spec.embed_dim):
            raise ValueError(
                f"embedding matrix {tuple(embeddings.shape)} does not match "
                f"vocabulary x dim {(spec.vocab_size, spec.embed_dim)}"
            )
        model.embedding.weight.data.copy_(embeddings)
    model.embedding.weight.requires_grad_(not freeze)
    return model
