"""Property tests for multimodal.explain (docs/ARCHITECTURE.md, "Explanations").

Real models are built with random weights at 16 px (fast); one end-to-end test trains a tiny
run for 1 epoch so the run-folder path (background.npz, safe-mode load, layout) is covered.
"""
from __future__ import annotations

import json
import math
from itertools import combinations, permutations
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from multimodal.core.config import ModelConfig
from multimodal.data.inputs import FeatureSpec, input_name
from multimodal.explain import attributions
from multimodal.explain.attributions import (
    attention_routing,
    branch_contributions,
    feature_attributions,
    feature_vector_attributions,
    grad_cam,
    upsample_overlay,
)
from multimodal.explain.report import explain_row, global_branch_importance, permutation_importance, to_json
from multimodal.explain.shapley import exact_shapley, pairwise_interactions
from multimodal.models.assembly import build_model, encode, raw_input_names, select_inputs
from multimodal.models.branches import tabular_layout, tabular_stats
from multimodal.models.fusion import FUSION_METHODS
from multimodal.runs.run import Run

SIZE, ROWS, BACKGROUND = 16, 14, 10


# Helpers ------------------------------------------------------------------------------------

def raw_inputs(spec: FeatureSpec, n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    if spec.image_cols:
        out["images"] = rng.integers(0, 256, (n, len(spec.image_cols), SIZE, SIZE, 3), dtype=np.uint8)
    for c in spec.numeric_cols:
        v = rng.normal(50, 15, n).astype(np.float32)
        v[::5] = np.nan  # exercises the 'was missing' indicator slice
        out[input_name(c)] = v
    for c in spec.categorical_cols:
        out[input_name(c)] = rng.choice(["a", "b", "c"], n).astype(object)
    return out


def tiny_model(arch: str, task: str = "classification", classes=("no", "yes"), seed: int = 0):
    frames = 3 if FUSION_METHODS[arch].branches[0] == "sequence" else 1
    spec = FeatureSpec([f"img{i}" for i in range(frames)], ["age", "size"], ["site"])
    inputs = raw_inputs(spec, ROWS, seed)
    stats = tabular_stats(inputs, spec)
    keras.utils.set_random_seed(seed)
    target = {"mean": 100.0, "std": 20.0, "log": False} if task == "regression" else None
    config = ModelConfig(arch=arch, image_size=SIZE, width=8, dropout=0.0, augment=False, seed=seed)
    model = build_model(config, spec, stats, task, list(classes), target)
    inputs = {k: inputs[k] for k in raw_input_names(model)}
    return model, spec, stats, inputs


def fake_run(tmp_path: Path, model, spec, stats, inputs, task="classification", classes=("no", "yes")) -> Run:
    """A Run around an in-memory model; the first BACKGROUND rows are its background set."""
    np.savez(tmp_path / "background.npz", **{k: v[:BACKGROUND].astype(str) if v.dtype == object else v[:BACKGROUND]
                                             for k, v in inputs.items()})
    config = {"task": task, "classes": list(classes), "target": "y", "tabular_stats": stats,
              "features": {"image_cols": spec.image_cols, "numeric_cols": spec.numeric_cols,
                           "categorical_cols": spec.categorical_cols},
              "model": {"arch": model.name, "image_size": SIZE}}
    return Run(tmp_path, config, {}, {}, pd.DataFrame(), _model=model)


def split(model, inputs):
    emb = encode(model, inputs)
    bg = {b: v[:BACKGROUND] for b, v in emb.items()}
    rows = {b: v[BACKGROUND:] for b, v in emb.items()}
    return rows, bg, {k: v[BACKGROUND:] for k, v in inputs.items()}


def hand_head(build, names, shapes) -> keras.Model:
    ins = {n: keras.Input(s, name=n) for n, s in zip(names, shapes)}
    return keras.Model(ins, build(ins), name="head")


def brute_shapley(v, players):
    """Average marginal contribution over all orderings."""
    phi = dict.fromkeys(players, 0.0)
    orders = list(permutations(players))
    for order in orders:
        before = frozenset()
        for p in order:
            phi[p] += v(before | {p}) - v(before)
            before = before | {p}
    return {p: x / len(orders) for p, x in phi.items()}


def brute_interaction(v, players, i, j):
    """Shapley interaction index: merge i and j into one player, average the discrete second
    derivative at the coalition preceding the merged player over all orderings."""
    rest = [p for p in players if p not in (i, j)]
    orders = list(permutations(rest + ["<ij>"]))
    total = 0.0
    for order in orders:
        s = frozenset(order[:order.index("<ij>")])
        total += v(s | {i, j}) - v(s | {i}) - v(s | {j}) + v(s)
    return total / len(orders)


def random_game(m: int, seed: int):
    rng = np.random.default_rng(seed)
    players = [f"p{i}" for i in range(m)]
    table = {frozenset(c): float(rng.normal()) for r in range(m + 1) for c in combinations(players, r)}
    return players, table


# Shapley arithmetic on synthetic set functions ----------------------------------------------

@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_set_function_matches_all_orderings(m, seed):
    players, table = random_game(m, seed)
    phi = exact_shapley(table, players)
    brute = brute_shapley(table.__getitem__, players)
    for p in players:
        assert phi[p] == pytest.approx(brute[p], abs=1e-12)
    assert sum(phi.values()) == pytest.approx(table[frozenset(players)] - table[frozenset()], abs=1e-12)
    inter = pairwise_interactions(table.__getitem__, players)  # callable form too
    for i, j in combinations(players, 2):
        assert inter[f"{i}|{j}"] == pytest.approx(brute_interaction(table.__getitem__, players, i, j), abs=1e-12)


def test_two_player_interaction_is_the_simple_difference():
    players, t = random_game(2, 7)
    a, b = players
    expected = t[frozenset(players)] - t[frozenset([a])] - t[frozenset([b])] + t[frozenset()]
    assert pairwise_interactions(t, players)[f"{a}|{b}"] == pytest.approx(expected, abs=1e-12)
    phi = exact_shapley(t, players)
    assert phi[a] == pytest.approx(t[frozenset([a])] - t[frozenset()] + expected / 2, abs=1e-12)


# Branch contributions on real models --------------------------------------------------------

@pytest.mark.parametrize("arch", sorted(FUSION_METHODS))
def test_efficiency_and_feature_completeness_for_every_fusion_method(arch):
    model, spec, stats, inputs = tiny_model(arch)
    rows, bg, raw = split(model, inputs)
    c = branch_contributions(model, rows, bg, 0)
    total = sum(c["values"].values())
    np.testing.assert_allclose(total, c["output"] - c["base_value"], atol=1e-5)
    np.testing.assert_allclose(c["output"], np.asarray(model(select_inputs(model, raw), training=False))[:, 0], atol=1e-4)
    assert set(c["values"]) == set(FUSION_METHODS[arch].branches)
    if "tabular" in c["values"]:
        f = feature_attributions(model, rows, bg, tabular_layout(spec, stats), 0, steps=128,
                                    tabular_value=c["values"]["tabular"])
        assert set(f["features"]) == set(spec.tabular_cols)
        summed = sum(f["features"].values())
        np.testing.assert_allclose(summed - c["values"]["tabular"], f["residual"], atol=1e-9)
        # IG tolerance: random-weight ReLU heads have many kinks along the path.
        assert np.abs(f["residual"]).max() <= 2e-3 + 2e-2 * np.abs(c["values"]["tabular"]).max()


@pytest.mark.parametrize("task,classes", [("classification", ("a", "b", "c")), ("regression", ())])
def test_efficiency_multiclass_per_row_index_and_regression(task, classes):
    model, spec, stats, inputs = tiny_model("late_concat", task, classes)
    rows, bg, raw = split(model, inputs)
    out = np.asarray(model(select_inputs(model, raw), training=False))
    index = out.argmax(axis=1)  # a different output per row, vectorised
    c = branch_contributions(model, rows, bg, index)
    np.testing.assert_allclose(c["output"], out[np.arange(len(out)), index], atol=1e-4)
    np.testing.assert_allclose(sum(c["values"].values()), c["output"] - c["base_value"], atol=1e-5)


def test_rows_vectorised_and_chunked_equal_one_at_a_time(monkeypatch):
    model, spec, stats, inputs = tiny_model("multiply")
    rows, bg, _ = split(model, inputs)
    layout = tabular_layout(spec, stats)
    together = branch_contributions(model, rows, bg, 0)["table"]
    feats = feature_vector_attributions(model, rows, bg, 0, steps=8)
    monkeypatch.setattr(attributions, "MAX_BATCH", 50)  # forces one row per head call
    for i in range(len(together)):
        one = {b: v[i:i + 1] for b, v in rows.items()}
        np.testing.assert_allclose(branch_contributions(model, one, bg, 0)["table"][0], together[i], atol=1e-6)
        np.testing.assert_allclose(feature_vector_attributions(model, one, bg, 0, steps=8)[0], feats[i], atol=1e-6)
    chunked = feature_attributions(model, rows, bg, layout, 0, steps=8)
    assert set(chunked["features"]) == set(spec.tabular_cols)


def test_branch_the_head_ignores_gets_exactly_zero():
    def build(ins):
        used = keras.layers.Concatenate()([keras.layers.Dense(6, activation="tanh")(ins["a"]), ins["c"]])
        return keras.layers.Dense(2)(keras.layers.Dense(6, activation="relu")(used))
    keras.utils.set_random_seed(1)
    head = hand_head(build, ["a", "b", "c"], [(4,), (4,), (3,)])
    rng = np.random.default_rng(0)
    x = {n: rng.normal(size=(3,) + s).astype("float32") for n, s in zip("abc", [(4,), (4,), (3,)])}
    bg = {n: rng.normal(size=(8,) + s).astype("float32") for n, s in zip("abc", [(4,), (4,), (3,)])}
    c = branch_contributions(head, x, bg, 1)
    assert np.all(c["values"]["b"] == 0.0)
    assert np.all(c["interactions"]["a|b"] == 0.0) and np.all(c["interactions"]["b|c"] == 0.0)
    assert np.abs(c["values"]["a"]).max() > 1e-4


def test_symmetric_branches_with_swapped_inputs_get_swapped_values():
    keras.utils.set_random_seed(2)
    shared = keras.layers.Dense(5, activation="tanh")

    def build(ins):
        pa, pb = shared(ins["a"]), shared(ins["b"])
        joint = keras.layers.Add()([pa, pb, keras.layers.Multiply()([pa, pb])])
        return keras.layers.Dense(1)(joint)
    head = hand_head(build, ["a", "b"], [(4,), (4,)])
    rng = np.random.default_rng(3)
    p, q = rng.normal(size=(5, 4)).astype("float32"), rng.normal(size=(5, 4)).astype("float32")
    bp, bq = rng.normal(size=(9, 4)).astype("float32"), rng.normal(size=(9, 4)).astype("float32")
    c1 = branch_contributions(head, {"a": p, "b": q}, {"a": bp, "b": bq}, 0)
    c2 = branch_contributions(head, {"a": q, "b": p}, {"a": bq, "b": bp}, 0)
    np.testing.assert_allclose(c1["values"]["a"], c2["values"]["b"], atol=1e-6)
    np.testing.assert_allclose(c1["values"]["b"], c2["values"]["a"], atol=1e-6)
    same = branch_contributions(head, {"a": p, "b": p}, {"a": bp, "b": bp}, 0)  # symmetry axiom
    np.testing.assert_allclose(same["values"]["a"], same["values"]["b"], atol=1e-6)


def test_additive_model_gives_the_closed_form():
    keras.utils.set_random_seed(4)
    f1 = keras.Sequential([keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(1)])
    f2 = keras.Sequential([keras.layers.Dense(1)])
    f3 = keras.Sequential([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    head = hand_head(lambda ins: keras.layers.Add()([f1(ins["a"]), f2(ins["b"]), f3(ins["c"])]),
                     ["a", "b", "c"], [(3,), (2,), (5,)])
    rng = np.random.default_rng(5)
    x = {n: rng.normal(size=(4, d)).astype("float32") for n, d in zip("abc", (3, 2, 5))}
    bg = {n: rng.normal(size=(7, d)).astype("float32") for n, d in zip("abc", (3, 2, 5))}
    c = branch_contributions(head, x, bg, 0)
    for name, f in zip("abc", (f1, f2, f3)):
        closed = np.asarray(f(x[name]))[:, 0] - np.asarray(f(bg[name]))[:, 0].mean()
        np.testing.assert_allclose(c["values"][name], closed, atol=1e-5)
    for v in c["interactions"].values():
        np.testing.assert_allclose(v, 0.0, atol=1e-5)


# Integrated Gradients -----------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["trapezoid", "gauss-legendre"])
def test_ig_residual_shrinks_with_steps(rule):
    keras.utils.set_random_seed(6)

    def build(ins):
        pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Reshape((4, 4, 3))(ins["image"]))
        gate = keras.layers.Dense(8, activation="sigmoid")(ins["tabular"])
        h = keras.layers.Dense(8, activation="softplus")(keras.layers.Concatenate()([pooled, ins["tabular"]]))
        return keras.layers.Dense(1)(keras.layers.Multiply()([h, gate]))
    head = hand_head(build, ["image", "tabular"], [(1, 4, 4, 3), (6,)])
    rng = np.random.default_rng(7)
    x = {"image": rng.normal(size=(3, 1, 4, 4, 3)).astype("float32"),
         "tabular": 3 * rng.normal(size=(3, 6)).astype("float32")}
    bg = {"image": rng.normal(size=(6, 1, 4, 4, 3)).astype("float32"),
          "tabular": 3 * rng.normal(size=(6, 6)).astype("float32")}
    layout = [("u", 0, 2), ("v", 2, 6)]
    coarse = feature_attributions(head, x, bg, layout, 0, steps=16, rule=rule)["residual"]
    fine = feature_attributions(head, x, bg, layout, 0, steps=128, rule=rule)["residual"]
    # Gauss-Legendre is already at float32 round-off with 16 nodes on this smooth head.
    assert np.abs(fine).max() < np.abs(coarse).max() or np.abs(coarse).max() < 1e-6
    assert np.abs(fine).max() < 1e-4


def test_ig_residual_shrinks_on_a_real_relu_model():
    model, spec, stats, inputs = tiny_model("late_concat", seed=3)
    rows, bg, _ = split(model, inputs)
    layout = tabular_layout(spec, stats)
    res = {s: np.abs(feature_attributions(model, rows, bg, layout, 0, steps=s, rule="trapezoid")["residual"]).mean()
           for s in (16, 128)}
    assert res[128] <= res[16] + 1e-6


# Grad-CAM -----------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["late_concat", "film", "cnn_lstm"])
def test_grad_cam_alone_equals_within_batch(arch):
    model, _, _, inputs = tiny_model(arch)
    emb = encode(model, inputs)
    batch = grad_cam(model, emb, 0)
    assert batch.shape[:2] == (ROWS, 3 if arch == "cnn_lstm" else 1)
    assert np.isfinite(batch).all() and batch.min() >= 0 and batch.max() <= 1
    for i in (0, 5):
        alone = grad_cam(model, {b: v[i:i + 1] for b, v in emb.items()}, 0)
        np.testing.assert_allclose(alone[0], batch[i], atol=1e-5)
    raw = grad_cam(model, {k: v[:2] for k, v in inputs.items()}, 0)  # raw inputs are encoded first
    np.testing.assert_allclose(raw, batch[:2], atol=1e-5)


@keras.saving.register_keras_serializable(package="test_explain")
class QuadrantMask(keras.layers.Layer):
    """Zeroes the conv maps outside the top-right quadrant: the encoder only sees that quadrant."""

    def call(self, maps):
        h, w = maps.shape[-3], maps.shape[-2]
        mask = np.zeros((h, w, 1), "float32")
        mask[: h // 2, w // 2:] = 1.0  # top-right: a transposed or flipped map would fail
        return maps * mask


def test_grad_cam_localises_a_model_that_looks_at_one_quadrant():
    keras.utils.set_random_seed(8)
    images = keras.Input((1, SIZE, SIZE, 3), dtype="uint8", name="images")
    frame = keras.Sequential([keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(4, 3, padding="same", activation="relu")])
    maps = QuadrantMask()(keras.layers.TimeDistributed(frame)(images))
    encoder = keras.Model({"images": images}, maps, name="image_encoder")
    emb_in = keras.Input(maps.shape[1:], name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Reshape(maps.shape[2:])(emb_in))
    head = keras.Model({"image": emb_in}, keras.layers.Dense(1, kernel_initializer="ones")(pooled), name="head")
    model = keras.Model({"images": images}, head({"image": encoder({"images": images})}))
    x = {"images": np.random.default_rng(9).integers(0, 256, (3, 1, SIZE, SIZE, 3), dtype=np.uint8)}
    cam = grad_cam(model, x, 0)[:, 0]
    inside = cam[:, : SIZE // 2, SIZE // 2:].sum(axis=(1, 2))
    assert np.all(inside > 0) and np.all(inside / cam.sum(axis=(1, 2)) > 0.999)
    overlay = upsample_overlay(cam[0], x["images"][0, 0])
    assert overlay.shape == (SIZE, SIZE, 3) and overlay.dtype == np.uint8


def test_vanishing_gradient_gives_zero_map_not_nan():
    keras.utils.set_random_seed(10)
    ignore = hand_head(lambda ins: keras.layers.Dense(1)(ins["tabular"]), ["image", "tabular"],
                       [(1, 4, 4, 3), (2,)])
    dead = hand_head(lambda ins: keras.layers.Dense(1, kernel_initializer="zeros")(
        keras.layers.Concatenate()([keras.layers.Flatten()(ins["image"]), ins["tabular"]])),
        ["image", "tabular"], [(1, 4, 4, 3), (2,)])
    emb = {"image": np.ones((2, 1, 4, 4, 3), "float32"), "tabular": np.ones((2, 2), "float32")}
    for head in (ignore, dead):
        cam = grad_cam(head, emb, 0)
        assert cam.shape == (2, 1, 4, 4) and np.all(cam == 0.0)


# Whole-row explanations, routing and global views --------------------------------------------

def test_explain_row_json_efficiency_and_determinism(tmp_path):
    model, spec, stats, inputs = tiny_model("gated")
    run = fake_run(tmp_path, model, spec, stats, inputs)
    row = {k: v[BACKGROUND:BACKGROUND + 1] for k, v in inputs.items()}
    e1, e2 = explain_row(run, row), explain_row(run, row)
    j = to_json(e1)
    assert json.loads(json.dumps(j)) == j == to_json(e2)
    np.testing.assert_array_equal(e1["grad_cam"], e2["grad_cam"])
    assert set(j) == {"output", "probability", "base_value", "branches", "interactions", "features",
                      "feature_residual", "baseline", "target"}
    assert sum(j["branches"].values()) == pytest.approx(j["output"] - j["base_value"], abs=1e-5)
    assert j["output"] == pytest.approx(float(np.asarray(model(select_inputs(model, row), training=False))[0, 0]), abs=1e-4)
    assert j["probability"] == pytest.approx(1 / (1 + math.exp(-j["output"])), abs=1e-5)
    assert sum(j["features"].values()) == pytest.approx(j["branches"]["tabular"], abs=1e-3)
    assert j["target"] == "yes" and f"{BACKGROUND} training rows" in j["baseline"]
    assert e1["grad_cam"].shape == (1, 1, 4, 4)


def test_explain_row_multiclass_defaults_to_predicted_class(tmp_path):
    classes = ("a", "b", "c")
    model, spec, stats, inputs = tiny_model("late_decision", classes=classes, seed=5)
    run = fake_run(tmp_path, model, spec, stats, inputs, classes=classes)
    row = {k: v[-1:] for k, v in inputs.items()}
    logits = np.asarray(model(select_inputs(model, row), training=False))[0]
    e = explain_row(run, row)
    assert e["target"] == classes[int(logits.argmax())]
    assert e["output"] == pytest.approx(float(logits.max()), abs=1e-4)
    p = np.exp(logits - logits.max())
    assert e["probability"] == pytest.approx(float(p.max() / p.sum()), abs=1e-5)
    other = explain_row(run, row, output_index=int(logits.argmin()))
    assert other["target"] == classes[int(logits.argmin())]


def test_explain_row_single_branch_models(tmp_path):
    for arch in ("image_only", "tabular_only"):
        model, spec, stats, inputs = tiny_model(arch)
        (tmp_path / arch).mkdir()
        run = fake_run(tmp_path / arch, model, spec, stats, inputs)
        e = explain_row(run, {k: v[-1:] for k, v in inputs.items()})
        [(name, value)] = e["branches"].items()
        assert value == pytest.approx(e["output"] - e["base_value"], abs=1e-5)
        assert e["interactions"] == {}
        assert (e["grad_cam"] is None) == (arch == "tabular_only")
        assert (e["features"] == {}) == (arch == "image_only")


def test_attention_routing_is_a_distribution_over_branches():
    model, _, _, inputs = tiny_model("attention")
    routing = attention_routing(model, inputs)
    assert set(routing) == {"image", "tabular"}
    np.testing.assert_allclose(routing["image"] + routing["tabular"], 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="attention"):
        attention_routing(tiny_model("late_concat")[0], inputs)


def test_global_views(tmp_path):
    model, spec, stats, inputs = tiny_model("late_concat")
    run = fake_run(tmp_path, model, spec, stats, inputs)
    imp = global_branch_importance(run, inputs)
    assert set(imp) == {"image", "tabular"} and all(v >= 0 for v in imp.values())
    y = (np.asarray(model(select_inputs(model, inputs), training=False))[:, 0] > 0).astype(int)  # the model is perfect on y
    perm = permutation_importance(run, inputs, y, seed=1)
    assert set(perm) == set(spec.tabular_cols + spec.image_cols)
    assert all(v >= 0 for v in perm.values())  # nothing beats a perfect score
    assert perm == permutation_importance(run, inputs, y, seed=1)


def test_trained_run_end_to_end(tmp_path):
    """Train 1 epoch on a tiny generated sample, reload the run folder, explain a row."""
    from multimodal.core.config import TrainConfig
    from multimodal.data import samples
    from multimodal.runs.run import load_run, run_inputs
    from multimodal.train.training import train

    csv = samples.generate("skin_lesions", tmp_path / "data", rows=40, image_size=SIZE)
    config = TrainConfig(data=str(csv), epochs=1, patience=0,
                         model=ModelConfig(image_size=SIZE, width=8, augment=False))
    train(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    frame = pd.read_csv(csv)
    e = explain_row(run, run_inputs(run, frame.iloc[:1], root=csv.parent))
    assert sum(e["branches"].values()) == pytest.approx(e["output"] - e["base_value"], abs=1e-5)
    assert set(e["features"]) == set(run.spec.tabular_cols)
    assert abs(e["feature_residual"]) < 1e-2 + 1e-2 * abs(e["branches"]["tabular"])
    assert e["grad_cam"].shape[:2] == (1, 1)
