"""The Fusion Playground's benchmark (docs/ARCHITECTURE.md, "The Fusion Playground").

    python -m bench.bench_playground [--part race|shares|all] [--seeds 5] [--processes N] [--out FILE]

- race: 7 models (image_only, tabular_only, linear + late_concat, multiply, film, gated), 3 folds,
  600 rows at 24 px (the complementary knobs), with every method's first-fold model kept: wall time,
  time to the first leaderboard row, and the seconds of the 7 models' branch shares afterwards.
- lessons: moved to bench/bench_lessons.py (each shipped lesson file at its shipped settings).
- shares: on image_alone, table_alone and complementary (seeds as lessons, 400 rows at 16 px), the winning
  method's branch shares vs the generator's true shares (max absolute difference over
  image/table/interaction), on up to 128 of its held-out rows.

Every result is appended to the JSON file as it completes (a long run that is cut short keeps
what finished), with the machine's load average at that moment.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from multimodal.core.comparison import default_processes
from multimodal.data.lesson_store import shipped_lesson
from multimodal.data.playground import write_playground
from multimodal.data.playground_knobs import DEFAULT_METHODS, checked_knobs
from multimodal.explain.branch_shares import method_shares
from multimodal.models.fusion import methods_for
from multimodal.train.playground_race import run_race

SHARE_PRESETS = ("image_alone", "table_alone", "complementary")
SHARE_ROWS, SHARE_SIZE = 400, 16   # the lesson tests' size: the shared machine's time is short


def _record(out: Path, entry: dict) -> None:
    entry = {**entry, "load_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    found = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps([*found, entry], indent=1))
    print(json.dumps(entry), flush=True)


def _lesson(name: str):
    return shipped_lesson(name, tuple(methods_for(True, True, 1)))


def race_once(knobs: dict, methods: list[str], explain: bool,
              processes: int = 1) -> tuple[dict, Path, tempfile.TemporaryDirectory]:
    tmp = tempfile.TemporaryDirectory(prefix="bench-playground-")
    root = Path(tmp.name)
    csv = write_playground(knobs, root / "data")
    race = run_race(csv, root / "race", methods, k=3, image_size=int(knobs["image_size"]), seed=int(knobs["seed"]),
                    explain=explain, processes=processes)
    return race, root, tmp


def bench_race(out: Path, processes: int) -> None:
    """The race as the page runs it: the leaderboard and every method's kept first-fold model (in
    `processes` processes, as the app's default_processes), then each model's branch shares (as the
    app's server computes them once a model is in)."""
    knobs, _ = checked_knobs({"rows": 600, "image_size": 24}, _lesson("complementary").knobs)
    started = time.perf_counter()
    race, root, tmp = race_once(knobs, list(DEFAULT_METHODS), explain=True, processes=processes)
    raced = time.perf_counter()
    for run_dir in race["models"].values():
        method_shares(run_dir, root / "data")
    shares = time.perf_counter() - raced
    tmp.cleanup()
    _record(out, {"part": "race", "models": len(race["archs"]), "archs": race["archs"], "folds": 3, "rows": 600,
                  "image_size": 24, "wall_seconds": round(raced - started, 1), "race_seconds": race["seconds"],
                  "first_result_seconds": race["first_result_seconds"], "kept_models": len(race["models"]),
                  "shares_seconds": round(shares, 1), "processes": processes,
                  "means": {r["arch"]: round(r["mean"], 4) for r in race["rows"]}})


def bench_shares(out: Path, seeds: range, processes: int) -> None:
    for seed in seeds:
        for name in SHARE_PRESETS:
            lesson = _lesson(name)
            knobs, _ = checked_knobs({"rows": SHARE_ROWS, "image_size": SHARE_SIZE, "seed": seed}, lesson.knobs)
            race, root, tmp = race_once(knobs, list(lesson.methods), explain=True, processes=processes)
            winner = race["rows"][0]["arch"]
            got = method_shares(race["models"][winner], root / "data")
            tmp.cleanup()
            gap = max(abs(got["model"][p] - got["truth"][p]) for p in got["truth"])
            _record(out, {"part": "shares", "preset": name, "seed": seed, "winner": winner, "model": got["model"],
                          "truth": got["truth"], "max_abs_difference": round(gap, 3), "within_0.15": gap <= 0.15,
                          "means": {r["arch"]: round(r["mean"], 4) for r in race["rows"]}})


def report(entries: list[dict]) -> str:
    """bench/RESULTS_playground.md's tables from the recorded entries."""
    lines = ["## Race: 7 models, 3 folds, 600 rows at 24 px (complementary knobs)", "",
             "| models | processes | wall s | race s | first result s | models kept | shares s | load (1 min) |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {e['models']} | {e.get('processes', 1)} | {e['wall_seconds']} | {e['race_seconds']} | "
              f"{e['first_result_seconds']} | {e.get('kept_models', 'not kept')} | {e.get('shares_seconds', '-')} | "
              f"{e['load_1min']} on {e['cpus']} cores |"
              for e in entries if e["part"] == "race"]
    lines += ["", "## Branch shares: the winning method vs the generator's truth (image / table / interaction)", "",
              "| preset | seed | winner | model | truth | max abs difference | within 0.15 |", "|---|---|---|---|---|---|---|"]
    fmt = lambda s: " / ".join(f"{s[p]:.2f}" for p in ("image", "tabular", "interaction"))  # noqa: E731
    lines += [f"| {e['preset']} | {e.get('seed', 0)} | {e['winner']} | {fmt(e['model'])} | {fmt(e['truth'])} | "
              f"{e['max_abs_difference']} | "
              f"{'yes' if e['within_0.15'] else 'no'} |" for e in entries if e["part"] == "shares"]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--part", default="all", choices=["race", "shares", "all"])
    p.add_argument("--seeds", type=int, default=5, help="seeds first-seed .. SEEDS-1")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--out", default="bench/playground.json")
    p.add_argument("--processes", type=int, default=default_processes(), help="the race's (default: the app's)")
    p.add_argument("--report", nargs="*", metavar="JSON", help="print the results tables of these recorded files")
    args = p.parse_args()
    if args.report is not None:
        print(report([e for f in args.report for e in json.loads(Path(f).read_text())]))
        return
    out = Path(args.out)
    if args.part in ("race", "all"):
        bench_race(out, args.processes)
    if args.part in ("shares", "all"):
        bench_shares(out, range(args.first_seed, args.seeds), args.processes)


if __name__ == "__main__":
    main()
