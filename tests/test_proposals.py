"""Proposals say what the evidence says (issue 31): the equivalence rule, its words, the steering of an
explicit image choice (CLI and app), the Model page's "Use" button, and the Compare page's picker and cells."""
from __future__ import annotations

import numpy as np
import pytest

from multimodal.core.config import ModelConfig
from multimodal.core.settings import EQUIVALENCE_MARGINS, equivalence_margin
from multimodal.data.dataset import load_dataset
from multimodal.runs.verdicts import BETTER, NO_DIFFERENCE
from multimodal.train.crossval import fusion_gains
from multimodal.train.evidence import evidence_proposal, propose, save_comparison

from support.apptest import assert_clean
from support.apptest import open_app_page as open_page

ROWS = {"train": 60, "val": 20, "test": 40}


def method(folds: list[float], params: int | None = None, metric: str = "val_accuracy") -> dict:
    out = {"mean": {metric: float(np.mean(folds))}, "std": {metric: float(np.std(folds))}, "repeats": 1,
           "k": len(folds), "folds": [{"metrics": {metric: v}, "rows": ROWS} for v in folds]}
    return {**out, "params": params} if params is not None else out


def comparison(metric: str = "val_accuracy", higher: bool = True, **methods: dict) -> dict:
    return {"metric": metric, "higher_is_better": higher, "k": 3, "repeats": 1, "mode": "stagewise",
            "results": methods}


# skin_lesions' 3-fold fast comparison (bench/RESULTS_compare.md): bilinear 0.802, tabular_only 0.722
SKIN = dict(linear=method([0.725, 0.715, 0.72], 30), tabular_only=method([0.735, 0.705, 0.725], 900),
            image_only=method([0.675, 0.69, 0.64], 20_000), late_concat=method([0.81, 0.78, 0.805], 25_000),
            bilinear=method([0.815, 0.80, 0.79], 26_000))


def test_the_margins_have_one_home_in_the_metrics_own_units():
    assert equivalence_margin("val_accuracy", 0.8) == EQUIVALENCE_MARGINS["accuracy"].value == 0.02
    assert equivalence_margin("val_mae", 50_000) == pytest.approx(2_500)     # 5% of the best MAE, in dollars
    assert equivalence_margin("val_unknown", 1.0) is None


def test_an_unproven_gain_proposes_the_best_with_its_verdicts_not_the_simplest():
    proposal = evidence_proposal(comparison(**SKIN))
    assert proposal.arch == "bilinear"   # the old rule proposed tabular_only: 3 folds cannot prove the gain
    reason = proposal.reason
    assert reason.startswith("bilinear has the best held-out accuracy (0.8017, 3-fold); against late_concat "
                             f"(runner-up): {NO_DIFFERENCE} (95% interval ")
    assert f"against linear (simplest): {NO_DIFFERENCE} (95% interval -0.026 to +0.189)" in reason
    assert reason.endswith("no simpler method shown equivalent within +-0.020: bilinear proposed")
    assert "worse" not in reason


def test_a_simpler_method_equivalent_within_the_margin_is_proposed():
    result = comparison(linear=method([0.50, 0.52, 0.49], 30), tabular_only=method([0.799, 0.788, 0.809], 900),
                        late_concat=method([0.80, 0.79, 0.81], 25_000))
    proposal = evidence_proposal(result)
    assert proposal.arch == "tabular_only"
    assert proposal.reason.startswith(f"{NO_DIFFERENCE} between tabular_only and late_concat, the best held-out "
                                      "accuracy: tabular_only minus late_concat 95% interval ")
    assert proposal.reason.endswith("inside the equivalence margin +-0.020 (3-fold): the simpler tabular_only proposed")


