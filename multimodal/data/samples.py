"""The sample datasets in ``sample_data/``: their registry and the writer that builds each folder.

Each sample is a folder ``<name>/`` holding ``data.csv`` (image columns are paths relative to the
CSV), ``images/*.png`` and a ``README.md``. The generators (sample_generators.py) are seeded, so
``python -m multimodal.data.samples`` rebuilds byte-identical files. The README reports "oracle"
scores, i.e. what a model that saw the latent variables themselves could reach per branch.
Streamlit-free and TensorFlow-free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from multimodal.data.sample_generators import (
    FRAMES,
    Images,
    growth_generator,
    growth_oracle,
    house_generator,
    house_oracle,
    skin_generator,
    skin_oracle,
)
from multimodal.data.sources import SAMPLE_ROOT


@dataclass(frozen=True)
class SampleInfo:
    """One sample dataset: metadata for the Data page plus its generator functions."""

    name: str
    title: str
    description: str  # one paragraph for the app's Data page
    task: str  # "classification" or "regression"
    target: str
    generator: Callable[[np.random.Generator, int, int], tuple[pd.DataFrame, Images]]
    rows: int = 500
    image_size: int = 64
    column_roles: dict[str, str] = field(default_factory=dict)  # intended roles (roles.ROLES names)
    image_sequence: tuple[str, ...] = ()  # image columns that form one ordered sequence
    oracle: Callable[[np.random.Generator], dict[str, float]] | None = None
    signals: str = ""  # README paragraph: which signal sits in which modality


def _info(name: str, title: str, task: str, target: str, gen: Callable, oracle: Callable, rows: int,
          size: int, roles: str, description: str, signals: str, sequence: tuple[str, ...] = ()) -> SampleInfo:
    column_roles = dict(pair.split(":") for pair in roles.split())
    return SampleInfo(name, title, " ".join(description.split()), task, target, gen, rows, size,
                      column_roles, sequence, oracle, " ".join(signals.split()))


SAMPLES: dict[str, SampleInfo] = {s.name: s for s in [
    _info("skin_lesions", "Skin lesions (photo + patient data)", "classification", "diagnosis",
          skin_generator, skin_oracle, 600, 64,
          "id:id image:image age:numeric sex:categorical site:categorical "
          "family_history:categorical diagnosis:target", """
          600 synthetic dermatoscope-style photos of a skin lesion, each with the patient's age, sex,
          body site and family history; the task is benign vs malignant. Half of the evidence is in
          the photo (irregular border, mixed colours) and half in the table (older age, family
          history), so each branch alone reaches only about 73% while a fused model can approach 89%:
          the classic case where fusion clearly beats either branch. About 3% of age and site values
          are missing, to show imputation.""", """
          Each row has a latent irregularity `z ~ N(0, 1)`, drawn as `sigmoid(1.7 z)` in [0, 1]: it
          sets how wobbly the lesion border is and how much dark, red, blue-grey and pale colour is
          mixed into the lesion. Size, position, skin tone and base colour are random and carry no
          signal. The label is `malignant = z + (age - 52)/16 + 0.6 (family_history - 0.25)
          + N(0, 0.5^2) > 0`: image and table carry roughly equal, additive evidence; `sex` and
          `site` are noise. About 3% of `age` and of `site` are empty cells."""),
    _info("house_prices", "House prices (facade photo + listing data)", "regression", "price",
          house_generator, house_oracle, 500, 64,
          "id:id photo:image area_sqft:numeric bedrooms:numeric bathrooms:numeric "
          "zipcode:categorical price:target", """
          500 synthetic house listings: a drawing of the facade plus floor area, bedrooms, bathrooms
          and zip code; the task is to predict the sale price. As in real listings, the table carries
          most of the signal (area and location) and the photo only a small part (the state of
          repair: faded or stained walls, holes in the roof, boarded-up windows); much of the price
          is luck that nothing here explains. Prices are right-skewed. Built to show the trap of
          published work on real house photos: naive fusion (raw prices, no early stopping) overfits
          the photos and loses to the tabular model alone; the defaults do not.""",
          """
          `log(price) = 12.6 + zip_effect + 0.85 log(area/1800) + 0.04 (bathrooms - 2) + 0.05 quality
          + N(0, 0.20^2)` with six zip codes (effects -0.28 to +0.45) and `quality ~ N(0, 1)`; bedrooms
          and bathrooms follow the area. `quality` is visible only in the photo: fresh, saturated walls
          vs faded walls with stains, an intact roof vs one with holes, clean vs boarded-up windows.
          Wall and roof colour, sky, house width and window count are random. `zipcode` looks numeric
          but is categorical."""),
    _info("growth_sequences", "Growth sequences (4 ordered frames + age)", "classification", "trend",
          growth_generator, growth_oracle, 300, 48,
          "id:id frame_1:image frame_2:image frame_3:image frame_4:image age:numeric "
          "sex:categorical trend:target", """
          300 short image sequences: four follow-up photos of a spot that either grows or shrinks,
          plus the patient's age and sex. The four sizes of a row come from the same distribution in
          both classes, so a model that pools the frames without their order sees nothing; only the
          order tells growing from shrinking. Age gives a weak hint (older patients are a little more
          often 'growing', about 60% on its own). Use it to compare a sequence model (CNN+LSTM) with
          order-less fusion.""", """
          Each row draws four blob radii (a random start plus four positive increments) and shows them
          in increasing order for `growing` rows and in decreasing order for `shrinking` rows, so the
          multiset of sizes has the same distribution in both classes. Shape, colour and position are
          fixed within a row and random across rows. The label is drawn with
          `P(growing) = sigmoid(0.5 (age - 52.5)/18.8)`; `sex` is noise. `frame_1`..`frame_4` are one
          ordered image sequence.""", sequence=tuple(f"frame_{k}" for k in range(1, FRAMES + 1))),
]}


def _readme(info: SampleInfo, df: pd.DataFrame, oracle: dict[str, float], size: int, seed: int) -> str:
    kind = "accuracy" if info.task == "classification" else "R2"
    y = df[info.target]
    if info.task == "classification":
        shares = y.value_counts(normalize=True).sort_index()
        balance = "Class balance: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()) + "."
    else:
        balance = f"`{info.target}`: min {y.min():,}, median {y.median():,.0f}, max {y.max():,} (right-skewed)."
    roles = "\n".join(f"| `{c}` | {info.column_roles.get(c, '?')} | {df[c].dtype} | {int(df[c].isna().sum())} |"
                      for c in df.columns)
    scores = "\n".join(f"| {k} | {v:.3f} |" for k, v in oracle.items())
    return f"""# {info.title}

