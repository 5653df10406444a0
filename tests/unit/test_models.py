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
