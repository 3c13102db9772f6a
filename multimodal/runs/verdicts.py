"""The fusion-gain verdict: is fusion better than a baseline, judged by an interval that holds up.

Fold scores of k-fold cross-validation are correlated (any two folds share most of their training
rows), so the plain standard error of their mean is too small and "mean - std > 0" calls noise a
win. The interval here is the corrected resampled t-interval of Nadeau & Bengio (2003), "Inference
for the Generalization Error", Machine Learning 52(3):239-281, as applied to repeated k-fold by
Bouckaert & Frank (2004), "Evaluating the Replicability of Significance Tests for Comparing
Learning Algorithms", PAKDD: the sample variance of the J = folds x repeats paired differences is
multiplied by (1/J + n_test/n_train) instead of 1/J, with a t quantile on J - 1 degrees of freedom.
"better" / "worse" only when that interval excludes zero; otherwise "no detectable difference",
which is also the verdict when every fold gave the same difference (no spread, no interval). For
accuracy the variance is never taken below what the held-out rows alone carry (`held_out_noise`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from multimodal.core.tasks import main_metric

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference"
ONE_SPLIT = "one split: no interval"
# Below this many rows a validation split holds at most a few hundred rows, and two methods' scores
# on it differ by chance by several points: the Train and Compare pages steer to cross-validation.
CROSS_VALIDATE_BELOW_ROWS = 1_000
# Unitless scores in [0, 1] (or near it): three decimals read well. Other metrics (MAE, RMSE) are
# in target units and get a precision from the size of the interval.
FRACTION_METRICS = (main_metric("classification")[0], "auc", "r2")


@dataclass(frozen=True)
class GainVerdict:
    """A paired difference (positive = fusion better) with its interval and what it allows saying."""
    mean: float
    low: float | None          # None with one split: no interval
    high: float | None
    splits: int                # J: the paired differences the interval rests on (folds x repeats)
    confidence: float
    verdict: str               # BETTER, WORSE, NO_DIFFERENCE or ONE_SPLIT
    sentence: str              # one line for the page and the CLI, interval shown
    caveat: str = ""           # one split or zero spread: why the interval says less than it seems


def paired_differences(fusion: Sequence[float], baseline: Sequence[float], higher_is_better: bool) -> np.ndarray:
    """Per-fold fusion minus baseline on the same folds, signed so that positive means fusion is better."""
    fusion, baseline = np.asarray(fusion, dtype=float), np.asarray(baseline, dtype=float)
    if fusion.shape != baseline.shape:
        raise ValueError(f"paired differences need the same folds: {fusion.shape} vs {baseline.shape}")
    return fusion - baseline if higher_is_better else baseline - fusion


def split_caveat(n_val_rows: int) -> str:
    """The warning every single-split result carries."""
    return (f"one split of {n_val_rows} rows: a single small split can flip this verdict; "
            "run cross-validation")


def cross_validation_advice(n_rows: int) -> str:
    """Why a dataset this small should be cross-validated before trusting a comparison ("" if not)."""
    if n_rows >= CROSS_VALIDATE_BELOW_ROWS:
        return ""
    return (f"{n_rows} rows is a small dataset: one validation split can flip which method looks better. "
            "Cross-validate before trusting a comparison: it trains every method on the same folds and says "
            "whether a difference holds up.")


def gain_verdict(differences: Sequence[float], n_train: int, n_test: int, metric: str, *,
                 repeats: int = 1, confidence: float = 0.95) -> GainVerdict:
    """The verdict on paired per-fold differences (fusion minus a baseline, positive = fusion better).

    `differences` holds one value per (repeat, fold); n_train and n_test are the rows one fold
    learns from and is scored on (for the library's folds: every row outside the held-out fold,
    early-stopping rows included, and the held-out fold). `metric` (e.g. "accuracy" or "val_mae")
    only chooses how numbers are written; `repeats` only how the folds are counted in the sentence.
    """
    diffs = np.asarray(differences, dtype=float).ravel()
    if diffs.size == 0 or not np.all(np.isfinite(diffs)):
        raise ValueError(f"the verdict needs finite paired differences, got {diffs.tolist()}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"fold sizes must be positive, got n_train={n_train}, n_test={n_test}")
    j, mean = diffs.size, float(diffs.mean())
    if j == 1:
        caveat = split_caveat(n_test)
        text = f"{format_gain(mean, metric, None)} on {caveat}"
        return GainVerdict(mean, None, None, 1, confidence, ONE_SPLIT, text, caveat)
    # Equal differences up to rounding: no spread (a variance of 1e-35 would fake a tiny interval).
    same = float(np.ptp(diffs)) <= 1e-12 * max(1.0, abs(mean))
    spread = 0.0 if same else float(diffs.var(ddof=1)) * (1.0 / j + n_test / n_train)
    # The held-out rows' own noise: J disjoint test folds, so it averages as 1/J (the correction
    # above is for the training rows the folds share).
    floor = held_out_noise(mean, n_test, metric) / j
    variance = max(spread, floor)
    half = float(stats.t.ppf(0.5 + confidence / 2, j - 1)) * math.sqrt(variance)
    low, high = mean - half, mean + half
    counted = f"{j // repeats} folds x {repeats} repeats" if repeats > 1 and j % repeats == 0 else f"{j} folds"
    if variance == 0.0:
        # A t-interval needs a spread: a zero-width one would call any constant gain "better". With
        # nothing to measure the noise by, nothing is claimed.
        caveat = f"all {j} folds gave the same difference: no spread to estimate the noise from, so no interval"
        text = f"{format_gain(mean, metric, None)} on each of {counted}: {NO_DIFFERENCE} ({caveat})"
        return GainVerdict(mean, low, high, j, confidence, NO_DIFFERENCE, text, caveat)
    caveat = "" if spread >= floor else (
        f"the folds agree more closely than {n_test} held-out rows can measure: the interval uses the least "
        f"noise a difference of {format_gain(mean, metric, None)} on them carries")
    verdict = BETTER if low > 0 else WORSE if high < 0 else NO_DIFFERENCE
    text = (f"{format_gain(mean, metric, half)} ({confidence:.0%} CI {format_gain(low, metric, half)} to "
            f"{format_gain(high, metric, half)}) over {counted}: {verdict}")
    return GainVerdict(mean, low, high, j, confidence, verdict, text + (f" ({caveat})" if caveat else ""), caveat)


def score_interval(values: Sequence[float], n_train: int, n_test: int, metric: str, *,
                   confidence: float = 0.95) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of one method's fold scores: the corrected t interval `gain_verdict` puts
    on a difference, on the scores themselves (for accuracy never narrower than the held-out rows'
    own binomial noise, p(1 - p) / n_test per fold). (mean, None, None) with one fold."""
    scores = np.asarray(values, dtype=float).ravel()
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        raise ValueError(f"the interval needs finite fold scores, got {scores.tolist()}")
    j, mean = scores.size, float(scores.mean())
    if j == 1:
        return mean, None, None
    spread = float(scores.var(ddof=1)) * (1.0 / j + n_test / n_train)
    name = metric.split("_", 1)[1] if metric.startswith(("val_", "test_", "train_")) else metric
    p = min(max(mean, 0.0), 1.0)
    floor = p * (1 - p) / n_test / j if name == main_metric("classification")[0] else 0.0
    half = float(stats.t.ppf(0.5 + confidence / 2, j - 1)) * math.sqrt(max(spread, floor))
    return mean, mean - half, mean + half


