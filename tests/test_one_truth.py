"""One number, one definition (issue 31): a run's headline metrics are its evaluation record, and the
Train tiles, Results, the model card and the CLI show the same numbers from it with the same names
and rounding; Keras' training-time values are named as such on the curves; an applied counterfactual
edit is rounded to its column's precision; the branch chart's axis holds 0; What-if asks for images
the way the columns were declared."""
from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from multimodal.app import figures
from multimodal.app.counterfactual_view import applied_value, column_decimals, rounded_edit
from multimodal.cli import main
from multimodal.cli.train import metrics_text
from multimodal.data.dataset import load_dataset
from multimodal.runs.evaluation import evaluate_run
from multimodal.runs.headline import EVALUATION_FILE, METRIC_NAMES, headline_metrics, metric_text, recorded_evaluation
from multimodal.runs.run import load_run

from support.apptest import assert_clean, metric, open_page

TIMEOUT = 120


@pytest.fixture(scope="module")
def cli_run(tiny_samples, tmp_path_factory) -> tuple[Path, dict]:
    """(csv, the CLI's --json summary) of one tiny 2-epoch run trained through `train`."""
    cache, saved = tmp_path_factory.mktemp("cache"), os.environ.get("MULTIMODAL_CACHE_DIR")
    os.environ["MULTIMODAL_CACHE_DIR"] = str(cache)
    csv = tiny_samples["skin_lesions"]
    out, stdout = tmp_path_factory.mktemp("one_truth"), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            code = main(["train", str(csv), "--epochs", "2", "--batch-size", "8", "--image-size", "16",
                         "--arch", "late_concat", "--out", str(out), "--json"])
    finally:
        if saved is None:
            del os.environ["MULTIMODAL_CACHE_DIR"]
        else:
            os.environ["MULTIMODAL_CACHE_DIR"] = saved
    assert code == 0
    return csv, json.loads(stdout.getvalue().strip().splitlines()[-1])


def test_training_writes_the_record_and_the_cli_prints_it(cli_run):
    csv, summary = cli_run
    run_dir = Path(summary["run_dir"])
    record = recorded_evaluation(run_dir)
    assert (run_dir / EVALUATION_FILE).is_file() and record == summary["evaluation"]
    # The record is the run's evaluation on its validation rows (exact ROC AUC, log loss), not Keras'.
    ev = evaluate_run(load_run(run_dir), load_dataset(csv))
    assert record["rows"] == len(ev.rows) == len(load_run(run_dir).config["splits"]["val"])
    for name in ("log_loss", "auc", "accuracy"):
        assert record["metrics"][name] == pytest.approx(ev.metrics[name], abs=1e-5)
    # Keras' val_loss includes the L2 penalty: another quantity, which the headline does not show.
    assert summary["metrics"]["val_loss"] != pytest.approx(record["metrics"]["log_loss"], abs=1e-4)
    text = metrics_text(summary)
    first, keras = text.splitlines()
    assert f"best epoch {summary['best_epoch']} of 2" in first
    assert f"Log loss {metric_text(record['metrics']['log_loss'])}" in first
    assert f"ROC AUC {metric_text(record['metrics']['auc'])}" in first
    assert "val_loss" not in first and "L2 penalty" in keras and "val_loss=" in keras


def test_card_results_and_train_tiles_show_the_records_numbers(cli_run, tmp_path):
    csv, summary = cli_run
    run_dir = Path(summary["run_dir"])
    record = recorded_evaluation(run_dir)
    shown = {METRIC_NAMES[k]: metric_text(v) for k, v in record["metrics"].items()}

    card_file = tmp_path / "card.md"
    assert main(["card", str(run_dir), "--out", str(card_file)]) == 0
    card = card_file.read_text()
    for name, value in shown.items():
        assert f"- {name}: {value}" in card
    assert "val_loss" not in card and f"best epoch {summary['best_epoch']} of 2" in card
    # The Source line names the file, never the folder it sat in on the machine that trained it.
    assert "- Source: 'data.csv' (dataset 'skin_lesions')" in card and str(csv.parent) not in card
    # What a missing branch does is what Results' robustness section measures, not "cannot predict".
    assert "cannot predict" not in card
    limits = next(line for line in card.splitlines() if line.startswith("- a missing branch:"))
    assert "mean background embedding" in limits and "image missing" in limits and "table missing" in limits

    at = open_page("results.py", csv, run_dir, tmp_path)
    assert_clean(at)
    for name in ("Log loss", "ROC AUC", "Accuracy"):
        assert metric(at, name) == shown[name]
    assert any(f"best epoch {summary['best_epoch']} of 2" in c.value for c in at.caption)

    at = AppTest.from_function(_outcome, args=(str(run_dir),), default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric} == shown
    assert any(f"Best epoch {summary['best_epoch']} of 2 (the weights the model keeps)" in c.value
               for c in at.caption)


