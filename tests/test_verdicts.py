"""The fusion-gain verdict: Nadeau & Bengio's corrected interval, and wording that follows it."""
import math

import numpy as np
import pytest

from multimodal.runs.verdicts import (
    BETTER,
    NO_DIFFERENCE,
    ONE_SPLIT,
    WORSE,
    gain_verdict,
    held_out_noise,
    paired_differences,
    split_caveat,
)

# t(0.975) on 2 degrees of freedom, hard-coded so the test checks the arithmetic. With 2 dof the
# quantile has a closed form, (2p - 1) / sqrt(2p(1 - p)) = 4.3026527297494..., which scipy matches.
T_975_2DOF = 4.302652729749462


def corrected_interval(diffs, n_train, n_test, t_quantile):
    diffs = np.asarray(diffs, dtype=float)
    j = len(diffs)
    half = t_quantile * math.sqrt(diffs.var(ddof=1) * (1 / j + n_test / n_train))
    return diffs.mean() - half, diffs.mean() + half


def test_interval_matches_the_hand_computed_formula():
    # 400 held-out rows: the folds' spread is above held_out_noise, so the interval is the textbook one.
    v = gain_verdict([0.01, 0.05, 0.06], n_train=800, n_test=400, metric="accuracy")
    low, high = corrected_interval([0.01, 0.05, 0.06], 800, 400, T_975_2DOF)
    assert v.mean == pytest.approx(0.04)
    assert (v.low, v.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    # By hand: s^2 = 0.0007, (1/3 + 1/2) * s^2 = 0.000583..., half = 4.3027 * 0.024152 = 0.10392.
    assert v.high - v.mean == pytest.approx(0.103918936, abs=1e-8)
    assert v.splits == 3 and v.verdict == NO_DIFFERENCE and v.caveat == ""
    assert v.sentence == "+0.040 (95% CI -0.064 to +0.144) over 3 folds: no detectable difference"


def test_mean_minus_std_above_zero_is_not_enough():
    # The app's old rule called +0.038 +- 0.029 over 3 folds "clearly better"; the corrected interval includes zero.
    diffs = [0.009, 0.067, 0.038]
    assert np.mean(diffs) - np.std(diffs, ddof=1) > 0
    v = gain_verdict(diffs, n_train=80, n_test=40, metric="val_accuracy")
    assert v.low < 0 < v.high
    assert v.verdict == NO_DIFFERENCE
    assert "95% CI" in v.sentence and ": no detectable difference" in v.sentence


def test_verdict_follows_the_interval():
    better = gain_verdict([0.05, 0.06, 0.07, 0.05, 0.06], n_train=400, n_test=100, metric="accuracy")
    assert better.low > 0 and better.verdict == BETTER
    worse = gain_verdict([-0.05, -0.06, -0.07, -0.05, -0.06], n_train=400, n_test=100, metric="accuracy")
    assert worse.high < 0 and worse.verdict == WORSE
    # The correction widens the naive interval (1/J only): a case the naive one would call better.
    diffs = [0.01, 0.03, 0.02, 0.00, 0.04]
    naive_low = np.mean(diffs) - 2.7764451051977934 * np.std(diffs, ddof=1) / math.sqrt(5)  # t(0.975, 4)
    v = gain_verdict(diffs, n_train=400, n_test=100, metric="accuracy")
    assert naive_low > 0 and v.low < 0 and v.verdict == NO_DIFFERENCE


def test_repeats_are_counted_and_mae_is_written_in_target_units():
    diffs = [1200.0, -300.0, 2500.0, 800.0, 1900.0, 100.0, -50.0, 700.0, 1500.0, 900.0]
    v = gain_verdict(diffs, n_train=400, n_test=100, metric="val_mae", repeats=2)
    low, high = corrected_interval(diffs, 400, 100, 2.262157162798205)  # t(0.975, 9)
    assert (v.low, v.high) == (pytest.approx(low), pytest.approx(high))
    assert v.sentence == "+925 (95% CI -258 to +2,108) over 5 folds x 2 repeats: no detectable difference"
    small = gain_verdict([1.2, -0.3, 2.5, 0.8, 1.9], n_train=400, n_test=100, metric="mae")
    assert small.sentence.startswith("+1.2 (95% CI -0.8 to +3.2) over 5 folds")


def test_one_split_has_no_interval_and_carries_the_caveat():
    v = gain_verdict([0.15], n_train=160, n_test=40, metric="accuracy")
    assert v.verdict == ONE_SPLIT and v.low is None and v.high is None and v.splits == 1
    assert v.caveat == split_caveat(40)
    assert v.sentence.startswith("+0.150 on one split of 40 rows")
    assert split_caveat(40) == ("one split of 40 rows: a single small split can flip this verdict; "
                                "run cross-validation")


def test_zero_variance():
    same = gain_verdict([0.0, 0.0, 0.0], n_train=80, n_test=40, metric="accuracy")
    assert (same.low, same.high, same.verdict) == (0.0, 0.0, NO_DIFFERENCE)
    assert "no spread" in same.caveat and same.caveat in same.sentence
    # A constant MAE gain has no spread to measure the noise by: a zero-width interval claims nothing.
    constant = gain_verdict([50.0, 50.0, 50.0], n_train=80, n_test=40, metric="val_mae")
    assert constant.low == pytest.approx(50.0) and constant.verdict == NO_DIFFERENCE
    assert constant.sentence.startswith("+50 on each of 3 folds: no detectable difference (all 3 folds")
    assert gain_verdict([50.0, 50.0, 50.1], n_train=80, n_test=40, metric="val_mae").verdict == BETTER


def test_accuracy_folds_that_agree_too_well_get_the_held_out_rows_noise():
    # small_noisy seed 6: tabular_only 2 rows better than linear on each ~33-row fold.
    diffs = [2 / 33, 2 / 33, 2 / 34]
    v = gain_verdict(diffs, n_train=67, n_test=33, metric="val_accuracy")
    d = np.mean(diffs)
    half = T_975_2DOF * math.sqrt((d - d * d) / 33 / 3)      # three disjoint held-out folds
    assert (v.low, v.high) == (pytest.approx(d - half), pytest.approx(d + half))
    assert v.verdict == NO_DIFFERENCE and "more closely than 33 held-out rows can measure" in v.caveat
    assert v.caveat in v.sentence
    constant = gain_verdict([0.05, 0.05, 0.05], n_train=80, n_test=40, metric="accuracy")   # no spread at all
    assert constant.verdict == NO_DIFFERENCE and constant.low < 0 < constant.high
    # A large, consistent gain is still better; the floor does not bind when the folds really vary.
    assert gain_verdict([0.30, 0.31, 0.30], n_train=400, n_test=200, metric="accuracy").verdict == BETTER
    assert held_out_noise(0.04, 400, "val_mae") == 0.0 and held_out_noise(-0.1, 100, "accuracy") == pytest.approx(9e-4)


def test_paired_differences_are_signed_so_positive_means_fusion_is_better():
    assert paired_differences([0.8, 0.9], [0.7, 0.95], higher_is_better=True) == pytest.approx([0.1, -0.05])
    assert paired_differences([10.0, 12.0], [11.0, 11.0], higher_is_better=False) == pytest.approx([1.0, -1.0])
    with pytest.raises(ValueError):
        paired_differences([0.8], [0.7, 0.9], higher_is_better=True)


def test_rejects_what_has_no_verdict():
    with pytest.raises(ValueError):
        gain_verdict([], n_train=80, n_test=40, metric="accuracy")
    with pytest.raises(ValueError):
        gain_verdict([0.1, float("nan")], n_train=80, n_test=40, metric="accuracy")
    with pytest.raises(ValueError):
        gain_verdict([0.1, 0.2], n_train=0, n_test=40, metric="accuracy")
