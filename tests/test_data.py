"""Tests for multimodal.data: loading, roles, validation, zips, images, splits, inputs."""
from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from multimodal.core import limits
from multimodal.core.config import TrainConfig
from multimodal.core.errors import DataError
from multimodal.data import images, sources
from multimodal.data.cells import MISSING_TOKEN
from multimodal.data.dataset import load_dataset
from multimodal.data.health import health_report
from multimodal.data.inputs import FeatureSpec, encode_target, input_name, model_inputs
from multimodal.data.roles import detect_roles, detect_task
from multimodal.data.splits import split_indices
from multimodal.runs.run import load_run

from support.datasets import BLUE, RED, make_dataset, med_rows, zip_folder

GREEN = (0, 160, 0)


# ---------------------------------------------------------------- builders

def png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------- roles, task, overrides

def test_detect_roles_and_task_on_medical_csv(tmp_path):
    ds = load_dataset(make_dataset(tmp_path / "med"))
    assert ds.roles == {"image_path": "image", "age": "numeric", "sex": "categorical", "target": "target"}
    assert ds.task == "classification" and ds.classes == ["benign", "malignant"]
    assert ds.features == FeatureSpec(["image_path"], ["age"], ["sex"])
    assert ds.features.tabular_cols == ["age", "sex"]
    assert ds.split_col is None and ds.root == tmp_path / "med" and ds.name == "med"
    assert list(ds.frame.index) == list(range(12))


def test_detect_roles_rules():
    n = 30
    frame = pd.DataFrame({
        "row": range(n),                                 # consecutive unique ints -> id
        "patient_id": [f"p{i % 7}" for i in range(n)],   # *_id name -> id
        "bedrooms": [i % 5 for i in range(n)],            # few distinct ints -> categorical
        "area": [100 + 7 * i for i in range(n)],          # many distinct ints -> numeric
        "flag": [float(i % 2) if i % 4 else np.nan for i in range(n)],  # 0/1 with gaps -> categorical
        "const": [1] * n,                                 # no information -> ignore
        "fold": ["train", "Val", "test"] * 10,            # split column
        "price": [1000.5 + i for i in range(n)],          # named target
    })
    roles = detect_roles(frame)
    assert roles == {"row": "id", "patient_id": "id", "bedrooms": "categorical", "area": "numeric",
                     "flag": "categorical", "const": "ignore", "fold": "split", "price": "target"}
    assert detect_task(frame["price"]) == "regression"
    assert detect_task(pd.Series([0, 1, 1, 0])) == "classification"
    assert detect_task(pd.Series([True, False])) == "classification"
    assert detect_task(pd.Series(range(50))) == "regression"
    # No named target: the last usable column is the target.
    assert detect_roles(frame.drop(columns=["price"]))["flag"] == "target"


def test_overrides_and_target(tmp_path):
    csv = make_dataset(tmp_path / "med")
    ds = load_dataset(csv, overrides={"sex": "ignore"}, target="age", task="regression")
    assert ds.target == "age" and ds.task == "regression" and ds.classes == []
    assert ds.roles["target"] == "categorical"  # the replaced guess becomes a feature again
    assert ds.features == FeatureSpec(["image_path"], [], ["target"])
    with pytest.raises(DataError, match=r"unknown column.*'nope'.*available: image_path, age, sex, target"):
        load_dataset(csv, overrides={"nope": "ignore"})
    with pytest.raises(DataError, match="unknown role"):
        load_dataset(csv, overrides={"sex": "banana"})
    with pytest.raises(DataError, match="regression|not a number"):
        load_dataset(csv, task="regression")


def test_ordered_images_only_when_the_user_says_so(tmp_path):
    rows = med_rows()
    for i, r in enumerate(rows):
        r["frame2"] = f"img/{(i + 1) % 12}.png"
    csv = make_dataset(tmp_path / "d", rows=rows)
    assert load_dataset(csv).features.ordered_images is False             # never guessed
    ordered = load_dataset(csv, ordered_images=True)
    assert ordered.ordered_images and ordered.features == FeatureSpec(["image_path", "frame2"], ["age"], ["sex"], True)
    # One image column is no sequence, whatever was said.
    assert load_dataset(csv, ordered_images=True, overrides={"frame2": "ignore"}).features.ordered_images is False


