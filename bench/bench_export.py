"""Export of the samples' shipped models: every format written, verified and timed.

    .venv/bin/python -m bench.bench_export [--repeats 50] [--runs all|fusion]

For each shipped run under sample_data/<sample>/pretrained/ and each format (saved_model, tflite,
onnx): `runs.export.export_run` writes the export into a temporary folder and verifies it on the
run's validation rows (the largest difference from the .keras model, refused above 1e-4); then
single-row latency, the median of --repeats calls on the first validation row, of the export in
its own runtime and of the .keras model (`runs.run.predict`, a compiled tf.function) in the same
process, one after the other. Writes bench/RESULTS_export.md with the machine's load.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from multimodal.data.sources import SAMPLE_ROOT
from multimodal.runs.export import export_run, verification_rows
from multimodal.runs.export_formats import FORMATS, export_feed, load_exported
from multimodal.runs.run import load_run, predict

BENCH = Path(__file__).resolve().parent
FUSION = {"skin_lesions": "late_concat", "house_prices": "late_concat", "growth_sequences": "cnn_lstm"}


def median_seconds(call, repeats: int) -> float:
    call()   # warm-up: tracing, allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_run(run_dir: Path, repeats: int, work: Path) -> list[dict]:
    run = load_run(run_dir)
    rows = verification_rows(run)
    one = {k: v[:1] for k, v in rows.inputs.items()}
    keras_ms = 1000 * median_seconds(lambda: predict(run, one), repeats)
    out = []
    for name, fmt in FORMATS.items():
        started = time.perf_counter()
        try:
            result = export_run(run, name, work / f"{run_dir.parent.parent.name}-{run_dir.name}-{name}", rows=rows)
        except Exception as exc:  # noqa: BLE001 - a refusal is a result to record
            out.append({"run": f"{run_dir.parent.parent.name}/{run_dir.name}", "format": name,
                        "refused": str(exc)[:200]})
            continue
        seconds = time.perf_counter() - started
        runner = load_exported(fmt, result.folder / fmt.file)
        feed = export_feed(fmt, run.model, one)
        export_ms = 1000 * median_seconds(lambda: runner(feed), repeats)
        out.append({"run": f"{run_dir.parent.parent.name}/{run_dir.name}", "format": name, "rows": result.rows,
                    "diff": result.max_difference, "measure": result.measure, "bytes": result.model_bytes,
                    "keras_bytes": (run_dir / "model.keras").stat().st_size, "export_s": seconds,
                    "ms": export_ms, "keras_ms": keras_ms})
        print(out[-1], flush=True)
    return out


def write_markdown(results: list[dict], load_before: tuple, load_after: tuple, repeats: int, wall: float) -> str:
    lines = ["# Export: the shipped models in three formats, verified (bench/bench_export.py)", "",
             f"`python -m bench.bench_export --repeats {repeats}`; {os.cpu_count()} CPU cores, shared machine. "
             f"Load average (1/5/15 min) before: {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, "
             f"after: {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}; {wall:.0f} s in all.", "",
             "Each export is verified on the run's validation rows right after it is written (its own runtime: "
             "tf.saved_model.load, tf.lite.Interpreter, onnxruntime); `max diff` is the largest difference from "
             "the .keras model's predictions, in class probability (classification) or relative (regression); "
             "above 1e-4 it would be refused. Latency: one row, median of the repeats, the export in its runtime "
             "against the .keras model's compiled predict measured in the same process just before.", "",
             "| run | format | rows | max diff | size (KB) | .keras (KB) | export + verify (s) | 1-row ms "
             "| .keras 1-row ms | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    done = [r for r in results if "refused" not in r]
    summary = [f"{len(done)} of {len(results)} exports verified; largest difference "
               f"{max((r['diff'] for r in done), default=float('nan')):.1e}. Single-row latency against the .keras "
               "model (median ratio over the runs, min to max):"]
    for name in FORMATS:
        ratios = sorted(r["ms"] / r["keras_ms"] for r in done if r["format"] == name)
        if ratios:
            summary.append(f"- {name}: {float(np.median(ratios)):.2f}x ({ratios[0]:.2f}x to {ratios[-1]:.2f}x)")
    lines[6:6] = [*summary, ""]
    for r in results:
        if "refused" in r:
            lines.append(f"| {r['run']} | {r['format']} | refused: {r['refused']} |||||||| ")
            continue
        lines.append(f"| {r['run']} | {r['format']} | {r['rows']} | {r['diff']:.1e} ({r['measure']}) | "
                     f"{r['bytes'] / 1024:,.0f} | {r['keras_bytes'] / 1024:,.0f} | {r['export_s']:.1f} | "
                     f"{r['ms']:.2f} | {r['keras_ms']:.2f} | {r['ms'] / r['keras_ms']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--runs", choices=["all", "fusion"], default="all")
    args = parser.parse_args()
    runs = sorted(p for p in SAMPLE_ROOT.glob("*/pretrained/*") if (p / "model.keras").exists())
    if args.runs == "fusion":
        runs = [p for p in runs if FUSION.get(p.parent.parent.name) == p.name]
    load_before, started = os.getloadavg(), time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as work:
        for run_dir in runs:
            results += bench_run(run_dir, args.repeats, Path(work))
    text = write_markdown(results, load_before, os.getloadavg(), args.repeats, time.perf_counter() - started)
    (BENCH / "RESULTS_export.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
