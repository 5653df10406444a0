from sentipipe.text.tokenizer import NUMBER, URL, USER, TokenizerSettings, tokenize


def test_special_tokens_replace_urls_numbers_and_mentions():
    settings = TokenizerSettings(special_tokens=True)
    tokens = next(tokenize(["@bob see https://example.com/x for 42 Reasons"], settings))
    assert tokens == [USER, "see", URL, "for", NUMBER, "reasons"]
    plain = next(tokenize(["@bob 42"], TokenizerSettings()))
    assert plain == ["@bob", "42"]


def test_worker_processes_give_the_same_tokens():
    texts = [f"Text number {i}, isn't it?" for i in range(50)]
    settings = TokenizerSettings()
    assert list(tokenize(texts, settings, batch_size=10, n_process=2)) == list(tokenize(texts, settings))


def test_fast_lowercase_path_gives_the_offsets_paths_tokens():
    from sentipipe.text.tokenizer import tokenize_with_offsets

    texts = [
        "Not BAD at all!  The ÉLAN of it...",
        "   ",
        "",
        "İstanbul's café\tserved CRÈME brûlée\n\nat 9:30 -- www.example.com @Someone",
        "ÆON ΣΊΣΥΦΟΣ straße " * 30,
    ]
    for truncation in ("head", "tail", "head+tail"):
        settings = TokenizerSettings(max_length=16, truncation=truncation)
        slow = [[t for t, _, _ in tokens] for tokens in tokenize_with_offsets(texts, settings)]
        assert list(tokenize(texts, settings)) == slow
        assert slow[0][:3] == ["not", "bad", "at"]
