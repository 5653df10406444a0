"""bench/public.py's workspaces: a bench killed mid-corpus goes on, with --reuse, where it stopped."""

from __future__ import annotations

import sys

import pytest

from sentipipe.io import read_json
from tests.helpers import REPO, tiny_corpus, tiny_raw

pytestmark = pytest.mark.integration


class Killed(Exception):
    pass


def test_a_bench_killed_mid_corpus_runs_only_the_stages_left_with_reuse(tmp_path, mlflow_store, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import public

    from sentipipe.tasks.classifier import embed as embed_stage
    from sentipipe.tasks.classifier import train as train_stage

    corpus = tmp_path / "corpus.csv"
    tiny_corpus().to_csv(corpus, index=False)
    raw = tiny_raw({"data": {"source": "file", "path": str(corpus)}})
    work = tmp_path / "workspace"

    scripts = []

    def killed(params, fresh=False):
        scripts.append(sys.modules["__main__"].__file__)  # what the checkpoints' code key reads
        raise Killed

    real_train = train_stage.train
    monkeypatch.setattr(train_stage, "train", killed)
    with pytest.raises(Killed):
        public.pipeline(raw, work)
    assert scripts == [str(REPO / "pipeline/classifier/train.py")], "the script `dvc repro` runs for the stage"
    assert sys.modules["__main__"].__file__ != scripts[0]  # put back
    assert all(
        (
            REPO
            / "pipeline"
            / (f"{n}.py" if n in ("ingest", "prepare") else f"classifier/{public.STAGE_SCRIPTS.get(n, n)}.py")
        ).is_file()
        for n in ("ingest", "prepare", "tokenize", "embed", "teacher", "train", "evaluate", "register")
    )
    before_train = ["ingest", "prepare", "tokenize", "embed", "teacher"]
    assert list(read_json(work / "stages_done.json")["seconds"]) == before_train
    monkeypatch.setattr(train_stage, "train", real_train)

    def ran_again(params):
        raise Killed("a finished stage ran again")

    monkeypatch.setattr(embed_stage, "embed", ran_again)
    capsys.readouterr()

    result = public.pipeline(raw, work, resume=True)  # what --reuse does with the kept workspace
    out = capsys.readouterr().out
    assert [line.split()[2] for line in out.splitlines() if "not run again" in line] == before_train
    assert list(result["seconds"]) == [*before_train, "train", "evaluate", "register"]
    assert result["resumed_stages"] == before_train
    assert result["registration"]["decision"] in {"champion", "challenger", "rejected"}
    assert result["probs"]["test"].shape == (len(result["frames"]["test"]), 2)

    with pytest.raises(Killed, match="ran again"):  # other params: every stage runs again
        public.pipeline(tiny_raw({"data": {"source": "file", "path": str(corpus), "seed": 2}}), work, resume=True)