def held_out_noise(mean: float, n_test: int, metric: str) -> float:
    """The least variance a fold's accuracy difference has from its n_test held-out rows alone (0 for
    other metrics). Two models whose accuracies differ by d disagree on at least |d| of the rows, so
    the difference measured on n rows varies by at least (|d| - d^2) / n. With 3 folds the sample
    variance can fall far below that by chance: three folds each 2 rows better gave an interval of
    +0.056 to +0.064 and "better" (bench/RESULTS_playground.md, small_noisy seed 6)."""
    name = metric.split("_", 1)[1] if metric.startswith(("val_", "test_", "train_")) else metric
    if name != main_metric("classification")[0]:
        return 0.0
    d = min(abs(mean), 1.0)
    return (d - d * d) / n_test


def format_gain(value: float, metric: str, half_width: float | None) -> str:
    """Signed, at a precision that suits the metric: 3 decimals for fractions, else two significant
    digits of the interval's half-width (thousands separated), e.g. +0.038, -1,250, +3.4."""
    name = metric.split("_", 1)[1] if metric.startswith(("val_", "test_", "train_")) else metric
    if name in FRACTION_METRICS:
        return f"{value:+.3f}"
    scale = half_width if half_width else abs(value)
    decimals = min(6, max(0, 1 - math.floor(math.log10(scale)))) if scale else 0
    return f"{value:+,.{decimals}f}"
