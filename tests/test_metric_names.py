"""One number, one definition, and no choice ignored without a word (issue 31, items 1 and 2): the run
picker's label and Compare's run table show the evaluation record's numbers under the record's names,
and Keras' own values only under Keras' names; an explicit --arch that reads no images, given with an
explicit image choice, exits 2 with one `error:` line before anything is trained, and the Model page
shows the same sentence as a warning while keeping the user's method."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from multimodal.app import figures
from multimodal.app.run_picker import default_note, run_label
from multimodal.app.run_table import KERAS_LOSS, runs_frame
from multimodal.cli.common import UsageError
from multimodal.cli.parser import build_parser
from multimodal.cli.train import train_config_from_args
from multimodal.data.dataset import load_dataset
from multimodal.models.fusion import FUSION_METHODS, methods_for
from multimodal.models.proposal import unused_image_choice
from multimodal.runs.headline import EVALUATION_FILE, KERAS_NAMES, METRIC_NAMES, metric_text, recorded_evaluation
from multimodal.runs.run import load_run

from support.apptest import assert_clean, open_app_page

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED = ROOT / "sample_data"
READERS = [n for n, m in FUSION_METHODS.items() if m.reads_images]


def _copy(sample: str, arch: str, folder: Path, keras: dict, record: bool = True) -> Path:
    """A shipped run copied into `folder` (a session's own run), its Keras metrics.json values
    replaced by `keras` so they differ from its evaluation record; without the record when not `record`."""
    run_dir = folder / f"{sample}-{arch}{'' if record else '-no-record'}"
    shutil.copytree(PRETRAINED / sample / "pretrained" / arch, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, **keras}))
    if not record:
        (run_dir / EVALUATION_FILE).unlink()
    return run_dir


@pytest.fixture
def runs(tmp_path) -> dict[str, Path]:
    return {"classification": _copy("skin_lesions", "late_concat", tmp_path, {"val_accuracy": 0.5, "val_loss": 9.25}),
            "keras only": _copy("skin_lesions", "late_concat", tmp_path, {"val_accuracy": 0.5}, record=False),
            "regression": _copy("house_prices", "late_concat", tmp_path, {"val_mae": 1234.5})}


def test_the_run_picker_label_shows_the_record_under_its_name(runs):
    record = recorded_evaluation(runs["classification"])["metrics"]
    label = run_label(runs["classification"])
    assert f" · {METRIC_NAMES['accuracy']} {metric_text(record['accuracy'])}" in label   # "Accuracy 0.792"
    assert metric_text(record["accuracy"]) == "0.792" and "0.5" not in label and "val_accuracy" not in label
    regression = recorded_evaluation(runs["regression"])["metrics"]
    assert f" · MAE {metric_text(regression['mae'])}" in run_label(runs["regression"])    # "MAE 59,441"
    assert "1,234" not in run_label(runs["regression"]) and "1234" not in run_label(runs["regression"])
    # A run without a record shows Keras' value, named as Keras'; never under the record's name.
    keras = run_label(runs["keras only"])
    assert " · val accuracy (Keras) 0.5" in keras and "Accuracy" not in keras


def test_the_run_table_names_each_quantity_and_the_record_is_its_main_metric(runs):
    frame = runs_frame([load_run(runs[k]) for k in ("classification", "keras only", "regression")])
    classification, keras, regression = frame.to_dict("records")
    record = recorded_evaluation(runs["classification"])["metrics"]
    assert (classification["main metric"], classification["value"]) == ("Accuracy", metric_text(record["accuracy"]))
    assert (keras["main metric"], keras["value"]) == ("val accuracy (Keras)", "0.5")
    assert (regression["main metric"], regression["value"]) == (
        "MAE", metric_text(recorded_evaluation(runs["regression"])["metrics"]["mae"]))
    # Keras' loss keeps its number, under the name the Train page's curves give it.
    assert KERAS_LOSS == f"val {KERAS_NAMES['loss']}" == "val loss (incl. L2 penalty)"
    assert classification[KERAS_LOSS] == "9.2500" and "val loss" not in frame.columns
    assert not frame.isna().any().any() and "None" not in frame.astype(str).to_numpy()


def test_the_default_run_note_names_the_method_and_how_it_was_ranked(runs):
    note = default_note(load_run(runs["classification"]))
    assert note.startswith("Shown by default: the best completed run on this dataset, late_concat (")
    assert "by validation accuracy" in note


def test_comparison_charts_name_keras_auc_as_keras(runs):
    run = load_run(runs["classification"])
    run.history["val_auc"] = 0.7
    overlay = figures.overlay_curves([run], "auc")
    bars = figures.cv_bars([{"arch": "late_concat", "mean": 0.8, "std": 0.01, "folds": [0.79, 0.81]}], "auc")
    for fig in (overlay, bars):
        title = fig.layout.yaxis.title.text
        assert title.endswith(KERAS_NAMES["auc"]) and "ROC AUC" not in title, title
    assert figures.overlay_curves([run], "loss").layout.yaxis.title.text == "validation loss (incl. L2 penalty)"


def _args(*flags: str):
    return build_parser().parse_args(["train", *flags])


def test_an_explicit_arch_that_reads_no_images_refuses_an_image_choice_before_reading_data(tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n")
    missing = str(tmp_path / "no_such_data.csv")           # never read: the flags are refused first
    with pytest.raises(UsageError) as err:
        train_config_from_args(_args(missing, "--arch", "linear", "--image-cols", "photo"))
    assert str(err.value) == unused_image_choice("--arch linear", "--image-cols photo", READERS)
    assert str(err.value).startswith("--arch linear reads no images, so --image-cols photo would be unused; drop it or "
                                     "pick a method that reads images (image_only, ")
    # the same method without an image choice, and an image method with one, are fine
    assert train_config_from_args(_args(missing, "--arch", "tabular_only")).model.arch == "tabular_only"
    assert train_config_from_args(_args(missing, "--arch", "late_concat", "--encoder", "mobilenet_v2",
                                        "--encoder-weights", str(weights))).model.encoder == "mobilenet_v2"


def test_the_cli_exits_2_with_one_error_line_and_trains_nothing(tmp_path):
    weights, out = tmp_path / "w.h5", tmp_path / "runs"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n")
    done = subprocess.run([sys.executable, "-m", "multimodal", "train", "skin_lesions", "--arch", "tabular_only",
                           "--encoder", "mobilenet_v2", "--encoder-weights", str(weights), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2, done.stderr
    expected = ("error: --arch tabular_only reads no images, so --encoder mobilenet_v2 and --encoder-weights w.h5 "
                f"would be unused; drop them or pick a method that reads images ({', '.join(READERS)})")
    assert done.stderr.strip().splitlines() == [expected]
    assert done.stdout == "" and not out.exists()          # no run folder: nothing was trained


def test_the_model_page_warns_with_the_same_sentence_and_keeps_the_method(tiny_samples, tmp_path):
    at = open_app_page("model.py", tiny_samples["skin_lesions"], tmp_path / "s",
                       m_arch="tabular_only", m_encoder="mobilenet_v2")
    spec = load_dataset(tiny_samples["skin_lesions"]).features
    readers = [n for n in methods_for(bool(spec.image_cols), bool(spec.tabular_cols), len(spec.image_cols))
               if n in READERS]                        # the methods this data allows that read images
    sentence = next(str(w.value) for w in at.warning if "reads no images" in str(w.value))
    assert sentence.startswith("tabular_only reads no images, so the MobileNetV2 encoder would be unused; drop it or "
                               "pick a method that reads images (")
    assert sentence == unused_image_choice("tabular_only", "the MobileNetV2 encoder", readers) + "."
    assert at.session_state["m_arch"] == "tabular_only" and at.session_state["m_encoder"] == "mobilenet_v2"
    next(b for b in at.button if b.label == "Drop it").click().run()
    assert_clean(at)
    assert at.session_state["m_encoder"] == "small_cnn" and at.session_state["m_arch"] == "tabular_only"
    assert not any("reads no images" in str(w.value) for w in at.warning)
