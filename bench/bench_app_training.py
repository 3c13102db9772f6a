"""Training speed in the app (Train page open in Chromium, live charts updating) vs the same run
headless (`python -m multimodal train ... --json`). Not a test: run it by hand and read
bench/RESULTS_app_training.md.

    .venv/bin/python -m bench.bench_app_training [--epochs 5] [--image-size 64] [--arch late_concat] [--repeats 3]

Runs alternate (app, headless, app, headless, ...) so drift on the machine hits both alike; the
median samples_per_second of each is compared (target: app / headless >= 0.9). In the app the
number comes from the run's summary.json in the browser session's run folder; headless from the
CLI's JSON line. Both count fit() wall time only (model building and data loading excluded), with
the same dataset, fusion method, image size, epochs, batch size, seed and early stopping.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.browser import harness
from tests.browser.harness import FINISHED, all_runs, configure, new_runs, start_training, wait_for_text

REPO = harness.REPO
OUT = REPO / "bench" / "RESULTS_app_training.md"
SAMPLE = "skin_lesions"
ARCH_LABELS = {"late_concat": r"^late concatenation", "gated": r"^gated", "multiply": r"^multiplicative",
               "early_concat": r"^early concatenation", "attention": r"^attention", "film": r"^film"}


def app_run(s: harness.Studio, server: harness.Server, timeout: float) -> dict:
    """One training in the browser session; the page stays on Train (charts redrawing) until it ends."""
    s.goto("Train")
    before = all_runs(server)
    t0 = time.monotonic()
    start_training(s)
    run = new_runs(server, before)[0]
    # The Train page must show this run (and redraw its charts), not an older one of the session.
    s.page.wait_for_timeout(1000)
    if run.name not in s.text() and s.widget(r"^Run$", "stSelectbox").count():
        s.select(r"^Run$", re.escape(run.name))
    counts: list[int] = []
    wait_for_text(s, rf"{re.escape(run.name)}\S*\s*·\s*{FINISHED}", timeout, "app training finishes",
                  on_poll=lambda: counts.append(s.plot_points()))
    wall = time.monotonic() - t0
    deadline = time.monotonic() + 30
    while not (run / "summary.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    summary = json.loads((run / "summary.json").read_text())
    growth = sum(1 for a, b in zip(counts, counts[1:]) if b > a)
    s.goto("Home")   # nothing polls while the headless run goes
    return {"where": "app", "samples_per_second": summary["samples_per_second"],
            "train_seconds": summary["train_seconds"], "epochs_run": summary["epochs_run"],
            "status": summary.get("status"), "wall_seconds": round(wall, 1), "chart_redraws_seen": growth,
            "config": json.loads((run / "config.json").read_text()), "run": run.name}


def headless_run(args, out_dir: Path) -> dict:
    cmd = [sys.executable, "-m", "multimodal", "train", SAMPLE, "--arch", args.arch, "--epochs", str(args.epochs),
           "--image-size", str(args.image_size), "--out", str(out_dir), "--json"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=args.timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"headless run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    return {"where": "headless", "samples_per_second": summary["samples_per_second"],
            "train_seconds": summary["train_seconds"], "epochs_run": summary["epochs_run"],
            "status": summary.get("status"), "wall_seconds": round(wall, 1), "config": config,
            "run": Path(summary["run_dir"]).name}


def _same_setup(a: dict, b: dict) -> list[str]:
    """Settings that differ between an app run's config and a headless run's."""
    keys = ["epochs", "batch_size", "lr", "val_fraction", "seed", "patience", "class_weight"]
    diffs = [f"{k}: app {a.get(k)} vs headless {b.get(k)}" for k in keys if a.get(k) != b.get(k)]
    for k in ("arch", "encoder", "image_size", "width", "dropout", "augment"):
        if a["model"].get(k) != b["model"].get(k):
            diffs.append(f"model.{k}: app {a['model'].get(k)} vs headless {b['model'].get(k)}")
    return diffs


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, AttributeError):
        pass
    versions = {}
    for mod in ("tensorflow", "keras", "streamlit", "playwright"):
        try:
            from importlib.metadata import version
            versions[mod] = version(mod if mod != "tensorflow" else "tensorflow-cpu")
        except Exception:  # noqa: BLE001
            try:
                versions[mod] = version(mod)
            except Exception:  # noqa: BLE001
                versions[mod] = "?"
    chromium = subprocess.run([harness.CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "os": platform.platform(),
            "python": platform.python_version(), **versions, "chromium": chromium}


def write_results(args, results: list[dict], m: dict, diffs: list[str]) -> tuple[float, float, float]:
    app = [r["samples_per_second"] for r in results if r["where"] == "app"]
    head = [r["samples_per_second"] for r in results if r["where"] == "headless"]
    app_med, head_med = statistics.median(app), statistics.median(head)
    ratio = app_med / head_med
    verdict = "meets" if ratio >= 0.9 else "MISSES"
    lines = [
        "# Training speed: in the app vs headless",
        "",
        f"Recorded {time.strftime('%Y-%m-%d %H:%M')} by `bench/bench_app_training.py` "
        f"(`--epochs {args.epochs} --image-size {args.image_size} --arch {args.arch} --repeats {args.repeats}`).",
        "",
        f"**Ratio app / headless = {ratio:.2f}** (median {app_med:.1f} vs {head_med:.1f} samples/s): "
        f"{verdict} the target of at least 0.9.",
        "",
        "- App: `streamlit run app.py` headless, one Chromium session drives Model -> Train -> Start and stays on "
        "the Train page while the live charts redraw (a training worker process per run, "
        "docs/ARCHITECTURE.md, 'Workers and events'); "
        "samples/s from the run's `summary.json` in the session's run folder.",
        f"- Headless: `python -m multimodal train {SAMPLE} --arch {args.arch} --epochs {args.epochs} "
        f"--image-size {args.image_size} --json`; samples/s from its JSON line.",
        "- samples/s = epochs run x training rows / fit() wall time (includes the first epoch's graph tracing, "
        "excludes data loading and model building). Runs alternate app, headless, ...; medians of "
        f"{args.repeats} each.",
        "- Same settings in both: " + ("yes (config.json compared)" if not diffs else
                                      "NO: " + "; ".join(diffs)),
        "",
        "| # | where | samples/s | fit s | epochs | status | wall s (incl. start-up) | chart growth seen by the poller "
        "| load avg (1 min) at start |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(results, 1):
        lines.append(f"| {i} | {r['where']} | {r['samples_per_second']:.1f} | {r['train_seconds']:.1f} | "
                     f"{r['epochs_run']} | {r['status']} | {r['wall_seconds']:.1f} | "
                     f"{r.get('chart_redraws_seen', '-')} | {r.get('load', '?')} |")
    loads = [r.get("load", 0) for r in results]
    if max(loads) > (os.cpu_count() or 1):
        lines += ["", f"**Caveat:** the machine was shared while this ran (1-minute load average {min(loads)} to "
                  f"{max(loads)} on {os.cpu_count()} cores, from other work), so single runs vary widely; "
                  "re-run on an idle machine before reading much into the ratio."]
    lines += ["", "Machine:", ""] + [f"- {k}: {v}" for k, v in m.items()] + [""]
    OUT.write_text("\n".join(lines))
    return ratio, app_med, head_med


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--arch", default="late_concat", choices=sorted(ARCH_LABELS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()

    from playwright.sync_api import sync_playwright
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        tmp = Path(tmp)
        server = harness.start_server(tmp / "server-tmp", REPO / "test-artifacts" / "bench-streamlit.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=harness.CHROMIUM, headless=True,
                                             args=harness.CHROMIUM_ARGS)
                s, ctx = harness.open_studio(browser, server, "bench")
                configure(s, ARCH_LABELS[args.arch], args.epochs, args.image_size)
                for i in range(args.repeats):
                    for where in ("app", "headless"):
                        load = os.getloadavg()[0]
                        r = app_run(s, server, args.timeout) if where == "app" else headless_run(args, tmp / "cli")
                        r["load"] = round(load, 1)
                        results.append(r)
                        print(f"[{len(results)}/{2 * args.repeats}] {where}: {r['samples_per_second']:.1f} samples/s "
                              f"({r['train_seconds']:.1f}s fit, {r['epochs_run']} epochs, wall {r['wall_seconds']:.1f}s)",
                              flush=True)
                harness.close_studio(s, ctx)
                browser.close()
        finally:
            harness.stop_server(server)
    apps = [r for r in results if r["where"] == "app"]
    heads = [r for r in results if r["where"] == "headless"]
    diffs = _same_setup(apps[0]["config"], heads[0]["config"])
    ratio, app_med, head_med = write_results(args, results, machine(), diffs)
    print(f"app {app_med:.1f} / headless {head_med:.1f} samples/s = ratio {ratio:.2f} -> {OUT}")
    if diffs:
        print("WARNING: settings differ: " + "; ".join(diffs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
