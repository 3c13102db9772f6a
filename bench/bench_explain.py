"""Benchmark: one full explanation of one row (branches + features + Grad-CAM).

Target (issue 4): under 300 ms on the 2-core machine for the default small CNN at 64 px.
Trains the default model (late_concat, small_cnn, 64 px) briefly on a generated skin_lesions
sample, reloads the run folder, then times 20 explanations after warm-up, next to a plain
`model(inputs)` call on the same row as the reference. Writes bench/RESULTS_explain.md.

    .venv/bin/python -m bench.bench_explain [--rows 200] [--epochs 2] [--repeats 20]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data import samples
from multimodal.explain.attributions import as_embeddings, branch_contributions, feature_attributions, grad_cam
from multimodal.explain.report import background_embeddings, explain_row
from multimodal.models.branches import tabular_layout
from multimodal.runs.run import load_run, run_inputs
from multimodal.train.training import train

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn, repeats: int, warmup: int = 3) -> np.ndarray:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def stats(ms: np.ndarray) -> str:
    return f"{np.median(ms):.1f} | {np.percentile(ms, 95):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS_explain.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_explain_") as tmp:
        csv = samples.generate("skin_lesions", Path(tmp) / "data", rows=args.rows, image_size=64)
        config = TrainConfig(data=str(csv), epochs=args.epochs, patience=0, model=ModelConfig())
        started = time.perf_counter()
        train(config, Path(tmp) / "run")
        train_s = time.perf_counter() - started
        run = load_run(Path(tmp) / "run")
        frame = pd.read_csv(csv)
        row = run_inputs(run, frame.iloc[:1], root=csv.parent)
        model = run.model

        first_start = time.perf_counter()
        expl = explain_row(run, row)  # traces the graphs and encodes the background once
        first_ms = (time.perf_counter() - first_start) * 1000

        full = timed(lambda: explain_row(run, row), args.repeats)
        reference = timed(lambda: model(row, training=False), args.repeats)
        emb = as_embeddings(model, row)
        bg = background_embeddings(run)
        layout = tabular_layout(run.spec, run.config["tabular_stats"])
        parts = {
            "encode row": timed(lambda: as_embeddings(model, row), args.repeats),
            "branch Shapley (K x 2^M head rows)": timed(lambda: branch_contributions(model, emb, bg, 0),
                                                         args.repeats),
            "feature IG (32 steps)": timed(lambda: feature_attributions(model, emb, bg, layout, 0, 32,
                                                                           tabular_value=np.zeros(1)),
                                           args.repeats),
            "Grad-CAM": timed(lambda: grad_cam(model, emb, 0), args.repeats),
        }

    k = int(next(iter(bg.values())).shape[0])
    m = len(expl["branches"])
    ratio = np.median(full) / np.median(reference)
    lines = [
        "# Explanation benchmark (issue 4)", "",
        f"Command: `.venv/bin/python -m bench.bench_explain --rows {args.rows} --epochs {args.epochs} "
        f"--repeats {args.repeats}`", "",
        f"- Machine: {os.cpu_count()} cores (nproc), CPU `{cpu_model()}`, Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (other jobs share the machine)",
        f"- Model: `{run.arch}`, small_cnn at 64 px, trained {args.epochs} epochs on {args.rows} generated "
        f"skin_lesions rows ({train_s:.0f} s); background K = {k} rows, M = {m} branches, "
        f"image embedding {tuple(emb['image'].shape[1:])}, tabular vector {tuple(emb['tabular'].shape[1:])}",
        f"- One explanation = {k * 2 ** m} head rows for the branch Shapley values + "
        f"{k * 2 ** (m - 1) * 33} head rows (forward + gradient) for IG + 1 Grad-CAM pass", "",
        f"| timing over {args.repeats} runs after 3 warm-ups | median ms | p95 ms |", "|---|---|---|",
        f"| **full `explain_row`** (branches + features + Grad-CAM) | {stats(full)} |",
        f"| reference: plain `model(inputs, training=False)` on the same row | {stats(reference)} |",
        *[f"| part: {name} | {stats(ms)} |" for name, ms in parts.items()], "",
        f"- Ratio full explanation / plain model call (medians): **{ratio:.1f}x**",
        f"- First call (traces the graphs, encodes the background once): {first_ms:.0f} ms",
        f"- Target < 300 ms: **{'met' if np.median(full) < 300 else 'NOT met'}** "
        f"(median {np.median(full):.0f} ms, p95 {np.percentile(full, 95):.0f} ms)",
        f"- Efficiency on the benchmarked row: sum of branches - (output - base) = "
        f"{sum(expl['branches'].values()) - (expl['output'] - expl['base_value']):.2e}; "
        f"IG residual = {expl['feature_residual']:.2e} (tabular value {expl['branches']['tabular']:.3f})",
    ]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
