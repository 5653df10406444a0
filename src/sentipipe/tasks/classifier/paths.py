"""Where the classifier's stages write, and so where later stages read."""

from pathlib import Path

DATA = Path("data/classifier")
TOKENS_DIR = DATA / "tokens"
VOCAB = DATA / "vocab.json"  # its own output: stages that need only the words depend on it alone
EMBEDDINGS = DATA / "embeddings.npy"
OPEN_VOCABULARY = DATA / "open_vocabulary.npz"  # pretrained vectors of words the corpus lacks (served, never trained)
TEACHER_DIR = DATA / "teacher"
SOFT_TARGETS = TEACHER_DIR / "soft_targets.parquet"
TEACHER_TEST_LOGITS = TEACHER_DIR / "test_logits.npy"  # the teacher's answers on test: paired tests in bench/
MODELS = Path("models/classifier")
MODEL = MODELS / "model.pt"
SERVED = MODELS / "served.pt"  # the model as registered and served: evaluate's choices applied
CHECKPOINT = MODELS / "checkpoint.pt"
REPORTS = Path("reports/classifier")
TOKENS_REPORT = REPORTS / "tokens.json"
EMBED_REPORT = REPORTS / "embeddings.json"
TEACHER_REPORT = REPORTS / "teacher.json"
TRAIN_REPORT = REPORTS / "train.json"
METRICS = REPORTS / "metrics.json"
ERRORS = REPORTS / "errors.csv"
EXPLANATIONS = REPORTS / "confident_errors.html"
BEHAVIOUR_FAILURES = REPORTS / "behaviour_failures.csv"
REGISTRATION = REPORTS / "registration.json"
PLOTS = REPORTS / "plots"
HISTORY = PLOTS / "history.csv"
CONFUSION = PLOTS / "confusion.csv"
ROC = PLOTS / "roc.csv"
PR = PLOTS / "pr.csv"
CALIBRATION = PLOTS / "calibration.csv"


def tokens(split: str) -> Path:
    """A split's token store: a folder of ids.npy, offsets.npy and labels.npy (memory-mapped when read)."""
    return TOKENS_DIR / split
