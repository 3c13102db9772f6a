"""Importing an uploaded .keras model: a real tiny run's model becomes a run folder with metrics;
Lambda layers, non-models, truncated files and models for other columns are refused clearly;
and the Results page's uploader shows the refusal as st.error and keeps working."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from multimodal.core.errors import DataError
from multimodal.data.dataset import load_dataset
from multimodal.models.assembly import raw_input_names
from multimodal.runs import importing
from multimodal.runs import run as runs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tiny_samples, tmp_path_factory) -> tuple[Path, Path]:
    """(csv, run folder) of a 1-epoch late_concat run on the tiny skin_lesions sample."""
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.train.training import train
    csv, run_dir = tiny_samples["skin_lesions"], tmp_path_factory.mktemp("import") / "run"
    train(TrainConfig(data=str(csv), epochs=1, batch_size=8, patience=0,
                      model=ModelConfig(arch="late_concat", image_size=16)), run_dir)
    return csv, run_dir


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory) -> Path:
    """A functional model with a keras.layers.Lambda, saved with model.save."""
    import keras
    inp = keras.Input((1,), name="col_age")
    out = keras.layers.Dense(1)(keras.layers.Lambda(lambda x: x * 2.0, name="double")(inp))
    path = tmp_path_factory.mktemp("lambda") / "sneaky.keras"
    keras.Model(inp, out).save(path)
    return path


def refused(path: Path, dataset, run_root: Path, name: str | None = None) -> str:
    with pytest.raises(DataError) as info:
        importing.import_model(path, dataset, run_root, name=name)
    assert not list(run_root.glob("*")), "a refused model must leave no run folder"
    return str(info.value)


def test_a_trained_model_becomes_a_run_with_metrics(trained, tmp_path):
    csv, run_dir = trained
    ds = load_dataset(csv)
    run = importing.import_model(run_dir / runs.MODEL_FILE, ds, tmp_path / "runs", name="my-model.keras")
    assert run.dir.parent == tmp_path / "runs" and runs.is_run_dir(run.dir)
    assert run.config["imported"] is True and run.config["source_file"] == "my-model.keras"
    assert run.arch == "late_concat" and run.image_size == 16 and run.task == "classification"
    assert run.classes == ds.classes and run.config["target"] == ds.target
    original = runs.load_run(run_dir)
    assert run.spec == original.spec                     # same columns, same numeric/categorical split
    # Evaluated on the same seeded validation rows the trainer used, so the metrics agree.
    assert run.config["splits"]["val"] == original.config["splits"]["val"]
    for key in ("val_loss", "val_accuracy", "val_auc"):
        assert run.metrics[key] == pytest.approx(original.metrics[key], abs=1e-4), key
    assert json.loads((run.dir / "metrics.json").read_text()) == run.metrics
    background = run.background()
    assert set(background) == set(raw_input_names(run.model)) == \
        {"images", "col_age", "col_site", "col_family_history", "col_sex"}
    assert len(background["images"]) == min(runs.BACKGROUND_ROWS, len(run.config["splits"]["train"]))
    # The copy predicts exactly like the original model.
    inputs = runs.run_inputs(run, ds.frame.iloc[:4], ds.root)
    np.testing.assert_allclose(runs.predict(run, inputs), runs.predict(original, inputs), atol=1e-5)


def test_lambda_layer_is_refused_for_safety(lambda_model, tiny_samples, tmp_path):
    message = refused(lambda_model, load_dataset(tiny_samples["skin_lesions"]), tmp_path)
    assert "Lambda" in message and "refused for safety" in message and "sneaky.keras" in message
    # Loading it directly (any run folder) goes through Keras safe mode, which refuses it too.
    with pytest.raises(DataError, match="Lambda layer"):
        runs.load_model_file(lambda_model)


def test_files_that_are_not_models_are_refused(trained, tmp_path):
    csv, run_dir = trained
    ds = load_dataset(csv)
    text = tmp_path / "x.keras"
    text.write_text("this is not a model\n")
    assert "'x.keras' is not a Keras .keras model (it is not a zip archive)" in refused(text, ds, tmp_path / "r")

    png = tmp_path / "photo.keras"
    shutil.copy(next((csv.parent / "images").glob("*.png")), png)
    assert "(it is a PNG image)" in refused(png, ds, tmp_path / "r")

    whole = (run_dir / runs.MODEL_FILE).read_bytes()
    half = tmp_path / "half.keras"
    half.write_bytes(whole[: len(whole) // 2])
    assert "'half.keras' is truncated or damaged" in refused(half, ds, tmp_path / "r")

    import zipfile
    other_zip = tmp_path / "data.keras"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "hello")
    assert "zip archive but not a Keras model (no config.json or model.weights.h5" in refused(other_zip, ds,
                                                                                             tmp_path / "r")


def test_size_limit(trained, tmp_path, monkeypatch):
    csv, run_dir = trained
    monkeypatch.setattr(importing, "max_model_bytes", lambda: 1000)
    assert "(limit 0 MB)" in refused(run_dir / runs.MODEL_FILE, load_dataset(csv), tmp_path / "r", name="big.keras")


def test_a_model_for_other_columns_names_them(trained, tmp_path):
    """The same images and target, but 'age' and 'site' renamed: the message names the two the model needs."""
    csv, run_dir = trained
    frame = pd.read_csv(csv).rename(columns={"age": "age_years", "site": "body_site"})
    other = csv.parent / "renamed.csv"
    frame.to_csv(other, index=False)
    message = refused(run_dir / runs.MODEL_FILE, load_dataset(other), tmp_path / "r")
    assert "reads column(s) " in message and "'age'" in message and "'site'" in message and "does not have" in message


def test_a_model_for_another_task_is_refused(trained, tiny_samples, tmp_path):
    """A classifier (1 logit) on house prices (a regression) and on a 2-image sequence dataset."""
    _, run_dir = trained
    house = load_dataset(tiny_samples["house_prices"])
    frame = house.frame.rename(columns={"area_sqft": "age", "zipcode": "site", "bedrooms": "sex",
                                        "bathrooms": "family_history", "photo": "image"})
    renamed = house.csv_path.parent / "like_skin.csv"
    frame.to_csv(renamed, index=False)
    message = refused(run_dir / runs.MODEL_FILE, load_dataset(renamed, target="price"), tmp_path / "r")
    assert "is a regression of 'price'" in message


# ---------------------------------------------------------------- the Results page uploader

def test_results_page_shows_the_refusal_and_keeps_working(trained, lambda_model, tmp_path):
    from streamlit.testing.v1 import AppTest

    from support.apptest import assert_clean
    csv, run_dir = trained
    session = tmp_path / "session"
    shutil.copytree(run_dir, session / "runs" / run_dir.name)
    at = AppTest.from_file(str(ROOT / "pages" / "results.py"), default_timeout=120)
    at.session_state["session_folder"] = SimpleNamespace(path=session)
    at.session_state["dataset"] = load_dataset(csv)
    at.session_state["dataset_source"] = str(csv)
    at.run()
    assert_clean(at)
    uploader = at.get("file_uploader")
    if not uploader or not hasattr(uploader[0], "set_value"):
        pytest.skip("this Streamlit's AppTest cannot drive file_uploader")
    uploader[0].set_value(("sneaky.keras", lambda_model.read_bytes(), "application/octet-stream")).run()
    assert not at.exception
    assert any("Lambda" in e.value and "refused for safety" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert [p.name for p in (session / "runs").iterdir()] == [run_dir.name]    # no imported run
    assert all(p.is_relative_to(session) for p in session.rglob("*.keras"))
    assert any(m.label == "Accuracy" for m in at.metric)                        # the page still works

    uploader = at.get("file_uploader")
    uploader[0].set_value(("mine.keras", (run_dir / runs.MODEL_FILE).read_bytes(),
                           "application/octet-stream")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    imported = [p for p in (session / "runs").iterdir() if "-imported_" in p.name]
    assert len(imported) == 1 and at.session_state["selected_run"] == str(imported[0])
    assert any("mine.keras" in s.value for s in at.success)
