"""README screenshots: start the app, train a short run, and save docs/screenshots/<page>.png.

    .venv/bin/python -m scripts.screenshots [--epochs 3] [--arch gated] [--out docs/screenshots]

Each picture is the 1280x900 viewport of one page (Debian's Chromium, headless), taken after a
short training in the same browser session, so Results, What-if, Explain and Compare show that run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.browser import harness
from tests.browser.harness import FINISHED, configure, start_training, wait_for_text

ARCH_LABELS = {"gated": r"^gated", "late_concat": r"^late concatenation", "multiply": r"^multiplicative"}
ORDER = [("Home", "home"), ("Data", "data"), ("Model", "model"), ("Train", "train"), ("Results", "results"),
         ("Explain", "explain"), ("What-if", "whatif"), ("Compare", "compare")]


def settle(s: harness.Studio, ms: int = 1500) -> None:
    """Wait for the page's script run and for charts/images to draw."""
    s.wait_idle()
    s.page.wait_for_timeout(ms)
    s.wait_idle()
    s.page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]'); if (m) m.scrollTo(0, 0); }")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--arch", default="gated", choices=sorted(ARCH_LABELS))
    p.add_argument("--out", type=Path, default=harness.REPO / "docs" / "screenshots")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright
    saved, problems = [], []
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        server = harness.start_server(Path(tmp) / "server-tmp", harness.ARTIFACTS / "screenshots-streamlit.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=harness.CHROMIUM, headless=True,
                                             args=harness.CHROMIUM_ARGS)
                s, ctx = harness.open_studio(browser, server, "readme")
                configure(s, ARCH_LABELS[args.arch], args.epochs, args.image_size)
                start_training(s)
                t0 = time.monotonic()
                wait_for_text(s, FINISHED, 300, "training finishes")
                print(f"trained {args.arch} for {args.epochs} epochs in {time.monotonic() - t0:.0f}s", flush=True)
                for title, name in ORDER:
                    s.goto(title)
                    settle(s)
                    found = s.problems()
                    if found:
                        problems.append(f"{title}: {found}")
                    path = args.out / f"{name}.png"
                    s.page.screenshot(path=str(path))   # the 1280x900 viewport
                    saved.append(path)
                    print(f"saved {path.relative_to(harness.REPO)}", flush=True)
                harness.close_studio(s, ctx)
                browser.close()
        finally:
            harness.stop_server(server)
    if problems:
        print("pages showing errors:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
