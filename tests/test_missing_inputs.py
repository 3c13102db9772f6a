"""Predicting with a missing branch: a modality-dropout model on the What-if page, and the Model
page's settings for it (modality dropout, regression loss and target transform) reaching the run."""
from __future__ import annotations

import numpy as np
import pytest

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.dataset import load_dataset
from multimodal.models.assembly import predict_with_missing
from multimodal.runs.run import load_run, probabilities, run_inputs
from multimodal.train.training import train

from support.apptest import assert_clean, metric, open_app_page, open_page


@pytest.fixture(scope="module")
def dropout_run(tiny_samples, tmp_path_factory):
    csv = tiny_samples["skin_lesions"]
    out = tmp_path_factory.mktemp("md") / "md_run"
    train(TrainConfig(data=str(csv), epochs=1, batch_size=8, patience=0,
                      model=ModelConfig(arch="late_concat", image_size=16, modality_dropout=0.3)), out)
    return csv, out


def test_whatif_predicts_without_the_image_or_the_table(dropout_run, tmp_path):
    csv, run_dir = dropout_run
    at = open_page("whatif.py", csv, run_dir, tmp_path)
    radio = next(r for r in at.radio if r.label == "Treat as missing")
    full = metric(at, "Predicted class")
    ds, run = load_dataset(csv), load_run(run_dir)
    row = int(next(s for s in at.selectbox if s.label == "Start from validation row").value)
    inputs = run_inputs(run, ds.frame.loc[[row]], ds.root)
    for choice, branch in (("the image", "image"), ("the table", "tabular")):
        radio.set_value(choice).run()
        assert_clean(at)
        expected = probabilities(predict_with_missing(run.model, inputs, {branch: np.ones(1, bool)}), 2)[0]
        shown = next(m for m in at.metric if m.label == "Predicted class")
        assert shown.value == run.classes[int(expected.argmax())]
        assert shown.delta == f"{expected.max():.1%} probability"
        assert any("treated as missing" in i.value for i in at.info)
        assert not [m for m in at.metric if m.label.startswith("Explained output")]   # no explanation then
    radio.set_value("nothing").run()
    assert metric(at, "Predicted class") == full and metric(at, "Explained output")


def test_whatif_offers_no_missing_branch_without_modality_dropout(tiny_samples, tmp_path):
    csv = tiny_samples["skin_lesions"]
    out = tmp_path / "plain"
    train(TrainConfig(data=str(csv), epochs=1, batch_size=8, patience=0,
                      model=ModelConfig(arch="late_concat", image_size=16)), out)
    at = open_page("whatif.py", csv, out, tmp_path)
    assert not [r for r in at.radio if r.label == "Treat as missing"]


def test_model_page_settings_reach_the_training_config(tiny_samples, tmp_path):
    at = open_app_page("model.py", tiny_samples["house_prices"], tmp_path / "s")
    next(s for s in at.slider if s.label == "Modality dropout").set_value(0.25).run()
    next(s for s in at.selectbox if s.label == "Loss").set_value("huber").run()
    next(s for s in at.selectbox if s.label == "Target transform").set_value("log").run()
    assert_clean(at)
    assert at.session_state["model_config"].modality_dropout == 0.25
    assert at.session_state["train_settings"]["loss"] == "huber"
    assert at.session_state["train_settings"]["target_transform"] == "log"
    assert at.query_params["modality_dropout"] == "0.25" and at.query_params["loss"] == "huber"
    from multimodal.runs.folders import config_dict
    config = config_dict(load_dataset(tiny_samples["house_prices"]), at.session_state["model_config"],
                              at.session_state["train_settings"])
    assert TrainConfig.from_dict(config).loss == "huber" and config["model"]["modality_dropout"] == 0.25


def test_cli_predicts_a_row_without_its_image_only_with_modality_dropout(dropout_run, tiny_samples, tmp_path, capsys):
    import json

    from multimodal.cli import main
    csv, run_dir = dropout_run
    ds, run = load_dataset(csv), load_run(run_dir)
    row = {"age": 61, "sex": "F", "site": "back", "family_history": "yes"}
    assert main(["predict", str(run_dir), "--row", json.dumps(row), "--json"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"][0]
    inputs = run_inputs(run, ds.frame.iloc[:1].assign(**row), ds.root)
    expected = probabilities(predict_with_missing(run.model, inputs, {"image": np.ones(1, bool)}), 2)[0]
    assert got["missing"] == ["image"]
    assert got["probabilities"][run.classes[1]] == pytest.approx(float(expected[1]), abs=1e-5)
    # explain needs every input; a model without modality dropout refuses, naming the fix
    assert main(["explain", str(run_dir), "--row", json.dumps(row)]) == 2
    assert "explanations need every input" in capsys.readouterr().err
    plain = tmp_path / "plain"
    train(TrainConfig(data=str(csv), epochs=1, batch_size=8, patience=0,
                      model=ModelConfig(arch="late_concat", image_size=16)), plain)
    assert main(["predict", str(plain), "--row", json.dumps(row)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--modality-dropout" in err[0]
