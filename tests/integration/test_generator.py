"""The generator task end to end on real spaCy, a real MLflow store and the real pyfunc."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from sentipipe.errors import SentipipeError
from sentipipe.io import read_json
from sentipipe.tasks.generator import paths
from sentipipe.tasks.generator.evaluate import QUALITY_SEEDS, evaluate, served_scores
from sentipipe.tasks.generator.mixture import MixedGenerator
from sentipipe.tasks.generator.tokenize import tokenize
from sentipipe.tasks.generator.train import train
from sentipipe.tasks.generator.units import read_vocab
from sentipipe.training import checkpoints
from tests.helpers import (
    NEGATIVE,
    POSITIVE,
    generator_params,
    run_tiny_generator,
    tiny_raw,
    torchrun,
    write_params,
)

pytestmark = pytest.mark.integration


def lm_params(**train):
    return generator_params({"generator": {"train": train}})


def test_the_generator_trains_tracks_registers_and_generates(tiny_workspace, mlflow_store):
    import mlflow.pyfunc
    import pandas as pd

    run_tiny_generator()
    report = read_json(paths.TRAIN_REPORT)
    client = MlflowClient()
    run = client.get_run(report["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "tiny-generator"
    # per evaluation (every 25 of 100 steps): validation loss, perplexity and bits per character
    bpc = [m.value for m in client.get_metric_history(run.info.run_id, "curve_val_bpc")]
    assert len(bpc) == 4 and bpc[-1] < bpc[0], "the model must learn"
    assert len(client.get_metric_history(run.info.run_id, "curve_val_perplexity")) == 4
    assert run.data.params["train.bptt"] == "24" and "train.pooling" not in run.data.params
    with open(paths.HISTORY) as fh:
        assert [row["step"] for row in csv.DictReader(fh)] == ["25", "50", "75", "100"]

    metrics = read_json(paths.METRICS)
    assert run.data.metrics["val_bpc"] == pytest.approx(metrics["val"]["bpc"])
    assert metrics["baseline"]["val"]["bpc"] > 0 and metrics["baseline"]["order"] >= 1
    # a corpus of repeated phrases: the n-gram mixed in helps, at the order and weight best on validation
    mix, network = metrics["mixture"], metrics["network"]
    assert mix["used"] and 0.0 < mix["weight"] < 1.0 and str(mix["order"]) in mix["val_bpc_by_order"]
    assert metrics["val"]["bpc"] == pytest.approx(min(mix["val_bpc_by_order"].values()), abs=1e-6)
    assert metrics["val"]["bpc"] < network["val"]["bpc"]
    assert run.data.metrics["network_val_bpc"] == pytest.approx(network["val"]["bpc"])
    assert run.data.metrics["mixture_weight"] == pytest.approx(mix["weight"])
    # the served file is the model evaluate scored: read back, it scores what metrics.json says
    served = MixedGenerator.load(paths.SERVED)
    assert served.mixture.order == mix["order"] and served.mixture.weight == mix["weight"]
    _, _, stats = read_vocab(paths.VOCAB)
    for split in ("val", "test"):
        ids = np.load(paths.stream(split))
        again = served_scores(served, ids, 24 * 4, stats[split]["chars_per_unit"])
        assert again["bpc"] == pytest.approx(metrics[split]["bpc"], abs=1e-6), split
    samples = read_json(paths.SAMPLES)
    assert [s["temperature"] for s in samples] == [0.5, 1.0] and samples[0]["text"].startswith("a wonderful")
    # quality signals per temperature over QUALITY_SEEDS seeds of the one prompt, validation text beside them
    quality = metrics["samples_quality"]
    assert list(quality) == ["0.5", "1.0", "validation text"]
    assert quality["0.5"]["samples"] == QUALITY_SEEDS and quality["0.5"]["words"] > 0
    assert all(0.0 <= q[k] <= 1.0 for q in quality.values() for k in ("in_vocabulary", "repeated_3grams", "distinct_2"))
    assert quality["validation text"]["in_vocabulary"] > 0.5, "validation text is mostly training words"
    assert run.data.metrics["sample_t0.5_in_vocabulary"] == pytest.approx(quality["0.5"]["in_vocabulary"])
    # the served model against the n-gram: the difference in bpc, with its block bootstrap interval
    for split in ("val", "test"):
        gap = metrics["baseline"][split]["difference"]
        low, high = gap["interval"]
        assert low <= gap["difference"] <= high and gap["resamples"] == 2000
        assert gap["difference"] == pytest.approx(metrics[split]["bpc"] - metrics["baseline"][split]["bpc"], abs=0.05)
        assert run.data.metrics[f"baseline_{split}_difference_low"] == pytest.approx(low)

    decision = read_json(paths.REGISTRATION)
    assert decision["name"] == "tiny-generator" and decision["promoted"]
    version = client.get_model_version_by_alias("tiny-generator", "champion")
    assert float(version.tags["val_bpc"]) == pytest.approx(metrics["val"]["bpc"])

    model = mlflow.pyfunc.load_model("models:/tiny-generator@champion")
    out = model.predict(pd.DataFrame({"prompt": ["a wonderful", "brilliant"]}), params={"seed": 4, "max_length": 30})
    assert list(out.columns) == ["prompt", "generated", "text", "unknown_units"]
    assert out["text"].tolist()[0].startswith("a wonderful") and all(len(g) <= 30 for g in out["generated"])
    again = model.predict(pd.DataFrame({"prompt": ["a wonderful", "brilliant"]}), params={"seed": 4, "max_length": 30})
    assert again["generated"].tolist() == out["generated"].tolist()
    one = pd.DataFrame({"prompt": ["a wonderful"]})
    greedy = model.predict(one, params={"temperature": 0.0, "max_length": 30})
    assert greedy["generated"][0] == model.predict(one, params={"top_k": 1, "max_length": 30})["generated"][0]
    with pytest.raises(Exception, match="temperature must be between"):
        model.predict(one, params={"temperature": -1.0})
    with pytest.raises(Exception, match=r"missing inputs \['prompt'\]"):
        model.predict(pd.DataFrame({"body": ["x"]}))
    local = MixedGenerator.load(paths.SERVED).generate_frame(["a wonderful", "brilliant"], seed=4, max_length=30)
    assert local["generated"].tolist() == out["generated"].tolist(), "the registry serves the mixture"

    # mixture off: the network alone is served, and its figures are the served ones
    alone = evaluate(generator_params({"generator": {"evaluate": {"mixture": "off", "prompts": ["a wonderful"]}}}))
    assert "mixture" not in alone and alone["val"] == alone["network"]["val"] == network["val"]
    assert MixedGenerator.load(paths.SERVED).mixture is None


def test_a_killed_generator_run_resumes_exactly(tiny_workspace, mlflow_store, monkeypatch):
    params = lm_params(max_steps=60, eval_every=10)
    run_tiny_generator(only=("prepare", "tokenize"))
    train(params)
    straight = read_json(paths.TRAIN_REPORT)
    weights = torch.load(paths.MODEL, weights_only=True)["state_dict"]

    save = checkpoints.save

    class Killed(Exception):
        pass

    def save_then_die(path, state):
        save(path, state)
        if state.get("step") == 30 and not state["complete"]:  # mid-epoch: the hidden state is in the checkpoint
            raise Killed

    monkeypatch.setattr(checkpoints, "save", save_then_die)
    with pytest.raises(Killed):
        train(params, fresh=True)
    monkeypatch.setattr(checkpoints, "save", save)
    train(params)
    resumed = read_json(paths.TRAIN_REPORT)
    for key in ("best_step", "best_val_loss", "best_val_bpc", "steps_run"):
        assert resumed[key] == straight[key], key
    again = torch.load(paths.MODEL, weights_only=True)["state_dict"]
    assert all(torch.equal(weights[k], again[k]) for k in weights)


def test_early_stopping_watches_validation_loss(tiny_workspace, mlflow_store):
    # a learning rate this large makes validation loss rise after the first evaluations
    params = lm_params(max_steps=200, eval_every=25, patience=1, lr=0.5, schedule="constant", clip_norm=100.0)
    run_tiny_generator(only=("prepare", "tokenize"))
    report = train(params)
    assert report["stop_reason"] == "patience" and report["steps_run"] < 200
    assert report["best_step"] == report["steps_run"] - 25


def test_a_text_file_of_ones_own_with_spacy_tokens(workdir, mlflow_store):
    paragraphs = [f"{text}.\nIt was number {k}." for k in range(5) for text in POSITIVE + NEGATIVE]
    (workdir / "book.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    params = generator_params(
        {
            "generator": {
                "data": {"source": "file", "path": "book.txt", "val_size": 0.2, "test_size": 0.2},
                "tokenize": {"unit": "token", "lowercase": True},
                "evaluate": {"baseline": False, "prompts": ["a wonderful"]},
            }
        }
    )
    stats = tokenize(params)
    assert sum(stats[s]["documents"] for s in ("train", "val", "test")) == len(paragraphs)
    vocab = read_json(paths.VOCAB)["tokens"]
    assert "wonderful" in vocab and "w" not in vocab  # words, not characters
    assert stats["val"]["chars_per_unit"] > 2
    train(params)
    metrics = evaluate(params)
    assert metrics["val"]["bpc"] < metrics["val"]["loss"]  # several characters per token
    assert "baseline" not in metrics

    missing = generator_params({"generator": {"data": {"source": "file", "path": "nope.txt"}}})
    with pytest.raises(SentipipeError, match="nope.txt: file not found"):
        tokenize(missing)


def test_torchrun_trains_the_generator_with_each_rank_on_its_own_lanes(tiny_workspace, mlflow_store):
    run_tiny_generator(only=("prepare", "tokenize"))
    write_params(tiny_workspace, tiny_raw())
    proc = torchrun("pipeline/generator/train.py", tiny_workspace)
    report = read_json(paths.TRAIN_REPORT)
    runs = MlflowClient(mlflow_store).search_runs([report["experiment_id"]])
    assert len(runs) == 1 and runs[0].data.tags["distributed.world_size"] == "2"
    digests = report["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1], "every rank ends with the same weights (all-reduced)"
    bpc = [m.value for m in MlflowClient(mlflow_store).get_metric_history(runs[0].info.run_id, "curve_val_bpc")]
    every = report["budget"]["eval_every_used"]  # 25, or one epoch's steps when an epoch of lanes is shorter
    assert 0 < every <= 25 and len(bpc) == len(range(every, 100, every)) + 1 and bpc[-1] < bpc[0]
    assert proc.stdout.count(f"step {every} (epoch") == 1, "only rank 0 reports"