def test_runs_and_configs_without_the_ordered_flag_load_as_unordered():
    old = {"data": "growth_sequences", "epochs": 40, "batch_size": 32, "patience": 8, "model": {"arch": "cnn_lstm"}}
    config = TrainConfig.from_dict(old)
    assert config.ordered_images is False and (config.epochs, config.batch_size, config.patience) == (40, 32, 8)
    assert TrainConfig(data="x").ordered_images is False
    saved = Path(__file__).parent / "fixtures" / "run_before_grouped_inputs"   # written before the flag existed
    assert "ordered_images" not in json.loads((saved / "config.json").read_text())["features"]
    spec = load_run(saved).spec
    assert spec.image_cols == ["image"] and spec.ordered_images is False


# ---------------------------------------------------------------- sources and zips

def test_zip_loading_and_sources(tmp_path):
    make_dataset(tmp_path / "med")
    z = zip_folder(tmp_path / "med", tmp_path / "med.zip")
    work = tmp_path / "work"
    ds = load_dataset(z, workdir=work)
    assert ds.csv_path.resolve().is_relative_to(work.resolve()) and ds.frame.shape == (12, 4)
    assert ds.name == "med"
    assert model_inputs(ds.frame, ds.root, ds.features, 8)["images"].shape == (12, 1, 8, 8, 3)
    # A folder with the CSV one level down, and a folder with two CSVs.
    assert sources.resolve_source(tmp_path / "med") == tmp_path / "med" / "data.csv"
    (tmp_path / "med" / "other.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match="several CSV"):
        sources.resolve_source(tmp_path / "med")
    with pytest.raises(DataError, match="not a file, folder or sample"):
        sources.resolve_source("no-such-sample-xyz")
    assert isinstance(sources.list_samples(), list)


# ---------------------------------------------------------------- CSV reading

def write(p: Path, text: str, encoding: str = "utf-8") -> Path:
    p.write_bytes(text.encode(encoding))
    return p


def test_csv_bom_semicolon_crlf_and_quoted_newline(tmp_path):
    lines = ["\ufeff name ;value;label"] + [f'"a\nb{i}";{i},5;{"x" if i % 2 else "y"}' for i in range(12)]
    frame = sources.read_csv(write(tmp_path / "d.csv", "\r\n".join(lines) + "\r\n"))
    assert list(frame.columns) == ["name", "value", "label"]
    assert frame.attrs["delimiter"] == ";" and len(frame) == 12
    assert frame["name"][0] == "a\nb0" and frame["value"][3] == 3.5  # decimal comma understood
    assert frame["label"][0] == "y"


def test_csv_latin1_and_tab(tmp_path):
    text = "name\tlabel\n" + "".join(f"caf\xe9{i}\t{i % 2}\n" for i in range(10))
    frame = sources.read_csv(write(tmp_path / "d.csv", text, "latin-1"))
    assert frame["name"][0] == "caf\xe90" and frame.attrs["delimiter"] == "\t"


def test_csv_trailing_delimiters_utf16_and_min_rows(tmp_path):
    frame = sources.read_csv(write(tmp_path / "t.csv", "a,b\n" + "".join(f"{i},x{i},\n" for i in range(12))))
    assert list(frame.columns) == ["a", "b"] and frame["a"].tolist() == list(range(12))
    frame = sources.read_csv(write(tmp_path / "u.csv", "a\tb\n" + "1\t\u00e9\n" * 10, "utf-16"))
    assert frame.attrs["encoding"] == "utf-16" and frame["b"][0] == "\u00e9"
    assert len(sources.read_csv(write(tmp_path / "one.csv", "a,b\n1,2\n"), min_rows=1)) == 1


@pytest.mark.parametrize("text, pattern", [
    ("", "is empty"),
    ("a,b\n", "no data rows"),
    ("a,b\n1,2\n3,4\n", "only 2 data rows; at least 10"),
    ("a, b ,b,c\n" + "1,2,3,4\n" * 12, "duplicate column name.*'b'"),
    ("a,b\n" + "1,2\n" * 5 + "1,2,3,4\n" + "1,2\n" * 6, "could not be parsed"),
])
def test_csv_errors(tmp_path, text, pattern):
    with pytest.raises(DataError, match=pattern):
        sources.read_csv(write(tmp_path / "bad.csv", text))


def test_binary_csv_rejected(tmp_path):
    (tmp_path / "x.csv").write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(DataError, match="'x.csv' is binary"):
        sources.read_csv(tmp_path / "x.csv")


# ---------------------------------------------------------------- dataset validation

def test_missing_target_rows_named(tmp_path):
    rows = med_rows()
    rows[2]["target"] = None
    rows[16 % 12]["target"] = ""
    with pytest.raises(DataError, match=r"rows 3, 5: target 'target' is empty; fill or drop them"):
        load_dataset(make_dataset(tmp_path / "d", rows=rows))


def test_one_class_target(tmp_path):
    rows = [dict(r, target="benign") for r in med_rows()]
    with pytest.raises(DataError, match="only one class.*'benign'"):
        load_dataset(make_dataset(tmp_path / "d", rows=rows))


def test_inf_in_numeric_column(tmp_path):
    rows = med_rows()
    rows[4]["age"] = float("inf")
    with pytest.raises(DataError, match=r"column 'age', row 5: value is infinite"):
        load_dataset(make_dataset(tmp_path / "d", rows=rows))


def test_image_path_escaping_root_absolute_and_missing(tmp_path):
    Image.new("RGB", (20, 20)).save(tmp_path / "outside.png")
    rows = med_rows()
    rows[3]["image_path"] = "../outside.png"
    with pytest.raises(DataError, match=r"row 4, column 'image_path'.*outside the dataset folder"):
        load_dataset(make_dataset(tmp_path / "a", rows=rows))
    rows = med_rows()
    rows[1]["image_path"] = str(tmp_path / "outside.png")
    with pytest.raises(DataError, match=r"row 2.*is absolute"):
        load_dataset(make_dataset(tmp_path / "b", rows=rows))
    rows = med_rows()
    rows[6]["image_path"] = "lost/gone.png"
    with pytest.raises(DataError, match=r"1 image file\(s\) not found \(row 7: 'lost/gone.png'\)"):
        load_dataset(make_dataset(tmp_path / "c", rows=rows))
    # A symlink inside the folder that points outside it.
    rows = med_rows()
    rows[0]["image_path"] = "link.png"
    csv = make_dataset(tmp_path / "d", rows=rows)
    (csv.parent / "link.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(DataError, match="outside the dataset folder"):
        load_dataset(csv)


# ---------------------------------------------------------------- images

def check_color(arr, color, tol=40):
    assert np.abs(arr.astype(int) - np.array(color)).max() <= tol, (arr, color)


def test_bad_images_raise_named_dataerror(tmp_path):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    full = png_bytes(noise, "JPEG")
    (tmp_path / "trunc.jpg").write_bytes(full[: len(full) // 2])
    (tmp_path / "text.jpg").write_text("hello, not an image")
    png = bytearray(png_bytes(Image.new("RGB", (1, 1))))
    png[16:24] = struct.pack(">II", 100000, 100000)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(png))
    for name, pattern in [("trunc.jpg", "truncated or not an image"), ("text.jpg", "truncated or not an image"),
                          ("bomb.png", "too large|limit"), ("nothere.png", "not found")]:
        with pytest.raises(DataError, match=pattern) as err:
            images.load_image(tmp_path / name, 8)
        assert name in str(err.value) and ("replace or remove" in str(err.value) or "remove it" in str(err.value)
                                           or "fix its path" in str(err.value))


def test_pixel_limit_below_pillow_limit(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setenv("MMSTUDIO_MAX_IMAGE_PIXELS", "5000")
    with pytest.raises(DataError, match=r"100x100 pixels \(limit 5,000\).*set MMSTUDIO_MAX_IMAGE_PIXELS"):
        images.load_image(tmp_path / "big.png", 8)
    with pytest.raises(DataError, match="'big.png' is 100x100 pixels"):   # the header check agrees
        images.image_size(tmp_path / "big.png", shown="big.png")
    monkeypatch.delenv("MMSTUDIO_MAX_IMAGE_PIXELS")
    assert images.image_size(tmp_path / "big.png") == (100, 100)


def test_limits_are_read_at_call_time_and_typos_refused(tmp_path, monkeypatch):
    csv = write(tmp_path / "d.csv", "a,b\n" + "1,x\n" * 30)
    assert limits.MAX_ROWS.get() == 100_000 and len(sources.read_csv(csv)) == 30
    monkeypatch.setenv("MMSTUDIO_MAX_ROWS", "29")
    with pytest.raises(DataError, match=r"'d.csv' has more than 29 data rows.*set MMSTUDIO_MAX_ROWS"):
        sources.read_csv(csv)
    monkeypatch.setenv("MMSTUDIO_MAX_ROWS", "1_000")
    assert limits.MAX_ROWS.get() == 1000 and len(sources.read_csv(csv)) == 30
    for typo in ("lots", "0", "-5"):
        monkeypatch.setenv("MMSTUDIO_MAX_ROWS", typo)
        with pytest.raises(DataError, match=rf"MMSTUDIO_MAX_ROWS='{typo}' is not a positive whole number"):
            sources.read_csv(csv)


def test_load_images_cache(tmp_path, monkeypatch):
    paths = []
    for i, c in enumerate([RED, GREEN, BLUE]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (20, 20), c).save(paths[-1])
    calls = []
    real = images.load_image
    monkeypatch.setattr(images, "load_image", lambda p, s: calls.append(p) or real(p, s))
    cache = tmp_path / "cache"
    first = images.load_images(paths, 6, cache_dir=cache, workers=2)
    assert first.shape == (3, 6, 6, 3) and len(calls) == 3 and len(list(cache.glob("*.npy"))) == 3
    check_color(first[2, 0, 0], BLUE, 0)
    second = images.load_images(paths, 6, cache_dir=cache)
    assert len(calls) == 3 and np.array_equal(first, second)
    images.load_images(paths, 7, cache_dir=cache)    # another size is another key
    assert len(calls) == 6
    os.utime(paths[0], ns=(1, 1))                   # a changed file is decoded again
    images.load_images(paths, 6, cache_dir=cache)
    assert len(calls) == 7
    assert images.load_images([], 6).shape == (0, 6, 6, 3)


# ---------------------------------------------------------------- splits and targets

def label_dataset(tmp_path, labels, split=None):
    rows = [{"x": float(i) * 1.5, "label": lab} for i, lab in enumerate(labels)]
    if split is not None:
        for r, s in zip(rows, split):
            r["split"] = s
    tmp_path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    return load_dataset(tmp_path / "d.csv")


def test_split_indices_stratified_and_deterministic(tmp_path):
    ds = label_dataset(tmp_path, ["a"] * 30 + ["b"] * 10 + ["c"] * 2)
    s1, s2 = split_indices(ds, 0.2, seed=3), split_indices(ds, 0.2, seed=3)
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    assert not np.array_equal(s1["val"], split_indices(ds, 0.2, seed=4)["val"])
    assert sorted(np.concatenate([s1["train"], s1["val"]]).tolist()) == list(range(42))
    assert len(s1["test"]) == 0 and all(np.all(np.diff(v) > 0) for v in s1.values() if len(v) > 1)
    val_labels = ds.frame["label"].to_numpy()[s1["val"]].tolist()
    assert (val_labels.count("a"), val_labels.count("b"), val_labels.count("c")) == (6, 2, 1)
    with pytest.raises(DataError):
        split_indices(ds, 1.5)


def test_split_column(tmp_path):
    split = ["train", "Train", "VAL", " test "] * 3
    ds = label_dataset(tmp_path / "a", ["a", "b"] * 6, split)
    assert ds.split_col == "split" and ds.roles["split"] == "split"
    s = split_indices(ds, seed=0)
    assert s["train"].tolist() == [0, 1, 4, 5, 8, 9] and s["val"].tolist() == [2, 6, 10]
    assert s["test"].tolist() == [3, 7, 11]
    ds = label_dataset(tmp_path / "b", ["a", "b"] * 6, ["train", "test"] * 6)   # no val: carved from train
    s = split_indices(ds, seed=0)
    assert s["test"].tolist() == [1, 3, 5, 7, 9, 11] and len(s["val"]) >= 1
    assert set(s["val"]) <= {0, 2, 4, 6, 8, 10} and not set(s["val"]) & set(s["train"])
    with pytest.raises(DataError, match=r"row 3: split value 'holdout' is not train/val/test"):
        label_dataset(tmp_path / "c", ["a", "b"] * 6, ["train", "val", "holdout"] + ["train"] * 9)


def test_encode_target():
    y = encode_target(pd.Series(["b", "a", "b"]), "classification", ["a", "b"])
    assert y.dtype == np.int32 and y.tolist() == [1, 0, 1]
    assert encode_target(pd.Series([1.0, 0.0]), "classification", ["0", "1"]).tolist() == [1, 0]
    with pytest.raises(DataError, match=r"row 2: label 'z' is not one of the classes"):
        encode_target(pd.Series(["a", "z"]), "classification", ["a", "b"])
    r = encode_target(pd.Series([1.5, 2]), "regression", [])
    assert r.dtype == np.float32 and r.tolist() == [1.5, 2.0]


def test_input_name():
    assert input_name("Blood Pressure (mmHg)") == "col_blood_pressure_mmhg"
    assert input_name("__x__") == "col_x"


# ---------------------------------------------------------------- model inputs and health

def test_model_inputs(tmp_path):
    rows = med_rows()
    for i, r in enumerate(rows):
        r["frame2"] = f"img/{(i + 1) % 12}.png"
        r["stage"] = [1, 2, None][i % 3]      # ints with gaps read as floats
    rows[5]["age"] = None
    rows[7]["sex"] = ""
    csv = make_dataset(tmp_path / "d", rows=rows)
    ds = load_dataset(csv)
    spec = FeatureSpec(["image_path", "frame2"], ["age"], ["sex", "stage"])
    x = model_inputs(ds.frame, ds.root, spec, 4)
    assert set(x) == {"images", "col_age", "col_sex", "col_stage"}
    assert x["images"].shape == (12, 2, 4, 4, 3) and x["images"].dtype == np.uint8
    check_color(x["images"][0, 0, 0, 0], RED, 0)   # row 0 malignant, its 2nd frame is row 1's image (benign)
    check_color(x["images"][0, 1, 0, 0], BLUE, 0)
    assert x["col_age"].dtype == np.float32 and np.isnan(x["col_age"][5]) and x["col_age"][0] == 30.5
    assert x["col_sex"].dtype.kind == "U" and x["col_sex"][7] == MISSING_TOKEN
    assert x["col_stage"].tolist()[:3] == ["1", "2", MISSING_TOKEN]
    pre = np.zeros((12, 4, 4, 3), np.uint8)
    assert model_inputs(ds.frame, ds.root, FeatureSpec(["image_path"], [], []), 4, images=pre)[
        "images"].shape == (12, 1, 4, 4, 3)
    # A subset keeps the CSV row numbers in messages.
    bad = ds.frame.iloc[[2, 9]].copy()
    bad.loc[9, "image_path"] = None
    with pytest.raises(DataError, match=r"row 10, column 'image_path': no image given"):
        model_inputs(bad, ds.root, spec, 4)
    with pytest.raises(DataError, match=r"missing column\(s\) 'sex'"):
        model_inputs(ds.frame.drop(columns=["sex"]), ds.root, spec, 4)
    bad = ds.frame.iloc[:3].copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc[1, "age"] = "old"
    with pytest.raises(DataError, match=r"column 'age', row 2: 'old' is not a number"):
        model_inputs(bad, ds.root, spec, 4)


def test_health_report(tmp_path):
    rows = med_rows()
    rows[11] = dict(rows[10])               # a duplicate row
    rows[3]["age"] = None
    ds = load_dataset(make_dataset(tmp_path / "d", rows=rows))
    rep = health_report(ds)
    json.dumps(rep)
    assert rep["rows"] == 12 and rep["duplicate_rows"] == 1 and rep["missing"]["age"] == 1
    assert rep["class_counts"] == {"benign": 8, "malignant": 4}
    assert rep["images"]["sampled"] == 12 and rep["images"]["width"] == {"min": 20, "median": 20, "max": 20}
    assert {c["name"]: c["role"] for c in rep["columns"]}["sex"] == "categorical"
    reg = load_dataset(make_dataset(tmp_path / "r", rows=med_rows()), target="age")
    assert health_report(reg)["target_stats"] == {"min": 30.5, "mean": 36.0, "max": 41.5}
