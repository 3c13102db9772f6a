"""Workspaces: a session's work (uploads, runs, comparisons, races, its setup) in a folder on the
server, named by an unguessable id that the page's URL carries (docs/ARCHITECTURE.md, "Workspaces").

Streamlit-free. The id is the only key: `secrets.token_urlsafe(24)` (192 bits). The folder's name
is the SHA-256 of the id, so no id (however crafted) names a path of its own, the folder names
listed on the server do not give the ids away, and nothing is read or written outside the root.

    opened = open_workspace(raw_id)          # the id's workspace, or a fresh one and why
    opened.workspace.path / "runs"           # its folders
    opened.workspace.save_record({...})      # its dataset, setup and chosen run (workspace.json)

Expired workspaces (unused for limits.WORKSPACE_DAYS) are removed when any workspace is opened;
limits.WORKSPACE_MB caps one workspace's files (`quota_problem` names it and what to delete).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multimodal.core import limits

ROOT_ENV = "MMSTUDIO_WORKSPACES_DIR"
ID_PARAM = "ws"                  # the URL's query parameter
ID_BYTES = 24                    # secrets.token_urlsafe(24): 32 characters, 192 bits
MIN_ID_CHARS, MAX_ID_CHARS = 22, 64   # 22 url-safe characters = 132 bits
RECORD_FILE = "workspace.json"
SEEN_FILE = ".seen"
VERSION = 1                      # of workspace.json; a record without "version" is an older one (0)
# The folders a workspace holds; each child of one is an item the quota message can name.
FOLDERS = ("uploads", "runs", "comparisons", "playground", "exports", "feature_cache")
SWEEP_SECONDS = 60.0             # sweep the root at most this often per process

_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_FOLDER_NAME = re.compile(r"[0-9a-f]{64}")
_sweep_lock = threading.Lock()
_last_sweep: dict[str, float] = {}


def workspaces_root() -> Path:
    """$MMSTUDIO_WORKSPACES_DIR, else `mmstudio-workspaces` in the system's temporary folder; created
    (owner-only) when missing. Every training worker must reach it: on a cluster, a shared path."""
    raw = os.environ.get(ROOT_ENV, "").strip()
    root = Path(raw).expanduser() if raw else Path(tempfile.gettempdir()) / "mmstudio-workspaces"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root.resolve()


def new_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def id_problem(raw: Any) -> str | None:
    """Why `raw` is not a workspace id, or None when it is one (in form: it may still not exist)."""
    if not isinstance(raw, str):
        return "it is not text"
    if len(raw) > MAX_ID_CHARS:
        return f"it is too long ({len(raw):,} characters; an id has at most {MAX_ID_CHARS})"
    if not raw.isascii() or not _ID_CHARS.fullmatch(raw):
        return "it holds characters no workspace id has (only letters, digits, '-' and '_')"
    if len(raw) < MIN_ID_CHARS:
        return f"it is too short ({len(raw)} characters; an id has at least {MIN_ID_CHARS})"
    return None


def folder_name(ws_id: str) -> str:
    """The folder of a (valid) id: its SHA-256, never the id itself."""
    return hashlib.sha256(ws_id.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Workspace:
    """One workspace: its id (the key in the URL) and its folder under the root."""

    id: str
    path: Path

    @property
    def key(self) -> str:
        """A name for the workspace that is not its id (the folder's name): the jobs' owner."""
        return self.path.name

    def touch(self, now: float | None = None) -> None:
        """Mark it used now (expiry counts from the last use)."""
        seen = self.path / SEEN_FILE
        seen.touch()
        if now is not None:
            os.utime(seen, (now, now))

    def last_seen(self) -> float:
        for path in (self.path / SEEN_FILE, self.path / RECORD_FILE, self.path):
            try:
                return path.stat().st_mtime
            except OSError:
                continue
        return 0.0

    def read_record(self) -> tuple[dict, str | None]:
        """(workspace.json's content, None) or ({}, why it cannot be used). A missing record is an
        empty workspace; one of an older version is read for what it has."""
        path = self.path / RECORD_FILE
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return {}, f"its record {RECORD_FILE} cannot be read ({type(exc).__name__}); its files are kept"
        if not isinstance(record, dict):
            return {}, f"its record {RECORD_FILE} is not a JSON object; its files are kept"
        version = record.get("version", 0)
        if not isinstance(version, int) or version > VERSION:
            return {}, (f"its record {RECORD_FILE} was written by a newer version of the app (format {version!r}, "
                        f"this one reads up to {VERSION}); update the app to reopen its dataset")
        return record, None

    def save_record(self, record: dict) -> None:
        """Write workspace.json whole (a reader never sees half of it)."""
        tmp = self.path / f".{RECORD_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps({**record, "version": VERSION}, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.path / RECORD_FILE)

    def folder(self, name: str) -> Path:
        """One of FOLDERS, created when missing."""
        path = self.path / name
        path.mkdir(exist_ok=True)
        return path

    def items(self) -> list[tuple[str, int]]:
        """What the workspace holds, largest first: each run, comparison, race, upload and export
        ("runs/2025...-late_concat"), and the feature cache whole, with its size in bytes."""
        found = []
        for name in FOLDERS:
            top = self.path / name
            if not top.is_dir() or top.is_symlink():
                continue
            children = [top] if name == "feature_cache" else sorted(top.iterdir())
            for child in children:
                found.append((child.relative_to(self.path).as_posix(), _size(child)))
        return sorted(found, key=lambda item: -item[1])

    def size_bytes(self) -> int:
        return _size(self.path)

    def delete(self, item: str) -> bool:
        """Delete one of items() by its name; False when the name is not one of them."""
        if item not in {name for name, _ in self.items()}:
            return False
        path = self.path / item
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return True


def _size(path: Path) -> int:
    """Bytes of the files under path (links not followed)."""
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def quota_problem(ws: Workspace, keep: tuple[str, ...] = (), size: int | None = None) -> str | None:
    """None while the workspace is under limits.WORKSPACE_MB; else a message naming the quota, how
    much it holds and the largest things to delete (not those in `keep`, e.g. the dataset in use)."""
    quota_mb = limits.WORKSPACE_MB.get()
    size = ws.size_bytes() if size is None else size
    if size < quota_mb * 2**20:
        return None
    largest = [f"{name} ({mb(n)})" for name, n in ws.items() if name not in keep][:3]
    what = f"delete what you no longer need, largest first: {', '.join(largest)}" if largest else \
        "delete runs, comparisons or uploads you no longer need"
    return (f"this workspace holds {mb(size)}, its quota is {quota_mb:,} MB ({limits.WORKSPACE_MB.env}); "
            f"{what}; or {limits.WORKSPACE_MB.hint()}")


def mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def expired(ws: Workspace, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    return now - ws.last_seen() > limits.WORKSPACE_DAYS.get() * 86400


def sweep(root: Path | None = None, now: float | None = None) -> list[str]:
    """Remove every expired workspace under the root; return their folder names. Only folders named
    as workspaces are (a SHA-256), never a link or anything else found there."""
    root = workspaces_root() if root is None else Path(root)
    removed = []
    for path in root.iterdir():
        if _FOLDER_NAME.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
            if expired(Workspace("", path), now):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    return removed


def _sweep_now_and_then(root: Path) -> None:
    with _sweep_lock:
        if time.monotonic() - _last_sweep.get(str(root), -SWEEP_SECONDS) < SWEEP_SECONDS:
            return
        _last_sweep[str(root)] = time.monotonic()
    try:
        sweep(root)
    except OSError:
        pass    # another process swept the same folder at the same time


@dataclass(frozen=True)
class Opened:
    """What open_workspace found: the workspace, whether it is new, and why the asked-for one was
    not opened (None when it was, or when none was asked for)."""

    workspace: Workspace
    fresh: bool
    problem: str | None = None


def create(root: Path | None = None) -> Workspace:
    root = workspaces_root() if root is None else Path(root)
    while True:
        ws_id = new_id()
        path = root / folder_name(ws_id)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:   # 2**-192: only in theory
            continue
        ws = Workspace(ws_id, path)
        ws.save_record({"created": time.time()})
        ws.touch()
        return ws


def open_workspace(raw_id: Any = None, root: Path | None = None) -> Opened:
    """The workspace of `raw_id` (used again from now), or a fresh one with the reason the id was
    refused or not found. Nothing outside the root is ever touched."""
    root = workspaces_root() if root is None else Path(root)
    opened = _open(raw_id, root)
    _sweep_now_and_then(root)    # after: the asked-for workspace's own expiry is told, not swept silently
    return opened


def _open(raw_id: Any, root: Path) -> Opened:
    if raw_id is None or raw_id == "":
        return Opened(create(root), True)
    if problem := id_problem(raw_id):
        return Opened(create(root), True, f"the link's workspace id was refused: {problem}")
    path = root / folder_name(raw_id)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        return Opened(create(root), True, "the link's workspace is not a folder on the server")
    ws = Workspace(raw_id, path)
    if not path.is_dir():
        return Opened(create(root), True, "the link's workspace does not exist (it expired, or the link "
                                          "is mistyped)")
    if expired(ws):
        shutil.rmtree(path, ignore_errors=True)
        return Opened(create(root), True, f"the link's workspace expired (unused for more than "
                                          f"{limits.WORKSPACE_DAYS.get()} days) and was removed")
    problem = _repair(ws)
    ws.touch()
    return Opened(ws, False, problem)


def _repair(ws: Workspace) -> str | None:
    """A folder of FOLDERS that is a file (an older or damaged workspace) is moved aside, so the
    app can use the name; returns what was done, or None."""
    moved = []
    for name in FOLDERS:
        path = ws.path / name
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.rename(ws.path / f"{name}.damaged-{int(time.time())}")
            moved.append(name)
    return f"its {', '.join(moved)} entry was not a folder and was set aside" if moved else None
