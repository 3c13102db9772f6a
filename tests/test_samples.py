"""Tests for multimodal.data.samples: deterministic tiny copies and the committed sample_data/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from multimodal.data import samples

ROOT = Path(__file__).resolve().parent.parent / "sample_data"
COLUMNS = {
    "skin_lesions": ["id", "image", "age", "sex", "site", "family_history", "diagnosis"],
    "house_prices": ["id", "photo", "area_sqft", "bedrooms", "bathrooms", "zipcode", "price"],
    "growth_sequences": ["id", "frame_1", "frame_2", "frame_3", "frame_4", "age", "sex", "trend"],
}
IMAGE_COLS = {
    "skin_lesions": ["image"],
    "house_prices": ["photo"],
    "growth_sequences": ["frame_1", "frame_2", "frame_3", "frame_4"],
}
NAMES = list(COLUMNS)


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_registry_matches_documented_samples():
    assert set(samples.SAMPLES) == set(NAMES)
    for name, info in samples.SAMPLES.items():
        assert info.name == name
        assert info.task in {"classification", "regression"}
        assert info.target == COLUMNS[name][-1]
        assert list(info.column_roles) == COLUMNS[name]
        assert len(info.description) > 100 and "\n" not in info.description
    assert samples.SAMPLES["growth_sequences"].image_sequence == tuple(IMAGE_COLS["growth_sequences"])


@pytest.mark.parametrize("name", NAMES)
def test_tiny_copy_is_deterministic(tmp_path, name):
    a = _folder_bytes(samples.generate(name, tmp_path / "a", rows=30, image_size=16).parent)
    b = _folder_bytes(samples.generate(name, tmp_path / "b", rows=30, image_size=16).parent)
    c = _folder_bytes(samples.generate(name, tmp_path / "c", rows=30, image_size=16, seed=1).parent)
    assert a == b
    assert a.keys() == c.keys()
    assert a["data.csv"] != c["data.csv"]
    assert any(a[k] != c[k] for k in a if k.endswith(".png"))


@pytest.mark.parametrize("name", NAMES)
def test_tiny_copy_layout(tmp_path, name):
    out = tmp_path / name
    csv = samples.generate(name, out, rows=30, image_size=16)
    assert csv == out / "data.csv"
    df = pd.read_csv(csv)
    assert list(df.columns) == COLUMNS[name]
    assert len(df) == 30 and df["id"].is_unique
    paths = [p for col in IMAGE_COLS[name] for p in df[col]]
    assert len(set(paths)) == len(paths)
    for rel in paths:
        assert not Path(rel).is_absolute() and ".." not in Path(rel).parts
        with Image.open(csv.parent / rel) as im:
            assert im.format == "PNG" and im.size == (16, 16) and im.mode == "RGB"
    assert len(list((out / "images").glob("*.png"))) == len(paths)
    assert "Measured with the app's models" in (out / "README.md").read_text()


def test_regenerating_into_same_folder_removes_stale_images(tmp_path):
    samples.generate("house_prices", tmp_path, rows=12, image_size=16)
    samples.generate("house_prices", tmp_path, rows=5, image_size=16)
    assert len(list((tmp_path / "images").glob("*.png"))) == 5


def test_unknown_sample_name(tmp_path):
    with pytest.raises(KeyError, match="unknown sample"):
        samples.generate("nope", tmp_path)


# ----------------------------------------------------------------------------- committed data
def _committed(name: str) -> pd.DataFrame:
    csv = ROOT / name / "data.csv"
    if not csv.exists():
        pytest.fail(f"{csv} missing: run `python -m multimodal.data.samples`")
    return pd.read_csv(csv)


@pytest.mark.parametrize("name", NAMES)
def test_committed_sample_columns_and_images(name):
    df = _committed(name)
    info = samples.SAMPLES[name]
    assert list(df.columns) == COLUMNS[name]
    assert len(df) == info.rows
    for col in IMAGE_COLS[name]:
        assert df[col].notna().all()
        missing = [p for p in df[col] if not (ROOT / name / p).is_file()]
        assert not missing, f"{name}.{col}: {missing[:3]} not on disk"
    with Image.open(ROOT / name / df[IMAGE_COLS[name][0]].iloc[0]) as im:
        assert im.size == (info.image_size, info.image_size)
    readme = (ROOT / name / "README.md").read_text()
    assert "Oracle" in readme and "Measured with the app's models" in readme
    assert f"[`{name}`]" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", ["skin_lesions", "growth_sequences"])
def test_committed_class_balance(name):
    shares = _committed(name)[samples.SAMPLES[name].target].value_counts(normalize=True)
    assert len(shares) == 2
    assert shares.between(0.3, 0.7).all(), shares.to_dict()


def test_skin_lesions_have_some_missing_values():
    df = _committed("skin_lesions")
    for col in ["age", "site"]:
        assert 0.01 <= df[col].isna().mean() <= 0.06
    assert df["age"].dropna().between(18, 90).all()
    assert set(df["family_history"]) == {"yes", "no"}


def test_house_prices_positive_and_skewed():
    df = _committed("house_prices")
    assert (df["price"] > 0).all()
    assert df["price"].mean() > df["price"].median()  # right-skewed
    assert df["bedrooms"].between(1, 6).all() and df["bathrooms"].between(1, 4).all()
    assert ((df["bathrooms"] * 2) % 1 == 0).all()
    assert df["zipcode"].nunique() == 6


def _blob_area(path: Path) -> int:
    with Image.open(path) as im:
        return int((np.asarray(im.convert("L")) < 150).sum())


def test_growth_sequence_sizes_are_monotone():
    df = _committed("growth_sequences")
    for _, row in df.head(12).iterrows():
        areas = [_blob_area(ROOT / "growth_sequences" / row[f"frame_{k}"]) for k in range(1, 5)]
        steps = np.diff(areas)
        if row["trend"] == "growing":
            assert (steps > 0).all(), (row["id"], areas)
        else:
            assert (steps < 0).all(), (row["id"], areas)


def test_growth_frame_sizes_carry_no_orderless_signal():
    """Mean blob area over the 4 frames should be about the same in both classes."""
    df = _committed("growth_sequences").head(80)
    mean_area = [np.mean([_blob_area(ROOT / "growth_sequences" / r[f"frame_{k}"]) for k in range(1, 5)])
                 for _, r in df.iterrows()]
    by_class = pd.Series(mean_area).groupby(df["trend"].to_numpy()).mean()
    assert abs(by_class["growing"] - by_class["shrinking"]) < 0.15 * np.mean(mean_area)
