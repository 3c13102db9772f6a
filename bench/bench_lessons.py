"""The shipped lessons' hold rates (docs/ARCHITECTURE.md, "Lessons").

    python -m bench.bench_lessons [--seeds 9001-9010] [--lessons a,b] [--files F.toml,...] [--out FILE] [--record]
    python -m bench.bench_lessons --report   # the table of bench/RESULTS_lessons.md

Each lesson races at its SHIPPED settings (its file's rows, image size, methods and folds; the
app's processes) on every seed, and every claim is checked (train/lesson_check.py). Seeds are
chosen once, before any run, from a range no earlier session looked at; a lesson is never
reworded to fit them. Every result is appended to the JSON file as it completes (a run cut short
keeps what finished). --record writes the hold rates the Playground shows
(sample_data/lessons/hold_rates.json), each tied to the file's hash.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from multimodal.core.comparison import default_processes
from multimodal.data.lesson_store import HOLD_RATES_FILE, read_lesson_file, shipped_lesson, shipped_names
from multimodal.models.fusion import methods_for
from multimodal.train.lesson_check import check_on_seed

OUT = Path("bench/lessons_hold_rates.json")


def seeds_arg(text: str) -> list[int]:
    if "-" in text:
        low, high = (int(x) for x in text.split("-"))
        return list(range(low, high + 1))
    return [int(x) for x in text.split(",")]


def record_hold_rates(out: Path, lessons: dict) -> None:
    """Per lesson: held on k of n seeds, from the JSON results of this very file (its hash)."""
    results = json.loads(out.read_text())
    rates = {}
    for name, lesson in lessons.items():
        mine = [r for r in results if r["lesson"] == name and r["sha256"] == lesson.digest]
        if mine:
            rates[name] = {"sha256": lesson.digest, "held": sum(r["holds"] for r in mine), "seeds": len(mine),
                           "seed_list": [r["seed"] for r in mine], "record": str(out)}
    HOLD_RATES_FILE.write_text(json.dumps({"bench": "bench/bench_lessons.py", "lessons": rates}, indent=1) + "\n")


def report(results: list[dict]) -> str:
    """bench/RESULTS_lessons.md's table: per lesson (its file's hash), held on k of n seeds."""
    lines = ["| lesson | rows | px | folds | held | seeds | race s (mean) | claims that failed (seed: claim, detail) |",
             "|---|---|---|---|---|---|---|---|"]
    for key in dict.fromkeys((r["lesson"], r["sha256"]) for r in results):
        mine = [r for r in results if (r["lesson"], r["sha256"]) == key]
        failed = "; ".join(f"{r['seed']}: {c['claim']} ({c['detail']})" for r in mine for c in r["claims"]
                           if not c["holds"])
        first = mine[0]
        k = len(next(iter(first["folds"].values())))   # each method's fold scores
        lines.append(f"| {key[0]} ({key[1][:8]}) | {first['rows']} | {first['image_size']} | {k} | "
                     f"{sum(r['holds'] for r in mine)}/{len(mine)} | {', '.join(str(r['seed']) for r in mine)} | "
                     f"{sum(r['seconds'] for r in mine) / len(mine):.1f} | {failed or '-'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="9001-9010")
    p.add_argument("--lessons", default=",".join(shipped_names()))
    p.add_argument("--files", default="", help="lesson files to measure instead of the shipped ones")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--record", action="store_true")
    p.add_argument("--report", action="store_true", help="print the table of the results recorded in --out")
    args = p.parse_args()
    if args.report:
        print(report(json.loads(Path(args.out).read_text())))
        return
    offered = tuple(methods_for(True, True, 1))
    lessons = ({Path(f).stem: read_lesson_file(Path(f), offered) for f in args.files.split(",")} if args.files
               else {n: shipped_lesson(n, offered) for n in args.lessons.split(",")})
    out = Path(args.out)
    for seed in seeds_arg(args.seeds):
        for name, lesson in lessons.items():
            result = check_on_seed(lesson, seed, processes=default_processes())
            entry = {"lesson": name, "sha256": lesson.digest, "rows": lesson.full_knobs()["rows"],
                     "image_size": lesson.full_knobs()["image_size"], **result,
                     "load_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
            found = json.loads(out.read_text()) if out.exists() else []
            out.write_text(json.dumps([*found, entry], indent=1))
            print(f"{name} seed {seed}: {'holds' if result['holds'] else 'FAILS'} in {result['seconds']:.1f} s; "
                  + "; ".join(f"{c['claim']}: {'ok' if c['holds'] else 'NO ' + c['detail']}" for c in result["claims"]),
                  flush=True)
    if args.record:
        record_hold_rates(out, lessons)


if __name__ == "__main__":
    main()
