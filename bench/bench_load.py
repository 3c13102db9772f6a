"""A class at once: N sessions open What-if together, then each edits a number 3 times. Not a test.

    .venv/bin/python -m bench.bench_load                    # N = 1, 30, 100
    .venv/bin/python -m bench.bench_load --sessions 1 30    # fewer
    .venv/bin/python -m bench.bench_load --path data --edits 0

One server is started as `make run` starts it (tests/browser/harness.start_server) and stays up
for every N. For each N, N sessions speaking Streamlit's websocket protocol (no browser,
tests/support/st_protocol.py) open /whatif at the same moment (the app's default sample and its
ready-made model, as a newcomer sees it); then every session, all at once, edits the page's first
number input 3 times in a row, each edit timed from the rerun sent to its script_finished.

Recorded per N: open and edit p50/p95 seconds (per session: one open, `--edits` edits), sessions
with an error ("This app has encountered an error", a page not found, a timeout), sessions left
with the legacy pages/ sidebar (not routed by app.py), and the server process's CPU seconds
(user + system, /proc/PID/stat; psutil is not a dependency) over the N's opens and edits, per
session. Results go to bench/load.json and a table to stdout, with the load average before each N
(2 cores: another job running makes every number worse; compare runs on a quiet machine).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import tempfile
import time
from pathlib import Path

from tests.browser import harness
from tests.support.st_protocol import ProtocolSession, RunResult

OUT = Path(__file__).with_name("load.json")
TIMEOUT = 300.0
EDITED = "number_input"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of values, None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))], 3)


async def one_session(port: int, path: str, edits: int, opened: asyncio.Barrier) -> dict:
    """Open `path`; once every session has opened, edit the first number input `edits` times."""
    out: dict = {"open": None, "edits": [], "errors": [], "legacy": False}
    waited = False
    try:
        async with ProtocolSession(port, timeout=TIMEOUT) as s:
            first = await s.open(path)
            out["open"] = first.seconds
            out["errors"] += first.errors
            out["legacy"] = first.finished and "What-if" not in first.nav_titles
            waited = True
            await opened.wait()                 # the edits start together too
            wid = s.widget_id(EDITED) if first.ok else None
            if edits and first.ok and wid is None:
                out["errors"].append(f"no {EDITED} on /{path}")
            element = s.widget(wid) if wid else None
            # The first run sends the row's value (set from session state); later runs do not.
            base = (element.value if element.set_value else element.default) if element else 0.0
            for i in range(edits if wid else 0):
                value = int(base) + i + 1 if element.data_type == element.INT else float(base) + i + 1
                edit: RunResult = await s.set_widget(wid, value)
                out["edits"].append(edit.seconds)
                out["errors"] += edit.errors
                if not edit.ok:
                    break
    except Exception as exc:  # noqa: BLE001  (refused connection and the like: counted as an error)
        out["errors"].append(f"{type(exc).__name__}: {exc}")
        if not waited:                          # the others wait for every session at the barrier
            await opened.wait()
    return out


async def burst(port: int, n: int, path: str, edits: int) -> list[dict]:
    opened = asyncio.Barrier(n)
    return list(await asyncio.gather(*(one_session(port, path, edits, opened) for _ in range(n))))


def measure(server: harness.Server, n: int, path: str, edits: int) -> dict:
    load_before = os.getloadavg()[0]
    cpu0, wall0 = cpu_seconds(server.proc.pid), time.monotonic()
    sessions = asyncio.run(burst(server.port, n, path, edits))
    cpu = cpu_seconds(server.proc.pid) - cpu0
    opens = [s["open"] for s in sessions if s["open"] is not None]
    edit_times = [t for s in sessions for t in s["edits"]]
    failed = [s for s in sessions if s["errors"]]
    return {"sessions": n, "path": path, "edits_per_session": edits, "load_before": round(load_before, 2),
            "wall_seconds": round(time.monotonic() - wall0, 2),
            "open_p50": pct(opens, 50), "open_p95": pct(opens, 95),
            "edit_p50": pct(edit_times, 50), "edit_p95": pct(edit_times, 95), "edits_timed": len(edit_times),
            "sessions_with_errors": len(failed), "legacy_sidebar": sum(s["legacy"] for s in sessions),
            "errors_sample": sorted({e[:200] for s in failed for e in s["errors"]})[:5],
            "server_cpu_seconds": round(cpu, 2), "cpu_seconds_per_session": round(cpu / n, 3)}


def table(rows: list[dict]) -> str:
    head = f"{'N':>4} {'open p50':>9} {'open p95':>9} {'edit p50':>9} {'edit p95':>9} {'errors':>7} " \
           f"{'legacy':>7} {'CPU s/sess':>10} {'load':>5}"
    lines = [head, "-" * len(head)]
    for r in rows:
        def f(v):
            return f"{v:9.2f}" if v is not None else f"{'-':>9}"
        lines.append(f"{r['sessions']:>4} {f(r['open_p50'])} {f(r['open_p95'])} {f(r['edit_p50'])} "
                     f"{f(r['edit_p95'])} {r['sessions_with_errors']:>7} {r['legacy_sidebar']:>7} "
                     f"{r['cpu_seconds_per_session']:>10.3f} {r['load_before']:>5.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 30, 100])
    ap.add_argument("--path", default="whatif", help="URL path every session opens (default whatif)")
    ap.add_argument("--edits", type=int, default=3, help="edits of one number input per session")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = harness.start_server(Path(tmp) / "tmp", harness.ARTIFACTS / "bench-load.log")
        try:
            for n in args.sessions:
                rows.append(measure(server, n, args.path, args.edits))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
        finally:
            harness.stop_server(server)
    result = {"when": datetime.datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
              "note": "one server (make run's command) for every N; sessions over Streamlit's websocket "
                      "protocol; times in seconds, from the rerun sent to script_finished",
              "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(rows))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
