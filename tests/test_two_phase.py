"""Image encoders in training: weights resolved once and recorded, two phases for a pretrained
backbone (frozen, then its top blocks fine-tuned) in one history, top-k named by its k, the CNN-RNN
classifier, and every encoder through Grad-CAM, branch Shapley, What-if and .keras export/import.

Nothing downloads: KERAS_HOME is empty and `keras.utils.get_file` fails as it does offline. The
"pretrained" weights are made here: a backbone built with random weights whose BatchNormalization
statistics are set from one batch (so a frozen backbone's features do not vanish), saved to a file.
"""
import contextlib
import hashlib
import io
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from multimodal.app import whatif
from multimodal.cli import main
from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.core.events import read_events
from multimodal.data.dataset import load_dataset
from multimodal.explain.report import explain_row, permutation_importance
from multimodal.models.assembly import encode
from multimodal.models.backbones import ENCODERS, backbone_blocks, build_backbone
from multimodal.models.branches import image_backbones
from multimodal.runs.evaluation import classification_metrics
from multimodal.runs.importing import import_model
from multimodal.runs.run import MODEL_FILE, load_run, predict, run_inputs
from multimodal.train import phases
from multimodal.train.training import train

SIZES = {"small_cnn": 16, "mobilenet_v2": 32, "efficientnet_b0": 32, "xception": 71}   # the smallest that run


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """An empty Keras home, and a get_file that fails like Keras' own when there is no network."""
    def no_network(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))
        mp.setattr(keras.utils, "get_file", no_network)
        yield


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def by_path(model: keras.Model) -> dict[str, np.ndarray]:
    # By path: a model's weight list is ordered by trainability, which the phases change.
    return {v.path: np.array(v) for v in model.weights}


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """encoder -> (a .weights.h5 file of that backbone, its tensors by path)."""
    root, files = tmp_path_factory.mktemp("weights"), {}
    for encoder in ("mobilenet_v2", "efficientnet_b0", "xception"):
        keras.utils.set_random_seed(1)
        backbone = build_backbone(encoder, SIZES[encoder])
        norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
        for layer in norms:
            layer.momentum = 0.0        # one training-mode call sets the moving statistics to the batch's
        backbone(np.random.default_rng(0).uniform(0, 255, (8, SIZES[encoder], SIZES[encoder], 3)), training=True)
        for layer in norms:
            layer.momentum = 0.99
        path = root / f"{encoder}.weights.h5"
        backbone.save_weights(path)
        files[encoder] = (path, by_path(backbone))
    return files


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(data), "--arch", "image_only", "--image-size", "32", "--epochs", "1", "--batch-size", "16",
            "--patience", "0", "--out", str(out), "--json", *extra]


@pytest.fixture(scope="module")
def runs(tiny_samples, weight_files, tmp_path_factory) -> dict:
    """One trained run per encoder on the image + table sample (late_concat, 1 epoch per phase), trained
    on first use. mobilenet_v2 runs both phases; the other pretrained ones phase 1 only (a frozen
    backbone trains fast); small_cnn has no pretrained weights, so one phase. efficientnet_b0 trains
    through the command line, its --json summary kept as runs.cli."""
    root, done = tmp_path_factory.mktemp("runs"), {}

    def get(encoder: str) -> Path:
        if encoder in done:
            return done[encoder]
        file = str(weight_files[encoder][0]) if encoder in weight_files else None
        if encoder == "efficientnet_b0":
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                assert main(train_args(tiny_samples["skin_lesions"], root, "--arch", "late_concat", "--encoder", encoder,
                                       "--encoder-weights", file, "--finetune-epochs", "0")) == 0
            get.cli = json.loads(stdout.getvalue().strip().splitlines()[-1])
            done[encoder] = Path(get.cli["run_dir"])
        else:
            config = TrainConfig(data=str(tiny_samples["skin_lesions"]), epochs=1, batch_size=16, patience=0,
                                 restore_best=False, finetune_epochs=1 if encoder == "mobilenet_v2" else 0,
                                 model=ModelConfig(arch="late_concat", encoder=encoder, image_size=SIZES[encoder],
                                                   encoder_weights_file=file))
            done[encoder] = root / encoder
            train(config, done[encoder])
        return done[encoder]
    return get


