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
