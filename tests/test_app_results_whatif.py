"""AppTest tests of the Results, What-if and Explain pages, and of the clear_session guard.

Each page runs on its own (AppTest.from_file on pages/<page>.py) with a seeded session: a tiny
sample dataset and a tiny 1-epoch run inside the session's own runs folder, as the Train page
would leave it. Runs are trained once per module.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from multimodal.data.dataset import load_dataset

from support.apptest import assert_clean, metric, open_page

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
    multimodal/app/model_service.py (docs/ARCHITECTURE.md, "Why a process, not a thread") before upgrading."""
    from streamlit.runtime.scriptrunner import script_runner

    from multimodal.app import model_service

    original = model_service.original_hook()
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

    from multimodal.app import model_service

    assert model_service.install_keras_guard() and model_service.install_keras_guard()
    assert script_runner._clean_problem_modules is model_service._clean_problem_modules_keep_keras
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
