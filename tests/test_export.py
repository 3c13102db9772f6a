"""Export and model card: each format's round trip on a small trained model (categorical and numeric
columns and an image) within 1e-4 in its own runtime, the README's example run as written, every
refusal with its message (CLI: exit 2, one `error:` line), no files left by a failed verification, an
imported model exported like any other run, and the card's numbers equal to the run's files."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multimodal.cli import main
from multimodal.core.errors import DataError
from multimodal.data.dataset import load_dataset
from multimodal.runs import export as export_lib
from multimodal.runs import export_formats
from multimodal.runs.headline import METRIC_NAMES, metric_text, recorded_evaluation
from multimodal.runs.run import describe_predictions, load_run, predict, probabilities, run_inputs


@pytest.fixture(scope="module")
def trained(tiny_samples, tmp_path_factory) -> Path:
    """A 1-epoch late_concat run on the tiny skin_lesions sample: age (numeric), sex, site and
    family_history (categorical) and a 16 px image."""
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.train.training import train
    run_dir = tmp_path_factory.mktemp("export") / "run"
    train(TrainConfig(data=str(tiny_samples["skin_lesions"]), epochs=1, batch_size=8, patience=0,
                      model=ModelConfig(arch="late_concat", image_size=16)), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory) -> dict[str, export_lib.ExportResult]:
    """The run exported once in each format through the CLI (model card included)."""
    out, results = tmp_path_factory.mktemp("exports"), {}
    for fmt in export_formats.FORMATS:
        assert main(["export", str(trained), "--format", fmt, "--out", str(out / fmt), "--json"]) == 0
        results[fmt] = out / fmt
    return results


def cli_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("fmt", list(export_formats.FORMATS))
def test_each_format_reloads_in_its_runtime_and_predicts_like_the_keras_model(fmt, trained, exports):
    run, folder = load_run(trained), exports[fmt]
    spec = export_formats.FORMATS[fmt]
    sig = json.loads((folder / "signature.json").read_text())
    expected = {spec.file, "README.md", "signature.json", "model_card.md"} | ({"vocabulary.json"} if fmt == "onnx" else set())
    assert expected <= {p.name for p in folder.iterdir()}
    rows = export_lib.verification_rows(run)
    assert rows.dataset is not None and sig["verified"]["rows"] == len(run.config["splits"]["val"])
    assert 0 <= sig["verified"]["max_difference"] <= 1e-4 and sig["verified"]["measure"] == "probability"
    # Checked again here, independently of export_run: the file in its own runtime, fed by signature names.
    feed = export_formats.export_feed(spec, run.model, rows.inputs)
    assert [i["name"] for i in sig["inputs"]] == list(feed)
    outputs = export_formats.load_exported(spec, folder / spec.file)(feed)
    gap = np.abs(probabilities(outputs, 2) - probabilities(predict(run, rows.inputs), 2)).max()
    assert gap <= 1e-4
    by_name = {i["name"]: i for i in sig["inputs"]}
    categorical = by_name["tabular_categorical_codes" if fmt == "onnx" else "tabular_categorical"]
    assert categorical["columns"] == ["sex", "site", "family_history"]
    assert by_name["tabular_numeric"]["columns"] == ["age"] and by_name["images"]["shape"] == [None, 1, 16, 16, 3]
    assert sig["classes"] == run.classes
    if fmt == "tflite":
        assert export_formats.flex_ops(folder / spec.file) == []      # builtin ops only: runs without Flex
    if fmt == "onnx":
        vocab = json.loads((folder / "vocabulary.json").read_text())["columns"]
        assert vocab["site"] == run.config["tabular_stats"]["categorical"]["site"]


def test_onnx_codes_mark_unseen_categories_zero(trained):
    run = load_run(trained)
    strings = np.array([["F", "never-seen-site", "no"]])
    codes = export_formats.category_codes(run.model, strings)
    vocab = run.config["tabular_stats"]["categorical"]
    assert codes.tolist() == [[vocab["sex"].index("F") + 1, 0, vocab["family_history"].index("no") + 1]]


def test_readme_example_runs_as_written_and_gives_the_models_answer(trained, exports, tiny_samples):
    run, folder = load_run(trained), exports["onnx"]
    source = tiny_samples["skin_lesions"]
    frame = pd.read_csv(source).head(1)
    frame["image"] = [str(source.parent / p) for p in frame["image"]]   # the example opens paths as given
    frame.to_csv(folder / "data.csv", index=False)
    code = re.search(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = float(re.search(r"P\(malignant\) = ([0-9.e-]+)", done.stdout).group(1))
    ds = load_dataset(source)
    expected = describe_predictions(run, predict(run, run_inputs(run, ds.frame.head(1), ds.root)))
    assert printed == pytest.approx(expected[0]["probabilities"]["malignant"], abs=1e-4)


def test_a_failed_verification_is_refused_and_leaves_no_files(trained, tmp_path, monkeypatch):
    run = load_run(trained)
    rows = export_lib.verification_rows(run)
    # A stand-in file whose "runtime" answers 0.5 off in logit: the refusal path, without a conversion.
    monkeypatch.setattr(export_lib, "write_model", lambda fmt, model, path: Path(path).mkdir())
    monkeypatch.setattr(export_lib, "load_exported", lambda fmt, path: (lambda feed: predict(run, rows.inputs) + 0.5))
    with pytest.raises(DataError, match=r"predicts differently from the \.keras model: largest difference .* above 0\.0001"):
        export_lib.export_run(run, "saved_model", tmp_path / "new", rows=rows)
    assert list(tmp_path.iterdir()) == []      # neither the folder nor its staging copy
    kept = tmp_path / "old"
    kept.mkdir()
    (kept / "mine.txt").write_text("keep me")
    with pytest.raises(DataError):
        export_lib.export_run(run, "saved_model", kept, rows=rows, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["old"] and (kept / "mine.txt").read_text() == "keep me"


def test_bad_input_gets_one_error_line(trained, tmp_path, capsys):
    assert "is not a run folder" in cli_error(capsys, ["export", str(tmp_path), "--format", "onnx", "--out", "x"])
    no_model = tmp_path / "no_model"
    no_model.mkdir()
    shutil.copy(trained / "config.json", no_model)
    assert "has no model.keras" in cli_error(capsys, ["export", str(no_model), "--format", "onnx", "--out", "x"])
    damaged = tmp_path / "damaged"
    shutil.copytree(trained, damaged)
    (damaged / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    assert "could not be loaded" in cli_error(capsys, ["card", str(damaged)])
    assert "unknown export format 'pmml'; choose one of saved_model, tflite, onnx" in cli_error(
        capsys, ["export", str(trained), "--format", "pmml", "--out", str(tmp_path / "x")])
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    message = cli_error(capsys, ["export", str(trained), "--format", "saved_model", "--out", str(full)])
    assert "exists and is not empty" in message and "--force" in message
    assert (full / "notes.txt").read_text() == "mine"


def test_a_format_whose_runtime_is_missing_is_refused_by_name(trained, tmp_path, capsys, monkeypatch):
    real = export_formats.importlib.util.find_spec
    monkeypatch.setattr(export_formats.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    message = cli_error(capsys, ["export", str(trained), "--format", "onnx", "--out", str(tmp_path / "o")])
    assert "needs the Python package(s) onnxruntime, which are not installed" in message
    assert not (tmp_path / "o").exists()


def test_onnx_refuses_a_model_reading_strings_another_way_and_names_the_layer():
    import keras
    text = keras.Input((1,), dtype="string", name="col_city")
    codes = keras.layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot", name="city_lookup")(text)
    model = keras.Model(text, keras.layers.Dense(1)(codes))
    with pytest.raises(DataError, match=r"layer 'city_lookup' \(StringLookup\) reads the string input 'col_city'"):
        export_formats.check_onnx_inputs(model)


def test_an_imported_model_exports_like_any_other_run(trained, tiny_samples, tmp_path):
    from multimodal.runs.importing import import_model
    ds = load_dataset(tiny_samples["skin_lesions"])
    run = import_model(trained / "model.keras", ds, tmp_path / "runs", name="theirs.keras")
    result = export_lib.export_run(run, "onnx", tmp_path / "out", rows=export_lib.verification_rows(run, ds))
    assert result.max_difference <= 1e-4 and (tmp_path / "out" / "model.onnx").is_file()


def test_the_card_reads_its_numbers_from_the_run_files(trained, tmp_path, capsys, tiny_samples):
    run = load_run(trained)
    assert main(["card", str(trained), "--out", str(tmp_path / "card.md")]) == 0
    card = (tmp_path / "card.md").read_text()
    record = recorded_evaluation(trained)          # the headline metrics' one home, as Results shows them
    for key, value in record["metrics"].items():
        assert f"- {METRIC_NAMES[key]}: {metric_text(value)}" in card
    assert "val_loss" not in card
    splits = run.config["splits"]
    assert f"Rows: {len(splits['train'])} train, {len(splits['val'])} val" in card
    labels = pd.read_csv(tiny_samples["skin_lesions"])["diagnosis"].astype(str).to_numpy()
    train = labels[splits["train"]]
    assert (f"malignant {(labels == 'malignant').sum()} / {(train == 'malignant').sum()}") in card
    assert f"- epochs run: {run.summary['epochs_run']}" in card and "A teaching model" in card
    assert "small data: " in card and "No cross-validated comparison" in card
    assert re.search(r"- image: [0-9.e+-]+\n- tabular: [0-9.e+-]+", card)

    # A comparison of the same data beside the run: its means, spreads and verdict appear as written.
    folds = [{"metrics": {"accuracy": v}} for v in (0.5, 0.75, 0.625)]
    verdict = "+0.042 (95% CI -0.100 to +0.184) over 3 folds: NO_DIFFERENCE"
    comparison = {"dataset": run.config["dataset_name"], "target": run.config["target"], "metric": "accuracy",
                  "k": 3, "repeats": 1, "results": {
                      "late_concat": {"mean": {"accuracy": 0.625}, "std": {"accuracy": 0.125}, "folds": folds},
                      "image_only": {"mean": {"accuracy": 0.5833}, "std": {"accuracy": 0.1443}, "folds": folds}},
                  "gain": {"best_baseline": "image_only", "methods": [{"arch": "late_concat", "sentence": verdict}]}}
    (trained.parent / "cmp").mkdir()
    (trained.parent / "cmp" / "comparison.json").write_text(json.dumps(comparison))
    assert main(["card", str(trained), "--json"]) == 0
    card = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["card"]
    assert "- late_concat (this model): 0.625 ± 0.125 (folds 0.5 to 0.75)" in card
    assert "- image_only: 0.583 ± 0.144" in card
    assert f"Verdict against the best baseline (image_only): {verdict}." in card
