"""PNG versions of the evaluation curves for the MLflow run (DVC renders its own from the CSVs).

Drawn on matplotlib's Figure objects directly: no pyplot, no display backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def save_figures(
    curves: dict[str, list[dict]], reliability: list[dict], confusion: np.ndarray, classes: Sequence[str], folder
) -> list:
    """PNG versions of the curves for the MLflow run (DVC renders its own from the CSVs)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []

    def finish(fig: Figure, name: str) -> None:
        path = folder / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        paths.append(path)

    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45)
    ax.set_yticks(range(len(classes)), classes)
    for (i, j), v in np.ndenumerate(confusion):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    finish(fig, "confusion")
    for name, x, y in (("roc", "fpr", "tpr"), ("pr", "recall", "precision")):
        fig = Figure(figsize=(4, 4))
        ax = fig.subplots()
        for cls in sorted({r["class"] for r in curves[name]}):
            rows = [r for r in curves[name] if r["class"] == cls]
            ax.plot([r[x] for r in rows], [r[y] for r in rows], label=cls)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.legend()
        finish(fig, name)
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect")
    for name in ("uncalibrated", "calibrated"):
        points = [(r["confidence"], r[name]) for r in reliability if r[name] is not None]
        ax.plot([c for c, _ in points], [a for _, a in points], "o-", label=name)
    ax.set_xlabel("confidence (bin)")
    ax.set_ylabel("accuracy")
    ax.legend()
    finish(fig, "calibration")
    return paths
