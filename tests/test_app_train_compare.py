"""AppTest tests of the Train and Compare pages (through app.py's navigation, session seeded)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from multimodal.core.comparison import comparison_parts
from multimodal.data.dataset import load_dataset
from multimodal.runs.verdicts import split_caveat
from multimodal.train import jobs

from support.apptest import assert_clean
from support.apptest import open_app_page as open_page

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


class Busy:
    """Stands in for a running worker so the manager's one slot stays taken (no process)."""
    state = "running"

    def _check(self, now):
        return False

    def _orphaned(self, now):
        return False


@pytest.fixture
def busy_manager():
    """Limit 1 with the slot taken: every new job waits in the queue; cancelled at the end."""
    jobs.MANAGER.limit = 1
    jobs.MANAGER.running.append(busy := Busy())
    yield
    for job in list(jobs.MANAGER.queue):
        job.stop()
    jobs.MANAGER.running.remove(busy)
    jobs.MANAGER.limit = None


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} in {[b.label for b in at.button]}"
    return found[0]


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error")
                     for e in getattr(at, kind))


def bars(at: AppTest) -> list[str]:
    """The texts of the page's progress bars (AppTest has no typed progress element)."""
    return [e.proto.text for e in at.get("progress")]


# ------------------------------------------------------------------------------------- Train

def test_train_page_shows_the_setup_and_start(tiny_samples, tmp_path):
    at = open_page("train.py", tiny_samples["skin_lesions"], tmp_path / "s",
                   train_settings={"epochs": 3, "batch_size": 8})
    button(at, "Start training")
    page = texts(at)
    assert "up to 3 epochs" in page and "batch 8" in page and "late_concat" in page
    assert "Press **Start training**" in page
    # 40 rows: the page steers to cross-validation first, and says why
    assert "40 rows is a small dataset: one validation split can flip which method looks better" in page
    assert any(link.label == "Cross-validate on Compare" for link in at.get("page_link"))


def test_start_runs_a_job_and_shows_the_finished_run(tiny_samples, tmp_path):
    from multimodal.core.config import ModelConfig
    session = tmp_path / "s"
    at = open_page("train.py", tiny_samples["skin_lesions"], session,
                   model_config=ModelConfig(image_size=16), train_settings={"epochs": 1, "batch_size": 8})
    button(at, "Start training").click().run()
    assert_clean(at)
    session_jobs = at.session_state["jobs"]
    assert len(session_jobs) == 1
    job = next(iter(session_jobs.values()))
    assert Path(job.run_dir).parent == session / "runs" and job.config["epochs"] == 1
    assert job.config["model"]["image_size"] == 16 and job.config["target"] == "diagnosis"
    assert job.state in ("queued", "running")
    assert job.wait(120) == "finished", job.error
    at.run()                                      # clicking around never restarts or breaks the job
    assert_clean(at)
    assert len(at.session_state["jobs"]) == 1
    assert [b.label for b in at.get("download_button")] == ["Model (.keras)", "History (.csv)", "Config (.json)"]
    assert any(m.label.startswith("Accuracy") for m in at.metric)   # the evaluation record's name (runs/headline.py)
    val_rows = len(json.loads((Path(job.run_dir) / "config.json").read_text())["splits"]["val"])
    assert f"Validation metrics on {split_caveat(val_rows)}." in texts(at)      # one split of N rows
    assert at.session_state["selected_run"] == str(job.run_dir)


def test_queued_and_failed_jobs_are_explained(tiny_samples, tmp_path, busy_manager):
    session = tmp_path / "s"
    csv = tiny_samples["skin_lesions"]
    failed = jobs.Job({"epochs": 1, "model": {"arch": "gated"}}, session / "runs" / "failed")
    failed.state, failed.error = "failed", "column 'age': not numeric in rows 3, 4"
    queued = jobs.start_job({"data": str(csv), "epochs": 1, "model": {"arch": "late_concat"}},
                            session / "runs" / "queued")
    assert queued.state == "queued"
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["session_folder"] = SimpleNamespace(path=session)
    at.session_state["dataset"] = load_dataset(csv)
    at.session_state["jobs"] = {str(failed.run_dir): failed, str(queued.run_dir): queued}
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "queued: position 1 of 1, waiting for a free slot" in texts(at)
    button(at, "Stop")
    at.selectbox[0].set_value(str(failed.run_dir)).run()
    assert [e.value for e in at.error] == ["column 'age': not numeric in rows 3, 4"]
    assert "Traceback" not in texts(at)


# ----------------------------------------------------------------------------------- Compare

@pytest.fixture(scope="module")
def three_runs(tiny_samples, tmp_path_factory) -> Path:
    """late_concat, image_only and tabular_only runs (1 epoch) in a runs folder."""
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.train.training import train
    root = tmp_path_factory.mktemp("compare_runs")
    for arch in ("late_concat", "image_only", "tabular_only"):
        train(TrainConfig(data=str(tiny_samples["skin_lesions"]), epochs=1, batch_size=8, patience=0,
                          model=ModelConfig(arch=arch, image_size=16)), root / arch)
    return root


