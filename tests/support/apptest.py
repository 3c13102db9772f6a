"""Opening the app's pages with Streamlit's AppTest, a seeded session, and checking them."""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

from streamlit.testing.v1 import AppTest

from multimodal.data.dataset import load_dataset

ROOT = Path(__file__).resolve().parents[2]
PAGE_TIMEOUT = 120     # a page on its own may load and explain a model on its first run
APP_TIMEOUT = 60


def assert_clean(at: AppTest) -> None:
    """No exception and no error element on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def open_page(page: str, csv: Path, run_dir: Path, tmp_path: Path) -> AppTest:
    """Run pages/<page> on its own with the session seeded as state.py expects (dataset, session
    folder, and a copy of `run_dir` as the selected run)."""
    session = tmp_path / "session"
    shutil.copytree(run_dir, session / "runs" / run_dir.name)
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=PAGE_TIMEOUT)
    at.session_state["session_folder"] = SimpleNamespace(path=session)
    at.session_state["dataset"] = load_dataset(csv)
    at.session_state["dataset_source"] = str(csv)
    at.session_state["selected_run"] = str(session / "runs" / run_dir.name)
    at.run()
    assert_clean(at)
    return at


def open_app_page(page: str, csv: Path, session: Path, **state) -> AppTest:
    """Run app.py and switch to pages/<page>, the session seeded with the dataset, the session
    folder `session` and any other `state` keys."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT)
    at.session_state["session_folder"] = SimpleNamespace(path=session)
    (session / "runs").mkdir(parents=True, exist_ok=True)
    at.session_state["dataset"] = load_dataset(csv)
    at.session_state["dataset_source"] = str(csv)
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(f"pages/{page}")
    at.run()
    assert_clean(at)
    return at


def metric(at: AppTest, label_start: str) -> str:
    """The value of the first metric whose label starts with `label_start`."""
    return next(m.value for m in at.metric if m.label.startswith(label_start))
