"""Cross-validated comparisons as background jobs (crossval.run_comparison) and on the Compare page."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from multimodal.core.comparison import ComparisonOptions, comparison_job, comparison_parts
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
    config = comparison_job(tiny_config(tiny_samples["skin_lesions"]).to_dict(), ComparisonOptions(2, 1, archs=()))
    job = jobs.start_job(config, out)
    assert job.wait(timeout=300) == "finished", job.error
    return out


def test_worker_runs_every_fold_and_saves_the_comparison(finished):
    events, _ = read_events(finished)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and events[-1]["status"] == "finished"
    assert events[0]["archs"] == ["image_only", "tabular_only", "linear", "late_concat"] and events[0]["folds"] == 8
    folds = [e for e in events if e["type"] == "fold"]
    assert [e["done"] for e in folds] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert all(0.0 <= e["value"] <= 1.0 for e in folds)
    result = json.loads((finished / COMPARISON_FILE).read_text())
    assert result["k"] == 2 and result["repeats"] == 1 and result["arch"] == "late_concat"
    assert result["dataset"] and result["target"] == "diagnosis"
    # The event values are the saved held-out fold metrics, in training order: the methods without
    # images first (their results come before stage 1's), each method's folds together.
    order = list(dict.fromkeys(e["arch"] for e in folds))
    assert order == ["tabular_only", "linear", "image_only", "late_concat"]
    saved = [f["metrics"]["val_accuracy"] for a in order for f in result["results"][a]["folds"]]
    assert [e["value"] for e in folds] == pytest.approx(saved)


def test_summary_is_sorted_best_first_with_every_fold(finished):
    result = json.loads((finished / COMPARISON_FILE).read_text())
    rows = comparison_summary(result)
    assert {r["arch"] for r in rows} == {"image_only", "tabular_only", "linear", "late_concat"}
    means = [r["mean"] for r in rows]
    assert means == sorted(means, reverse=True)          # accuracy: higher first
    assert all(len(r["folds"]) == 2 and r["mean"] == pytest.approx(sum(r["folds"]) / 2) for r in rows)
    assert load_comparisons(finished.parent)[0]["dir"] == str(finished)


def test_stop_file_ends_a_comparison_after_the_current_fold(tiny_samples, tmp_path):
    out = tmp_path / "cv"
    out.mkdir()
    (out / STOP_FILE).touch()
    assert run_comparison(tiny_config(tiny_samples["skin_lesions"], "early_concat"), out, ComparisonOptions(2, 1)) is None
    events, _ = read_events(out)
    assert [e["type"] for e in events] == ["start", "fold", "end"]
    assert events[-1]["status"] == "stopped" and events[-1]["done"] == 1
    assert not (out / COMPARISON_FILE).exists()


@pytest.fixture(scope="module")
def trained_run(tiny_samples, tmp_path_factory) -> Path:
    """One saved late_concat run: the Compare page's reference."""
    run_dir = tmp_path_factory.mktemp("ref") / "r1"
    train(tiny_config(tiny_samples["skin_lesions"]), run_dir)
    return run_dir


def compare_page(csv: Path, session: Path, run_dir: Path, *comparisons: Path):
    from support.apptest import open_app_page
    shutil.copytree(run_dir, session / "runs" / run_dir.name)
    (session / "comparisons").mkdir(parents=True)
    for folder in comparisons:
        shutil.copytree(folder, session / "comparisons" / folder.name)
    return open_app_page("compare.py", csv, session)


