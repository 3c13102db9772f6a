"""Workspaces (multimodal/runs/workspaces.py; docs/ARCHITECTURE.md, "Workspaces"): the id is the only
key, bad ids are refused without touching anything outside the root, expiry, the quota's message, old
or damaged workspaces; and in the app (AppTest): a second session on the same `?ws=` link reopens the
dataset and setup, a bad link gives one notice and a fresh workspace, and query rewrites keep `ws`."""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from multimodal.runs import workspaces as wsp
from multimodal.train.jobs import JobState, recorded_job

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "workspaces"
    monkeypatch.setenv(wsp.ROOT_ENV, str(folder))
    return wsp.workspaces_root()


def tree(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


# ---------------------------------------------------------------- ids and folders

def test_new_ids_are_long_random_and_valid(root):
    ids = {wsp.new_id() for _ in range(50)}
    assert len(ids) == 50 and wsp.ID_BYTES * 8 >= 128
    assert all(len(i) >= wsp.MIN_ID_CHARS and wsp.id_problem(i) is None for i in ids)


@pytest.mark.parametrize("raw, reason", [
    ("../../../../etc/passwd", "characters"),
    ("/etc/passwd", "characters"),
    ("..%2F..%2Fetc%2Fpasswd_aaaaaaaaaaaa", "characters"),
    ("a" * 65, "too long"),
    ("x" * 5000, "too long"),
    ("ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗ", "characters"),       # full-width letters (NFKC: ascii)
    ("abcdefghijklmnopqrstuv\u200b", "characters"),                 # a zero-width space
    ("abcdefghijklmnopqrstu\u2215x", "characters"),                 # a division slash
    ("abcdefghijklmnopqrstuv\x00", "characters"),
    ("short", "too short"),
])
def test_bad_ids_are_refused_with_a_reason_and_touch_nothing_outside(root, raw, reason):
    outside = root.parent
    before = tree(outside)
    opened = wsp.open_workspace(raw)
    assert opened.fresh and reason in opened.problem and "refused" in opened.problem
    assert opened.workspace.path.parent == root and opened.workspace.id != raw
    created = tree(outside) - before
    assert created and all(p.startswith("workspaces/") for p in created)   # only the fresh workspace


def test_folder_is_the_ids_hash_and_another_id_sees_nothing(root):
    a = wsp.open_workspace().workspace
    assert a.path.name == hashlib.sha256(a.id.encode()).hexdigest() and a.id not in str(a.path)
    (a.folder("runs") / "secret.txt").write_text("a's run")
    b = wsp.open_workspace().workspace
    assert b.path != a.path and not (b.path / "runs" / "secret.txt").exists()
    assert all("secret" not in name for name, _ in b.items())
    again = wsp.open_workspace(a.id)
    assert not again.fresh and again.problem is None and (again.workspace.path / "runs" / "secret.txt").exists()


def test_an_unknown_id_gives_a_fresh_workspace_and_says_so(root):
    opened = wsp.open_workspace(wsp.new_id())
    assert opened.fresh and "does not exist" in opened.problem
    assert opened.workspace.path.is_dir()


# ---------------------------------------------------------------- expiry and quota

def test_expired_workspaces_are_swept_and_nothing_else(root, monkeypatch):
    old, recent = wsp.create(root), wsp.create(root)
    old.touch(time.time() - 8 * 86400)
    (root / "notes").mkdir()                         # not a workspace's name: never removed
    (root / ("f" * 64)).symlink_to(root / "notes")   # a link named like one: never followed or removed
    assert wsp.sweep(root) == [old.path.name]
    assert not old.path.exists() and recent.path.is_dir() and (root / "notes").is_dir()
    monkeypatch.setenv("MMSTUDIO_WORKSPACE_DAYS", "1")
    recent.touch(time.time() - 2 * 86400)
    opened = wsp.open_workspace(recent.id)
    assert opened.fresh and "expired" in opened.problem and "1 days" in opened.problem
    assert not recent.path.exists()


def test_a_full_quota_names_the_quota_and_what_to_delete(root, monkeypatch):
    monkeypatch.setenv("MMSTUDIO_WORKSPACE_MB", "1")
    ws = wsp.create(root)
    assert wsp.quota_problem(ws) is None
    (ws.folder("runs") / "20250101-late_concat").mkdir()
    (ws.path / "runs" / "20250101-late_concat" / "model.keras").write_bytes(b"x" * 1_500_000)
    (ws.folder("uploads") / "1").mkdir()
    (ws.path / "uploads" / "1" / "data.csv").write_bytes(b"y" * 200_000)
    message = wsp.quota_problem(ws)
    assert "1 MB" in message and "MMSTUDIO_WORKSPACE_MB" in message and "1.6 MB" in message
    assert message.index("runs/20250101-late_concat (1.4 MB)") < message.index("uploads/1")
    assert "runs/20250101" not in wsp.quota_problem(ws, keep=("runs/20250101-late_concat",))
    assert not ws.delete("../../etc") and not ws.delete("runs")
    assert ws.delete("runs/20250101-late_concat") and wsp.quota_problem(ws) is None


# ---------------------------------------------------------------- old or damaged workspaces

def test_old_or_damaged_workspaces_open_or_say_why(root):
    ws = wsp.create(root)
    (ws.path / wsp.RECORD_FILE).unlink()                       # an older workspace: no record at all
    assert ws.read_record() == ({}, None) and wsp.open_workspace(ws.id).problem is None
    (ws.path / wsp.RECORD_FILE).write_text('{"dataset": {"samples": "x"}}')   # older: no version
    assert ws.read_record()[0]["dataset"] == {"samples": "x"}
    (ws.path / wsp.RECORD_FILE).write_text("{not json")
    assert "cannot be read" in ws.read_record()[1]
    (ws.path / wsp.RECORD_FILE).write_text(json.dumps({"version": 99}))
    assert "newer version" in ws.read_record()[1]
    (ws.path / "runs").write_text("a file where a folder belongs")
    opened = wsp.open_workspace(ws.id)
    assert not opened.fresh and "runs" in opened.problem and (ws.path / "runs").exists() is False
    assert ws.folder("runs").is_dir()


def test_a_training_is_read_back_from_its_folder(tmp_path):
    done, cut = tmp_path / "done", tmp_path / "cut"
    for folder, lines in ((done, [{"type": "start", "epochs": 2, "steps": 1}, {"type": "end", "status": "completed"}]),
                          (cut, [{"type": "start", "epochs": 2, "steps": 1}])):
        folder.mkdir()
        (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert recorded_job(done).state == JobState.FINISHED
    job = recorded_job(cut)
    assert job.state == JobState.FAILED and "interrupted" in job.error and not job.active


# ---------------------------------------------------------------- in the app (AppTest)

def png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="PNG")
    return buf.getvalue()


def tiny_zip() -> bytes:
    rows, buf = ["image,age,label"], io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(12):
            zf.writestr(f"tiny/images/img{i:02d}.png", png((200, 40, 40) if i % 2 else (40, 40, 200)))
            rows.append(f"images/img{i:02d}.png,{30 + i},{'ab'[i % 2]}")
        zf.writestr("tiny/data.csv", "\n".join(rows) + "\n")
    return buf.getvalue()


def app(page: str | None = None, ws: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if ws is not None:
        at.query_params["ws"] = ws
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def notices(at: AppTest) -> list[str]:
    return [e.value for e in list(at.info) + list(at.warning) if "key to your workspace" in e.value
            or "workspace" in e.value.lower()]


def test_a_second_session_on_the_link_reopens_the_dataset_and_setup(root):
    first = app()
    ws_id = first.query_params["ws"]
    assert wsp.id_problem(ws_id) is None and len(notices(first)) == 1   # told once: the link is the key
    assert f"ws={ws_id}" in notices(first)[0]
    first.switch_page("pages/data.py")
    first.run()
    assert not notices(first)
    first.radio(key="data_mode").set_value("Upload your own").run()
    first.file_uploader[0].set_value([("tiny.zip", tiny_zip(), "application/zip")]).run()
    assert not first.exception and first.session_state["dataset"].name == "tiny"
    first.switch_page("pages/model.py")
    first.run()
    assert first.query_params["ws"] == ws_id and "arch" in first.query_params   # the rewrite kept ws
    shared = [c.value for c in first.code if "arch=" in c.value]
    assert shared and "ws=" not in shared[0]                                    # the share link leaves it out
    arch = first.session_state["model_config"].arch

    again = app("pages/data.py", ws=ws_id)
    ds = again.session_state["dataset"]
    assert ds.name == "tiny" and len(ds.frame) == 12 and ds.csv_path.is_relative_to(root)
    assert again.session_state["model_config"].arch == arch
    assert again.query_params["ws"] == ws_id and not notices(again)             # reopened quietly
    assert "tiny" in " ".join(m.value for m in again.markdown) + " ".join(s.value for s in again.subheader)


@pytest.mark.parametrize("bad, reason", [("../../etc", "refused"), ("%2e%2e%2fetc", "refused"),
                                         ("A" * 200, "too long"), (None, "does not exist")])
def test_a_bad_link_gives_one_notice_and_a_fresh_workspace(root, bad, reason):
    bad = wsp.new_id() if bad is None else bad
    before = tree(root.parent)
    at = app(ws=bad)
    shown = notices(at)
    assert len(shown) == 1 and reason in shown[0] and "new, empty workspace" in shown[0]
    fresh = at.query_params["ws"]
    assert fresh != bad and wsp.id_problem(fresh) is None
    assert at.session_state["dataset"].name == "skin_lesions"
    assert all(p.startswith("workspaces/") for p in tree(root.parent) - before)
    at.run()
    assert not notices(at)                                                       # once


def test_remember_writes_nothing_outside_and_no_ids(root):
    at = app()
    ws_id = at.query_params["ws"]
    record = json.loads((root / wsp.folder_name(ws_id) / wsp.RECORD_FILE).read_text())
    assert record["dataset"]["samples"].startswith("skin_lesions/") and ws_id not in json.dumps(record)
    assert os.listdir(root) == [wsp.folder_name(ws_id)]