def test_no_detectable_difference_is_never_called_worse_when_the_simplest_is_best():
    """The issue's case: linear best, the verdict "no detectable difference", and the old reason
    "every simpler method compared is worse than linear"."""
    result = comparison(linear=method([0.74, 0.70, 0.76], 30), tabular_only=method([0.70, 0.73, 0.71], 900),
                        late_concat=method([0.66, 0.75, 0.72], 25_000))
    proposal = evidence_proposal(result)
    assert proposal.arch == "linear"
    assert f"against tabular_only (runner-up): {NO_DIFFERENCE} (95% interval " in proposal.reason
    assert "worse" not in proposal.reason and "simpler" not in proposal.reason
    clear = comparison(linear=method([0.50, 0.52, 0.49], 30), late_concat=method([0.80, 0.79, 0.81], 25_000))
    assert f"against linear (runner-up): {BETTER} (95% interval +" in evidence_proposal(clear).reason


def test_regression_margins_are_in_the_targets_units():
    mae = "val_mae"
    result = comparison(mae, False, linear=method([50_100, 49_900, 50_200], 30, mae),
                        tabular_only=method([50_000, 49_800, 50_150], 900, mae))
    proposal = evidence_proposal(result)
    assert proposal.arch == "linear" and "inside the equivalence margin +-2," in proposal.reason


def test_an_explicit_image_choice_steers_the_proposal_to_methods_that_read_images(tiny_samples, tmp_path):
    ds = load_dataset(tiny_samples["skin_lesions"])
    root = tmp_path / "comparisons"
    tied = comparison(linear=method([0.50, 0.52, 0.49], 30), tabular_only=method([0.799, 0.788, 0.809], 900),
                      late_concat=method([0.80, 0.79, 0.81], 25_000), bilinear=method([0.78, 0.77, 0.80], 26_000))
    save_comparison(tied, ds, root, "tied")
    assert propose(ds, root).arch == "tabular_only"
    steered = propose(ds, root, "mobilenet_v2", image_choice="--encoder mobilenet_v2")
    assert steered.arch == "late_concat"
    assert steered.reason.startswith("tabular_only would leave --encoder mobilenet_v2 unused, so only methods "
                                     "that read images are proposed: late_concat has the best held-out accuracy "
                                     "among the methods that read images")
    table = load_dataset(tiny_samples["house_prices"], overrides={"photo": "ignore"})
    with pytest.raises(Exception, match="no image columns: every method would leave it unused"):
        propose(table, None, image_choice="--encoder mobilenet_v2")


