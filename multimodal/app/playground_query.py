"""The Playground page's setup in the URL: the lesson, knobs, methods, folds, and `_hide` (controls a
teacher hides, as TensorFlow Playground's `_hide` keys do). Streamlit-free, so cheap to test.

`lesson=` names a shipped lesson or a published one by its content hash (data/lesson_store.py);
the old `preset=<name>` links are read as an alias. Every bad value is dropped with one warning and
the page keeps its default (setup_from_query); setup_to_query writes only what differs from the
lesson's (or the default) setting, and never anything of a session's, so a link stays short and
shareable. See docs/ARCHITECTURE.md, "The Fusion Playground" and "Lessons".
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from multimodal.core.errors import DataError
from multimodal.data.lesson_file import Lesson
from multimodal.data.lesson_store import find_lesson, read_lesson_bytes
from multimodal.data.playground_knobs import DEFAULT_METHODS, KNOBS, checked_knobs, default_knobs

HIDE_KEY, LESSON_KEY, ALIAS_KEY = "_hide", "lesson", "preset"
OTHER_CONTROLS = ("preset", "methods", "folds", "preview")
CONTROLS = (*OTHER_CONTROLS[:1], *KNOBS, *OTHER_CONTROLS[1:])   # what `_hide` may name ("preset": the lesson picker)
FOLDS = (2, 3, 4, 5)
DEFAULT_FOLDS = 3
FREE_KNOBS = ("rows", "image_size", "seed")   # changing these keeps the lesson


def _last(raw: Any) -> str:
    return str(raw[-1] if isinstance(raw, (list, tuple)) and raw else raw).strip()


def _items(raw: Any) -> list[str]:
    values = raw if isinstance(raw, (list, tuple)) else [raw]
    return [part.strip() for v in values for part in str(v).split(",") if part.strip()]


def lesson_methods(lesson: Lesson | None, offered: Iterable[str]) -> list[str]:
    """The methods a setup races by default: the lesson's (its baselines too), else the default seven."""
    offered = list(offered)
    return [m for m in (lesson.raced if lesson else DEFAULT_METHODS) if m in offered]


def lesson_knobs(lesson: Lesson | None) -> dict:
    """The lesson's full knob setting (the rest default); the defaults in free play."""
    return checked_knobs({}, lesson.knobs)[0] if lesson else default_knobs()


def open_lesson(key: str, offered: Iterable[str]) -> tuple[Lesson | None, str | None]:
    """(the lesson a link names, None) or (None, why not): a shipped name or a published hash."""
    try:
        return find_lesson(key, tuple(offered)), None
    except DataError as exc:
        return None, f"{exc}; the page is in free play"


def read_upload(data: bytes, offered: Iterable[str]) -> tuple[Lesson | None, str | None]:
    """A teacher's uploaded file checked whole: (lesson, None) or (None, the one problem, naming its key)."""
    try:
        return read_lesson_bytes(data, "uploaded", "the uploaded lesson", tuple(offered)), None
    except DataError as exc:
        return None, str(exc)


def lesson_setup(lesson: Lesson | None, seed: int, offered: Iterable[str], hidden: list[str]) -> dict:
    """A setup that opens `lesson` (None: free play): its knobs (the rest default, `seed` kept), its
    methods and its folds."""
    knobs = {**lesson_knobs(lesson), "seed": seed}
    return {"lesson": lesson, "knobs": knobs, "methods": lesson_methods(lesson, offered),
            "folds": lesson.folds if lesson else DEFAULT_FOLDS, "hidden": list(hidden)}


