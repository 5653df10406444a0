"""Training behaviours on a tiny corpus: the step budget, resume, early stopping, torchrun, every cell."""

from __future__ import annotations

import csv

import pytest
import torch
from mlflow import MlflowClient

from sentipipe.io import read_json
from sentipipe.tasks.classifier import paths
from sentipipe.tasks.classifier.train import train
from sentipipe.training import checkpoints
from tests.helpers import run_tiny_pipeline, tiny_raw, torchrun, write_params

pytestmark = pytest.mark.integration

DATA_STAGES = ("prepare", "tokenize", "embed", "teacher")  # what train reads


class Killed(Exception):
    pass


def history_without_time(path=paths.HISTORY) -> list[dict]:
    with open(path) as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


@pytest.mark.parametrize("dies", ["after_checkpoint", "while_checkpointing"])
def test_a_run_killed_mid_epoch_resumes_and_ends_exactly_like_an_uninterrupted_one(
    tiny_workspace, mlflow_store, monkeypatch, dies
):
    # evaluations (and checkpoints) every 5 steps: most fall inside an epoch of 8 batches
    overrides = {"classifier": {"train": {"max_steps": 40, "eval_every": 5, "embed_dropout": 0.2}}}
    params = run_tiny_pipeline(overrides, only=DATA_STAGES)
    train(params)
    straight = read_json(paths.TRAIN_REPORT)
    straight_history = history_without_time()
    straight_weights = torch.load(paths.MODEL, weights_only=True)["state_dict"]

    save = checkpoints.save

    def save_then_die(path, state):
        if dies == "while_checkpointing" and state.get("step") == 20 and not state["complete"]:
            raise Killed  # dies writing step 20's checkpoint: the run resumes from step 15 and redoes step 20
        save(path, state)
        if state.get("step") == 15 and not state["complete"] and dies == "after_checkpoint":
            raise Killed  # the process dies right after the checkpoint at step 15, mid-epoch

    monkeypatch.setattr(checkpoints, "save", save_then_die)
    with pytest.raises(Killed):
        train(params, fresh=True)
    monkeypatch.setattr(checkpoints, "save", save)
    state = torch.load(paths.CHECKPOINT, weights_only=False)
    assert state["step"] == 15 and 0 < state["position"] < 8, "the checkpoint sits inside an epoch"

    train(params)  # what `dvc repro` or `sentipipe train --resume` does next
    resumed = read_json(paths.TRAIN_REPORT)
    for key in ("best_step", "best_val_accuracy", "best_val_loss", "steps_run", "stop_reason"):
        assert resumed[key] == straight[key], key
    assert history_without_time() == straight_history
    weights = torch.load(paths.MODEL, weights_only=True)["state_dict"]
    assert all(torch.equal(weights[k], straight_weights[k]) for k in straight_weights)
    steps = MlflowClient(mlflow_store).get_metric_history(resumed["run_id"], "curve_val_loss")
    assert sorted(m.step for m in steps) == list(range(5, 41, 5)), "the resumed run logs every evaluation once"


def test_a_finished_checkpoint_is_not_resumed(tiny_workspace):
    params = run_tiny_pipeline({"classifier": {"train": {"max_steps": 16}}}, only=(*DATA_STAGES, "train"))
    first = read_json(paths.TRAIN_REPORT)
    train(params)
    second = read_json(paths.TRAIN_REPORT)
    assert second["run_id"] != first["run_id"] and second["steps_run"] == 16


