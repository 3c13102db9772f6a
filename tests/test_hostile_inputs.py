"""The hostile-input corpus (tests/support/hostile_files.py) through all three layers.

For every bad input: the library raises DataError whose message names the file / row / column
and what to do; the CLI exits 2 with one `error: ...` line and no traceback; the Data page shows
the message with st.error, keeps the previous dataset and still works. Throughout, nothing is
written outside the test's sandbox (TMPDIR, tempfile's folder and the working directory all
point into it), no escaping file appears anywhere, and the repository gets no new files.
Unusual but valid CSVs and images must load correctly, and the images must train.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from multimodal import cli
from multimodal.app import data_view
from multimodal.core.errors import DataError
from multimodal.data import dataset as data
from multimodal.data import images
from multimodal.data.inputs import model_inputs

from support.hostile_files import (
    CASES,
    ESCAPE_NAME,
    PLAIN_ROWS,
    VALID_CSVS,
    Case,
    csv_all_nan_feature,
    unusual_images,
    zip_noise,
)

ROOT = Path(__file__).resolve().parent.parent
APP_CASES = [c for c in CASES if c.app]
TIMEOUT = 60


# ---------------------------------------------------------------- corpus and confinement

@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Every case built once (the big zips take a few seconds): case id -> DATA source."""
    root = tmp_path_factory.mktemp("corpus")
    return {c.id: c.build(root / c.id) for c in CASES}


def new_repo_files() -> set[str]:
    """Untracked and ignored files in the repository that a run could leave behind. Source files
    (.py, .md) and bytecode are left out: the app never writes them, while the people editing
    this working tree at the same time do."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored=matching"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines()
            if line[:2] in ("??", "!!") and "__pycache__" not in line
            and not line.endswith((".pyc", ".py", ".md"))}


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def sandbox(tmp_path, monkeypatch, corpus):
    """TMPDIR, tempfile's folder and the working directory inside tmp_path; afterwards check that
    the repository has no new files and no escaping member landed anywhere."""
    box = tmp_path / "sandbox"
    box.mkdir()
    monkeypatch.setenv("TMPDIR", str(box))
    monkeypatch.setattr(tempfile, "tempdir", str(box))
    monkeypatch.chdir(tmp_path)
    repo_before = new_repo_files()
    yield box
    assert new_repo_files() == repo_before
    corpus_root = next(iter(corpus.values())).parent.parent
    for place in (tmp_path, corpus_root):
        assert not list(place.rglob(ESCAPE_NAME)), f"an escaping member was written under {place}"
    assert not Path("/tmp", ESCAPE_NAME).exists()


def lower_limits(case: Case, monkeypatch) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)


def assert_names(message: str, case: Case) -> None:
    missing = [part for part in case.expect if part not in message]
    assert not missing, f"{case.id}: {missing} not in {message!r}"


# ---------------------------------------------------------------- layer 1: library

@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_library_raises_dataerror_naming_the_problem(case, corpus, sandbox, monkeypatch):
    lower_limits(case, monkeypatch)
    work = sandbox / "work"
    if case.stage == "decode":
        # Decided: loading checks headers only, so this loads; decoding (training) refuses.
        ds = data.load_dataset(corpus[case.id], workdir=work, **case.load_kwargs)
        with pytest.raises(DataError) as err:
            model_inputs(ds.frame, ds.root, ds.features, 16)
    else:
        with pytest.raises(DataError) as err:
            data.load_dataset(corpus[case.id], workdir=work, **case.load_kwargs)
        assert files_under(sandbox) == []  # a refused zip leaves nothing half-extracted
    assert_names(str(err.value), case)


# ---------------------------------------------------------------- layer 2: command line

def train_argv(source: Path, out: Path, case: Case) -> list[str]:
    return ["train", str(source), "--epochs", "1", "--image-size", "16", "--out", str(out), *case.cli_args]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_cli_exits_2_with_one_error_line(case, corpus, sandbox, monkeypatch, capsys):
    lower_limits(case, monkeypatch)
    code = cli.main(train_argv(corpus[case.id], sandbox / "runs", case))
    out, err = capsys.readouterr()
    assert code == cli.EXIT_USER_ERROR, (out, err)
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in out + err, err
    assert_names(err, case)
    assert [p for p in sandbox.iterdir() if p.name != "runs"] == []  # the CLI's zip folder is gone


@pytest.mark.parametrize("case", [c for c in CASES if c.id == "truncated_jpeg"],
                         ids=lambda c: c.id)
def test_cli_subprocess_prints_no_traceback(case, corpus, sandbox):
    env = {**os.environ, "TMPDIR": str(sandbox), "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "multimodal", *train_argv(corpus[case.id], sandbox / "runs", case)],
                          cwd=sandbox, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert_names(proc.stderr, case)


# ---------------------------------------------------------------- layer 3: the Data page

def upload_of(source: Path, case: Case) -> tuple[str, bytes, str]:
    """What a user would upload: the zip itself, or the dataset's folder zipped."""
    if source.suffix == ".zip":
        return source.name, source.read_bytes(), "application/zip"
    folder = source.parent if source.is_file() else source
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, f"{case.id}/{p.relative_to(folder)}")
    return f"{case.id}.zip", buf.getvalue(), "application/zip"


def data_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def page() -> AppTest:
    """One Data page session for all cases (opening the app costs a second). Its session folder
    appears at the first upload, inside that test's sandbox."""
    return data_page()


def upload(at: AppTest, files: list[tuple[str, bytes, str]]) -> str:
    """Upload through the page's widget; return the text of every st.error shown."""
    at.radio(key="data_mode").set_value("Upload your own").run()
    at.file_uploader[0].set_value(files).run()
    assert not at.exception, at.exception
    return " | ".join(e.value for e in at.error)


