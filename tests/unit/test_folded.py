"""The CPU serving path (folded word table, own recurrence) against the network's own forward."""

import pytest
import torch

from sentipipe.tasks.classifier import folded
from sentipipe.tasks.classifier.network import ClassifierSpec, build_model
from sentipipe.tasks.classifier.predictor import quantize


def _model(cell: str, bidirectional: bool, pooling: str, lexical: str = "none"):
    torch.manual_seed(0)
    spec = ClassifierSpec(
        vocab_size=50,
        embed_dim=12,
        num_classes=3,
        cell=cell,
        hidden_size=16,
        num_layers=1,
        bidirectional=bidirectional,
        dropout=0.0,
        pooling=pooling,
        lexical=lexical,
    )
    model = build_model(spec).eval()
    if lexical != "none":  # trained weights, not the zeros they start from
        for name, weight in model.named_parameters():
            if name.startswith("lexical"):
                weight.data.normal_()
    return model


def _batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 1, 4, 7, 2, 5])
    ids = torch.randint(2, 50, (len(lengths), 7), generator=g)
    ids[torch.arange(7)[None, :] >= lengths[:, None]] = 0  # padding
    return ids, lengths


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
def test_same_logits_as_the_network(cell, bidirectional, pooling):
    model = _model(cell, bidirectional, pooling, lexical="bigrams")
    ids, lengths = _batch()
    fast = folded.FoldedRecurrent(model)
    with torch.no_grad():
        expected = model(ids, lengths)
    torch.testing.assert_close(fast(ids, lengths), expected, rtol=1e-4, atol=1e-5)
    # a second call reads the cached word rows and must agree too; so must a wider padding
    wider = torch.cat([ids, torch.zeros(len(ids), 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(fast(wider, lengths), expected, rtol=1e-4, atol=1e-5)


def test_words_beyond_the_vocabulary_take_their_rows_from_extra():
    model = _model("lstm", True, "max")
    ids, lengths = _batch()
    ids[0, 2], ids[3, 0] = 50, 51  # two unseen words, vectors in `extra`
    extra = torch.randn(2, 12)
    with torch.no_grad():
        expected = model(ids, lengths, extra)
    torch.testing.assert_close(folded.FoldedRecurrent(model)(ids, lengths, extra), expected, rtol=1e-4, atol=1e-5)


def test_int8_recurrence_stays_close_to_fp32_and_to_torchs_int8():
    model = _model("lstm", True, "max")
    ids, lengths = _batch()
    with torch.no_grad():
        exact = model(ids, lengths)
        theirs = quantize(model)(ids, lengths)
    ours = folded.FoldedRecurrent(model, quantized=True)(ids, lengths)
    assert not torch.equal(ours, exact)  # the recurrent weights really are int8
    assert (ours - exact).abs().max() <= max(0.05, 1.5 * float((theirs - exact).abs().max()))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_an_int8_texts_logits_do_not_depend_on_the_texts_batched_with_it(cell):
    """Served traffic is batched as it arrives and evaluate batches by length: with a state scale taken from
    the whole batch, the same text would get other probabilities beside other texts."""
    model = _model(cell, True, "max")
    ids, lengths = _batch()
    served = folded.FoldedRecurrent(model, quantized=True)
    together = served(ids, lengths)
    alone = torch.cat([served(ids[i : i + 1, : lengths[i]], lengths[i : i + 1]) for i in range(len(lengths))])
    torch.testing.assert_close(alone, together, rtol=0, atol=1e-6)
    with torch.no_grad():  # what it fixes: torch's dynamic int8 takes the batch's range
        theirs = quantize(model)
        together, alone = (
            theirs(ids, lengths),
            torch.cat([theirs(ids[i : i + 1], lengths[i : i + 1]) for i in range(6)]),
        )
    assert (alone - together).abs().max() > 1e-6


def test_applies_only_where_it_is_exact():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert folded.applies(_model("lstm", True, "max"), cpu)
    assert not folded.applies(_model("lstm", True, "max"), cuda)
    assert not folded.applies(_model("lstm", True, "attention"), cpu)
    spec = ClassifierSpec(vocab_size=5, embed_dim=4, num_classes=2, num_layers=2)
    assert not folded.applies(build_model(spec), cpu)


def test_word_rows_are_computed_once_and_only_for_words_read():
    model = _model("gru", True, "max")
    fast = folded.FoldedRecurrent(model)
    ids, lengths = _batch()
    fast(ids, lengths)
    seen = set(ids.unique().tolist())
    assert set(torch.nonzero(fast._ready).flatten().tolist()) == seen
    model.embedding.weight.data.zero_()  # a second call must not recompute the rows it has
    with torch.no_grad():
        assert not torch.allclose(fast(ids, lengths), model(ids, lengths))


def test_concurrent_calls_fill_the_shared_word_table_safely():
    """The server scores explained requests in threads beside the batcher: one predictor, many callers."""
    import concurrent.futures

    model = _model("lstm", True, "max", lexical="words")
    batches = [_batch(seed) for seed in range(16)]
    with torch.no_grad():
        expected = [model(ids, lengths) for ids, lengths in batches]
    fast = folded.FoldedRecurrent(model)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda batch: fast(*batch), batches))
    for ours, theirs in zip(got, expected, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