def test_compare_lists_runs_and_the_fusion_gain(tiny_samples, three_runs, tmp_path, busy_manager):
    session = tmp_path / "s"
    shutil.copytree(three_runs, session / "runs")
    at = open_page("compare.py", tiny_samples["skin_lesions"], session,
                   selected_run=str(session / "runs" / "late_concat"))
    table = at.dataframe[0].value
    assert {"late_concat", "image_only", "tabular_only"} <= set(table["run"])
    assert {"run", "method", "task", "epochs", "value", "seconds", "samples/s"} <= set(table.columns)
    acc = {a: json.loads((session / "runs" / a / "metrics.json").read_text())["val_accuracy"]
           for a in ("late_concat", "image_only", "tabular_only")}
    expected = acc["late_concat"] - max(acc["image_only"], acc["tabular_only"])
    gain = [m for m in at.metric if m.label.startswith("val accuracy")]
    assert gain and float(gain[0].value) == pytest.approx(expected, abs=1e-4)
    val_rows = len(json.loads((session / "runs" / "late_concat" / "config.json").read_text())["splits"]["val"])
    page = texts(at)
    assert f"Fusion gain on {split_caveat(val_rows)}." in page                    # the single-split caveat
    assert "linear is missing" in page                                            # the third baseline
    assert "rows is a small dataset" in page and "**Cross-validated comparison** below" in page
    assert len(at.get("plotly_chart")) == 1

    button(at, "Train baselines").click().run()   # every baseline the data allows queues behind the busy slot
    assert_clean(at)
    started = [j for j in at.session_state["jobs"].values()]
    assert sorted(j.arch for j in started) == ["image_only", "linear", "tabular_only"]
    assert all(j.state == "queued" and j.config["epochs"] == 1 for j in started)
    assert all(j.config["model"]["image_size"] == 16 for j in started)
    assert "**Training baselines: 0 of 3 done · 0 running · 3 queued**" in texts(at)
    assert [line.split(": position")[0] for line in bars(at)[1:]] == [
        f"{i} of 3 · **{job.arch}** · queued" for i, job in enumerate(started, 1)]
    assert "waiting for a free slot" in bars(at)[1]
    assert button(at, "Train baselines").disabled
    button(at, "Stop baselines").click().run()    # the queued ones are dropped at once
    assert all(j.state == "stopped" for j in started)
    at.run()                                      # the live view's next tick: the page redraws without it
    assert not bars(at) and not [b for b in at.button if b.label == "Stop baselines"]


def test_compare_notes_a_missing_baseline(tiny_samples, three_runs, tmp_path):
    session = tmp_path / "s"
    (session / "runs").mkdir(parents=True)
    shutil.copytree(three_runs / "late_concat", session / "runs" / "late_concat")
    at = open_page("compare.py", tiny_samples["skin_lesions"], session)
    assert "No single-branch baseline yet" in texts(at)
    assert not [m for m in at.metric if m.label.startswith("val accuracy")]


def test_compare_leaves_a_stopped_baseline_out_of_the_gain(tiny_samples, three_runs, tmp_path):
    session = tmp_path / "s"
    shutil.copytree(three_runs, session / "runs")
    summary = session / "runs" / "tabular_only" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "status": "stopped"}))   # Stop pressed
    at = open_page("compare.py", tiny_samples["skin_lesions"], session,
                   selected_run=str(session / "runs" / "late_concat"))
    acc = {a: json.loads((session / "runs" / a / "metrics.json").read_text())["val_accuracy"]
           for a in ("late_concat", "image_only")}
    gain = [m for m in at.metric if m.label.startswith("val accuracy")]
    assert gain and float(gain[0].value) == pytest.approx(acc["late_concat"] - acc["image_only"], abs=1e-4)
    assert "Left out of the gain: tabular_only (run tabular_only), stopped before its training ended" in texts(at)


@pytest.fixture
def one_slot():
    """One training at a time: the baselines run one after the other, so the counts are known."""
    jobs.MANAGER.limit = 1
    yield
    jobs.MANAGER.limit = None


