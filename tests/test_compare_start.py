"""The Compare page cross-validates straight from the loaded data and the Model page's setup, with
no trained run; the finished comparison then decides the Model page's proposal, offered as a button
(AppTest, a real worker)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from multimodal.core.config import ModelConfig
from multimodal.core.events import read_events
from multimodal.train.crossval import COMPARISON_FILE
from multimodal.train.evidence import evidence_proposal

from support.apptest import assert_clean
from support.apptest import open_app_page as open_page

WAIT_SECONDS = 420   # a worker process: TensorFlow's import, stage 1 and the heads, on a shared machine


def test_compare_starts_without_a_run_and_its_evidence_proposes_the_default(tiny_samples, tmp_path):
    session = tmp_path / "s"
    at = open_page("compare.py", tiny_samples["skin_lesions"], session,
                   model_config=ModelConfig(image_size=16), train_settings={"epochs": 2, "batch_size": 8})
    page = "\n".join(str(e.value) for e in at.info)
    assert "No runs yet. Cross-validate every method on **skin_lesions**" in page
    caption = next(c.value for c in at.caption if c.value.startswith("Trains "))
    assert caption.startswith("Trains 12 models (4 methods: image_only, tabular_only, linear, late_concat")
    assert "with the settings of the Model page's setup (epochs 2, image size 16 px)" in caption
    next(b for b in at.button if b.label == "Run cross-validation").click().run()
    assert_clean(at)
    deadline = time.monotonic() + WAIT_SECONDS
    found: list[Path] = []
    while not found and time.monotonic() < deadline:
        time.sleep(3)
        found = list((session / "comparisons").glob(f"*/{COMPARISON_FILE}"))
    assert found, "the comparison did not finish"
    at.run()
    assert_clean(at)
    assert any(m.label.startswith("Fusion gain of late_concat over") for m in at.metric)

    # Streamed method by method, the methods without images first (no stage 1 to wait for).
    events, _ = read_events(found[0].parent)
    folds = [e["arch"] for e in events if e["type"] == "fold"]
    assert folds[:6] == ["tabular_only"] * 3 + ["linear"] * 3 and len(folds) == 12

    result = json.loads(found[0].read_text())
    expected = evidence_proposal(result)
    at.session_state["model_config"] = None   # no choice made on the Model page yet
    at.switch_page("pages/model.py").run()
    assert_clean(at)
    proposed = next(str(i.value) for i in at.info if str(i.value).startswith("**Proposed:"))
    assert proposed.startswith(f"**Proposed: {expected.arch}** - {expected.reason}.")
    # The proposal never switches the session's method (the one Compare compared from): it is a button.
    assert at.session_state["m_arch"] == "late_concat"
    assert any(b.label == f"Use {expected.arch}" for b in at.button) == (expected.arch != "late_concat")