def page_text(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning") for e in getattr(at, kind))


def test_compare_page_shows_the_cross_validated_gain(finished, trained_run, tiny_samples, tmp_path):
    at = compare_page(tiny_samples["skin_lesions"], tmp_path / "s", trained_run, finished)
    result = json.loads((finished / COMPARISON_FILE).read_text())
    gain = result["gain"]
    best = gain["best"]
    labels = [m.label for m in at.metric]
    assert f"Fusion gain of late_concat over {gain['best_baseline']}" in labels
    shown = next(m for m in at.metric if m.label.startswith("Fusion gain of"))
    assert shown.value == best["sentence"].split(" ")[0]           # the mean, as the sentence writes it
    assert best["sentence"] in page_text(at)                         # the interval and the verdict
    assert any(b.label == "Run cross-validation" for b in at.button)
    table = next(d.value for d in at.dataframe if "folds" in d.value.columns)
    assert set(table["method"]) == {"image_only", "tabular_only", "linear", "late_concat"}
    assert table.set_index("method").loc["late_concat", "verdict"] == best["verdict"]


def test_verdict_wording_follows_the_interval(finished, trained_run, tiny_samples, tmp_path):
    """A stored comparison with known intervals: one that includes zero, one that excludes it."""
    result = json.loads((finished / COMPARISON_FILE).read_text())
    result["results"]["early_concat"] = {**result["results"]["late_concat"], "arch": "early_concat"}
    unsure = {"arch": "late_concat", "per_fold": [0.01, 0.05], "mean": 0.03, "low": -0.41016, "high": 0.47016,
              "splits": 2, "confidence": 0.95, "verdict": "no detectable difference", "caveat": "",
              "sentence": "+0.030 (95% CI -0.410 to +0.470) over 2 folds: no detectable difference"}
    sure = {**unsure, "arch": "early_concat", "low": 0.02, "high": 0.04, "verdict": "better",
            "sentence": "+0.030 (95% CI +0.020 to +0.040) over 2 folds: better"}
    result["gain"] = {"best_baseline": "tabular_only", "best": unsure, "methods": [unsure, sure],
                      "rows": {"train": 20, "test": 20}}
    stored = tmp_path / "stored" / "cv-late_concat"
    shutil.copytree(finished, stored)
    (stored / COMPARISON_FILE).write_text(json.dumps(result))
    at = compare_page(tiny_samples["skin_lesions"], tmp_path / "s", trained_run, stored)
    text = page_text(at)
    assert "**No detectable difference** between late_concat and tabular_only" in text
    assert "+0.030 (95% CI -0.410 to +0.470) over 2 folds: no detectable difference" in text
    assert "clearly" not in text and "within the noise" not in text
    table = next(d.value for d in at.dataframe if "verdict" in d.value.columns).set_index("method")
    assert table.loc["late_concat", "95% interval"] == "-0.410 to +0.470"
    assert table.loc["late_concat", "verdict"] == "no detectable difference"
    assert table.loc["early_concat", "95% interval"] == "+0.020 to +0.040"
    assert table.loc["early_concat", "verdict"] == "better"
    assert table.loc["tabular_only", "verdict"] == "best baseline (reference)"


def test_caption_counts_the_models_the_comparison_trains(trained_run, tiny_samples, tmp_path):
    at = compare_page(tiny_samples["skin_lesions"], tmp_path / "s", trained_run)

    def count() -> int:
        caption = next(c.value for c in at.caption if c.value.startswith("Trains "))
        return int(caption.split()[1])

    # image_only, tabular_only, linear and late_concat, k = 3 (the default under 400 rows), 1 repeat
    assert count() == 4 * 3
    next(s for s in at.selectbox if s.label == "Folds (k)").set_value(5).run()
    assert count() == 4 * 5
    at.multiselect[0].select("gated").run()
    assert count() == 5 * 5
    at.number_input[0].set_value(2).run()
    assert count() == 5 * 5 * 2
    at.multiselect[0].set_value([]).run()
    assert not [c for c in at.caption if c.value.startswith("Trains ")]
    assert next(b for b in at.button if b.label == "Run cross-validation").disabled


# ---------------------------------------------------------------- fast modes on the page and in the CLI

def test_a_comparison_runs_fast_by_default_and_says_so(finished, trained_run, tiny_samples, tmp_path):
    events, _ = read_events(finished)
    assert events[0]["mode"] == "stagewise"
    result = json.loads((finished / COMPARISON_FILE).read_text())
    assert result["mode"] == "stagewise" and result["seconds"] > 0
    # Stage 1 is the fold's image_only run; every fusion head read that fold's cached maps.
    stage1 = result["results"]["image_only"]["folds"]
    for fold, encoder_fold in zip(result["results"]["late_concat"]["folds"], stage1):
        assert fold["encoder"]["weights_sha256"] == encoder_fold["encoder"]["weights_sha256"]
        assert fold["maps"]["computed"] == 0
    at = compare_page(tiny_samples["skin_lesions"], tmp_path / "s", trained_run, finished)
    assert "fast, stage-wise" in page_text(at)                        # the stored result names its mode
    mode = next(r for r in at.radio if r.label == "Mode")
    assert mode.value == "stagewise" and mode.options == ["Fast, stage-wise", "End to end"]
    assert "**Fast, stage-wise**" in page_text(at) and "without augmentation" in page_text(at)
    mode.set_value("end_to_end").run()
    assert "**End to end**" in page_text(at)


def test_the_page_starts_the_mode_chosen(trained_run, tiny_samples, tmp_path, monkeypatch):
    from multimodal.app import session_jobs
    started = []
    monkeypatch.setattr(session_jobs, "start_comparison", lambda config, folder, name: started.append(config))
    at = compare_page(tiny_samples["skin_lesions"], tmp_path / "s", trained_run)
    next(b for b in at.button if b.label == "Run cross-validation").click().run()
    next(r for r in at.radio if r.label == "Mode").set_value("end_to_end").run()
    next(b for b in at.button if b.label == "Run cross-validation").click().run()
    (_, fast, fast_cache), (_, slow, _) = (comparison_parts(config) for config in started)
    assert fast.mode is None and slow.mode == "end_to_end"   # None: the worker picks the fast default
    assert fast_cache == tmp_path / "s" / "feature_cache"


def test_progress_is_shown_per_method():
    from multimodal.app.comparison_view import method_progress
    events = [{"type": "start", "archs": ["image_only", "tabular_only", "late_concat"], "folds": 6, "mode": "stagewise"},
              {"type": "fold", "arch": "image_only", "value": 0.5, "seconds": 10.0},
              {"type": "fold", "arch": "image_only", "value": 0.7, "seconds": 12.0},
              {"type": "fold", "arch": "tabular_only", "value": 0.6, "seconds": 1.0}]
    done, total, table = method_progress(events)
    assert (done, total) == (3, 6)
    rows = table.set_index("method")
    assert rows.loc["image_only (stage 1: the encoder the heads share)", "folds"] == "2 of 2"
    assert rows.loc["image_only (stage 1: the encoder the heads share)", "mean so far"] == "0.6000"
    assert rows.loc["tabular_only", "seconds"] == 1.0 and rows.loc["late_concat", "folds"] == "0 of 2"
    assert rows.loc["late_concat", "mean so far"] == "no fold yet"   # never a raw None


def test_cli_compare_prints_every_method_the_mode_the_gains_and_seconds(tiny_samples, tmp_path, monkeypatch, capsys):
    from multimodal.cli import main
    monkeypatch.setenv("MULTIMODAL_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["compare", str(tiny_samples["skin_lesions"]), "--methods", "late_concat", "--cv", "2",
                 "--epochs", "1", "--image-size", "16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["mode"] == "stagewise" and out["k"] == 2 and out["repeats"] == 1 and out["seconds"] > 0
    assert out["metric"] == "val_accuracy" and out["encoder"] == "small_cnn"
    assert set(out["methods"]) == {"image_only", "tabular_only", "linear", "late_concat"}
    for method in out["methods"].values():
        assert len(method["folds"]) == 2 and method["mean"] == pytest.approx(sum(method["folds"]) / 2)
    gains = out["gain"]["methods"]
    assert [g["arch"] for g in gains] == ["late_concat"] and len(gains[0]["per_fold"]) == 2
    assert gains[0]["sentence"].endswith(gains[0]["verdict"])
    assert list((tmp_path / "cache" / "features").glob("small_cnn-16px-*")) # the maps outlive the command
    # The result is kept for `train` without --arch (train/evidence.py), which proposes from it.
    assert Path(out["saved"]).parent.parent == tmp_path / "cache" / "comparisons"
    assert out["proposal"]["arch"] in out["methods"] and out["proposal"]["reason"].endswith(" proposed")


@pytest.mark.parametrize("argv", [["--methods", "nosuch"], ["--methods", "cnn_lstm"], ["--cv", "1"],
                                  ["--stagewise", "--end-to-end"], ["--encoder", "resnet"]])
def test_cli_compare_refuses_bad_input_with_one_error_line(tiny_samples, capsys, argv):
    from multimodal.cli import main
    assert main(["compare", str(tiny_samples["skin_lesions"]), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


# ---------------------------------------------------------------- the quick fusion gain (runs/gain.py)

def saved_run(arch: str, accuracy: float, status: str) -> dict:
    """A saved run as fusion_gain reads it; `status` is its summary's, as training writes it."""
    return {"arch": arch, "task": "classification", "name": f"{arch}-{status}",
            "metrics": {"val_accuracy": accuracy}, "summary": {"status": status}}


def test_the_quick_gain_leaves_stopped_runs_out_and_says_so():
    from multimodal.runs.gain import fusion_gain
    runs = [saved_run("late_concat", 0.80, "completed"), saved_run("gated", 0.95, "stopped"),
            saved_run("image_only", 0.70, "early_stopped"), saved_run("tabular_only", 0.90, "stopped")]
    gain = fusion_gain(runs, baselines=["image_only", "tabular_only"])
    # The stopped ones would win on both sides (0.95 - 0.90); the runs that ended on their own decide.
    assert gain["fusion"]["name"] == "late_concat-completed" and gain["baseline"]["name"] == "image_only-early_stopped"
    assert gain["gain"] == pytest.approx(0.10)
    assert [d["name"] for d in gain["left_out"]] == ["gated-stopped", "tabular_only-stopped"]
    assert gain["missing"] == ["tabular_only"]                      # a stopped baseline is not one trained
    assert ("Left out of the gain: gated (run gated-stopped), tabular_only (run tabular_only-stopped), stopped "
            "before their training ended: their metrics are partial.") in gain["note"]
    every = fusion_gain([r for r in runs if r["summary"]["status"] != "stopped"], baselines=["image_only"])
    assert every["left_out"] == [] and "Left out" not in every["note"]


def test_a_stopped_run_alone_gives_no_gain():
    from multimodal.runs.gain import fusion_gain
    gain = fusion_gain([saved_run("late_concat", 0.80, "completed"), saved_run("image_only", 0.99, "stopped")],
                       baselines=["image_only"])
    assert gain["gain"] is None and gain["baseline"] is None
    assert gain["note"] == ("No single-branch baseline yet: train image_only to measure the gain. Left out of "
                            "the gain: image_only (run image_only-stopped), stopped before its training ended: "
                            "its metrics are partial.")
