"""AppTest tests of the Home, Data and Model pages (and their ui helpers).

The pages run inside the real `app.py` navigation. While other pages of the app are still being
written, a test copy of the app with stub files for the missing pages is used instead, so these
tests only depend on the three pages they cover.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from multimodal.app import data_view, diagram  # noqa: E402
from multimodal.core import limits  # noqa: E402
from multimodal.core.config import small_data_settings  # noqa: E402
from multimodal.core.errors import DataError  # noqa: E402
from multimodal.data.splits import split_indices  # noqa: E402

TIMEOUT = 60


@pytest.fixture(scope="module")
def app_path() -> Path:
    return ROOT / "app.py"


def open_page(app_path: Path, page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(app_path), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page)
        if query is not None:
            at.query_params = dict(query)
        at.run()
    return at


def data_sized_default(ds, name: str):
    """A training setting the library leaves to the data (config.small_data_settings), for the
    rows the app's default split trains on."""
    return small_data_settings(len(split_indices(ds, 0.2, 0)["train"]))[0][name]


def errors(at: AppTest) -> str:
    return " | ".join(e.value for e in at.error)


# ---------------------------------------------------------------- small datasets as uploads

def png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="PNG")
    return buf.getvalue()


def tiny_files(labels: list[str] | None = None, prefix: str = "images/") -> dict[str, bytes]:
    """A 12-row dataset: CSV (image paths with `prefix`) plus 16x16 PNGs."""
    labels = labels or ["benign", "malignant"] * 6
    rows = ["image,age,sex,label"]
    files = {}
    for i, label in enumerate(labels):
        name = f"img{i:02d}.png"
        rows.append(f"{prefix}{name},{30 + i},{'MF'[i % 2]},{label}")
        files[f"{prefix}{name}"] = png((200, 40, 40) if label == "malignant" else (40, 40, 200))
    files["data.csv"] = ("\n".join(rows) + "\n").encode()
    return files