def test_patience_counts_evaluations_and_the_best_evaluation_is_kept(tiny_workspace, mlflow_store):
    budget = {"max_steps": 2000, "eval_every": 8, "patience": 2, "monitor": "val_accuracy", "schedule": "plateau"}
    run_tiny_pipeline({"classifier": {"train": budget}}, only=(*DATA_STAGES, "train", "evaluate"))
    report = read_json(paths.TRAIN_REPORT)
    assert report["stop_reason"] == "patience" and report["steps_run"] < 2000
    assert report["best_step"] == report["steps_run"] - 2 * 8, "two evaluations without improvement after the best"
    assert report["budget"] == {
        "max_epochs": None,
        "max_steps": 2000,
        "eval_every": 8,
        "patience": 2,
        "max_minutes": 120.0,
        "eval_every_used": 8,
        "steps_per_epoch": 8,
        "budget_steps": 2000,
    }
    run = MlflowClient(mlflow_store).get_run(report["run_id"])
    assert run.data.tags["train.stop_reason"] == "patience"
    assert run.data.metrics["val_accuracy"] == pytest.approx(report["best_val_accuracy"])
    assert "grad_norm.rnn.weight_hh_l0" in run.data.metrics and run.data.metrics["curve_grad_norm"] > 0
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["train", "val"]


def test_the_step_budget_not_the_corpus_size_decides_how_long_training_runs(tiny_workspace):
    run_tiny_pipeline({"classifier": {"train": {"max_steps": 30, "eval_every": 7}}}, only=(*DATA_STAGES, "train"))
    report = read_json(paths.TRAIN_REPORT)
    assert report["steps_run"] == 30 and report["stop_reason"] == "max_steps"
    assert [int(r["step"]) for r in history_without_time()] == [7, 14, 21, 28, 30], "and a last evaluation"
    assert 3 < report["epochs_run"] < 4, "30 steps of 8 batches an epoch"


def test_a_wall_time_cap_is_a_recorded_safety_net(tiny_workspace):
    run_tiny_pipeline(
        {"classifier": {"train": {"max_steps": 5000, "eval_every": 8, "max_minutes": 0.0001}}},
        only=(*DATA_STAGES, "train"),
    )
    report = read_json(paths.TRAIN_REPORT)
    assert report["stop_reason"] == "max_minutes" and report["steps_run"] == 8


@pytest.mark.parametrize(
    "cell, bidirectional, pooling",
    [("rnn_tanh", False, "last"), ("rnn_relu", True, "mean"), ("gru", True, "attention"), ("lstm", False, "max")],
)
def test_every_cell_learns_the_tiny_task(tiny_workspace, cell, bidirectional, pooling):
    train_params = {"cell": cell, "bidirectional": bidirectional, "pooling": pooling, "num_layers": 2}
    overrides = {"classifier": {"train": {**train_params, "class_weights": "balanced"}}}
    run_tiny_pipeline(overrides, only=(*DATA_STAGES, "train", "evaluate"))
    assert read_json(paths.METRICS)["val"]["accuracy"] >= 0.85


