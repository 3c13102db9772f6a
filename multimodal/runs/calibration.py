"""Are a classifier's probabilities honest? Reliability bins, expected calibration error and
temperature scaling fitted on the validation rows, recorded in the run folder as calibration.json
(docs/ARCHITECTURE.md, "Uncertainty and counterfactuals"). Pure numpy.

ECE: the rows are binned by their confidence (the top class's probability) into equal-width bins;
ECE = sum over bins of (rows in the bin / all rows) * |accuracy in the bin - mean confidence in it|.
Temperature scaling divides the logits by one T > 0 fitted to minimise the validation
cross-entropy (Guo et al. 2017): the predicted class never changes, only how sure the model says
it is. A recorded temperature is applied by `calibrated_probabilities` (the CLI's predict).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multimodal.runs.run import probabilities

CALIBRATION_FILE = "calibration.json"
BINS = 10
T_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class Reliability:
    edges: np.ndarray          # (bins + 1,) confidence bin edges
    confidence: np.ndarray     # (bins,) mean confidence per bin (NaN when empty)
    accuracy: np.ndarray       # (bins,) accuracy per bin (NaN when empty)
    counts: np.ndarray         # (bins,) rows per bin
    ece: float


def reliability(probs: np.ndarray, y_true: np.ndarray, bins: int = BINS) -> Reliability:
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=int).reshape(-1)
    conf, correct = probs.max(axis=1), (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, bins) / counts
        accuracy = np.bincount(which, correct, bins) / counts
    filled = counts > 0
    ece = float(np.sum(counts[filled] / max(len(y), 1) * np.abs(accuracy[filled] - mean_conf[filled])))
    return Reliability(edges, mean_conf, accuracy, counts, ece)


def _nll(outputs: np.ndarray, y: np.ndarray, n_classes: int, t: float) -> float:
    p = probabilities(outputs / t, n_classes)
    return float(-np.log(np.clip(p[np.arange(y.size), y], 1e-12, 1.0)).mean())


def fit_temperature(outputs: np.ndarray, y_true: np.ndarray, n_classes: int) -> float:
    """The T minimising the cross-entropy of softmax(outputs / T): golden-section search on log T."""
    y = np.asarray(y_true, dtype=int).reshape(-1)
    outputs = np.asarray(outputs, dtype=np.float64)
    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(outputs, y, n_classes, np.exp(a)), _nll(outputs, y, n_classes, np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(outputs, y, n_classes, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(outputs, y, n_classes, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def record_temperature(run_dir: Path, temperature: float | None, rows: int = 0, ece_before: float | None = None,
                       ece_after: float | None = None) -> None:
    """Write (or, with None, remove) the run's temperature scaling."""
    path = Path(run_dir) / CALIBRATION_FILE
    if temperature is None:
        path.unlink(missing_ok=True)
        return
    path.write_text(json.dumps({"temperature": temperature, "fitted_on": "val", "rows": rows,
                                "ece_before": ece_before, "ece_after": ece_after}, indent=2))


def recorded_temperature(run_dir: Path) -> float | None:
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.exists():
        return None
    return float(json.loads(path.read_text())["temperature"])


def calibrated_probabilities(run, outputs: np.ndarray) -> np.ndarray:
    """Class probabilities with the run's recorded temperature applied (none recorded: T = 1)."""
    return probabilities(np.asarray(outputs) / (recorded_temperature(run.dir) or 1.0), len(run.classes))
