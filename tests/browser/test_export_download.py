"""Results, "Take the model out", in Chromium: the default sample's shipped model exported as ONNX is
verified and downloaded as a zip holding the model, its signature, README, vocabulary and model card;
the model card downloads on its own. Starts from the shipped run: no training first."""
from __future__ import annotations

import io
import json
import zipfile

from harness import Studio, wait_for_text

EXPORT_TIMEOUT = 180        # seconds: ONNX conversion and verification on a busy machine


def download(s: Studio, pattern: str) -> bytes:
    with s.page.expect_download(timeout=30_000) as info:
        s.button(pattern).first.click()
    return open(info.value.path(), "rb").read()


def test_results_exports_a_verified_onnx_zip_and_the_model_card(studio: Studio):
    s = studio
    s.goto("Results")
    assert s.select("Format", "ONNX")
    s.click(r"export and verify", wait=False)
    line = wait_for_text(s, r"ONNX: verified on \d+ \w+ rows[^\n]*", EXPORT_TIMEOUT, "export-verified")
    s.shot("export-verified")
    data = download(s, r"download onnx export")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = {n.split("/", 1)[1] for n in archive.namelist()}
        assert {"model.onnx", "signature.json", "README.md", "model_card.md", "vocabulary.json"} <= names
        folder = archive.namelist()[0].split("/", 1)[0]
        signature = json.loads(archive.read(f"{folder}/signature.json"))
    assert signature["format"] == "onnx" and signature["verified"]["max_difference"] <= 1e-4
    assert f"{signature['verified']['max_difference']:.2g}" in line

    s.click(r"write the model card")
    card = download(s, r"download the model card").decode()
    assert card.startswith("# Model card: ") and "## Intended use" in card and "## Known limits" in card
    s.shot("model-card")
