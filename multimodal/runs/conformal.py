"""Split-conformal uncertainty: prediction sets (classification) and intervals (regression),
calibrated on a run's validation rows (docs/ARCHITECTURE.md, "Uncertainty and counterfactuals").

Classification uses LAC ("least ambiguous set-valued classifier", Sadinle et al. 2019): the score
of a calibration row is 1 - p(true class), and a new row's set holds every class whose probability
is at least 1 - q. LAC gives the smallest sets on average among split-conformal scores; APS adapts
set size to hard rows, but with the two or three classes these datasets have that adaptivity buys
little, and APS needs randomisation to avoid over-covering. Regression uses the absolute residual
|y - prediction|, so the interval is prediction ± q: the models output no scale estimate that
normalised residuals would need.

q is the ceil((n + 1)(1 - alpha)) / n empirical quantile of the n calibration scores ("higher"
interpolation), which gives coverage >= 1 - alpha on exchangeable rows. With fewer than
ceil(1/alpha) - 1 rows that level is above 1: q is infinite (every class, an unbounded interval),
and `warning` says so. Pure numpy; no Keras.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from multimodal.core.errors import DataError
from multimodal.runs.evaluation import evaluate_run, run_dataset
from multimodal.runs.run import probabilities

DEFAULT_COVERAGE = 0.9
COVERAGES = (0.8, 0.9, 0.95)
CLASSIFICATION_SCORE = "LAC (1 − probability of the true class)"
REGRESSION_SCORE = "absolute residual |y − prediction|"


def min_rows(alpha: float) -> int:
    """The fewest calibration rows that give a finite quantile at level 1 - alpha."""
    return math.ceil(1 / alpha - 1e-9) - 1


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The split-conformal threshold of calibration scores for miscoverage alpha (inf if too few)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = scores.size
    if not 0 < alpha < 1:
        raise DataError(f"coverage must be between 0 and 1 (exclusive), got {1 - alpha:g}")
    rank = math.ceil((n + 1) * (1 - alpha) - 1e-9)
    if n == 0 or rank > n:
        return float("inf")
    return float(np.sort(scores)[rank - 1])


def lac_scores(probs: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """1 - p(true class) per row."""
    y = np.asarray(y_true, dtype=int).reshape(-1)
    return 1.0 - np.asarray(probs, dtype=np.float64)[np.arange(y.size), y]


def prediction_sets(probs: np.ndarray, q: float) -> np.ndarray:
    """(N, classes) bool: class k is in row i's set when p_ik >= 1 - q."""
    return np.asarray(probs, dtype=np.float64) >= 1.0 - q - 1e-12


@dataclass(frozen=True)
class Conformal:
    """A calibrated split-conformal predictor for one run at one coverage level."""
    task: str
    coverage: float            # the nominal level 1 - alpha
    q: float                   # the threshold (inf when there are too few rows)
    n: int                     # calibration rows
    split: str = "val"         # where the calibration rows come from

    @property
    def alpha(self) -> float:
        return 1.0 - self.coverage

    @property
    def score(self) -> str:
        return CLASSIFICATION_SCORE if self.task == "classification" else REGRESSION_SCORE

    @property
    def warning(self) -> str | None:
        need = min_rows(self.alpha)
        if self.n >= need:
            return None
        what = "every class is in every set" if self.task == "classification" else "the interval is unbounded"
        return (f"Only {self.n} calibration rows: {self.coverage:.0%} coverage needs at least {need} "
                f"(ceil(1/alpha) - 1), so {what}. Retrain with a larger validation fraction or pick a lower level.")

    def sets(self, probs: np.ndarray) -> np.ndarray:
        return prediction_sets(probs, self.q)

    def intervals(self, predictions: np.ndarray) -> np.ndarray:
        """(N, 2) [low, high] around regression predictions."""
        p = np.asarray(predictions, dtype=np.float64).reshape(-1)
        return np.stack([p - self.q, p + self.q], axis=1)

    def describe(self, outputs: np.ndarray, classes: list[str]) -> list[dict]:
        """One JSON-ready dict per row: the set (class names) or the interval, with the level."""
        common = {"coverage": self.coverage, "calibration_rows": self.n}
        if self.task == "classification":
            sets = self.sets(probabilities(outputs, len(classes)))
            return [{**common, "set": [c for c, keep in zip(classes, row) if keep]} for row in sets]
        bounds = self.intervals(outputs[:, 0])
        return [{**common, "interval": [float(lo), float(hi)]} for lo, hi in bounds]

    def text(self, entry: dict) -> str:
        """'90% set: {benign, malignant}' or '90% interval: [1.2, 3.4]' for one row of describe()."""
        if "set" in entry:
            inner = ", ".join(entry["set"]) if entry["set"] else "empty: no class is plausible at this level"
            return f"{self.coverage:.0%} set {{{inner}}}"
        lo, hi = entry["interval"]
        return f"{self.coverage:.0%} interval [{plain_number(lo)}, {plain_number(hi)}]"

    def caption(self) -> str:
        holds = "set holds the true class" if self.task == "classification" else "interval holds the true value"
        return (f"Split-conformal, score {self.score}, calibrated on {self.n} {self.split} rows: "
                f"on new rows like these, the {holds} at least {self.coverage:.0%} of the time.")


def plain_number(v: float) -> str:
    """Numbers as people read them: 594,060 or 0.8123."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def calibrate(task: str, outputs: np.ndarray, y_true: np.ndarray, coverage: float = DEFAULT_COVERAGE,
              n_classes: int = 0, split: str = "val") -> Conformal:
    """A Conformal from raw model outputs (logits or values) and the truth of the calibration rows."""
    if task == "classification":
        scores = lac_scores(probabilities(outputs, n_classes), y_true)
    else:
        scores = np.abs(np.asarray(y_true, dtype=np.float64).reshape(-1) - np.asarray(outputs)[:, 0])
    return Conformal(task, float(coverage), conformal_quantile(scores, 1 - coverage), int(scores.size), split)


def from_evaluation(ev, coverage: float = DEFAULT_COVERAGE) -> Conformal:
    """Calibrated on an Evaluation's rows, which must be the run's validation rows."""
    if ev.split != "val":
        raise DataError("this run has no validation rows to calibrate its uncertainty on; retrain it with a "
                        "validation fraction above 0")
    return calibrate(ev.task, ev.outputs, ev.y_true, coverage, len(ev.classes), ev.split)


def coverage_and_size(conformal: Conformal, outputs: np.ndarray, y_true: np.ndarray,
                      n_classes: int = 0) -> tuple[float, float]:
    """(empirical coverage, mean set size or interval width) on held-out rows."""
    if conformal.task == "classification":
        sets = conformal.sets(probabilities(outputs, n_classes))
        y = np.asarray(y_true, dtype=int).reshape(-1)
        return float(sets[np.arange(y.size), y].mean()), float(sets.sum(axis=1).mean())
    bounds = conformal.intervals(outputs[:, 0])
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    return float(((bounds[:, 0] <= y) & (y <= bounds[:, 1])).mean()), float(2 * conformal.q)


def calibrate_run(run, coverage: float = DEFAULT_COVERAGE, dataset=None) -> Conformal:
    """Calibrated on the run's validation rows, predicted now (the dataset read again from the run's
    config when not given): what the CLI uses; the app calibrates on its cached Evaluation."""
    return from_evaluation(evaluate_run(run, dataset if dataset is not None else run_dataset(run)), coverage)
