from pathlib import Path

from sentipipe.config import TrackingParams
from sentipipe.tracking import flatten, tracking_uri, workspace_root


def test_a_dvc_experiment_copy_resolves_to_the_real_workspace(tmp_path):
    copy = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    copy.mkdir(parents=True)
    assert workspace_root(copy) == (tmp_path / "repo").resolve()
    assert workspace_root(tmp_path / "repo") == (tmp_path / "repo").resolve()


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(TrackingParams(), Path("/r")) == "sqlite:////r/mlflow.db"
    assert tracking_uri(TrackingParams(uri="http://tracking:5000"), Path("/r")) == "http://tracking:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://db/mlflow")
    assert tracking_uri(TrackingParams(uri="http://tracking:5000"), Path("/r")) == "postgresql://db/mlflow"


def test_nested_params_are_flattened_with_dotted_keys():
    flat = flatten({"train": {"cell": "lstm"}, "data": {"corpora": ["movie"], "label_map": {"1": "pos"}}})
    assert flat == {"train.cell": "lstm", "data.corpora": "['movie']", "data.label_map": "{'1': 'pos'}"}


def test_the_classifier_run_logs_the_corpus_and_its_own_sections():
    from sentipipe.tasks.classifier.params import parse
    from sentipipe.tasks.classifier.train import logged_params

    flat = logged_params(parse({}))
    assert flat["train.cell"] == "lstm" and flat["data.corpora"] == "['movie']"
    assert not any(k.startswith("generator") for k in flat)


def test_dvc_lock_hashes_of_the_inputs_are_found_by_file_or_folder(tmp_path):
    from sentipipe.tracking import dvc_lock_hashes

    lock = tmp_path / "dvc.lock"
    lock.write_text(
        "schema: '2.0'\nstages:\n  tokenize:\n    outs:\n    - path: data/tokens\n      md5: abc.dir\n"
        "  embed:\n    outs:\n    - path: data/embeddings/matrix.npy\n      md5: def\n"
    )
    found = dvc_lock_hashes(["data/tokens/train/ids.npy", "data/embeddings/matrix.npy", "other.txt"], [lock])
    assert found == {"dvc.lock.data/tokens": "abc.dir", "dvc.lock.data/embeddings/matrix.npy": "def"}
    assert dvc_lock_hashes(["x"], [tmp_path / "missing.lock"]) == {}
