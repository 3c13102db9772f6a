"""What a new setup starts from, the same in the CLI and the app: the proposed method (several images
are a sequence only when marked ordered) and the training settings chosen from the data size."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from multimodal.cli import main
from multimodal.core.config import SMALL_DATA_ROWS, ModelConfig, TrainConfig, auto_epochs, small_data_settings, with_auto_settings
from multimodal.core.errors import DataError
from multimodal.data.inputs import FeatureSpec
from multimodal.models.fusion import FUSION_METHODS, methods_for
from multimodal.models.proposal import DEFAULT_FUSION, IMAGE_PATH, SEQUENCE_FUSION, TABULAR_PATH, propose_method


def spec(images: int, table: int, ordered: bool = False) -> FeatureSpec:
    return FeatureSpec([f"view_{i}" for i in range(images)], [f"x_{i}" for i in range(table)], [], ordered)


@pytest.mark.parametrize("ordered", [False, True])
def test_no_images_is_the_tabular_path(ordered):
    p = propose_method(spec(0, 7, ordered))
    assert p.arch == "tabular_only"
    assert p.reason == "no image columns: the 7 table columns alone, by tabular_only"


@pytest.mark.parametrize("ordered", [False, True])
def test_one_image_and_a_table_is_the_default_fusion(ordered):
    p = propose_method(spec(1, 7, ordered))
    assert p.arch == "late_concat"
    assert p.reason == "1 image column and 7 table columns: fused by late_concat"


def test_unordered_images_are_averaged_views():
    p = propose_method(spec(3, 7))
    assert p.arch == "late_concat"
    assert p.reason == "3 image columns, unordered: averaged by one shared CNN, fused with 7 table columns by late_concat"


def test_ordered_images_are_a_sequence():
    p = propose_method(spec(4, 7, ordered=True))
    assert p.arch == "cnn_lstm"
    assert p.reason.startswith("4 image columns marked ordered: read as a sequence by cnn_lstm")


def test_images_without_a_table():
    assert propose_method(spec(1, 0)).arch == "image_only"
    unordered = propose_method(spec(3, 0))
    assert unordered.arch == "image_only" and "unordered" in unordered.reason and "averaged" in unordered.reason
    ordered = propose_method(spec(3, 0, ordered=True))  # cnn_lstm needs table columns
    assert ordered.arch == "image_only" and "marked ordered" in ordered.reason and "cnn_lstm needs" in ordered.reason


def test_encoder_is_named_in_the_reason():
    p = propose_method(spec(3, 2), encoder="mobilenet_v2")
    assert "averaged by one shared mobilenet_v2 encoder" in p.reason and p.arch == "late_concat"


def test_no_columns_is_a_data_error():
    with pytest.raises(DataError):
        propose_method(spec(0, 0))


def test_proposal_is_light():
    # The Model page and the CLI's argument handling propose before importing Keras.
    code = "import sys, multimodal.models.proposal; sys.exit('keras' in sys.modules or 'tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_proposal_names_registered_methods_the_data_allows():
    assert {DEFAULT_FUSION, IMAGE_PATH, SEQUENCE_FUSION, TABULAR_PATH} <= set(FUSION_METHODS)
    for images, table, ordered in [(0, 3, False), (1, 3, False), (3, 3, False), (3, 3, True), (3, 0, True)]:
        assert propose_method(spec(images, table, ordered)).arch in methods_for(bool(images), bool(table), images)


# ---------------------------------------------------------------- the CLI proposes like the app

def train_json(capsys, *args: str) -> dict:
    assert main(["train", *args, "--epochs", "1", "--image-size", "16", "--no-image-cache", "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_proposes_a_sequence_only_for_ordered_images(tiny_samples, tmp_path, capsys):
    data = str(tiny_samples["growth_sequences"])                 # 4 frame columns + age, sex
    unordered = train_json(capsys, data, "--out", str(tmp_path / "a"))
    assert unordered["arch"] == "late_concat" and unordered["proposal_reason"].startswith("4 image columns, unordered")
    ordered = train_json(capsys, data, "--ordered-images", "--out", str(tmp_path / "b"))
    assert ordered["arch"] == "cnn_lstm" and "marked ordered" in ordered["proposal_reason"]
    config = json.loads((Path(ordered["run_dir"]) / "config.json").read_text())
    assert config["ordered_images"] is True and config["features"]["ordered_images"] is True
    # 40 rows: the data-sized settings training chose are the ones recorded; --epochs stays as given.
    assert (config["batch_size"], config["patience"], config["epochs"]) == (32, 15, 1)
    assert (config["model"]["dropout"], config["model"]["l2"]) == (0.3, 1e-3)
    chosen = train_json(capsys, data, "--ordered-images", "--arch", "gated", "--out", str(tmp_path / "c"))
    assert chosen["arch"] == "gated" and "proposal_reason" not in chosen


# ---------------------------------------------------------------- data-sized training settings

SMALL = {"batch_size": 32, "patience": 15, "epochs": 200, "dropout": 0.3, "l2": 1e-3}
STANDARD = {"batch_size": 32, "patience": 8, "dropout": 0.2, "l2": 1e-4}


@pytest.mark.parametrize("n_train, expected", [
    (80, SMALL), (312, SMALL), (SMALL_DATA_ROWS - 1, SMALL),
    (SMALL_DATA_ROWS, {**STANDARD, "epochs": auto_epochs(SMALL_DATA_ROWS, 32)}),
    (100_000, {**STANDARD, "epochs": 20}),
])
def test_small_data_settings_by_training_rows(n_train, expected):
    settings, reason = small_data_settings(n_train)
    assert settings == expected
    kind = "small-data defaults" if n_train < SMALL_DATA_ROWS else "standard defaults"
    assert reason == (f"{n_train:,} training rows: batch {expected['batch_size']}, patience {expected['patience']}, "
                      f"up to {expected['epochs']} epochs, dropout {expected['dropout']:g}, L2 {expected['l2']:g} - "
                      f"{kind}")
    assert small_data_settings(312)[1] == ("312 training rows: batch 32, patience 15, up to 200 epochs, dropout 0.3, "
                                           "L2 0.001 - small-data defaults")


def test_auto_settings_fill_only_what_the_user_left_open():
    config = TrainConfig(data="x", batch_size=64, model=ModelConfig(dropout=0.0))
    assert (config.epochs, config.patience, config.model.l2) == (None, None, None)   # None: chosen from the data
    filled = with_auto_settings(config, 312)
    assert (filled.batch_size, filled.patience, filled.epochs) == (64, 15, 200)
    assert (filled.model.dropout, filled.model.l2) == (0.0, 1e-3)
    assert with_auto_settings(TrainConfig(data="x", patience=0, epochs=3), 5000).patience == 0
