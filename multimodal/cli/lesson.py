"""`python -m multimodal lesson check FILE [--seeds 1,2,3] [--json]`: a teacher's lesson raced on
each seed and every claim reported (train/lesson_check.py). Exit 0 when every claim holds on every
seed, 1 when some fail, 2 on a bad file or flag (docs/ARCHITECTURE.md, "Lessons")."""
from __future__ import annotations

import argparse
from pathlib import Path

from multimodal.cli.common import UsageError, emit, training_output
from multimodal.cli.playground import offered_methods
from multimodal.core.comparison import default_processes
from multimodal.data.lesson_store import read_lesson_file

EXIT_SOME_FAIL = 1
MAX_SEEDS = 50


def add_lesson_parser(sub) -> None:
    c = sub.add_parser("lesson", help="check a Playground lesson file (TOML) before class")
    checks = c.add_subparsers(dest="lesson_command", required=True, parser_class=type(c))
    k = checks.add_parser("check", help="race the lesson on each seed and report every claim")
    k.add_argument("file", help="the lesson's .toml file")
    k.add_argument("--seeds", default=None, help="seeds to race, a,b,... (default: the lesson's own seed)")
    k.add_argument("--json", action="store_true")


def seeds_arg(text: str | None, default: int) -> list[int]:
    if text is None:
        return [default]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts) or len(parts) > MAX_SEEDS:
        raise UsageError(f"--seeds {text!r}: give 1 to {MAX_SEEDS} whole numbers separated by commas, e.g. 1,2,3")
    return [int(p) for p in parts]


def report_text(title: str, results: list[dict]) -> str:
    lines = [f"lesson: {title}"]
    for r in results:
        lines.append(f"seed {r['seed']}: {'every claim holds' if r['holds'] else 'SOME CLAIMS FAIL'} "
                     f"({r['seconds']:.0f} s)")
        lines += [f"  {'holds' if c['holds'] else 'FAILS'}: {c['claim']} ({c['detail']})" for c in r["claims"]]
    held = sum(r["holds"] for r in results)
    lines.append(f"held on {held} of {len(results)} seed{'s' if len(results) != 1 else ''}")
    return "\n".join(lines)


def cmd_lesson(args: argparse.Namespace) -> int:
    lesson = read_lesson_file(Path(args.file), offered_methods())
    seeds = seeds_arg(args.seeds, int(lesson.full_knobs()["seed"]))
    # lazy: TensorFlow loads only once the file is known to be good
    from multimodal.train.lesson_check import check_lesson
    with training_output():
        results = check_lesson(lesson, seeds, processes=default_processes())
    payload = {"lesson": lesson.title, "file": str(args.file), "holds": all(r["holds"] for r in results),
               "seeds": [{"seed": r["seed"], "holds": r["holds"], "seconds": r["seconds"],
                          "claims": [{"claim": c["claim"], "holds": c["holds"], "detail": c["detail"]}
                                     for c in r["claims"]]} for r in results]}
    emit(payload, args.json, report_text(lesson.title, results))
    return 0 if payload["holds"] else EXIT_SOME_FAIL
