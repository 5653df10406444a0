"""Recurrent networks: RNN (tanh/ReLU), LSTM, GRU; a classifier (uni- or bidirectional) and a language model."""

from sentipipe.models.lm import LMSpec, RNNLanguageModel
from sentipipe.models.rnn import ModelSpec, RNNClassifier, build_model, recurrent_layer

__all__ = ["LMSpec", "ModelSpec", "RNNClassifier", "RNNLanguageModel", "build_model", "recurrent_layer"]
