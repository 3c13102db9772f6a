"""Where lessons come from: the shipped files in sample_data/lessons/, and lessons teachers publish.

A published lesson is stored by its content hash (sha256 of its bytes) in one server-side folder
outside every session's folder (MMSTUDIO_LESSONS_DIR, default ~/.local/share/mmstudio/lessons), so
its link (`?lesson=<hash>`) works for a whole class and can never name a session's files: a key is
a shipped lesson's name or 64 hex digits, nothing else is looked up. The shipped lessons' hold
rates (bench/bench_lessons.py) are in HOLD_RATES_FILE, each tied to the file's hash: an edited
lesson shows no stale rate. See docs/ARCHITECTURE.md, "Lessons".
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from multimodal.core.errors import DataError
from multimodal.core.limits import MAX_LESSON_KB
from multimodal.data.lesson_file import Lesson, content_hash, decode_lesson, parse_lesson
from multimodal.data.sources import SAMPLE_ROOT

LESSONS_DIR = SAMPLE_ROOT / "lessons"
HOLD_RATES_FILE = LESSONS_DIR / "hold_rates.json"
_HASH = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def published_dir() -> Path:
    return Path(os.environ.get("MMSTUDIO_LESSONS_DIR") or Path.home() / ".local/share/mmstudio/lessons")


def read_lesson_bytes(data: bytes, name: str, where: str, offered: tuple[str, ...]) -> Lesson:
    """A lesson from a file's bytes: size, UTF-8 and the whole format checked (DataError)."""
    return parse_lesson(decode_lesson(data, where, MAX_LESSON_KB.get() * 1024), name, offered)


def read_lesson_file(path: Path, offered: tuple[str, ...]) -> Lesson:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"lesson file '{path}' not found; give the path of a .toml lesson")
    return read_lesson_bytes(path.read_bytes(), path.stem, f"'{path.name}'", offered)


def shipped_names() -> list[str]:
    """The shipped lessons' names: in the order order.txt lists them, then any other file by name."""
    order = LESSONS_DIR / "order.txt"
    listed = [n.strip() for n in order.read_text().splitlines() if n.strip()] if order.exists() else []
    present = sorted(p.stem for p in LESSONS_DIR.glob("*.toml"))
    return [n for n in listed if n in present] + [n for n in present if n not in listed]


def shipped_lesson(name: str, offered: tuple[str, ...]) -> Lesson:
    if not _NAME.fullmatch(name) or not (LESSONS_DIR / f"{name}.toml").is_file():
        raise DataError(f"unknown lesson '{name}'; the shipped lessons are {', '.join(shipped_names())}")
    return read_lesson_file(LESSONS_DIR / f"{name}.toml", offered)


def publish(data: bytes, offered: tuple[str, ...]) -> Lesson:
    """Check an uploaded lesson and store it by its content hash (once; written whole, then renamed)."""
    digest = content_hash(data)
    lesson = read_lesson_bytes(data, digest, "the uploaded lesson", offered)
    folder = published_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}.toml"
    if not target.exists():
        fd, tmp = tempfile.mkstemp(prefix=".lesson-", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    return lesson


def find_lesson(key: str, offered: tuple[str, ...]) -> Lesson:
    """A shipped lesson by name, or a published one by its hash; DataError for anything else."""
    key = str(key).strip().lower()
    if _HASH.fullmatch(key):
        path = published_dir() / f"{key}.toml"
        if not path.is_file():
            raise DataError(f"no published lesson has the hash {key[:12]}...; ask for the link again")
        return read_lesson_bytes(path.read_bytes(), key, "the published lesson", offered)
    return shipped_lesson(key, offered)


def hold_rate(lesson: Lesson) -> dict | None:
    """{"held", "seeds", ...} measured for this very file (its hash), or None."""
    if not HOLD_RATES_FILE.exists():
        return None
    record = json.loads(HOLD_RATES_FILE.read_text()).get("lessons", {}).get(lesson.name)
    return record if record and record.get("sha256") == lesson.digest else None