def zipped(files: dict[str, bytes], folder: str = "tiny/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name if name.startswith("..") else folder + name, content)
    return buf.getvalue()


def upload(at: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    at.radio(key="data_mode").set_value("Upload your own").run()
    at.file_uploader[0].set_value(files).run()
    return at


# ---------------------------------------------------------------- Home

def test_home_renders_with_quick_start_links(app_path):
    at = open_page(app_path)
    assert not at.exception
    targets = " ".join(link.proto.page for link in at.page_link)
    assert len(at.page_link) >= 3 and "data" in targets and "model" in targets and "train" in targets
    assert at.session_state["dataset"] is not None  # the sample is already loaded


# ---------------------------------------------------------------- Data

def test_data_page_renders_and_switching_sample_changes_dataset(app_path):
    at = open_page(app_path, "pages/data.py")
    assert not at.exception and not at.error
    assert at.session_state["dataset"].name == "skin_lesions"
    assert at.dataframe, "table preview missing"
    at.selectbox(key="data_sample").select("house_prices").run()
    assert not at.exception, at.exception
    assert at.session_state["dataset"].name == "house_prices"
    assert at.session_state["dataset_source"] == "house_prices"
    assert at.session_state["dataset"].task == "regression"


def test_upload_zip_loads_dataset_inside_session_folder(app_path):
    at = open_page(app_path, "pages/data.py")
    upload(at, [("tiny.zip", zipped(tiny_files()), "application/zip")])
    assert not at.exception and not at.error, errors(at)
    ds = at.session_state["dataset"]
    assert ds.name == "tiny" and len(ds.frame) == 12 and ds.features.image_cols == ["image"]
    session = at.session_state["session_folder"].path
    assert ds.csv_path.is_relative_to(session / "uploads")
    assert not at.file_uploader[0].value  # the uploader is emptied for the next upload


@pytest.mark.parametrize("prefix", ["images/", ""])
def test_upload_csv_plus_images_by_base_name(app_path, prefix):
    files = tiny_files(prefix=prefix)
    uploads = [(Path(n).name, c, "image/png" if n.endswith(".png") else "text/csv") for n, c in files.items()]
    at = open_page(app_path, "pages/data.py")
    upload(at, uploads)
    assert not at.exception and not at.error, errors(at)
    ds = at.session_state["dataset"]
    assert ds.csv_path.name == "data.csv" and (ds.root / prefix / "img00.png").is_file()


@pytest.mark.parametrize("files, expected", [
    ({"../evil.csv": b"a,b\n1,2\n", **tiny_files()}, "outside the folder"),
    (tiny_files(["benign"] * 12), "only one class"),
])
def test_bad_upload_shows_error_and_keeps_old_dataset(app_path, files, expected):
    at = open_page(app_path, "pages/data.py")
    upload(at, [("bad.zip", zipped(files), "application/zip")])
    assert not at.exception, at.exception
    assert expected in errors(at), errors(at)
    assert at.session_state["dataset"].name == "skin_lesions"
    at.radio(key="data_mode").set_value("Sample dataset").run()
    at.selectbox(key="data_sample").select("growth_sequences").run()
    assert at.session_state["dataset"].name == "growth_sequences" and not at.error


def test_role_override_reloads_with_new_roles(app_path):
    at = open_page(app_path, "pages/data.py")
    ds = at.session_state["dataset"]
    assert ds.roles["sex"] == "categorical"
    at.selectbox(key=data_view.role_key(ds, "sex")).select("ignore")
    at.button[[b.label for b in at.button].index("Apply roles")].click().run()
    assert not at.exception and not at.error, errors(at)
    ds = at.session_state["dataset"]
    assert ds.roles["sex"] == "ignore" and "sex" not in ds.features.categorical_cols
    assert at.session_state["dataset_source"] == "skin_lesions"


def test_save_uploads_limits_and_names(tmp_path, monkeypatch):
    big = SimpleNamespace(name="huge.zip", size=limits.MAX_UPLOAD_MB.get() * 2**20 + 1, getvalue=lambda: b"")
    with pytest.raises(DataError, match="limit"):
        data_view.save_uploads([big], tmp_path / "a")
    assert not (tmp_path / "a").exists()  # nothing written before the checks pass
    f = lambda name: SimpleNamespace(name=name, size=3, getvalue=lambda: b"abc")  # noqa: E731
    with pytest.raises(DataError, match="not both"):
        data_view.save_uploads([f("a.zip"), f("b.csv")], tmp_path / "b")
    with pytest.raises(DataError, match="remove all but one"):
        data_view.save_uploads([f("a.zip"), f("b.zip")], tmp_path / "b")
    with pytest.raises(DataError, match="not a CSV, zip or image"):
        data_view.save_uploads([f("a.csv"), f("run.exe")], tmp_path / "c")
    with pytest.raises(DataError, match="no CSV"):
        data_view.save_uploads([f("a.png")], tmp_path / "d")
    # A "../" in an uploaded name only keeps the base name; CSV paths that escape are not recreated.
    csv = SimpleNamespace(name="data.csv", size=10, getvalue=lambda: b"image,y\n../x.png,1\nsub/x.png,2\n")
    out = data_view.save_uploads([csv, f("../x.png")], tmp_path / "e")
    assert out == tmp_path / "e" / "data.csv"
    assert (tmp_path / "e" / "sub" / "x.png").is_file() and not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------- Model

def test_model_page_picks_method_and_mirrors_it_in_the_url(app_path):
    at = open_page(app_path, "pages/model.py")
    assert not at.exception, at.exception
    assert at.session_state["model_config"].arch == "late_concat"
    assert at.query_params.get("arch") == "late_concat"
    ds = at.session_state["dataset"]
    assert at.session_state["train_settings"]["epochs"] == data_sized_default(ds, "epochs")
    at.radio(key="m_arch").set_value("gated").run()
    assert not at.exception, at.exception
    assert at.session_state["model_config"].arch == "gated"
    assert at.query_params["arch"] == "gated"
    assert any("Gated" in s.value for s in at.subheader)


def test_query_params_on_load_set_the_config(app_path):
    query = {"arch": "film", "image_size": "32", "width": "32", "dropout": "0.3", "epochs": "5", "lr": "0.003",
             "batch_size": "16", "augment": "false", "seed": "7"}
    at = open_page(app_path, "pages/model.py", query)
    assert not at.exception and not at.warning, (at.exception, [w.value for w in at.warning])
    cfg, train = at.session_state["model_config"], at.session_state["train_settings"]
    assert (cfg.arch, cfg.image_size, cfg.width, cfg.dropout, cfg.augment, cfg.seed) == ("film", 32, 32, 0.3, False, 7)
    assert (train["epochs"], train["lr"], train["batch_size"], train["seed"]) == (5, 0.003, 16, 7)
    assert at.query_params["arch"] == "film" and at.query_params["epochs"] == "5"


def test_invalid_query_params_are_ignored_with_a_warning(app_path):
    query = {"arch": "cnn_lstm", "image_size": "5000", "epochs": "lots", "lr": "nan", "dropout": "0.25",
             "other": "kept-out"}
    at = open_page(app_path, "pages/model.py", query)  # skin_lesions has one image column: no cnn_lstm
    assert not at.exception, at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "arch" in warning and "image_size" in warning and "epochs" in warning and "lr" in warning
    cfg = at.session_state["model_config"]
    assert cfg.arch == "late_concat" and cfg.image_size == 64 and cfg.dropout == 0.25
    assert at.session_state["train_settings"]["epochs"] == data_sized_default(at.session_state["dataset"], "epochs")


def test_parameter_count_is_the_real_count(app_path):
    from multimodal.core.config import ModelConfig

    at = open_page(app_path, "pages/model.py", {"arch": "attention", "width": "32"})
    assert not at.exception, at.exception
    shown = next(m.value for m in at.metric if m.label == "Parameters")
    ds, cfg, train = (at.session_state[k] for k in ("dataset", "model_config", "train_settings"))
    assert cfg == ModelConfig(arch="attention", width=32, params={"heads": 2},
                              dropout=data_sized_default(ds, "dropout"), l2=data_sized_default(ds, "l2"))
    # The model Train builds: tabular stats from the same training rows, then build_model.
    from multimodal.data.inputs import model_inputs
    from multimodal.data.splits import split_indices
    from multimodal.models.assembly import build_model
    from multimodal.models.branches import tabular_stats
    rows = split_indices(ds, train["val_fraction"], train["seed"])["train"]
    inputs = model_inputs(ds.frame.iloc[rows], ds.root, ds.features, cfg.image_size)
    expected = build_model(cfg, ds.features, tabular_stats(inputs, ds.features), ds.task, ds.classes).count_params()
    assert shown == f"{expected:,}"


def test_model_page_makes_a_widget_per_param_and_offers_the_linear_term(app_path):
    at = open_page(app_path, "pages/model.py", {"arch": "bilinear", "wide": "false"})
    assert not at.exception and not at.warning, (at.exception, [w.value for w in at.warning])
    assert at.session_state["model_config"].wide is False and at.query_params["wide"] == "false"
    rank = next(n for n in at.number_input if n.label == "Rank")      # 1..256, from the Param alone
    assert (rank.value, rank.min, rank.max) == (16, 1, 256)
    rank.set_value(8).run()
    next(t for t in at.toggle if t.label.startswith("Linear term")).set_value(True).run()
    cfg = at.session_state["model_config"]
    assert (cfg.params, cfg.wide, at.query_params["wide"]) == ({"rank": 8}, True, "true")
    at.radio(key="m_arch").set_value("linear").run()
    assert not at.exception, at.exception
    l2 = next(n for n in at.number_input if n.label == "L2")
    assert l2.value == pytest.approx(1e-3) and at.session_state["model_config"].params == {"l2": 1e-3}
    assert next(t for t in at.toggle if t.label.startswith("Linear term")).disabled    # already linear


def ordered_box(at: AppTest):
    return [c for c in at.checkbox if "ordered sequence" in c.label]


def proposed(at: AppTest) -> str:
    return next(i.value for i in at.info if i.value.startswith("**Proposed:"))


def go(at: AppTest, page: str) -> None:
    """Open another page as the sidebar does: without the previous page's query parameters
    (AppTest.switch_page keeps them; st.switch_page and the navigation clear them)."""
    at.query_params = {}
    at.switch_page(page).run()
    assert not at.exception, at.exception


def test_ordered_images_checkbox_drives_the_proposal_and_resets_with_the_dataset(app_path):
    at = open_page(app_path, "pages/data.py")
    assert not ordered_box(at)                                   # one image column: nothing to order
    at.selectbox(key="data_sample").select("growth_sequences").run()
    [box] = ordered_box(at)
    assert box.label == "These 4 image columns are an ordered sequence (frames in time)" and not box.value
    go(at, "pages/model.py")
    assert at.session_state["model_config"].arch == "late_concat"
    assert "**Proposed: late_concat** - 4 image columns, unordered" in proposed(at)
    assert "recommendation" in proposed(at)
    at.select_slider(key="m_image_size").set_value(32).run()      # a setting made for this dataset

    go(at, "pages/data.py")
    ordered_box(at)[0].check().run()
    assert not at.exception, at.exception
    assert at.session_state["dataset"].features.ordered_images
    ds = at.session_state["dataset"]
    at.selectbox(key=data_view.role_key(ds, "sex")).select("ignore")
    at.button[[b.label for b in at.button].index("Apply roles")].click().run()
    assert at.session_state["dataset"].features.ordered_images   # same image columns: the answer holds
    go(at, "pages/model.py")
    assert at.session_state["model_config"].arch == "cnn_lstm" and at.query_params["arch"] == "cnn_lstm"
    assert "**Proposed: cnn_lstm** - 4 image columns marked ordered" in proposed(at)
    assert at.session_state["model_config"].image_size == 64    # the dataset changed: its setup started afresh

    go(at, "pages/data.py")
    at.selectbox(key="data_sample").select("skin_lesions").run()
    assert not ordered_box(at)
    go(at, "pages/model.py")
    assert at.session_state["model_config"].arch == "late_concat"
    go(at, "pages/data.py")
    at.selectbox(key="data_sample").select("growth_sequences").run()
    assert not ordered_box(at)[0].value                          # a fresh load: unordered until ticked again
    go(at, "pages/model.py")
    assert at.session_state["model_config"].arch == "late_concat"


def test_model_page_shows_the_data_sized_training_defaults(app_path):
    at = open_page(app_path, "pages/model.py")
    ds = at.session_state["dataset"]
    rows = len(split_indices(ds, 0.2, 0)["train"])
    note = f"{rows} training rows: batch 32, patience 15, up to 200 epochs, dropout 0.3, L2 0.001 - small-data defaults."
    assert note in [c.value for c in at.caption]
    train, model = at.session_state["train_settings"], at.session_state["model_config"]
    assert (train["batch_size"], train["patience"], train["epochs"], model.dropout, model.l2) == (32, 15, 200, 0.3, 1e-3)
    at.select_slider(key="m_batch_size").set_value(64).run()
    assert note[:-1] + "; changed here: batch size." in [c.value for c in at.caption]


def test_fusion_dot_names_columns_and_method():
    from multimodal.data.inputs import FeatureSpec

    method = SimpleNamespace(name="gated", title='Gated "GMU"', branches=("image", "tabular"),
                             merge_label="sigmoid gate", takes_wide=True)
    dot = diagram.fusion_dot(method, FeatureSpec(["photo"], ["age"], ["sex"]), target="y", classes=["a", "b"])
    assert dot.startswith("digraph") and dot.count("{") == dot.count("}")
    for text in ("photo", "age", "sex", 'Gated \\"GMU\\"\\nsigmoid gate', "enc_image -> merge",
                 "enc_tabular -> merge"):
        assert text in dot
    assert "wide" not in dot
    assert "enc_tabular -> wide" in diagram.fusion_dot(method, FeatureSpec(["photo"], ["age"], []), wide=True)


# ---------------------------------------------------------------- start-up cost

@pytest.mark.parametrize("page", ["home.py", "data.py"])
def test_home_and_data_do_not_import_tensorflow(app_path, page):
    script = f"""
import sys, json
sys.path.insert(0, {str(ROOT)!r})
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(app_path)!r}, default_timeout=60).run()
if {page!r} != "home.py":
    at.switch_page("pages/{page}").run()
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(json.dumps({{"exception": [str(e.value) for e in at.exception], "heavy": heavy}}))
"""
    # The server's background import (app/warmup.py) is off: this checks what the page itself imports.
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "MMSTUDIO_PRELOAD": "0"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"exception": [], "heavy": []}, out.stderr[-2000:]


def test_the_model_page_imports_no_tensorflow_before_it_renders():
    """Everything pages/model.py imports, the fusion registry and the encoder catalog included,
    loads without TensorFlow: the page draws its setup at once and only its last step (the
    parameter count, filled into a slot at the top) builds a model."""
    page = (ROOT / "pages" / "model.py").read_text()
    modules = re.findall(r"^from (multimodal[\w.]*) import", page, re.M)
    assert "multimodal.models.fusion" in modules and "multimodal.app.param_count" in modules
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]


def test_mobilenet_choice_says_offline_when_weights_are_missing(app_path):
    from multimodal.models.weights import resolve_weights

    at = open_page(app_path, "pages/model.py", {"encoder": "mobilenet_v2", "image_size": "32"})
    assert not at.exception, at.exception
    assert at.session_state["model_config"].encoder == "mobilenet_v2"
    offline = any("offline: random initialisation" in w.value for w in at.warning)
    assert offline == bool(resolve_weights("mobilenet_v2", download=False).notice)
    assert any(m.label == "Parameters" for m in at.metric)
