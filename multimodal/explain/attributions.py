"""Attributions of one model's output, computed on its fusion head with TensorFlow.

Every number explains the model's raw output: the logit for classification, the prediction in
target units for regression. A branch is "absent" when its embedding is replaced by a background
row's embedding, averaged over the background rows (docs/ARCHITECTURE.md, "Explanations").

- Branch contributions: exact Shapley values over the M branches, from one batched head call on
  R x 2^M x K coalition rows (encoders run once; the background embeddings are cached).
- Tabular features: Integrated Gradients per column, averaged over the other branches'
  present/absent contexts with Shapley weights, so the columns sum to the tabular branch value.
- Image regions: Grad-CAM on the encoder's last conv map through the head, with the real
  tabular embedding, per-sample and per-frame channel weights.
- Attention routing: where the `attention` arch's learned query looked (not a contribution).
"""
from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from multimodal.explain.shapley import coalition_masks, interaction_values, shapley_values, shapley_weight
from multimodal.models.assembly import encoders_of, head_of, select_inputs
from multimodal.models.fusion import IMAGE_BRANCHES
from multimodal.models.layers import BranchAttention

EPS = 1e-12          # Grad-CAM: a per-frame max below this counts as a vanished map
MAX_BATCH = 4096     # head rows per call; bounds memory for large images and many rows


# Compiled head calls, cached per model ------------------------------------------------------

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _head(model) -> tf.keras.Model:
    """The fusion head of a full model; a hand-built head (no 'head' layer) is used as is."""
    try:
        return head_of(model)
    except ValueError:
        return model


def branch_names(model: keras.Model) -> list[str]:
    """The head's inputs, one per branch ("image", "tabular", ...), in the head's order."""
    head = _head(model)
    return list(head.input) if isinstance(head.input, dict) else [t.name for t in head.inputs]


def compiled(model: keras.Model) -> dict:
    """Per-model cache: compiled graphs (traced once per input signature) and background embeddings.

    Keyed weakly by the model; the graphs close over the head and encoders only, not the model.
    """
    if model not in _CACHE:
        head = _head(model)
        encoders = encoders_of(model) if head is not model else {}
        call = lambda emb: head(emb, training=False)  # noqa: E731
        compile_ = lambda fn: tf.function(fn, reduce_retracing=True)  # noqa: E731
        # training=False everywhere: a Keras 3 model called without it runs its augmentation layers.
        _CACHE[model] = {
            "head": compile_(call),
            "coalitions": compile_(lambda *a: _coalition_outputs(call, *a)),
            "ig": compile_(lambda *a: _ig_gradients(call, *a)),
            "cam": compile_(lambda *a: _cam(call, *a)),
            "encode": compile_(lambda inputs: {b: e(select_inputs(e, inputs), training=False)
                                               for b, e in encoders.items()}),
            "background": {},
        }
    return _CACHE[model]


def as_embeddings(model: keras.Model, inputs: dict) -> dict[str, tf.Tensor]:
    """Accept either raw inputs (encoded here) or the head's input dict {branch: embedding}."""
    if set(inputs) == set(branch_names(model)):
        return {b: tf.convert_to_tensor(v, tf.float32) for b, v in inputs.items()}
    return compiled(model)["encode"](select_inputs(model, inputs))


