"""The recurrent cells every task shares: vanilla RNN (tanh or ReLU), LSTM or GRU, batch-first."""

from __future__ import annotations

from torch import nn

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


def recurrent_layer(
    cell: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float
) -> nn.RNNBase:
    kwargs = dict(
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=True,
        dropout=dropout if num_layers > 1 else 0.0,
    )
    if cell == "lstm":
        return nn.LSTM(**kwargs)
    if cell == "gru":
        return nn.GRU(**kwargs)
    if cell in ("rnn_tanh", "rnn_relu"):
        return nn.RNN(nonlinearity=cell.removeprefix("rnn_"), **kwargs)
    raise ValueError(f"unknown cell {cell!r}; one of {CELLS}")
