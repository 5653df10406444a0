import numpy as np
import pytest
import torch

from sentipipe.tasks.classifier.network import ClassifierSpec, build_model


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention"])
def test_every_cell_and_pooling_ignores_padding(cell, bidirectional, pooling):
    torch.manual_seed(0)
    spec = ClassifierSpec(
        vocab_size=20,
        embed_dim=8,
        num_classes=3,
        cell=cell,
        hidden_size=6,
        num_layers=2,
        bidirectional=bidirectional,
        dropout=0.0,
        pooling=pooling,
    )
    model = build_model(spec).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0]])
    lengths = torch.tensor([3, 2])
    logits = model(ids, lengths)
    assert logits.shape == (2, 3)
    longer = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(longer, lengths), logits)
    alone = model(ids[1:, :2], lengths[1:])
    torch.testing.assert_close(alone, logits[1:], rtol=1e-5, atol=1e-6)


def test_pretrained_matrix_is_copied_and_can_be_frozen():
    spec = ClassifierSpec(vocab_size=5, embed_dim=4, num_classes=2)
    matrix = torch.arange(20, dtype=torch.float32).reshape(5, 4)
    model = build_model(spec, matrix, freeze=True)
    assert torch.equal(model.embedding.weight, matrix)
    assert not model.embedding.weight.requires_grad
    with pytest.raises(ValueError, match="does not match"):
        build_model(spec, torch.zeros(6, 4))


@pytest.mark.parametrize("lexical", ["words", "bigrams"])
def test_the_lexical_path_starts_silent_and_adds_what_the_words_say(lexical):
    torch.manual_seed(0)
    plain = build_model(ClassifierSpec(vocab_size=20, embed_dim=8, num_classes=2, hidden_size=6, dropout=0.0)).eval()
    torch.manual_seed(0)
    spec = ClassifierSpec(vocab_size=20, embed_dim=8, num_classes=2, hidden_size=6, dropout=0.0, lexical=lexical)
    model = build_model(spec).eval()
    ids, lengths = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]]), torch.tensor([3, 2])
    torch.testing.assert_close(model(ids, lengths), plain(ids, lengths), msg="zero-initialised: silent at first")
    with torch.no_grad():
        model.lexical_words.weight[5] = torch.tensor([-2.0, 2.0])
    moved = model(ids, lengths) - plain(ids, lengths)
    features = 3 + 2 if lexical == "bigrams" else 3  # words, and word pairs, of the first text
    torch.testing.assert_close(moved[0], torch.tensor([-2.0, 2.0]) / features**0.5)
    torch.testing.assert_close(moved[1], torch.zeros(2), msg="a text without the word is untouched")
    longer = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(longer, lengths), model(ids, lengths), msg="padding adds nothing")
    with torch.no_grad():
        model.lexical_words.weight[1] = torch.tensor([1.0, 3.0])  # <unk>
    one = torch.tensor([2])  # a word past the vocabulary (its vector built from subwords) counts as <unk> here
    torch.testing.assert_close(
        model._lexical(torch.tensor([[25, 6]]), one), model._lexical(torch.tensor([[1, 6]]), one)
    )


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_the_cpu_path_over_padded_batches_matches_torchs_packed_sequences(cell, bidirectional, layers):
    """run_padded (the CPU training path) gives what torch's own packed recurrence gives, outputs and gradients."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from sentipipe.models.cells import recurrent_layer
    from sentipipe.tasks.classifier.network import run_padded

    torch.manual_seed(0)
    rnn = recurrent_layer(cell, 5, 7, layers, bidirectional, 0.0).train()
    lengths = torch.tensor([9, 4, 1, 7, 9, 2])
    x = torch.randn(6, 11, 5)  # padded past the longest text too
    valid = (torch.arange(11)[None, :] < lengths[:, None]).unsqueeze(-1)
    weights = torch.randn(6, 11, 7 * (2 if bidirectional else 1))

    packed, hidden = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=11)
    h = hidden[0] if cell == "lstm" else hidden
    expected_finals = list(h[-(2 if bidirectional else 1) :])
    (expected * weights).sum().backward()
    expected_grads = [p.grad.clone() for p in rnn.parameters()]
    rnn.zero_grad()

    out, finals = run_padded(rnn, cell, x, lengths)
    torch.testing.assert_close(out * valid, expected, rtol=1e-5, atol=1e-6)
    assert len(finals) == len(expected_finals)
    for got, want in zip(finals, expected_finals):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    (out * valid * weights).sum().backward()
    for got, want in zip([p.grad for p in rnn.parameters()], expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_the_spec_of_train_params_takes_every_architecture_field_from_them():
    from dataclasses import fields

    from sentipipe.tasks.classifier.params import TrainParams

    # values unlike both the params' and the spec's defaults, so a field left to its default shows
    train = TrainParams(
        cell="gru",
        hidden_size=7,
        num_layers=3,
        bidirectional=False,
        dropout=0.11,
        embed_dropout=0.22,
        pooling="attention",
        lexical="words",
    )
    spec = ClassifierSpec.of(train, vocab_size=50, embed_dim=np.int64(12), num_classes=3)
    sizes = {"vocab_size": 50, "embed_dim": 12, "num_classes": 3}
    built_in = {"padding_idx", "lexical_buckets"}
    for field in fields(ClassifierSpec):
        if field.name in sizes:
            assert getattr(spec, field.name) == sizes[field.name] and type(getattr(spec, field.name)) is int
        elif field.name not in built_in:
            assert getattr(spec, field.name) == getattr(train, field.name), field.name
    assert build_model(spec).rnn.hidden_size == 7
