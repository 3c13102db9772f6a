"""Every screen tells one truth (issue 31), in Chromium: a tiny run is trained, and Train's tiles,
Results' tiles and the model card show its evaluation record's numbers (evaluation.json) with the
same names and rounding; What-if and Explain show the library's prediction of the same validation
row. The curves' values are named as Keras' (the loss with the L2 penalty) and the best epoch is
marked."""
from __future__ import annotations

import json
import re

import numpy as np
from harness import FINISHED, Studio, configure, new_runs, start_training, wait_for_text

from multimodal.data.dataset import load_dataset
from multimodal.runs.headline import METRIC_NAMES, metric_text, probability_text
from multimodal.runs.run import load_run, predict, probabilities, run_inputs

TRAIN_TIMEOUT = 120          # seconds: a worker's start, TensorFlow's import, 2 tiny epochs
PAGE_TIMEOUT = 60


def tiles(text: str, record: dict) -> dict[str, str]:
    """The value under each headline metric's tile label in the page text."""
    found = {}
    for key in record["metrics"]:
        m = re.search(rf"^{re.escape(METRIC_NAMES[key])}\n+([^\n]+)$", text, re.M)
        found[METRIC_NAMES[key]] = m.group(1).strip() if m else None
    return found


def download(s: Studio, pattern: str) -> str:
    with s.page.expect_download(timeout=60_000) as info:
        s.button(pattern).first.click()
    return open(info.value.path(), encoding="utf-8").read()


def test_train_results_whatif_and_the_card_agree(studio: Studio, server):
    s = studio
    configure(s, r"late", 2, 32)
    s.goto("Train")
    before = {r for runs in server.run_dirs().values() for r in runs}
    start_training(s)
    wait_for_text(s, FINISHED, TRAIN_TIMEOUT, "tiny training finished")
    run_dir = new_runs(server, before)[0]
    record = json.loads((run_dir / "evaluation.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    expected = {METRIC_NAMES[k]: metric_text(v) for k, v in record["metrics"].items()}
    wait_for_text(s, r"Best epoch \d+ of \d+", 20, "the tiles' best epoch")
    s.shot("train-tiles")
    text = s.text()
    assert tiles(text, record) == expected, text[-1500:]
    assert f"Best epoch {summary['best_epoch']} of {summary['epochs_run']}" in text
    names = {n for p in s.plotly() for n in p["names"]}
    assert "val loss (incl. L2 penalty)" in names, names

    s.goto("Results")
    wait_for_text(s, r"Metrics · \d+ val rows", PAGE_TIMEOUT, "Results' metrics")
    assert tiles(s.text(), record) == expected
    s.click(r"write the model card")
    card = download(s, r"download the model card")
    s.shot("results-card")
    for name, value in expected.items():
        assert f"- {name}: {value}" in card, card
    assert "/tmp/" not in card and "mmstudio-session" not in card

    # The same validation row (each page starts from the run's first one) and the library's answer.
    row = json.loads((run_dir / "config.json").read_text())["splits"]["val"][0]
    run, ds = load_run(run_dir), load_dataset(json.loads((run_dir / "config.json").read_text())["data"])
    probs = probabilities(predict(run, run_inputs(run, ds.frame.loc[[row]], ds.root)), len(run.classes))[0]
    best = int(np.argmax(probs))
    s.goto("What-if")
    shown = wait_for_text(s, r"Predicted class\n+[^\n]+\n+[^\n]+ probability", PAGE_TIMEOUT, "What-if's prediction")
    assert shown.split()[2:] == [run.classes[best], probability_text(probs[best]), "probability"], shown
    s.goto("Explain")
    shown = wait_for_text(s, r"Probability of [^\n]+\n+[^\n]+", PAGE_TIMEOUT, "Explain's probability")
    label, value = [part for part in shown.split("\n") if part.strip()]
    cls = label.removeprefix("Probability of ").strip()
    assert value.strip() == probability_text(probs[run.classes.index(cls)]), shown
    s.shot("explain")