def uploaded_files(at: AppTest) -> list[Path]:
    folder = at.session_state["session_folder"].path if "session_folder" in at.session_state else None
    return files_under(folder / "uploads") if folder else []


def assert_still_usable(at: AppTest) -> None:
    """Picking a sample (another one than now) still loads it, without any error."""
    other = "house_prices" if at.session_state["dataset"].name != "house_prices" else "skin_lesions"
    at.radio(key="data_mode").set_value("Sample dataset").run()
    at.selectbox(key="data_sample").select(other).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["dataset"].name == other


@pytest.mark.parametrize("case", APP_CASES, ids=lambda c: c.id)
def test_data_page_shows_error_and_stays_usable(case, corpus, sandbox, page, monkeypatch):
    before = page.session_state["dataset"].name
    saved_before = uploaded_files(page)
    lower_limits(case, monkeypatch)  # only for the upload: the samples may exceed a lowered limit
    shown = upload(page, [upload_of(corpus[case.id], case)])
    for name in case.env:
        monkeypatch.delenv(name)
    assert_names(shown, case)
    assert page.session_state["session_folder"].path.is_relative_to(sandbox.parent.parent)  # a sandbox
    if case.stage == "decode":
        assert page.session_state["dataset"].name == case.id  # loads; the image grid names the bad file
    else:
        assert "previous dataset is still active" in shown and page.session_state["dataset"].name == before
        assert uploaded_files(page) == saved_before  # the refused upload was removed
    assert_still_usable(page)


def test_upload_over_the_size_limit_is_refused_before_saving(tmp_path, sandbox, page, monkeypatch):
    monkeypatch.setenv("MMSTUDIO_MAX_UPLOAD_MB", "1")
    before, saved_before = page.session_state["dataset"].name, uploaded_files(page)
    big = zip_noise(tmp_path / "big")
    shown = upload(page, [(big.name, big.read_bytes(), "application/zip")])
    assert page.file_uploader[0].proto.max_upload_size_mb == 1  # the browser refuses it up front too
    assert "the upload is 2 MB (limit 1 MB)" in shown and "MMSTUDIO_MAX_UPLOAD_MB" in shown, shown
    assert uploaded_files(page) == saved_before
    assert page.session_state["dataset"].name == before
    assert_still_usable(page)


def test_uploader_limit_never_exceeds_streamlits_own(monkeypatch):
    monkeypatch.setenv("MMSTUDIO_MAX_UPLOAD_MB", "100000")
    assert data_view.uploader_limit_mb() == 500  # .streamlit/config.toml server.maxUploadSize
    monkeypatch.delenv("MMSTUDIO_MAX_UPLOAD_MB")
    assert data_view.uploader_limit_mb() == 500


# ---------------------------------------------------------------- valid variants must work

@pytest.mark.parametrize("variant", list(VALID_CSVS))
def test_csv_variants_load_with_the_right_values(tmp_path, variant):
    (tmp_path / "data.csv").write_bytes(VALID_CSVS[variant])
    ds = data.load_dataset(tmp_path / "data.csv")
    expected = pd.DataFrame(PLAIN_ROWS, columns=["name", "value", "label"])
    assert list(ds.frame.columns) == ["name", "value", "label"]
    assert ds.frame["name"].tolist() == expected["name"].tolist()      # quotes and newlines intact
    assert ds.frame["value"].tolist() == expected["value"].tolist()    # decimal commas understood
    assert ds.frame["label"].tolist() == expected["label"].tolist()    # no '\r' left on the last column
    assert ds.target == "label" and ds.classes == ["no", "yes"]


def test_latin1_csv_loads_through_the_fallback(tmp_path):
    drinks = ["th\xe9", "caf\xe9"] * 6
    (tmp_path / "data.csv").write_bytes(b"drink,price,label\n" + "".join(
        f"{d},{i * 1.5},{'ab'[i % 3 > 0]}\n" for i, d in enumerate(drinks)).encode("latin-1"))
    ds = data.load_dataset(tmp_path / "data.csv")
    assert ds.frame["drink"][1] == "caf\xe9" and ds.frame["drink"][0] == "th\xe9"
    assert ds.frame.attrs["encoding"] == "cp1252" and ds.roles["drink"] == "categorical"


def test_all_nan_feature_is_ignored_when_detected(tmp_path):
    ds = data.load_dataset(csv_all_nan_feature(tmp_path))
    assert ds.roles["empty"] == "ignore" and "empty" not in ds.features.tabular_cols


def test_unusual_images_decode_upright_and_train(tmp_path, sandbox):
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.train.training import train

    found = unusual_images(tmp_path / "ds" / "img")
    with Image.open(found["gray16.png"][0]) as img:
        assert img.mode == "I;16"  # the file really is 16-bit
    for name, (path, probes) in found.items():
        out = images.load_image(path, 16)
        assert out.shape == (16, 16, 3) and out.dtype == np.uint8, name
        for fy, fx, colour, tol in probes:
            got = out[int(fy * 15), int(fx * 15)].astype(int)
            assert np.abs(got - np.array(colour)).max() <= tol, (name, fy, fx, got.tolist(), colour)
    rows = [{"image": f"img/{name}", "x": float(i), "label": "ab"[i % 2]}
            for i, name in enumerate(sorted(found) * 2)]
    pd.DataFrame(rows).to_csv(tmp_path / "ds" / "data.csv", index=False)
    config = TrainConfig(data=str(tmp_path / "ds" / "data.csv"), epochs=1, batch_size=8,
                         model=ModelConfig(image_size=16, width=16))
    summary = train(config, sandbox / "run")
    assert summary["epochs_run"] == 1 and summary["task"] == "classification"
    assert all(np.isfinite(v) for v in summary["metrics"].values()), summary["metrics"]
