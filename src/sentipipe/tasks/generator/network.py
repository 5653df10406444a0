"""The generator's network: many-to-many, one next-unit distribution per input step."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sentipipe.models.cells import recurrent_layer


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild the network from a checkpoint."""

    vocab_size: int
    embed_dim: int = 64
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.2
    embed_dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class GeneratorNetwork(nn.Module):
    """Embedding -> unidirectional RNN/LSTM/GRU stack -> a linear decoder over the vocabulary."""

    def __init__(self, spec: GeneratorSpec):
        super().__init__()
        self.spec = spec
        self.embedding = nn.Embedding(spec.vocab_size, spec.embed_dim)
        self.embed_dropout = nn.Dropout(spec.embed_dropout)
        self.rnn = recurrent_layer(spec.cell, spec.embed_dim, spec.hidden_size, spec.num_layers, False, spec.dropout)
        self.output_dropout = nn.Dropout(spec.dropout)
        self.decoder = nn.Linear(spec.hidden_size, spec.vocab_size)

    def forward(self, ids: torch.Tensor, hidden=None):
        """ids: (batch, time). Returns logits (batch, time, vocab) and the final hidden state."""
        out, hidden = self.rnn(self.embed_dropout(self.embedding(ids)), hidden)
        return self.decoder(self.output_dropout(out)), hidden

    def prime(self, ids: torch.Tensor, lengths: torch.Tensor):
        """Prompts of different lengths at once (padded ids, CPU lengths): each one's next-unit logits and state."""
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        out, hidden = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True)
        last = out[torch.arange(len(lengths)), lengths - 1]
        return self.decoder(last), hidden