def test_two_phases_freeze_then_fine_tune_the_top_blocks_in_one_history(runs, weight_files, tiny_samples,
                                                                          monkeypatch):
    file, values = weight_files["mobilenet_v2"]
    starts = {}
    unfreeze = phases.set_backbone_trainable

    def spy(model, blocks, **kwargs):   # the backbone as each phase begins
        starts[blocks] = by_path(image_backbones(model)[0])
        unfreeze(model, blocks, **kwargs)
    monkeypatch.setattr(phases, "set_backbone_trainable", spy)
    run_dir = runs("mobilenet_v2")
    run = load_run(run_dir)
    # Phase 1 starts from the file's tensors and leaves them all as they were; phase 2 changes the top
    # two blocks only, BatchNormalization statistics included in what stays put.
    assert set(starts) == {0, 2}
    for start in starts.values():
        assert start.keys() == values.keys() and all(np.array_equal(start[k], values[k]) for k in values)
    backbone = image_backbones(run.model)[0]
    top = {v.path for _, layers in backbone_blocks(backbone)[-2:] for layer in layers
           if not isinstance(layer, keras.layers.BatchNormalization) for v in layer.weights}
    changed = {k for k, v in by_path(backbone).items() if not np.array_equal(v, values[k])}
    assert changed and changed <= top
    # One history, one epoch counter, the phase of every epoch; the boundary in the events.
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == [1, 2] and history["phase"].tolist() == [1, 2]
    events, _ = read_events(run_dir)
    assert [(e["phase"], e["epoch"], e["backbone"]) for e in events if e["type"] == "phase"] == \
        [(1, 0, "frozen"), (2, 1, "top 2 blocks fine-tuned")]
    assert [(e["epoch"], e["phase"]) for e in events if e["type"] == "epoch"] == [(1, 1), (2, 2)]
    assert {e["phase"] for e in events if e["type"] == "batch"} == {1, 2}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [(p["backbone"], p["lr"], p["epochs_run"]) for p in summary["phases"]] == \
        [("frozen", 1e-3, 1), ("top 2 blocks fine-tuned", 1e-4, 1)]
    record = {"source": "file", "sha256": sha256(file)}
    assert summary["encoder_weights"] == run.config["encoder_weights"] == record
    assert run.config["model"]["encoder_weights_file"] == str(file)


def test_small_cnn_trains_in_one_phase_and_records_no_weights(runs):
    run = load_run(runs("small_cnn"))
    assert run.config["encoder_weights"] == {"source": "none", "sha256": None}
    assert [(p["phase"], p["backbone"]) for p in run.summary["phases"]] == [(1, "trained")]
    assert not [e for e in read_events(run.dir)[0] if e["type"] == "phase"]
    assert run.history["phase"].tolist() == [1]


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_every_encoder_explains_predicts_and_round_trips_as_keras(encoder, runs, tiny_samples, tmp_path):
    run = load_run(runs(encoder))
    ds = load_dataset(tiny_samples["skin_lesions"])
    inputs = run_inputs(run, ds.frame.iloc[:4], ds.root)
    one = {k: v[:1] for k, v in inputs.items()}
    expl = explain_row(run, one)      # exact branch Shapley values, features, Grad-CAM
    assert sum(expl["branches"].values()) == pytest.approx(expl["output"] - expl["base_value"], abs=1e-5)
    h, w = image_backbones(run.model)[0].output.shape[1:3]
    cam = expl["grad_cam"]
    assert cam.shape == (1, 1, h, w) and np.isfinite(cam).all() and cam.min() >= 0 and cam.max() <= 1
    row, along = whatif.sweep(run, one, "age", np.array([20.0, 50.0, 80.0]))   # What-if, one batched call
    assert row.shape == (1, 1) and along.shape == (3, 1) and np.isfinite(along).all()
    np.testing.assert_allclose(row, predict(run, one), rtol=1e-5, atol=1e-5)
    # Export (the run's .keras file) and import in safe mode: the same predictions.
    imported = import_model(run.dir / MODEL_FILE, ds, tmp_path)
    np.testing.assert_allclose(predict(imported, inputs), predict(run, inputs), rtol=1e-5, atol=1e-5)


