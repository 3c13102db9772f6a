"""Issue 25: split-conformal uncertainty (runs/conformal.py) and counterfactuals
(explain/counterfactual.py, explain/nearest.py) in the library, the CLI and the pages.

One tiny classification run (120 rows, 16 px, a few epochs, so its predictions differ between rows)
and one tiny regression run are trained once for the module."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from multimodal.core.errors import DataError
from multimodal.runs.conformal import Conformal, calibrate, conformal_quantile, coverage_and_size, min_rows

from support.apptest import assert_clean, open_page


@pytest.fixture(scope="module")
def runs(tiny_samples, tmp_path_factory):
    """{"skin": (csv, run folder), "house": (csv, run folder)}."""
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.data.samples import generate
    from multimodal.train.training import train
    root = tmp_path_factory.mktemp("wi")
    skin = generate("skin_lesions", root / "skin", rows=120, image_size=16)
    train(TrainConfig(data=str(skin), epochs=6, batch_size=16, patience=0, lr=3e-3,
                      model=ModelConfig(arch="late_concat", image_size=16)), root / "skin_run")
    house = tiny_samples["house_prices"]
    train(TrainConfig(data=str(house), epochs=2, batch_size=8, patience=0,
                      model=ModelConfig(arch="late_concat", image_size=16, modality_dropout=0.3)), root / "house_run")
    return {"skin": (skin, root / "skin_run"), "house": (house, root / "house_run")}


def _cli(capsys, *argv) -> tuple[int, str, str]:
    from multimodal.cli import main
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- conformal guarantees (numpy)

def test_conformal_sets_hold_the_true_class_at_the_guaranteed_rate():
    """Exchangeable synthetic rows: over many calibration draws the LAC sets cover the true class
    at least 1 - alpha of the time and at most 1 - alpha + 1/(n + 1) (+ Monte-Carlo slack)."""
    rng = np.random.default_rng(0)
    n_cal, n_test, draws, classes = 50, 200, 400, 3
    covered = []
    for _ in range(draws):
        logits = rng.normal(0, 2, size=(n_cal + n_test, classes))
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.array([rng.choice(classes, p=p) for p in probs])   # the truth follows the probabilities
        cal = calibrate("classification", logits[:n_cal], y[:n_cal], 0.9, classes)
        covered.append(coverage_and_size(cal, logits[n_cal:], y[n_cal:], classes)[0])
    mean = float(np.mean(covered))
    assert 0.9 - 0.005 <= mean <= 0.9 + 1 / (n_cal + 1) + 0.005, mean


def test_conformal_intervals_hold_the_true_value_at_the_guaranteed_rate():
    rng = np.random.default_rng(1)
    covered = []
    for _ in range(400):
        x = rng.normal(size=140)
        y = 3 * x + rng.standard_t(3, size=140)                # heavy-tailed noise
        pred = (3 * x)[:, None]
        cal = calibrate("regression", pred[:40], y[:40], 0.8)
        covered.append(coverage_and_size(cal, pred[40:], y[40:])[0])
    assert 0.8 - 0.005 <= float(np.mean(covered)) <= 0.8 + 1 / 41 + 0.005


def test_too_few_calibration_rows_give_everything_and_a_warning():
    assert min_rows(0.1) == 9 and min_rows(0.05) == 19
    assert conformal_quantile(np.arange(8.0), 0.1) == float("inf")
    assert conformal_quantile(np.arange(9.0), 0.1) == 8.0          # rank ceil(10 * 0.9) = 9 -> the largest
    few = Conformal("classification", 0.9, float("inf"), 8)
    assert few.sets(np.array([[0.99, 0.01]])).all()
    assert "Only 8 calibration rows" in few.warning and "at least 9" in few.warning
    assert Conformal("regression", 0.9, 1.0, 9).warning is None
    with pytest.raises(DataError, match="coverage must be between 0 and 1"):
        conformal_quantile(np.arange(9.0), 1.5)


# ---------------------------------------------------------------- counterfactuals (library)

@pytest.fixture(scope="module")
def skin(runs):
    from multimodal.runs.evaluation import evaluate_run, run_dataset
    from multimodal.runs.run import load_run
    run = load_run(runs["skin"][1])
    ds = run_dataset(run)
    return run, ds, evaluate_run(run, ds, keep_inputs=True)


def test_every_reported_edit_changes_the_prediction_and_keeps_locked_features(skin):
    from multimodal.explain.nearest import counterfactual_report, pooled_embeddings
    from multimodal.runs.run import predict, probabilities, run_inputs
    run, ds, ev = skin
    embeddings = pooled_embeddings(run, ev.inputs)
    found = 0
    for row in ev.rows[:12]:
        report = counterfactual_report(run, ds, ev, int(row), ["age", "sex"], embeddings=embeddings)
        edit = report["edit"]
        assert {c["column"] for c in edit["changes"]}.isdisjoint({"age", "sex"})
        if not edit["found"]:
            continue
        found += 1
        edited = ds.frame.iloc[[int(row)]].copy()
        for change in edit["changes"]:
            edited[change["column"]] = edited[change["column"]].astype(object)
            edited.iloc[0, edited.columns.get_loc(change["column"])] = change["after"]
        assert edited[["age", "sex"]].equals(ds.frame.iloc[[int(row)]][["age", "sex"]])
        before = run.classes[int(probabilities(predict(run, run_inputs(run, ds.frame.iloc[[int(row)]], ds.root)), 2)
                                 .argmax())]
        after = run.classes[int(probabilities(predict(run, run_inputs(run, edited, ds.root)), 2).argmax())]
        assert before == report["prediction"] and after == edit["prediction"] != before and edit["verified"]
        near = report["nearest"]
        assert near["prediction"] != before and near["row"] != int(row)
    assert found, "no edit found on any of 12 rows: the test run is too flat to test anything"


def test_regression_edit_moves_the_prediction_or_says_it_cannot(runs):
    from multimodal.explain.nearest import counterfactual_report
    from multimodal.runs.evaluation import evaluate_run, run_dataset
    from multimodal.runs.run import load_run, predict, run_inputs
    run = load_run(runs["house"][1])
    ds = run_dataset(run)
    ev = evaluate_run(run, ds, keep_inputs=True)
    row = int(ev.rows[0])
    report = counterfactual_report(run, ds, ev, row, ["zipcode"], delta=1.0, swap_image=False)
    if report["edit"]["found"]:
        edited = ds.frame.iloc[[row]].copy()
        for change in report["edit"]["changes"]:
            edited[change["column"]] = edited[change["column"]].astype(object)
            edited.iloc[0, edited.columns.get_loc(change["column"])] = change["after"]
        moved = predict(run, run_inputs(run, edited, ds.root))[0, 0] - report["prediction"]
        assert moved >= 1.0 - 1e-3
    with pytest.raises(DataError, match="within their training ranges moves the predicted price"):
        counterfactual_report(run, ds, ev, row, [], delta=1e12, swap_image=False)


# ---------------------------------------------------------------- the CLI

def test_cli_predict_prints_sets_and_whatif_counterfactual(runs, capsys):
    csv, run_dir = runs["skin"]
    code, out, _ = _cli(capsys, "predict", str(run_dir), "--csv", str(csv), "--json")
    rows = json.loads(out.strip().splitlines()[-1])["predictions"]
    assert code == 0 and all(r["uncertainty"]["calibration_rows"] == 24 for r in rows)
    assert all(r["prediction"] in r["uncertainty"]["set"] or not r["uncertainty"]["set"] or
               len(r["uncertainty"]["set"]) == 1 for r in rows)
    code, out, _ = _cli(capsys, "whatif", str(run_dir), "--row", "3", "--counterfactual", "--lock", "age,sex", "--json")
    payload = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and payload["row"] == "id 3" and payload["locked"] == ["age", "sex"]
    assert set(payload) >= {"nearest", "edit", "image_swap", "uncertainty", "prediction"}
    code, out, _ = _cli(capsys, "whatif", str(run_dir), "--row", "3", "--counterfactual")
    assert code == 0 and "smallest edit" in out and "nearest validation row predicted otherwise" in out
    assert "calibrated on 24 val rows" in out


@pytest.mark.parametrize("args, message", [
    (["--row", "9999"], "row id '9999' does not exist"),
    (["--row", "3", "--lock", "age,height"], "'height' are not columns this model reads"),
    (["--row", "3", "--lock", "age,sex,site,family_history"], "every feature is locked"),
])
def test_cli_whatif_bad_input(runs, capsys, args, message):
    code, out, err = _cli(capsys, "whatif", str(runs["skin"][1]), "--counterfactual", *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_cli_whatif_regression_unreachable_no_validation_and_no_image(runs, capsys, tmp_path):
    run_dir = runs["house"][1]
    code, _, err = _cli(capsys, "whatif", str(run_dir), "--row", "1", "--counterfactual", "--change", "1e12")
    assert code == 2 and "moves the predicted price by +1e+12" in err and err.count("\n") == 1
    bare = tmp_path / "no_val"
    shutil.copytree(run_dir, bare)
    config = json.loads((bare / "config.json").read_text())
    config["splits"] = {"train": config["splits"]["train"], "val": [], "test": []}
    (bare / "config.json").write_text(json.dumps(config))
    code, _, err = _cli(capsys, "whatif", str(bare), "--row", "1", "--counterfactual")
    assert code == 2 and "no validation" in err and err.count("\n") == 1
    code, out, err = _cli(capsys, "predict", str(bare), "--csv", str(runs["house"][0]))
    assert code == 0 and "notice: no prediction sets or intervals" in err
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.train.training import train
    tab = tmp_path / "tab"
    train(TrainConfig(data=str(runs["house"][0]), epochs=1, batch_size=8, patience=0,
                      model=ModelConfig(arch="tabular_only", image_size=16)), tab)
    code, _, err = _cli(capsys, "whatif", str(tab), "--row", "1", "--counterfactual", "--swap-image")
    assert code == 2 and "no image branch" in err


# ---------------------------------------------------------------- the pages

def test_whatif_page_shows_the_set_and_applies_the_smallest_edit(runs, tmp_path):
    csv, run_dir = runs["skin"]
    at = open_page("whatif.py", csv, run_dir, tmp_path)
    assert any("90% prediction set" in m.value and "24 calibration rows" in m.value for m in at.markdown)
    at.multiselect(key=f"cf_lock_{tmp_path / 'session' / 'runs' / run_dir.name}").set_value(["age", "sex"]).run()
    next(b for b in at.button if b.label == "Find counterfactuals").click().run()
    assert_clean(at)
    applies = [b for b in at.button if b.label == "Apply this edit"]
    if not applies:
        assert any("No counterfactual within the training range" in i.value for i in at.info)
        return
    table = at.dataframe[0].value
    applies[0].click().run()
    assert_clean(at)
    after = dict(zip(table["feature"], table["after"]))
    shown = {s.label: s.value for s in at.selectbox if s.label in after}
    assert shown == after
    label = next(m.value for m in at.metric if m.label == "Predicted class")
    assert label != "" and not [b for b in at.button if b.label == "Apply this edit"]


def test_results_and_explain_show_uncertainty(runs, tmp_path):
    csv, run_dir = runs["house"]
    at = open_page("results.py", csv, run_dir, tmp_path / "r")
    assert any("Split-conformal" in c.value for c in at.caption)
    assert any("90% interval" in d.value.columns for d in at.dataframe)
    assert any("Only 8 calibration rows" in w.value for w in at.warning)    # 40 rows: 8 validation rows
    at = open_page("explain.py", csv, run_dir, tmp_path / "e")
    assert any("90% prediction interval" in m.value for m in at.markdown)


# ---------------------------------------------------------------- calibration

def test_ece_and_temperature_on_known_arrays():
    from multimodal.runs.calibration import fit_temperature, reliability
    # Two bins hit: 0.9-confident rows right 3 of 4 times, 0.6-confident rows right 2 of 4 times.
    probs = np.array([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 4)
    y = np.array([0, 0, 0, 1, 1, 1, 0, 0])
    rel = reliability(probs, y)
    assert rel.ece == pytest.approx(0.5 * abs(0.75 - 0.9) + 0.5 * abs(0.5 - 0.6))
    assert rel.counts.sum() == 8 and rel.counts[8] == 4 and rel.counts[5] == 4
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4000, 3))
    scaled = np.exp(logits / 2.0)
    y = np.array([rng.choice(3, p=p / p.sum()) for p in scaled])   # the truth follows softmax(logits / 2)
    assert fit_temperature(logits, y, 3) == pytest.approx(2.0, rel=0.1)


def test_results_records_temperature_and_cli_predict_applies_it(runs, tmp_path, capsys):
    csv, run_dir = runs["skin"]
    at = open_page("results.py", csv, run_dir, tmp_path)
    assert any(m.label == "Expected calibration error" for m in at.metric)
    own = tmp_path / "session" / "runs" / run_dir.name
    next(t for t in at.toggle if t.label == "Record temperature scaling in this run").set_value(True).run()
    assert_clean(at)
    recorded = json.loads((own / "calibration.json").read_text())
    assert recorded["fitted_on"] == "val" and recorded["rows"] == 24 and recorded["temperature"] > 0
    code, out, _ = _cli(capsys, "predict", str(own), "--csv", str(csv))
    assert code == 0 and f"T = {recorded['temperature']:.3f}, recorded in the run" in out


# ---------------------------------------------------------------- missing-branch robustness

def test_missing_branch_metrics_equal_explicit_masked_predictions(runs, skin):
    from multimodal.models.assembly import encoders_of, head_of, predict_with_missing, select_inputs
    from multimodal.runs.evaluation import evaluate_run, regression_metrics, run_dataset
    from multimodal.runs.robustness import missing_branch_metrics
    from multimodal.runs.run import load_run, predict, probabilities
    # With modality dropout: the What-if page's missing-branch prediction, row by row.
    run = load_run(runs["house"][1])
    ev = evaluate_run(run, run_dataset(run), keep_inputs=True)
    found = missing_branch_metrics(run, ev)
    assert "modality dropout" in found["how"]
    assert found["both present"] == pytest.approx(regression_metrics(ev.y_true, predict(run, ev.inputs)[:, 0])["mae"],
                                                  rel=1e-4)
    for case, branch in (("image missing", "image"), ("table missing", "tabular")):
        explicit = predict_with_missing(run.model, ev.inputs, {branch: np.ones(len(ev.rows), bool)})
        assert found[case] == pytest.approx(regression_metrics(ev.y_true, explicit[:, 0])["mae"], rel=1e-4)
    # Without: the branch's embedding is the mean of the background rows' embeddings.
    run, _, ev = skin
    found = missing_branch_metrics(run, ev)
    encoders, background = encoders_of(run.model), run.background()
    tabular = np.asarray(encoders["tabular"](select_inputs(encoders["tabular"], ev.inputs), training=False))
    mean_image = np.asarray(encoders["image"]({"images": background["images"]}, training=False)).mean(axis=0)
    emb = {"tabular": tabular, "image": np.repeat(mean_image[None], len(ev.rows), axis=0)}
    explicit = probabilities(np.asarray(head_of(run.model)(emb, training=False)), 2).argmax(axis=1)
    assert found["image missing"] == pytest.approx(float((explicit == ev.y_true).mean()))
    assert "without modality dropout" in found["how"]


def test_results_and_compare_show_missing_branch_metrics(runs, tmp_path):
    csv, run_dir = runs["house"]
    at = open_page("results.py", csv, run_dir, tmp_path / "r")
    labels = [m.label for m in at.metric]
    assert {"MAE · both present", "MAE · image missing", "MAE · table missing"} <= set(labels)
    at = open_page("compare.py", csv, run_dir, tmp_path / "c")
    next(b for b in at.button if b.label == "Measure each run with a branch missing").click().run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "image missing" in d.value.columns)
    assert list(table["run"]) == [run_dir.name] and table["table missing"].notna().all()


def test_whatif_swaps_a_whole_sequence_of_frames(tmp_path):
    """The shipped growth_sequences model (4 frames): the image swap shows and applies every frame."""
    from multimodal.data.sources import SAMPLE_ROOT
    at = open_page("whatif.py", SAMPLE_ROOT / "growth_sequences" / "data.csv",
                   SAMPLE_ROOT / "growth_sequences" / "pretrained" / "cnn_lstm", tmp_path)
    next(b for b in at.button if b.label == "Find counterfactuals").click().run()
    assert_clean(at)
    next(b for b in at.button if b.label == "Use this image").click().run()
    assert_clean(at)
    assert any("image swap applied" in c.value for c in at.caption)