def setup_from_query(query: Mapping[str, Any], race_methods: Iterable[str]) -> tuple[dict, list[str]]:
    """({"lesson", "knobs", "methods", "folds", "hidden"}, warnings) from the URL's parameters.

    race_methods: the fusion methods the page offers (the registry's two-branch methods)."""
    offered = list(race_methods)
    warnings: list[str] = []
    key = _last(query[LESSON_KEY]) if LESSON_KEY in query else _last(query[ALIAS_KEY]) if ALIAS_KEY in query else ""
    lesson = None
    if key:
        lesson, problem = open_lesson(key, offered)
        warnings += [problem] if problem else []
    knob_values = {k: _last(v) for k, v in query.items() if k in KNOBS}
    knobs, knob_warnings = checked_knobs(knob_values, lesson.knobs if lesson else None)
    warnings += knob_warnings
    methods = lesson_methods(lesson, offered)
    if "methods" in query:
        named = _items(query["methods"])
        warnings += [f"unknown method '{m}' ignored" for m in named if m not in offered]
        methods = [m for m in named if m in offered] or methods
    folds = lesson.folds if lesson else DEFAULT_FOLDS
    if "folds" in query:
        text = _last(query["folds"])
        if text.isdigit() and int(text) in FOLDS:
            folds = int(text)
        else:
            warnings.append(f"folds={text} is out of range: {FOLDS[0]} to {FOLDS[-1]}; kept {folds}")
    hidden = []
    for name in _items(query.get(HIDE_KEY, [])):
        if name in CONTROLS:
            hidden.append(name)
        else:
            warnings.append(f"{HIDE_KEY}: there is no control '{name}' to hide; the controls are {', '.join(CONTROLS)}")
    known = {LESSON_KEY, ALIAS_KEY, "methods", "folds", HIDE_KEY, *KNOBS}
    warnings += [f"unknown setting '{k}' ignored" for k in query if k not in known]
    return {"lesson": lesson, "knobs": knobs, "methods": methods, "folds": folds, "hidden": hidden}, warnings


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setup_to_query(setup: Mapping[str, Any]) -> dict[str, str]:
    """The URL parameters of a setup: the lesson, the knobs that differ from it, the methods and
    folds when not the lesson's (or the defaults), and `_hide`. Nothing of a session's."""
    lesson: Lesson | None = setup.get("lesson")
    base = lesson_knobs(lesson)
    query = {LESSON_KEY: lesson.name} if lesson else {}
    query.update({k: _text(v) for k, v in setup["knobs"].items() if k in KNOBS and v != base[k]})
    if list(setup["methods"]) != list(lesson.raced if lesson else DEFAULT_METHODS):
        query["methods"] = ",".join(setup["methods"])
    if setup["folds"] != (lesson.folds if lesson else DEFAULT_FOLDS):
        query["folds"] = str(setup["folds"])
    if setup.get("hidden"):
        query[HIDE_KEY] = ",".join(setup["hidden"])
    return query


def hidden_controls(setup: Mapping[str, Any]) -> list[str]:
    """The controls not shown: the link's `_hide` and the lesson file's own `hide` list."""
    lesson: Lesson | None = setup.get("lesson")
    return list(dict.fromkeys([*setup.get("hidden", []), *(lesson.hide if lesson else ())]))


def leaves_lesson(lesson: Lesson, knobs: Mapping[str, Any]) -> bool:
    """A signal knob moved away from the lesson's value: its claims no longer apply. Rows, image size
    and seed stay free, even where the lesson sets them (a class may race a lesson on fewer rows; the
    lesson box then says its hold rate was measured at the lesson's own size)."""
    own = lesson_knobs(lesson)
    judged = set(KNOBS) - set(FREE_KNOBS)
    return any(own[k] != knobs[k] for k in judged)


def race_setup(setup: Mapping[str, Any]) -> dict:
    """What a race ran with (kept in its record): the lesson's key, knobs, methods and folds."""
    lesson: Lesson | None = setup.get("lesson")
    return {"lesson": lesson.name if lesson else None, "knobs": dict(setup["knobs"]),
            "methods": sorted(setup["methods"]), "folds": int(setup["folds"])}


def describe_setup(record: Mapping[str, Any], title: str | None = None) -> str:
    """A race record's setup in a line: the lesson (or free play), the knobs that differ from the
    defaults, the methods and folds."""
    knobs = {k: v for k, v in record["knobs"].items() if v != default_knobs()[k]}
    parts = [f"lesson '{title or record['lesson']}'" if record["lesson"] else "free play"]
    parts += [", ".join(f"{k}={_text(v)}" for k, v in knobs.items())] if knobs else []
    parts.append(f"{len(record['methods'])} methods, {record['folds']} folds")
    return "; ".join(parts)