# The command line ------------------------------------------------------------------------------

def test_cli_records_the_given_weights_file(runs, weight_files):
    run_dir = runs("efficientnet_b0")    # trained with --encoder-weights and --json
    file, _ = weight_files["efficientnet_b0"]
    record = {"source": "file", "sha256": sha256(file)}
    assert runs.cli["encoder_weights"] == record
    assert json.loads((run_dir / "config.json").read_text())["encoder_weights"] == record
    assert [p["backbone"] for p in runs.cli["phases"]] == ["frozen", "top 2 blocks fine-tuned"]
    assert runs.cli["history"]["phase"] == [1]      # --finetune-epochs 0: phase 1 only


def test_cli_offline_stops_or_says_so(tiny_samples, tmp_path, capsys):
    assert main(train_args(tiny_samples["skin_lesions"], tmp_path / "stop", "--encoder", "efficientnet_b0",
                           "--on-missing-weights", "stop")) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not (tmp_path / "stop").exists()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: No ImageNet weights for efficientnet_b0: not in ")
    assert "and no network" in lines[0]
    for bad, message in ((["--encoder", "resnet"], "unknown --encoder 'resnet'"),
                         (["--unfreeze", "top"], "--unfreeze: 'top' is not a number in 0..1000 or all"),
                         (["--finetune-lr", "0"], "--finetune-lr: 0 is outside 1e-07..1")):
        assert main(train_args(tiny_samples["skin_lesions"], tmp_path, *bad)) == 2
        assert message in capsys.readouterr().err


# Top-k named by its k --------------------------------------------------------------------------

def test_top_k_is_named_by_k(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for classes, name in ((12, "top_5_accuracy"), (3, "top_2_accuracy")):
        probs = rng.dirichlet(np.ones(classes), 30)
        metrics = classification_metrics(rng.integers(0, classes, 30), probs, [f"c{i}" for i in range(classes)])
        assert [k for k in metrics if k.startswith("top_")] == [name]
    assert not [k for k in classification_metrics([0, 1], np.eye(2), ["a", "b"]) if k.startswith("top_")]
    csv = tmp_path / "species.csv"
    pd.DataFrame({"x": rng.normal(size=60), "species": [f"s{i % 12}" for i in range(60)]}).to_csv(csv, index=False)
    assert main(["train", str(csv), "--target", "species", "--arch", "tabular_only", "--epochs", "1",
                 "--out", str(tmp_path / "runs"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]
    assert "val_top_5_accuracy" in metrics and not [k for k in metrics if "top_k" in k]


# The CNN-RNN classifier ------------------------------------------------------------------------

def test_cnn_rnn_classifier_reads_grayscale_rows_beside_the_cnn(tiny_samples, tmp_path):
    config = TrainConfig(data=str(tiny_samples["skin_lesions"]), epochs=1, batch_size=16, patience=0,
                         model=ModelConfig(arch="cnn_rnn_classifier", image_size=16))
    train(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    ds = load_dataset(tiny_samples["skin_lesions"])
    inputs = run_inputs(run, ds.frame.iloc[:4], ds.root)
    rows = np.asarray(encode(run.model, inputs)["rows"])   # the raw image, row by row: no CNN in between
    np.testing.assert_allclose(rows, inputs["images"].astype("float32").mean(axis=(1, 4)) / 127.5 - 1.0, atol=1e-5)
    expl = explain_row(run, {k: v[:1] for k, v in inputs.items()})
    assert set(expl["branches"]) == {"image", "rows", "tabular"}
    assert sum(expl["branches"].values()) == pytest.approx(expl["output"] - expl["base_value"], abs=1e-5)
    assert expl["grad_cam"].shape[:2] == (1, 1)
    drops = permutation_importance(run, inputs, np.zeros(4, int), repeats=1)
    assert set(drops) == {"image", "age", "sex", "site", "family_history"}