def test_train_baselines_shows_live_progress_then_the_gain(tiny_samples, three_runs, tmp_path, one_slot):
    session = tmp_path / "s"
    (session / "runs").mkdir(parents=True)
    shutil.copytree(three_runs / "late_concat", session / "runs" / "late_concat")
    at = open_page("compare.py", tiny_samples["skin_lesions"], session)
    assert "No single-branch baseline yet" in texts(at)

    button(at, "Train baselines").click().run()
    assert_clean(at)
    group = [at.session_state["jobs"][run_dir] for run_dir in at.session_state["baseline_jobs"]]
    first = group[0]
    assert "**Training baselines: 0 of 3 done · 1 running · 2 queued**" in texts(at)
    assert bars(at)[1].startswith(f"1 of 3 · **{first.arch}** · running: ")
    assert bars(at)[2].startswith(f"2 of 3 · **{group[1].arch}** · queued: position 1 of 2")

    assert first.wait(240) == "finished", first.error
    at.run()                                       # the next one has just started: it cannot have ended
    assert_clean(at)
    assert "**Training baselines: 1 of 3 done · 1 running · 1 queued**" in texts(at)
    assert bars(at)[1].startswith(f"1 of 3 · **{first.arch}** · finished: 1 epochs")
    assert "No single-branch baseline yet" not in texts(at)     # the finished baseline counts at once
    assert [m for m in at.metric if m.label.startswith("val accuracy")]

    button(at, "Stop baselines").click().run()
    assert [job.wait(60) for job in group[1:]] == ["stopped", "stopped"]
    at.run()
    assert_clean(at)
    assert not bars(at) and "Training baselines" not in texts(at)
    assert first.arch in set(at.dataframe[0].value["method"])
    assert not button(at, "Train baselines").disabled


def _job(arch: str, state: str, progress):
    return SimpleNamespace(arch=arch, state=state, active=state in jobs.ACTIVE, progress=lambda: progress,
                           status_text=lambda: f"{state}: as the job says")


def test_a_group_of_trainings_says_which_of_how_many_and_where_each_is():
    from multimodal.app.training_view import group_status
    from multimodal.train.progress import Progress
    group = [_job("image_only", "finished", Progress(epoch=4, epochs=20, fraction=0.2)),
             _job("tabular_only", "running", Progress(epoch=1, epochs=20, step=3, steps=4, fraction=0.1,
                                                      batch_points=[{"x": 1.75}], eta_seconds=75)),
             _job("linear", "running", Progress(epochs=20)),
             _job("bilinear", "queued", Progress(epochs=20))]
    headline, fraction, rows = group_status(group)
    assert headline == "1 of 4 done · 2 running · 1 queued"
    assert fraction == pytest.approx((1.0 + 0.1) / 4)                 # an ended training counts whole
    assert [line for _, line in rows] == [
        "1 of 4 · **image_only** · finished: as the job says",
        "2 of 4 · **tabular_only** · epoch 2 of 20 · step 3 of 4 · about 1 min 15 s left",
        "3 of 4 · **linear** · running: as the job says",          # before its first batch: the job's stage
        "4 of 4 · **bilinear** · queued: as the job says"]


def test_the_cross_validation_form_keeps_its_choices_through_a_comparison(tiny_samples, three_runs, tmp_path,
                                                                         monkeypatch):
    """The form is not drawn while a comparison runs, so Streamlit drops its widgets' state: it used to
    come back with the defaults. 40 rows make k=3 the default, so the test chooses k=5."""
    from multimodal.app import session_jobs
    started: list[jobs.Job] = []

    def stand_in(config, folder: Path, name: str) -> jobs.Job:
        """Listed as the page lists a worker but never started: the test says when it ends."""
        job = jobs.Job(config, folder / name)
        job.state = "running"
        session_jobs.comparison_jobs()[str(job.run_dir)] = job
        started.append(job)
        return job

    monkeypatch.setattr(session_jobs, "start_comparison", stand_in)
    session = tmp_path / "s"
    (session / "runs").mkdir(parents=True)
    shutil.copytree(three_runs / "late_concat", session / "runs" / "late_concat")
    at = open_page("compare.py", tiny_samples["skin_lesions"], session)

    def widget(kind: str, label: str):
        return next((w for w in getattr(at, kind) if w.label.startswith(label)), None)

    assert widget("selectbox", "Folds (k)").value == 3
    widget("selectbox", "Folds (k)").set_value(5)
    widget("number_input", "Repeats").set_value(2)
    widget("multiselect", "Fusion methods").select("gated")
    widget("radio", "Mode").set_value("end_to_end")
    at.run()
    button(at, "Run cross-validation").click().run()
    assert_clean(at)
    assert [comparison_parts(job.config)[1].k for job in started] == [5]
    assert widget("selectbox", "Folds (k)") is None              # the progress replaces the form meanwhile
    at.run()

    started[0].state = "finished"
    at.run()
    assert_clean(at)
    assert widget("selectbox", "Folds (k)").value == 5
    assert widget("number_input", "Repeats").value == 2
    assert widget("multiselect", "Fusion methods").value == ["late_concat", "gated"]
    assert widget("radio", "Mode").value == "end_to_end"
    caption = next(c.value for c in at.caption if c.value.startswith("Trains "))
    assert caption.startswith("Trains 50 models (5 methods: ") and "x 5 folds x 2 repeats" in caption
