"""Train the small models shipped with the sample datasets, so Results and What-if work at once.

For each sample: its default fusion method, the two single-branch baselines and `linear`, at default
settings (seed 0), saved as run folders in `sample_data/<name>/pretrained/<arch>/`. The measured
validation numbers are written into the "Measured with the app's models" section of the
sample's README. Run with `make pretrained` (a few minutes on 2 CPU cores).
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.sources import SAMPLE_ROOT
from multimodal.train.training import train

SHIPPED = {
    "skin_lesions": ("late_concat", "image_only", "tabular_only", "linear"),
    "house_prices": ("late_concat", "image_only", "tabular_only", "linear"),
    "growth_sequences": ("cnn_lstm", "image_only", "tabular_only", "linear"),
}
SECTION = "## Measured with the app's models"


def main_metric(task: str) -> tuple[str, str]:
    return ("val_accuracy", "accuracy") if task == "classification" else ("val_mape", "MAPE %")


def measured_section(rows: list[tuple[str, dict]], task: str) -> str:
    key, label = main_metric(task)
    lines = [SECTION, "",
             "Validation split (20%, seed 0) of models trained with the app's default settings by "
             "`scripts/train_sample_models.py` (`make pretrained`); they ship in `pretrained/`.", "",
             f"| model | {label} | epochs | train seconds |", "|---|---|---|---|"]
    for arch, summary in rows:
        value = summary["metrics"][key]
        shown = f"{value:.3f}" if task == "classification" else f"{value:.1f}"
        lines.append(f"| {arch} | {shown} | {summary['epochs_run']} | {summary['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, section: str) -> None:
    text = readme.read_text()
    pattern = re.compile(re.escape(SECTION) + r".*?(?=\n## |\Z)", re.S)
    text = pattern.sub(section.rstrip("\n"), text) if SECTION in text else text.rstrip("\n") + "\n\n" + section
    readme.write_text(text if text.endswith("\n") else text + "\n")


def main(names: list[str]) -> None:
    for name in names or SHIPPED:
        out = SAMPLE_ROOT / name / "pretrained"
        shutil.rmtree(out, ignore_errors=True)
        rows = []
        for arch in SHIPPED[name]:
            summary = train(TrainConfig(data=name, model=ModelConfig(arch=arch)), out / arch)
            (out / arch / "events.jsonl").unlink()  # the live log is of no use once shipped
            rows.append((arch, summary))
            print(name, arch, summary["epochs_run"], summary["metrics"], flush=True)
        update_readme(SAMPLE_ROOT / name / "README.md", measured_section(rows, summary["task"]))


if __name__ == "__main__":
    main(sys.argv[1:])