def test_cli_train_without_arch_uses_the_named_encoder_and_weights(tiny_samples, tmp_path, monkeypatch, capsys):
    """`train skin_lesions --encoder X --encoder-weights FILE` (no --arch) never trains a method that
    leaves them unused: with a comparison whose evidence proposes tabular_only, it is steered."""
    import json

    from multimodal.cli import main
    cache = tmp_path / "cache"
    monkeypatch.setenv("MULTIMODAL_CACHE_DIR", str(cache))
    from multimodal.train.evidence import default_comparisons_dir
    ds = load_dataset(tiny_samples["skin_lesions"])
    save_comparison(comparison(linear=method([0.50, 0.52, 0.49], 30), tabular_only=method([0.799, 0.788, 0.809], 900),
                               late_concat=method([0.80, 0.79, 0.81], 25_000)), ds, default_comparisons_dir(), "c")
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"not weights")
    code = main(["train", str(tiny_samples["skin_lesions"]), "--encoder", "mobilenet_v2", "--encoder-weights",
                 str(weights), "--image-size", "32", "--epochs", "1", "--out", str(tmp_path / "runs"), "--json"])
    err = capsys.readouterr().err.strip().splitlines()
    # the steered method reads images, so the named weights are read: this file is refused, by name
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "w.h5" in err[0], err
    # with the default encoder and no weights, nothing is named: the evidence's tabular_only trains
    assert main(["train", str(tiny_samples["skin_lesions"]), "--epochs", "1", "--batch-size", "16",
                 "--out", str(tmp_path / "runs"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["arch"] == "tabular_only"


def test_cli_names_an_encoder_no_column_can_use(tiny_samples, tmp_path, capsys):
    from multimodal.cli import main
    code = main(["train", str(tiny_samples["house_prices"]), "--ignore-cols", "photo", "--encoder", "mobilenet_v2",
                 "--epochs", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: --encoder mobilenet_v2 is an image choice, but the data has no image columns")


def test_model_page_offers_the_proposal_as_a_button_and_never_switches(tiny_samples, tmp_path):
    session = tmp_path / "s"
    ds = load_dataset(tiny_samples["skin_lesions"])
    save_comparison(comparison(linear=method([0.50, 0.52, 0.49], 30), tabular_only=method([0.799, 0.788, 0.809], 900),
                               late_concat=method([0.80, 0.79, 0.81], 25_000)), ds, session / "comparisons", "c")
    at = open_page("model.py", tiny_samples["skin_lesions"], session)
    assert at.session_state["m_arch"] == "late_concat"          # the session's method, not the evidence's
    proposed = next(str(i.value) for i in at.info if str(i.value).startswith("**Proposed:"))
    assert proposed.startswith("**Proposed: tabular_only** - no detectable difference between tabular_only and "
                               "late_concat")
    use = next(b for b in at.button if b.label == "Use tabular_only")
    at.run()
    assert at.session_state["m_arch"] == "late_concat"          # still, after a rerun
    use.click().run()
    assert_clean(at)
    assert at.session_state["m_arch"] == "tabular_only" and at.session_state["model_config"].arch == "tabular_only"
    assert not any(b.label.startswith("Use ") for b in at.button)

    # an encoder the user chose steers the proposal to the methods that read it, and is kept
    at.session_state["m_encoder"] = "mobilenet_v2"
    at.run()
    proposed = next(str(i.value) for i in at.info if str(i.value).startswith("**Proposed:"))
    assert proposed.startswith("**Proposed: late_concat** - tabular_only would leave the MobileNetV2 encoder unused, "
                               "so only methods that read images are proposed")
    assert at.session_state["m_encoder"] == "mobilenet_v2" and at.session_state["m_arch"] == "tabular_only"


def test_compare_picker_keeps_its_choice_and_the_page_shows_no_none(tiny_samples, tmp_path):
    from unittest import mock

    from multimodal.app import comparison_view, session_jobs
    session = tmp_path / "s"
    ds = load_dataset(tiny_samples["skin_lesions"])
    result = comparison(linear=method([0.50, 0.52, 0.49]), tabular_only=method([0.70, 0.72, 0.71]),
                        image_only=method([0.6, 0.62, 0.61]), late_concat=method([0.80, 0.79, 0.81]),
                        bilinear=method([0.78, 0.77, 0.80]))
    result["gain"] = fusion_gains(result["results"], "late_concat", "val_accuracy", True, 80, 40)
    save_comparison(result, ds, session / "comparisons", "cv-late_concat-1")
    at = open_page("compare.py", tiny_samples["skin_lesions"], session,
                   model_config=ModelConfig(image_size=16), train_settings={"epochs": 2, "batch_size": 8})
    assert_clean(at)
    text = "\n".join(str(e.value) for kind in ("markdown", "caption", "info") for e in getattr(at, kind))
    assert "Best fusion method: late_concat (0.8000 held-out mean)." in text
    assert "**Latest result:** 3-fold x 1, fast, stage-wise, 5 methods (cv-late_concat-1)" in text
    assert "None" not in text and "nan" not in text.lower().replace("nanoseconds", "")
    for frame in at.dataframe:
        assert not frame.value.isna().any().any() and "None" not in frame.value.astype(str).to_numpy()

    at.multiselect[0].set_value(["late_concat", "bilinear", "gated"]).run()
    # a comparison runs: the form is away, the last result folded under its label
    with mock.patch.object(session_jobs, "active", lambda jobs: [object()]), \
            mock.patch.object(comparison_view, "comparison_progress", lambda: None):
        at.run()
    assert not at.multiselect
    assert any(e.label.startswith("Previous result: 3-fold x 1") for e in at.expander)
    at.run()   # it ended: the picker is back with the choice, as the browser draws it (the widget's default)
    picker = at.multiselect[0]
    assert picker.value == ["late_concat", "bilinear", "gated"]
    assert [picker.options[i] for i in picker.proto.default] == ["late_concat", "bilinear", "gated"]
    assert next(c.value for c in at.caption if c.value.startswith("Trains ")).startswith(
        "Trains 18 models (6 methods: ")
