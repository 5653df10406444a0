"""Recurrent networks: RNN (tanh/ReLU), LSTM, GRU, uni- or bidirectional."""

from sentipipe.models.rnn import ModelSpec, RNNClassifier, build_model

__all__ = ["ModelSpec", "RNNClassifier", "build_model"]
