"""The command line: JSON contract of every command, exit code 2 and one `error:` line for user mistakes."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from multimodal.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "multimodal", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture(scope="module", autouse=True)
def image_cache(tmp_path_factory):
    """The CLI caches decoded images in MULTIMODAL_CACHE_DIR: a temporary folder here, not ~/.cache."""
    folder = tmp_path_factory.mktemp("image_cache")
    saved = os.environ.get("MULTIMODAL_CACHE_DIR")
    os.environ["MULTIMODAL_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        del os.environ["MULTIMODAL_CACHE_DIR"]
    else:
        os.environ["MULTIMODAL_CACHE_DIR"] = saved


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_archs_json_lists_every_method(capsys):
    assert main(["archs", "--json"]) == 0
    archs = {a["name"]: a for a in last_json(capsys.readouterr().out)["archs"]}
    assert {"image_only", "tabular_only", "early_concat", "late_concat", "multiply", "gated", "attention", "film",
            "late_decision", "cnn_lstm", "cnn_rnn_classifier"} <= set(archs)
    assert archs["cnn_lstm"]["branches"] == ["sequence", "tabular"]


def test_samples_json(capsys):
    assert main(["samples", "--json"]) == 0
    samples = {s["name"]: s for s in last_json(capsys.readouterr().out)["samples"]}
    assert samples["skin_lesions"]["task"] == "classification"
    assert samples["house_prices"]["task"] == "regression"


@pytest.fixture(scope="module")
def trained_run(tiny_samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_runs")
    result = run_cli("train", str(tiny_samples["skin_lesions"]), "--epochs", "2", "--batch-size", "8",
                     "--image-size", "16", "--arch", "gated", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return last_json(result.stdout)


def test_train_json_contract(trained_run):
    summary = trained_run
    assert {"run_dir", "arch", "task", "epochs_run", "train_seconds", "samples_per_second", "metrics",
            "history"} <= set(summary)
    assert summary["arch"] == "gated" and summary["task"] == "classification" and summary["epochs_run"] == 2
    assert {"val_loss", "val_accuracy", "val_auc"} <= set(summary["metrics"])
    assert len(summary["history"]["loss"]) == 2 and len(summary["history"]["val_loss"]) == 2
    assert summary["samples_per_second"] > 0
    assert (Path(summary["run_dir"]) / "model.keras").is_file()
    assert summary["replicas"] == 1 and summary["streamed"] is False   # 40 small images: in memory


def test_train_caches_decoded_images_unless_told_not_to(trained_run, tiny_samples, image_cache, tmp_path):
    cached = list(image_cache.glob("*.npy"))
    assert len(cached) == 40                    # one per image of the trained dataset, at 16 px
    assert np.load(cached[0]).shape == (16, 16, 3)
    os.environ["MULTIMODAL_CACHE_DIR"] = str(tmp_path / "unused")
    try:
        result = run_cli("train", str(tiny_samples["skin_lesions"]), "--epochs", "1", "--image-size", "16",
                         "--no-image-cache", "--out", str(tmp_path / "runs"), "--json")
    finally:
        os.environ["MULTIMODAL_CACHE_DIR"] = str(image_cache)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "unused").exists()


def test_predict_csv_and_row(trained_run, tiny_samples, capsys):
    csv = tiny_samples["skin_lesions"]
    assert main(["predict", trained_run["run_dir"], "--csv", str(csv), "--json"]) == 0
    predictions = last_json(capsys.readouterr().out)["predictions"]
    assert len(predictions) == 40 and predictions[3]["row"] == 3
    assert set(predictions[0]["probabilities"]) == {"benign", "malignant"}
    assert predictions[0]["prediction"] in ("benign", "malignant")

    image = str(csv.parent / "images" / sorted((csv.parent / "images").iterdir())[0].name)
    row = json.dumps({"image": image, "age": 61, "sex": "F", "site": "back", "family_history": "yes"})
    assert main(["predict", trained_run["run_dir"], "--row", row, "--json"]) == 0
    [one] = last_json(capsys.readouterr().out)["predictions"]
    assert sum(one["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)


def test_regression_predict_has_no_probabilities(tiny_samples, tmp_path, capsys):
    assert main(["train", str(tiny_samples["house_prices"]), "--epochs", "1", "--image-size", "16",
                 "--arch", "tabular_only", "--out", str(tmp_path), "--json"]) == 0
    summary = last_json(capsys.readouterr().out)
    assert {"val_mae", "val_rmse", "val_mape", "val_r2"} <= set(summary["metrics"])
    assert main(["predict", summary["run_dir"], "--csv", str(tiny_samples["house_prices"]), "--json"]) == 0
    predictions = last_json(capsys.readouterr().out)["predictions"]
    assert "probabilities" not in predictions[0] and isinstance(predictions[0]["prediction"], float)
    # A tabular_only model needs no image: a row without the photo column predicts.
    row = json.dumps({"area_sqft": 1500, "bedrooms": 3, "bathrooms": 2, "zipcode": "98103"})
    assert main(["predict", summary["run_dir"], "--row", row, "--json"]) == 0
    [one] = last_json(capsys.readouterr().out)["predictions"]
    assert one["prediction"] > 0


def bad_zip(tmp_path: Path) -> Path:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data.csv", "image,label\n../x.png,a\n")
        z.writestr("../escape.txt", "gotcha")
    return path


@pytest.mark.parametrize("case,args,needle", [
    ("unknown sample", ["train", "no_such_dataset"], "no_such_dataset"),
    ("unknown arch", ["train", "skin_lesions", "--arch", "resnet_magic"], "resnet_magic"),
    ("bad epochs", ["train", "skin_lesions", "--epochs", "0"], "--epochs"),
    ("unknown target", ["train", "skin_lesions", "--target", "nope"], "nope"),
    ("bad flag", ["train", "skin_lesions", "--frobnicate"], "frobnicate"),
    ("bad devices", ["train", "skin_lesions", "--devices", "0"], "--devices must be at least 1"),
    ("bad dropout", ["train", "skin_lesions", "--dropout", "1.5"], "--dropout: 1.5 is outside 0..0.9"),
    ("not a run", ["predict", ".", "--row", "{}"], "not a run folder"),
])
def test_user_mistakes_exit_2_with_one_error_line(case, args, needle, tmp_path, capsys):
    assert main(args + ["--out", str(tmp_path)] if args[0] == "train" else args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err


def test_zip_with_escaping_member_is_refused_and_writes_nothing_outside(tmp_path):
    before = set(tmp_path.parent.iterdir())
    result = run_cli("train", str(bad_zip(tmp_path)), "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "../escape.txt" in result.stderr
    assert set(tmp_path.parent.iterdir()) == before
    assert not (tmp_path.parent / "escape.txt").exists()


def test_bad_row_json_and_missing_columns(trained_run, capsys):
    assert main(["predict", trained_run["run_dir"], "--row", "{not json"]) == 2
    assert capsys.readouterr().err.startswith("error: --row is not valid JSON")
    assert main(["predict", trained_run["run_dir"], "--row", json.dumps({"age": 3})]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "sex" in err


def test_explain_json_satisfies_efficiency(trained_run, tiny_samples, capsys):
    csv = tiny_samples["skin_lesions"]
    image = str(csv.parent / "images" / sorted((csv.parent / "images").iterdir())[0].name)
    row = json.dumps({"image": image, "age": 61, "sex": "F", "site": "back", "family_history": "yes"})
    assert main(["explain", trained_run["run_dir"], "--row", row, "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert {"output", "base_value", "branches", "interactions", "features", "baseline", "target"} <= set(result)
    assert set(result["branches"]) == {"image", "tabular"}
    assert sum(result["branches"].values()) == pytest.approx(result["output"] - result["base_value"], abs=1e-5)
    assert set(result["features"]) == {"age", "sex", "site", "family_history"}
    assert "background" in result["baseline"]
