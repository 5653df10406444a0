"""Temperature scaling (Guo et al., 2017): one number, fitted on validation logits, that makes probabilities honest.

Dividing the logits by T > 1 softens overconfident probabilities without
changing any prediction's label; T is chosen to minimise the validation
log loss, and the probabilities served are softmax(logits / T).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax


def log_loss_at(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = log_softmax(logits.astype(np.float64) / temperature, axis=1)
    return float(-scaled[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the log loss of these (validation) logits."""
    if len(labels) == 0:
        return 1.0
    found = minimize_scalar(
        lambda log_t: log_loss_at(logits, labels, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return round(float(np.exp(found.x)), 4)
