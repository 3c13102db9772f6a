"""The Fusion Playground's library: the generator's properties and ground truth, the knobs' ranges
and refusals, the URL codec, and the CLI's leaderboard and its error exit."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from multimodal.app.playground_query import setup_from_query, setup_to_query
from multimodal.core.errors import DataError
from multimodal.data.dataset import load_dataset
from multimodal.data.playground import (
    LATENTS_FILE,
    background_rows,
    generate_frame,
    oracle,
    read_playground,
    truth_table,
    write_playground,
)
from multimodal.data.playground_knobs import checked_knobs, strict_knobs
from multimodal.explain.shapley import exact_shapley, pairwise_interactions, shares_from_table
from multimodal.train.playground_race import ranked

OFFERED = ["image_only", "tabular_only", "linear", "late_concat", "late_decision", "multiply", "film", "bilinear",
           "gated"]


def knobs(**values) -> dict:
    got, warnings = checked_knobs({"rows": 300, "image_size": 16, **values})
    assert not warnings
    return got


def test_shapes_columns_and_written_folder_load(tmp_path):
    k = knobs(classes=3, distractors=0.5)
    frame, images, lat = generate_frame(k)
    assert images.shape == (300, 16, 16, 3) and images.dtype == np.uint8
    assert list(frame.columns) == ["id", "image", "reading", "grade", "noise_1", "noise_2", "noise_3", "noise_4",
                                   "label"]
    assert sorted(frame["label"].unique()) == ["class_0", "class_1", "class_2"]
    assert np.bincount(np.unique(frame["label"], return_inverse=True)[1]).min() >= 90   # balanced classes
    csv = write_playground(k, tmp_path / "data")
    ds = load_dataset(csv)
    assert ds.task == "classification" and ds.target == "label" and ds.features.image_cols == ["image"]
    assert set(ds.features.numeric_cols) >= {"reading"} and "grade" in ds.features.categorical_cols
    assert (tmp_path / "data" / LATENTS_FILE).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".playground-")]   # nothing half-written
    written, best, _ = read_playground(tmp_path / "data")
    assert written == k and set(best) == {"image", "table", "both", "chance"}


def test_same_seed_same_data_other_seed_other_data():
    a, ia, _ = generate_frame(knobs(seed=3))
    b, ib, _ = generate_frame(knobs(seed=3))
    c, ic, _ = generate_frame(knobs(seed=4))
    assert a.equals(b) and np.array_equal(ia, ib)
    assert not a.equals(c) and not np.array_equal(ia, ic)


def test_table_latent_is_reading_plus_grade_and_regression_target():
    k = knobs(task="regression", redundancy=0.5)
    frame, _, lat = generate_frame(k)
    effect = frame["grade"].map({"A": -0.9, "B": -0.3, "C": 0.3, "D": 0.9}).to_numpy()
    assert np.allclose(frame["reading"].to_numpy() + effect, lat["z_table"], atol=1e-3)
    assert 0.3 < np.corrcoef(lat["z_image"], lat["z_table"])[0, 1] < 0.7      # redundancy 0.5
    assert "target" in frame and frame["target"].dtype == float


@pytest.mark.parametrize("zero, other", [("image", "table"), ("table", "image")])
def test_a_knob_at_zero_leaves_its_branch_at_chance(zero, other):
    k = knobs(**{zero: 0.0, other: 1.0})
    frame, _, lat = generate_frame(k)
    best = oracle(k, frame, lat)
    assert best[zero] == pytest.approx(best["chance"], abs=0.06)
    assert best[other] > 0.95


def test_interaction_alone_each_branch_at_chance_both_perfect():
    k = knobs(image=0.0, table=0.0, interaction=1.0, rows=1000)
    frame, _, lat = generate_frame(k)
    best = oracle(k, frame, lat)
    assert abs(best["image"] - 0.5) < 0.06 and abs(best["table"] - 0.5) < 0.06 and best["both"] == 1.0


def test_label_noise_missing_cells_and_missing_images_rates():
    k = knobs(rows=2000, label_noise=0.4, missing_cells=0.3, missing_images=0.25, distractors=0.25)
    frame, images, lat = generate_frame(k)
    best = oracle(k, frame, lat)
    assert 0.75 < best["both"] < 0.85          # 40% random labels, half of those right by chance: 0.8
    cells = frame[["reading", "grade", "noise_1", "noise_2"]]
    assert 0.27 < cells.isna().to_numpy().mean() < 0.33
    assert 0.22 < lat["image_blank"].mean() < 0.28
    blank = images[lat["image_blank"]]
    assert np.abs(blank[..., 0].astype(int) - blank[..., 2].astype(int)).max() == 0   # grey: no disc drawn


def test_truth_table_matches_brute_force_shapley_and_shares():
    k = knobs(image=0.5, table=1.0, interaction=0.7)
    _, _, lat = generate_frame(k)
    rows, bg = np.arange(5), background_rows(300, 0)
    table = truth_table(k, lat, rows, bg)
    for r in rows:   # v(S) by direct enumeration of the definition
        def value(coalition, r=r):
            zi = lat["z_image"][r] if "image" in coalition else lat["z_image"][bg]
            zt = lat["z_table"][r] if "tabular" in coalition else lat["z_table"][bg]
            return float(np.mean(0.5 * zi + zt + 0.7 * zi * zt))
        phi = exact_shapley(value, ["image", "tabular"])
        inter = pairwise_interactions(value, ["image", "tabular"])["image|tabular"]
        assert table[r, 3] - table[r, 0] == pytest.approx(phi["image"] + phi["tabular"])
        assert table[r, 1] - table[r, 0] + inter / 2 == pytest.approx(phi["image"])
    pure = shares_from_table(truth_table(knobs(image=0.0, table=0.0, interaction=1.0), lat, np.arange(300), bg),
                             ["image", "tabular"])
    assert pure["interaction"] > 0.7   # the rest: the background means of the latents are not exactly 0
    only = shares_from_table(truth_table(knobs(image=1.0, table=0.0), lat, np.arange(300), bg), ["image", "tabular"])
    assert only == {"image": 1.0, "tabular": 0.0, "interaction": 0.0}


def test_knob_ranges_warnings_and_refusals():
    got, warnings = checked_knobs({"image": "1.5", "rows": "99", "bogus": "1", "classes": "2.5"}, {"image": 0.25})
    assert got["image"] == 0.25 and got["rows"] == 600 and got["classes"] == 2   # the lesson's value is kept
    assert len(warnings) == 4 and "unknown setting 'bogus'" in warnings[2]
    assert any("image=1.5 is out of range: 0 to 1; kept 0.25" in w for w in warnings)
    with pytest.raises(DataError, match=r"rows=99 is out of range: 100 to 5,000"):
        strict_knobs({"rows": "99"})
    with pytest.raises(DataError, match="unknown knob 'colour'"):
        strict_knobs({"colour": 1}, {"image": 0.5})
    assert strict_knobs({"seed": 3}, {"image": 0.5})["image"] == 0.5
    with pytest.raises(ValueError, match="image_size=64"):
        write_playground({**knobs(), "image_size": 64}, None)


def test_url_round_trip_and_bad_values_each_warned_once():
    s, warnings = setup_from_query({"preset": "interaction", "rows": "800", "_hide": "preset,seed"}, OFFERED)
    assert not warnings and s["knobs"]["interaction"] == 1.0 and s["knobs"]["rows"] == 800
    assert "late_decision" in s["methods"] and s["hidden"] == ["preset", "seed"]
    assert setup_from_query(setup_to_query(s), OFFERED)[0] == s
    bad = {"image": "7", "preset": "nope", "methods": "late_concat,warp", "folds": "9", "zzz": "1",
           "_hide": "image,ghost"}
    s, warnings = setup_from_query(bad, OFFERED)
    assert len(warnings) == 6, warnings
    assert s["knobs"]["image"] == 1.0 and s["methods"] == ["late_concat"] and s["folds"] == 3
    assert s["hidden"] == ["image"] and any("no control 'ghost'" in w for w in warnings)


def test_cli_refuses_a_bad_knob_with_one_error_line():
    done = subprocess.run([sys.executable, "-m", "multimodal", "playground", "--missing-cells", "0.95"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: missing_cells=0.95 is out of range: 0 to 0.9"]
    assert "Traceback" not in done.stderr and not done.stdout


def test_cli_prints_the_leaderboard(tmp_path):
    done = subprocess.run([sys.executable, "-m", "multimodal", "playground", "--preset", "table_alone", "--rows", "120",
                           "--image-size", "16", "--epochs", "3", "--methods", "late_concat", "--folds", "2",
                           "--out", str(tmp_path), "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    archs = [r["arch"] for r in payload["race"]["rows"]]
    assert sorted(archs) == ["image_only", "late_concat", "linear", "tabular_only"]
    late = next(r for r in payload["race"]["rows"] if r["arch"] == "late_concat")
    assert late["verdict"] in ("better", "worse", "no detectable difference") and late["best_baseline"]
    assert set(payload["shares"]) == set(archs)
    truths = [payload["shares"][arch]["truth"] for arch in archs]
    assert truths == [{"image": 0.0, "tabular": 1.0, "interaction": 0.0}] * len(archs)   # one truth
    assert sum(payload["shares"]["late_concat"]["model"].values()) == pytest.approx(1.0)
    claims = {c["claim"]: c for c in payload["claims"]}   # the lesson's claims on the raced methods
    assert "late_concat matches tabular_only within 0.05" in claims and "tabular_only above chance by 0.3" in claims
    assert (tmp_path / "race" / "race.json").exists() and len(payload["race"]["chance"]) == 2


def test_a_tie_on_the_leaderboard_goes_to_the_method_listed_first():
    archs = ["image_only", "tabular_only", "linear", "late_concat", "multiply"]
    # the same fold scores in another order: equal means but for the last bits of the sum
    folds = {"multiply": [0.9, 0.8, 0.7], "tabular_only": [0.7, 0.8, 0.9]}
    means = {arch: float(np.mean(values)) for arch, values in folds.items()}
    assert means["multiply"] > means["tabular_only"]   # by 3e-16
    arrived = [{"arch": "multiply", "mean": means["multiply"]}, {"arch": "linear", "mean": 0.5},
               {"arch": "tabular_only", "mean": means["tabular_only"]}, {"arch": "late_concat", "mean": 0.9}]
    assert [r["arch"] for r in ranked(arrived, archs, higher=True)] == \
        ["late_concat", "tabular_only", "multiply", "linear"]
    errors = [{"arch": "multiply", "mean": 2.0}, {"arch": "tabular_only", "mean": 2.0}, {"arch": "linear", "mean": 1.0}]
    assert [r["arch"] for r in ranked(errors, archs, higher=False)] == ["linear", "tabular_only", "multiply"]
