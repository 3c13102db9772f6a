"""Cross-validated comparisons as background jobs (crossval.run_comparison) and on the Compare page."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.core.events import STOP_FILE, read_events
from multimodal.train import jobs
from multimodal.train.crossval import COMPARISON_FILE, comparison_summary, load_comparisons, run_comparison
from multimodal.train.training import train


def tiny_config(csv: Path, arch: str = "late_concat") -> TrainConfig:
    return TrainConfig(data=str(csv), epochs=1, batch_size=16, model=ModelConfig(arch=arch, image_size=16))


@pytest.fixture(scope="module")
def finished(tiny_samples, tmp_path_factory) -> Path:
    """A comparison run the way the Compare page runs it: a worker process through jobs."""
    out = tmp_path_factory.mktemp("cv") / "cv-late_concat"
    config = {**tiny_config(tiny_samples["skin_lesions"]).to_dict(), "cv": {"k": 2, "repeats": 1, "archs": []}}
    job = jobs.start_job(config, out)
    assert job.wait(timeout=300) == "finished", job.error
    return out


def test_worker_runs_every_fold_and_saves_the_comparison(finished):
    events, _ = read_events(finished)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and events[-1]["status"] == "finished"
    assert events[0]["archs"] == ["image_only", "tabular_only", "late_concat"] and events[0]["folds"] == 6
    folds = [e for e in events if e["type"] == "fold"]
    assert [e["done"] for e in folds] == [1, 2, 3, 4, 5, 6]
    assert all(0.0 <= e["value"] <= 1.0 for e in folds)
    result = json.loads((finished / COMPARISON_FILE).read_text())
    assert result["k"] == 2 and result["repeats"] == 1 and result["arch"] == "late_concat"
    assert result["dataset"] and result["target"] == "diagnosis"
    # The event values are the saved held-out fold metrics, in training order.
    saved = [f["metrics"]["val_accuracy"] for a in events[0]["archs"] for f in result["results"][a]["folds"]]
    assert [e["value"] for e in folds] == pytest.approx(saved)


def test_summary_is_sorted_best_first_with_every_fold(finished):
    result = json.loads((finished / COMPARISON_FILE).read_text())
    rows = comparison_summary(result)
    assert [r["arch"] for r in rows] and {r["arch"] for r in rows} == {"image_only", "tabular_only", "late_concat"}
    means = [r["mean"] for r in rows]
    assert means == sorted(means, reverse=True)          # accuracy: higher first
    assert all(len(r["folds"]) == 2 and r["mean"] == pytest.approx(sum(r["folds"]) / 2) for r in rows)
    assert load_comparisons(finished.parent)[0]["dir"] == str(finished)


def test_stop_file_ends_a_comparison_after_the_current_fold(tiny_samples, tmp_path):
    out = tmp_path / "cv"
    out.mkdir()
    (out / STOP_FILE).touch()
    assert run_comparison(tiny_config(tiny_samples["skin_lesions"], "early_concat"), out, 2, 1) is None
    events, _ = read_events(out)
    assert [e["type"] for e in events] == ["start", "fold", "end"]
    assert events[-1]["status"] == "stopped" and events[-1]["done"] == 1
    assert not (out / COMPARISON_FILE).exists()


def test_compare_page_shows_the_cross_validated_gain(finished, tiny_samples, tmp_path):
    from support.apptest import open_app_page as open_page
    session = tmp_path / "s"
    (session / "comparisons").mkdir(parents=True)
    shutil.copytree(finished, session / "comparisons" / finished.name)
    train(tiny_config(tiny_samples["skin_lesions"]), session / "runs" / "r1")
    at = open_page("compare.py", tiny_samples["skin_lesions"], session)
    result = json.loads((finished / COMPARISON_FILE).read_text())
    gain = result["gain"]
    labels = [m.label for m in at.metric]
    assert f"Fusion gain of late_concat over {gain['best_baseline']}" in labels
    shown = next(m for m in at.metric if m.label.startswith("Fusion gain of"))
    assert shown.value == f"{gain['mean']:+.4f} ± {gain['std']:.4f}"
    assert any(b.label == "Run cross-validation" for b in at.button)
    table = next(d.value for d in at.dataframe if "folds" in d.value.columns)
    assert set(table["method"]) == {"image_only", "tabular_only", "late_concat"}
