"""Where the generator's stages write, and so where later stages read."""

from pathlib import Path

DATA = Path("data/generator")
VOCAB = DATA / "vocab.json"
MODELS = Path("models/generator")
MODEL = MODELS / "model.pt"
SERVED = MODELS / "served.pt"  # the network and, when evaluate chose it, the n-gram mixed in: what register logs
CHECKPOINT = MODELS / "checkpoint.pt"
REPORTS = Path("reports/generator")
TOKENS_REPORT = REPORTS / "tokens.json"
TRAIN_REPORT = REPORTS / "train.json"
METRICS = REPORTS / "metrics.json"
SAMPLES = REPORTS / "samples.json"
REGISTRATION = REPORTS / "registration.json"
HISTORY = REPORTS / "plots" / "history.csv"


def stream(split: str) -> Path:
    return DATA / f"{split}.npy"
