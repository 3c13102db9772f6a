"""AppTest tests of the Results, What-if and Explain pages, and of the clear_session guard.

Each page runs on its own (AppTest.from_file on pages/<page>.py) with a seeded session: a tiny
sample dataset and a tiny 1-epoch run inside the session's own runs folder, as the Train page
would leave it. Runs are trained once per module.
"""
from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from multimodal.app import keras_guard
from multimodal.data.dataset import load_dataset
from multimodal.runs.run import load_run, predict, run_inputs

from support.apptest import assert_clean, metric, open_app_page, open_page

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120


def _train(csv: Path, out: Path, arch: str = "late_concat") -> Path:
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.train.training import train
    train(TrainConfig(data=str(csv), epochs=1, batch_size=8, patience=0, model=ModelConfig(arch=arch, image_size=16)),
          out)
    return out


@pytest.fixture(scope="module")
def trained(tiny_samples, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (csv, run folder) for a classification and a regression sample."""
    root = tmp_path_factory.mktemp("runs")
    return {name: (tiny_samples[name], _train(tiny_samples[name], root / name))
            for name in ("skin_lesions", "house_prices")}


# ---------------------------------------------------------------- the clear_session guard

def test_streamlit_cleanup_hook_is_still_the_one_we_neutralise():
    """Fails when Streamlit renames/removes the hook or changes what it cleans: then re-check
    multimodal/app/model_service.py (docs/ARCHITECTURE.md, "The app") before upgrading."""
    from streamlit.runtime.scriptrunner import script_runner


    original = keras_guard.original_hook()
    assert original is not None, "streamlit no longer has script_runner._clean_problem_modules"
    source = inspect.getsource(original)
    assert "clear_session" in source, "Streamlit's hook no longer calls keras clear_session"
    # Our replacement re-implements the rest of the hook: it must not miss a module Streamlit cleans.
    assert set(re.findall(r'"([\w.]+)" in sys\.modules', source)) == {"keras", "matplotlib.pyplot"}
    # The hook is still called after every script and fragment run.
    assert "_clean_problem_modules" in inspect.getsource(script_runner.ScriptRunner._run_script)


def test_guard_is_installed_once_and_keeps_keras_state():
    import keras
    from streamlit.runtime.scriptrunner import script_runner


    assert keras_guard.install_keras_guard() and keras_guard.install_keras_guard()
    assert script_runner._clean_problem_modules is keras_guard._clean_problem_modules_keep_keras
    uid = keras.backend.get_uid("model_service_probe")
    script_runner._clean_problem_modules()           # what Streamlit runs after each rerun
    assert keras.backend.get_uid("model_service_probe") == uid + 1   # clear_session would reset it to 1


# ---------------------------------------------------------------- pages

def test_results_page_classification(trained, tmp_path):
    csv, run_dir = trained["skin_lesions"]
    at = open_page("results.py", csv, run_dir, tmp_path)
    assert metric(at, "Accuracy") and metric(at, "ROC AUC")
    assert len(at.get("plotly_chart")) >= 3          # confusion matrix, ROC, slice bars
    assert len(at.get("image")) >= 1                  # worst errors with their images
    at.selectbox(key="results_slice_col").set_value("age").run()
    assert_clean(at)
    at.button(key="results_global").click().run()    # global explanations on demand
    assert_clean(at)
    assert len(at.get("plotly_chart")) >= 5


def test_results_page_regression(trained, tmp_path):
    csv, run_dir = trained["house_prices"]
    at = open_page("results.py", csv, run_dir, tmp_path)
    assert metric(at, "MAE") and metric(at, "R²")
    assert len(at.get("plotly_chart")) >= 3          # predicted vs actual, residuals, slices


def test_whatif_edit_changes_prediction(trained, tmp_path):
    csv, run_dir = trained["skin_lesions"]
    at = open_page("whatif.py", csv, run_dir, tmp_path)
    before = metric(at, "Explained output")
    age = next(n for n in at.number_input if n.label == "age")
    age.set_value((age.value or 50.0) + 500.0).run()
    assert_clean(at)
    assert metric(at, "Explained output") != before
    assert len(at.get("plotly_chart")) >= 4          # probabilities, waterfall, features, sweep


def test_whatif_regression_and_bad_upload(trained, tmp_path):
    csv, run_dir = trained["house_prices"]
    at = open_page("whatif.py", csv, run_dir, tmp_path)
    before = metric(at, "Predicted price")
    area = next(n for n in at.number_input if n.label == "area_sqft")
    area.set_value(area.value * 20).run()
    assert_clean(at)
    assert metric(at, "Predicted price") != before
    # Other features go missing: the model imputes them.
    next(n for n in at.number_input if n.label == "bathrooms").set_value(None).run()
    assert_clean(at)


def test_whatif_unreadable_upload_shows_an_error_and_keeps_working(trained, tmp_path):
    csv, run_dir = trained["skin_lesions"]
    at = open_page("whatif.py", csv, run_dir, tmp_path)
    uploader = at.get("file_uploader")
    if not uploader or not hasattr(uploader[0], "set_value"):
        pytest.skip("this Streamlit's AppTest cannot drive file_uploader")
    uploader[0].set_value(("broken.png", b"not a png at all", "image/png")).run()
    assert not at.exception
    assert any("could not be read" in e.value for e in at.error)
    # The message names the file the user chose, not where the server stored it.
    assert all("broken.png" in e.value and "uploads" not in e.value for e in at.error), [e.value for e in at.error]
    assert metric(at, "Predicted class")             # the page still predicts (with the row's image)


def test_explain_page_renders(trained, tmp_path):
    csv, run_dir = trained["skin_lesions"]
    at = open_page("explain.py", csv, run_dir, tmp_path)
    assert metric(at, "Output f(x)") and metric(at, "Baseline")
    assert len(at.get("plotly_chart")) >= 2          # waterfall, features
    assert len(at.get("image")) >= 1                  # Grad-CAM overlay
    at.selectbox(key=next(s.key for s in at.selectbox if s.key.startswith("explain_row_"))).select_index(1).run()
    assert_clean(at)


def test_pages_without_runs_explain_what_to_do(tiny_samples, tmp_path):
    at = AppTest.from_file(str(ROOT / "pages" / "results.py"), default_timeout=TIMEOUT)
    at.session_state["session_folder"] = SimpleNamespace(path=tmp_path)
    at.session_state["dataset"] = load_dataset(tiny_samples["skin_lesions"])
    at.run()
    assert_clean(at)
    assert any("Train" in i.value for i in at.info)


# ---------------------------------------------------------------- what a newcomer meets

def test_whatif_clearing_a_number_predicts_with_the_value_imputed(trained, tmp_path):
    csv, run_dir = trained["skin_lesions"]
    at = open_page("whatif.py", csv, run_dir, tmp_path)
    age = next(n for n in at.number_input if n.label == "age")
    # The browser puts a cleared input back to its default: the inputs have none, the row's value
    # comes from session state.
    assert not age.proto.HasField("default") and age.value is not None
    age.set_value(None).run()
    assert_clean(at)
    assert next(n for n in at.number_input if n.label == "age").value is None      # stays cleared
    run, ds = load_run(run_dir), load_dataset(csv)
    row = int(run.config["splits"]["val"][0])
    frame = ds.frame.loc[[row]].copy()
    frame["age"] = float("nan")
    expected = predict(run, run_inputs(run, frame, ds.root))[0, 0]                  # the logit of class 1
    assert metric(at, "Explained output") == f"{expected:.4f}"
    fill = run.config["tabular_stats"]["numeric"]["age"]["fill"]
    assert any("fills in" in c.value and f"age → {fill:.3g}" in c.value for c in at.caption), \
        [c.value for c in at.caption]


def _with_ids(csv: Path, folder: Path, ids: bool) -> Path:
    """A copy of a sample whose id column differs from the row positions (or has no id column)."""
    shutil.copytree(csv.parent, folder)
    frame = pd.read_csv(folder / csv.name)
    if ids:
        frame["id"] = 1000 + 7 * frame.index
    else:
        frame = frame.drop(columns=["id"])
    frame.to_csv(folder / csv.name, index=False)
    return folder / csv.name


@pytest.mark.parametrize("ids", [True, False], ids=["id column", "no id column"])
def test_one_row_identifier_on_data_results_and_explain(trained, tmp_path, ids):
    csv, run_dir = trained["skin_lesions"]
    csv = _with_ids(csv, tmp_path / "data", ids)
    ds = load_dataset(csv)
    names = [f"id {1000 + 7 * i}" if ids else f"row {i + 1}" for i in range(len(ds.frame))]
    first = "id" if ids else "row"

    data = open_app_page("data.py", csv, tmp_path / "s0")
    table = data.dataframe[0].value
    assert table.columns[0] == first and [f"{first} {v}" for v in table[first]] == names[:len(table)]
    grid = [c.value for c in data.caption if " · **" in c.value]
    assert grid and all(c.split(" · ")[0] in names for c in grid), grid

    results = open_page("results.py", csv, run_dir, tmp_path / "s1")
    val_rows = [int(r) for r in load_run(run_dir).config["splits"]["val"]]
    predictions = results.dataframe[-1].value                        # "All validation predictions"
    assert predictions.columns[0] == first and "row" not in predictions.columns[1:]
    assert [f"{first} {v}" for v in predictions[first]] == [names[r] for r in val_rows]
    worst = [c for image in results.get("image") for c in image.captions if " · true " in c]
    assert worst and all(c.split(" · ")[0] in names for c in worst), worst

    explain = open_page("explain.py", csv, run_dir, tmp_path / "s2")
    picker = next(s for s in explain.selectbox if s.key.startswith("explain_row_"))
    assert [o.split(" · ")[0] for o in picker.options] == [names[r] for r in val_rows]


def _session_with_runs(run_dir: Path, session: Path) -> tuple[Path, Path]:
    """A completed run and, trained after it, a better-scoring run the user stopped (partial)."""
    completed, stopped = session / "runs" / "completed", session / "runs" / "stopped"
    shutil.copytree(run_dir, completed)
    shutil.copytree(run_dir, stopped)
    summary = json.loads((stopped / "summary.json").read_text())
    (stopped / "summary.json").write_text(json.dumps({**summary, "status": "stopped", "epochs_run": 1}))
    metrics = json.loads((stopped / "metrics.json").read_text())
    (stopped / "metrics.json").write_text(json.dumps({**metrics, "val_accuracy": 0.99}))
    return completed, stopped


@pytest.mark.parametrize("page", ["results.py", "explain.py", "whatif.py"])
def test_default_run_after_a_stop_is_the_best_completed_one(trained, tmp_path, page):
    csv, run_dir = trained["skin_lesions"]
    completed, stopped = _session_with_runs(run_dir, tmp_path / "s")
    at = open_app_page(page, csv, tmp_path / "s")                     # nothing chosen yet
    picker = next(s for s in at.selectbox if s.label == "Model run")
    assert picker.value == str(completed)
    assert any("Shown by default: the best completed run" in c.value for c in at.caption)
    picker.set_value(str(stopped)).run()                               # a choice is kept and not annotated
    assert next(s for s in at.selectbox if s.label == "Model run").value == str(stopped)
    assert not any("Shown by default" in c.value for c in at.caption)