{info.description}

## How it was made

Synthetic and deterministic: `python -m multimodal.data.samples` (seed {seed}) rebuilds this folder
byte for byte (numpy + Pillow drawing in `multimodal/data/sample_generators.py`, nothing
downloaded). {len(df)} rows, {size}x{size} PNG images, paths in the CSV relative to `data.csv`.
Task: **{info.task}**, target `{info.target}`. {balance}

## Columns

| column | role | dtype | missing |
|---|---|---|---|
{roles}

## Which signal sits where

{info.signals}

## Oracle scores (latent variables, not images)

What a logistic/linear model reaches when it is given the *latent variables* behind each branch
directly (fitted on 50,000 fresh draws from the same generator, scored on 50,000 others): ceilings
for a perfect encoder, not results of the app's models.

| inputs | oracle {kind} |
|---|---|
{scores}

## Measured with the app's models

Not measured yet: these numbers are filled in from `bench/` runs / training with the app's models.
"""


def generate(name: str, out_dir: Path, rows: int | None = None, image_size: int | None = None,
             seed: int = 0) -> Path:
    """Write sample ``name`` into ``out_dir`` (data.csv, images/, README.md); return the CSV path.

    ``rows``/``image_size`` default to the sample's own; small values make tiny copies for tests.
    The same arguments always give the same bytes; stale images in ``out_dir/images`` are removed.
    """
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLES)}")
    info, out_dir = SAMPLES[name], Path(out_dir)
    n, size = rows or info.rows, image_size or info.image_size
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    for old in (out_dir / "images").glob("*.png"):
        old.unlink()
    df, images = info.generator(np.random.default_rng(seed), n, size)
    for rel, arr in images.items():
        Image.fromarray(arr).save(out_dir / rel, optimize=True)
    csv = out_dir / "data.csv"
    df.to_csv(csv, index=False, lineterminator="\n")
    oracle = info.oracle(np.random.default_rng([seed, 1])) if info.oracle else {}
    (out_dir / "README.md").write_text(_readme(info, df, oracle, size, seed), encoding="utf-8")
    return csv


def generate_all(root: Path = SAMPLE_ROOT) -> None:
    """Regenerate every sample under ``root`` plus the index ``root/README.md``."""
    root = Path(root)
    lines = ["# Sample datasets", "", "Synthetic, deterministic datasets made by `python -m multimodal.data.samples` "
             "(`multimodal/data/samples.py`). Each folder holds `data.csv` (image paths relative to it), `images/` "
             "and a README with the generating model and oracle scores.", "",
             "| folder | task | target | rows | images per row | about |", "|---|---|---|---|---|---|"]
    for name, info in SAMPLES.items():
        n_rows = len(pd.read_csv(generate(name, root / name)))
        n_img = sum(role == "image" for role in info.column_roles.values())
        lines.append(f"| [`{name}`]({name}/README.md) | {info.task} | `{info.target}` | {n_rows} | "
                     f"{n_img} x {info.image_size}x{info.image_size} PNG | {info.title} |")
    (root / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    generate_all()