def _pick(outputs: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """outputs (R, ..., units) -> (R, ...): output `index[r]` of row r (one-hot, so differentiable)."""
    onehot = tf.one_hot(index, tf.shape(outputs)[-1], dtype=outputs.dtype)
    onehot = tf.reshape(onehot, tf.concat([tf.shape(index), tf.ones([tf.rank(outputs) - 2], tf.int32),
                                           tf.shape(outputs)[-1:]], 0))
    return tf.reduce_sum(outputs * onehot, axis=-1)


def _mix(x: tf.Tensor, bg: tf.Tensor, present: tf.Tensor, extra: int = 0) -> tf.Tensor:
    """(R, C, K, [1]*extra, ...) tensor: x[r] where present[c], else background row bg[k]."""
    lead = [1] * extra
    tail = tf.shape(x)[1:]
    cond = tf.reshape(present, tf.concat([[1, -1, 1] + lead, tf.ones_like(tail)], 0))
    xs = tf.reshape(x, tf.concat([[-1, 1, 1] + lead, tail], 0))
    bgs = tf.reshape(bg, tf.concat([[1, 1, -1] + lead, tail], 0))
    return tf.where(cond, xs, bgs)


def _index(output_index, rows: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(output_index, dtype=np.int32), (rows,)).copy()


def _row_chunks(rows: int, per_row: int):
    """Row slices so that each head call stays under MAX_BATCH rows."""
    step = max(1, MAX_BATCH // per_row)
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


def default_output_index(outputs: np.ndarray) -> np.ndarray:
    """Multi-class: the predicted class; binary logit and regression: the single output."""
    return outputs.argmax(axis=1) if outputs.shape[1] > 1 else np.zeros(len(outputs), dtype=int)


def _take(emb: dict, part: slice, branches: list[str]) -> dict[str, tf.Tensor]:
    return {b: tf.convert_to_tensor(emb[b][part], tf.float32) for b in branches}


# Branch contributions -----------------------------------------------------------------------

def _coalition_outputs(head, x: dict, bg: dict, masks: tf.Tensor, branches: tuple, index: tf.Tensor):
    """(R, C, K) explained output for every row x coalition x background row, in one head call."""
    batch = {b: _mix(x[b], bg[b], masks[:, i]) for i, b in enumerate(branches)}
    flat = {b: tf.reshape(t, tf.concat([[-1], tf.shape(t)[3:]], 0)) for b, t in batch.items()}
    out = head(flat)
    shape = tf.shape(batch[branches[0]])[:3]
    return _pick(tf.reshape(out, tf.concat([shape, [-1]], 0)), index)


def coalition_values(model, row_embeddings: dict, background_embeddings: dict, output_index) -> np.ndarray:
    """(R, 2^M) table of v(S): the head's output with branches outside S taken from each background
    row (the same row for all absent branches), averaged over the K background rows."""
    branches, fns = branch_names(model), compiled(model)
    masks = coalition_masks(len(branches))
    rows = int(row_embeddings[branches[0]].shape[0])
    k = int(background_embeddings[branches[0]].shape[0])
    bg = _take(background_embeddings, slice(None), branches)
    index = _index(output_index, rows)
    tables = []
    for part in _row_chunks(rows, len(masks) * k):
        out = fns["coalitions"](_take(row_embeddings, part, branches), bg, tf.constant(masks), tuple(branches),
                                tf.constant(index[part]))
        # float64 mean: the Shapley values then sum to v(full) - v(empty) to round-off.
        tables.append(out.numpy().astype(np.float64).mean(axis=-1))
    return np.concatenate(tables)


def branch_contributions(model, row_embeddings: dict, background_embeddings: dict, output_index=0) -> dict:
    """Exact branch Shapley values for R rows: base_value v(empty), output f(x) = v(all branches),
    values {branch: (R,)} and interactions {"a|b": (R,)} (Shapley interaction index)."""
    branches = branch_names(model)
    table = coalition_values(model, row_embeddings, background_embeddings, output_index)
    phi = shapley_values(table)
    inter, pairs = interaction_values(table)
    return {"base_value": table[:, 0], "output": table[:, -1],
            "values": {b: phi[:, i] for i, b in enumerate(branches)},
            "interactions": {f"{branches[i]}|{branches[j]}": inter[:, p] for p, (i, j) in enumerate(pairs)},
            "table": table}


# Tabular feature attributions (Integrated Gradients) ----------------------------------------

def quadrature(steps: int, rule: str = "trapezoid") -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on [0, 1] for the IG path integral. Trapezoid (steps + 1 points) is the
    default: ReLU heads give a piecewise-constant integrand, where Gauss-Legendre's high order buys
    nothing and its residual shrinks less steadily; Gauss-Legendre wins on smooth heads."""
    if rule == "gauss-legendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if rule == "trapezoid":
        nodes = np.linspace(0.0, 1.0, steps + 1)
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
        return nodes, weights
    raise ValueError(f"unknown quadrature rule '{rule}'; use 'gauss-legendre' or 'trapezoid'")


def _ig_gradients(head, x: dict, bg: dict, masks: tf.Tensor, others: tuple, alphas: tf.Tensor,
                 index: tf.Tensor) -> tf.Tensor:
    """Gradient of the explained output w.r.t. the tabular vector at every path point:
    (R, C, K, A, d) for C coalitions of the other branches (same background row k throughout)."""
    start = bg["tabular"][None, None, :, None, :]
    delta = x["tabular"][:, None, None, None, :] - start
    points = start + alphas[None, None, None, :, None] * delta            # (R, 1, K, A, d)
    points = points * tf.ones([1, tf.shape(masks)[0], 1, 1, 1])          # (R, C, K, A, d)
    shape = tf.shape(points)
    batch = {}
    for i, b in enumerate(others):
        t = _mix(x[b], bg[b], masks[:, i], extra=1)                        # (R, C, K, 1, ...)
        t = tf.broadcast_to(t, tf.concat([shape[:4], tf.shape(t)[4:]], 0))
        batch[b] = tf.reshape(t, tf.concat([[-1], tf.shape(t)[4:]], 0))
    flat = tf.reshape(points, [-1, shape[-1]])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        out = head({**batch, "tabular": flat})
        selected = _pick(tf.reshape(out, tf.concat([shape[:4], [-1]], 0)), index)
    grads = tape.gradient(selected, flat, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return tf.reshape(grads, shape)


def feature_vector_attributions(model, row_embeddings: dict, background_embeddings: dict, output_index=0,
                                steps: int = 32, rule: str = "trapezoid") -> np.ndarray:
    """(R, d) IG attributions of each tabular feature-vector entry, Shapley-averaged over the
    present/absent contexts of the other branches and averaged over the background rows."""
    branches = branch_names(model)
    others = [b for b in branches if b != "tabular"]
    masks = coalition_masks(len(others))
    # Weight of coalition S of the other branches in the tabular branch's Shapley value.
    weights = np.array([shapley_weight(int(s.sum()), len(branches)) for s in masks])
    alphas, quad = quadrature(steps, rule)
    ig_fn = compiled(model)["ig"]
    rows = int(row_embeddings["tabular"].shape[0])
    bg = _take(background_embeddings, slice(None), branches)
    k = int(bg["tabular"].shape[0])
    index = _index(output_index, rows)
    result = []
    for part in _row_chunks(rows, len(masks) * k * len(alphas)):
        x = _take(row_embeddings, part, branches)
        grads = ig_fn(x, bg, tf.constant(masks), tuple(others), tf.constant(alphas, tf.float32),
                      tf.constant(index[part]))
        avg_grad = np.einsum("rckad,a->rckd", grads.numpy().astype(np.float64), quad)
        delta = x["tabular"].numpy()[:, None, :] - bg["tabular"].numpy()[None]
        ig = avg_grad * delta[:, None].astype(np.float64)           # (R, C, K, d)
        result.append(np.einsum("rckd,c->rd", ig, weights) / k)
    return np.concatenate(result)


def feature_attributions(model, row_embeddings: dict, background_embeddings: dict, layout: list,
                         output_index=0, steps: int = 32, rule: str = "trapezoid",
                         tabular_value: np.ndarray | None = None) -> dict:
    """Per-column IG values (one-hot / indicator slices summed into their column) for R rows:
    {"features": {column: (R,)}, "residual": (R,) = sum of columns - tabular branch value}."""
    vec = feature_vector_attributions(model, row_embeddings, background_embeddings, output_index, steps, rule)
    features = {col: vec[:, start:stop].sum(axis=1) for col, start, stop in layout}
    if tabular_value is None:
        tabular_value = branch_contributions(model, row_embeddings, background_embeddings,
                                             output_index)["values"]["tabular"]
    return {"features": features, "residual": vec.sum(axis=1) - tabular_value}


# Grad-CAM -----------------------------------------------------------------------------------

def _cam(head, emb: dict, branch: str, index: tf.Tensor) -> tf.Tensor:
    maps = emb[branch]
    with tf.GradientTape() as tape:
        tape.watch(maps)
        selected = _pick(head({**emb, branch: maps}), index)
    # A head that ignores the image has no gradient path: that is a zero gradient, not an error.
    grads = tape.gradient(selected, maps, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    # Rows are independent in the head, so the gradient of the sum is each row's own gradient.
    weights = tf.reduce_mean(grads, axis=[2, 3], keepdims=True)   # per sample and frame
    cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))      # (N, T, h, w)
    peak = tf.reduce_max(cam, axis=[2, 3], keepdims=True)
    return tf.where(peak > EPS, cam / tf.maximum(peak, EPS), tf.zeros_like(cam))


def grad_cam(model, inputs: dict, output_index=None) -> np.ndarray:
    """(N, T, h, w) Grad-CAM maps in [0, 1] for the image/sequence branch, through the head with
    the real tabular embedding; a vanished map is all zeros. inputs: raw or {branch: embedding};
    output_index: int, (N,) ints, or None for each row's predicted class (the logit if binary)."""
    emb = as_embeddings(model, inputs)
    branch = next((b for b in branch_names(model) if b in IMAGE_BRANCHES), None)
    if branch is None:
        raise ValueError("this model has no image branch, so there is no Grad-CAM")
    if output_index is None:
        output_index = default_output_index(compiled(model)["head"](emb).numpy())
    rows = int(emb[branch].shape[0])
    return compiled(model)["cam"](emb, branch, tf.constant(_index(output_index, rows))).numpy()


def _jet(v: np.ndarray) -> np.ndarray:
    """Jet-like colormap: [0, 1] -> RGB in [0, 1] (blue - cyan - yellow - red)."""
    return np.clip(np.stack([1.5 - np.abs(4 * v - c) for c in (3, 2, 1)], axis=-1), 0, 1)


def upsample_overlay(cam: np.ndarray, image: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB uint8 image with the (h, w) map upsampled (bilinear) and alpha-blended on top."""
    image = np.asarray(image, dtype=np.uint8)
    size = (image.shape[1], image.shape[0])
    up = np.asarray(Image.fromarray(np.asarray(cam, np.float32), mode="F").resize(size, Image.BILINEAR))
    heat = _jet(np.clip(up, 0, 1)) * 255
    return np.clip((1 - alpha) * image + alpha * heat, 0, 255).astype(np.uint8)


# Attention routing --------------------------------------------------------------------------

def attention_routing(model, inputs: dict) -> dict[str, np.ndarray]:
    """Attention weight per branch (mean over heads), (N,) each, for the `attention` arch.

    This is ROUTING (where the learned query looked), not a contribution to the output.
    """
    head = _head(model)
    layer = next((candidate for candidate in head.layers if isinstance(candidate, BranchAttention)), None)
    if layer is None:
        raise ValueError("this model has no branch attention layer, so there is no routing to show")
    tokens = keras.Model(head.input, layer.input)(as_embeddings(model, inputs), training=False)
    _, scores = layer(tokens, return_scores=True)                 # (N, heads, 1, M)
    weights = np.asarray(scores).mean(axis=(1, 2))
    return {b: weights[:, i] for i, b in enumerate(branch_names(model))}