def _outcome(run_dir: str) -> None:
    """The Train page's tiles of an ended training (AppTest runs this body as a script)."""
    from pathlib import Path
    from types import SimpleNamespace

    from multimodal.app import training_view
    from multimodal.train.progress import Progress

    progress = Progress(epochs=2, end={"status": "completed", "epochs_run": 2, "metrics": {"val_loss": 9.0}})
    job = SimpleNamespace(progress=lambda: progress, config={"task": "classification"}, run_dir=Path(run_dir))
    training_view.outcome_view(job)


def test_a_run_without_a_record_gets_it_once(cli_run, tmp_path):
    csv, summary = cli_run
    run_dir = Path(summary["run_dir"])
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in run_dir.iterdir():
        if f.is_file() and f.name != EVALUATION_FILE:
            (copy / f.name).write_bytes(f.read_bytes())
    record = headline_metrics(load_run(copy), load_dataset(csv))
    assert (copy / EVALUATION_FILE).is_file()
    assert record["metrics"] == pytest.approx(recorded_evaluation(run_dir)["metrics"], abs=1e-5)


def test_curves_name_keras_values_and_mark_the_best_epoch():
    points = [{"x": e, "loss": 1 / e, "val_loss": [0.9, 0.7, 0.8][e - 1], "auc": 0.6, "val_auc": 0.55}
              for e in (1, 2, 3)]
    fig = figures.training_curves(points, points, "auc", "cross-entropy", 3, best_epoch=2)
    names = {t.name for t in fig.data}
    assert {"val loss (incl. L2 penalty)", "val AUC (Keras, approximate)"} <= names
    assert fig.layout.yaxis.title.text == "loss (incl. L2 penalty)"
    assert fig.layout.yaxis2.title.text == "AUC (Keras, approximate)"
    lines = [s for s in fig.layout.shapes if s.x0 == 2 and s.x1 == 2]
    assert len(lines) == 2                                           # on both panels
    assert sum(a.text == "best epoch 2" for a in fig.layout.annotations) == 2
    no_l2 = figures.training_curves(points, points, "auc", "cross-entropy", 3, l2_penalty=False)
    assert "val loss" in {t.name for t in no_l2.data} and not no_l2.layout.shapes


def test_an_applied_edit_has_the_columns_precision():
    assert column_decimals(pd.Series([0.73, 0.5, 1.0, None])) == 2
    assert column_decimals(pd.Series([3, 40, 12])) == 0
    assert rounded_edit(0.7287826086956521, 0.5, 2) == 0.73         # away from the row's own value ...
    assert rounded_edit(0.7287826086956521, 0.9, 2) == 0.72         # ... so the edit stays as large
    assert applied_value({"column": "site", "before": "arm", "after": "leg"}, {"age": 1}) == "leg"
    at = AppTest.from_function(_apply_edit, default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert at.session_state["ed_age"] == 54.3 and at.session_state["ed_site"] == "leg"
    assert repr(at.session_state["ed_age"]) == "54.3"


def _apply_edit() -> None:
    """Press "Apply this edit" (its callback) for an edit found at full float precision."""
    import streamlit as st

    from multimodal.app.counterfactual_view import _apply
    if "ed_age" not in st.session_state:
        _apply("ed", [{"column": "age", "before": 50.0, "after": 54.28787826086956},
                      {"column": "site", "before": "arm", "after": "leg"}], {"age": 1}, ("run", 1))


@pytest.mark.parametrize("base, branches, output", [(2.0, {"image": 0.5, "tabular": 0.3}, 2.8),
                                                    (-3.0, {"image": -0.4, "tabular": 0.1}, -3.3)])
def test_the_branch_chart_axis_holds_zero(base, branches, output):
    fig = figures.waterfall_figure({"base_value": base, "branches": branches, "output": output}, "logit")
    lo, hi = fig.layout.yaxis.range
    values = np.cumsum([base, *branches.values()])
    assert lo < 0 < hi and lo < values.min() and hi > values.max()


def _uploaders(ordered: bool, columns: list[str]) -> None:
    from types import SimpleNamespace

    from multimodal.app import whatif
    run = SimpleNamespace(input_spec=SimpleNamespace(image_cols=columns), config={"ordered_images": ordered})
    whatif.image_upload(run, "up")


@pytest.mark.parametrize("ordered, labels", [
    (False, ["image for 'axial'", "image for 'coronal'", "image for 'sagittal'"]),
    (True, ["…or upload 3 images (in frame order: axial, coronal, sagittal)"])])
def test_whatif_asks_for_images_as_the_columns_are_declared(ordered, labels):
    at = AppTest.from_function(_uploaders, args=(ordered, ["axial", "coronal", "sagittal"]),
                               default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert [u.proto.label for u in at.get("file_uploader")] == labels
    assert any("one image per column" in m.value for m in at.markdown) != ordered