def test_torchrun_trains_with_two_gloo_processes_and_rank_0_writes(tiny_workspace, mlflow_store):
    run_tiny_pipeline(only=DATA_STAGES)
    # each rank takes half the batches: twice the steps for as many passes
    write_params(tiny_workspace, tiny_raw({"classifier": {"train": {"max_steps": 160, "eval_every": 16}}}))
    proc = torchrun("pipeline/classifier/train.py", tiny_workspace)
    report = read_json(paths.TRAIN_REPORT)
    assert report["best_val_accuracy"] >= 0.85
    runs = MlflowClient(mlflow_store).search_runs([report["experiment_id"]])
    assert len(runs) == 1, "only rank 0 opens a run"
    assert runs[0].data.tags["distributed.world_size"] == "2"
    digests = report["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1], "every rank ends with the same weights (all-reduced)"
    assert runs[0].data.tags["distributed.weights_identical"] == "true"
    assert proc.stdout.count("step 16 (epoch") == 1, "only rank 0 reports"


def test_params_reach_the_model(tiny_workspace):
    run_tiny_pipeline(
        {"classifier": {"train": {"cell": "gru", "hidden_size": 12, "bidirectional": False}}},
        only=(*DATA_STAGES, "train"),
    )
    spec = torch.load(paths.MODEL, weights_only=True)["spec"]
    assert (spec["cell"], spec["hidden_size"], spec["bidirectional"]) == ("gru", 12, False)


def test_two_torchrun_nodes_meet_by_c10d_rendezvous_and_train_as_one(tiny_workspace, mlflow_store):
    """Two launchers, as two hosts would run them (here both on localhost), one rank each: one job."""
    import subprocess
    import sys

    from tests.helpers import REPO, venv_env
    from tests.servers import free_port

    run_tiny_pipeline(only=DATA_STAGES)
    write_params(tiny_workspace, tiny_raw({"classifier": {"train": {"max_steps": 40, "eval_every": 20}}}))
    endpoint = f"127.0.0.1:{free_port()}"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1"),
        *("--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}", "--rdzv_id=sentipipe-test"),
        str(REPO / "pipeline/classifier/train.py"),
    ]
    env = venv_env(OMP_NUM_THREADS="1")
    nodes = [
        subprocess.Popen(
            command, cwd=tiny_workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert all(node.returncode == 0 for node in nodes), "\n".join(o[-2000:] for o in outputs)
    report = read_json(paths.TRAIN_REPORT)
    runs = MlflowClient(mlflow_store).search_runs([report["experiment_id"]])
    assert len(runs) == 1 and runs[0].data.tags["distributed.world_size"] == "2"
    digests = report["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert sum("step 20 (epoch" in o for o in outputs) == 1, "one node holds rank 0, which alone reports"


def test_a_search_trains_seeded_trials_as_child_runs_and_keeps_the_best(tiny_workspace, mlflow_store):
    """Trial 0 is the params as written; the later ones draw from the space; the best trial's weights are the model."""
    search = {"trials": 3, "space": {"hidden_size": [8, 24], "dropout": [0.0, 0.4]}, "prune_after": 100}
    params = run_tiny_pipeline({"classifier": {"search": search}}, only=(*DATA_STAGES, "train"))
    report = read_json(paths.TRAIN_REPORT)["search"]
    trials = report["trials"]
    assert len(trials) == 3 and trials[0]["hidden_size"] == 16 and trials[0]["dropout"] == 0.0
    assert len({(t["hidden_size"], t["dropout"]) for t in trials}) == 3, "no combination is trained twice"
    best = max(trials, key=lambda t: t["score"])
    assert report["chosen"] == {"hidden_size": best["hidden_size"], "dropout": best["dropout"]}
    weights = torch.load(paths.MODEL, weights_only=False)
    assert weights["spec"]["hidden_size"] == best["hidden_size"]
    client = MlflowClient()
    parent = read_json(paths.TRAIN_REPORT)["run_id"]
    children = client.search_runs([client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(c.info.run_id for c in children) == sorted(t["run_id"] for t in trials)
    assert client.get_run(parent).data.params["search.chosen.hidden_size"] == str(best["hidden_size"])
    # the same seed gives the same search
    train(params, fresh=True)
    assert read_json(paths.TRAIN_REPORT)["search"]["trials"][1]["score"] == trials[1]["score"]


def test_a_search_over_rule_clauses_trains_each_trial_on_its_own_count(tiny_workspace, mlflow_store):
    """The clauses are training rows, not a network setting: a trial's count changes what a pass holds."""
    search = {"trials": 2, "space": {"rule_clauses": [200]}, "prune_after": 100}
    train_params = {"rule_clauses": 0, "max_steps": 1000, "max_epochs": 2}
    run_tiny_pipeline({"classifier": {"search": search, "train": train_params}}, only=(*DATA_STAGES, "train"))
    trials = read_json(paths.TRAIN_REPORT)["search"]["trials"]
    assert [t["rule_clauses"] for t in trials] == [0, 200]
    # two passes each: over the 58 training sentences alone, then over them and 200 clauses
    assert trials[0]["steps"] == 16 and trials[1]["steps"] > 2 * trials[0]["steps"]


def test_a_trial_trailing_the_median_after_its_warm_up_is_pruned(tiny_workspace, mlflow_store):
    search = {"trials": 2, "space": {"lr": [1e-6]}, "prune_after": 1}  # lr 1e-6 barely moves: it trails trial 0
    run_tiny_pipeline({"classifier": {"search": search}}, only=(*DATA_STAGES, "train"))
    trials = read_json(paths.TRAIN_REPORT)["search"]["trials"]
    assert [t["state"] for t in trials] == ["complete", "pruned"] and trials[1]["steps"] < 96
