"""Where a training step spends its time: the project's model against the plain-Keras reference.

    .venv/bin/python -m bench.profile_step [--rounds 12] [--steps 25]

writes bench/PROFILE_step.md. Data: bench_vs_keras's 1,000 generated photos (made on first use),
decoded once at 64 px; 800 training rows, batch 32, late_concat + small CNN, the same layers on
both sides (bench/reference_keras.py). Every variant lives in this one process and is timed in
turns, `--steps` calls of its compiled train step per turn over `--rounds` rounds, so machine
noise hits them all alike (separate processes differ by 10-30% on this VM). The step is Keras'
own `train_function` on the variant's tf.data pipeline (fit() minus its Python loop and callbacks).

Then the TensorFlow profiler records 20 steps of the reference and of two project variants, and
each op's self time (all threads) is summed by kind: that is the profile behind the step times.
The same for two of bench_wide's tables (tabular_only against plain Keras on a numeric matrix of
as many columns): 5,000 numeric columns, and 500 integer-coded ones (one-hot in the model, 14 slots
each), where plain Keras on the one-hot matrix it would need is timed too.
Reading the profile needs xprof (`make bench` installs it from requirements-bench.txt); without it
the step times are still recorded.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from bench import reference_keras as ref
from bench.bench_vs_keras import machine_lines, photo_dataset
from bench.bench_wide import reference_model, write_case
from multimodal.core.config import ModelConfig
from multimodal.data.dataset import load_dataset
from multimodal.data.inputs import encode_target, model_inputs
from multimodal.models import branches
from multimodal.models.assembly import build_model, select_inputs
from multimodal.models.batches import make_dataset, take
from multimodal.models.compile import compile_model
from multimodal.models.weights import WeightsSource
from multimodal.train.precision import image_policy
from multimodal.train.training import row_weights

OUT = Path(__file__).resolve().parent / "PROFILE_step.md"
SIZE, BATCH = 64, 32


def stock_augmentation(seed: int) -> list[keras.layers.Layer]:
    """The augmentation of the previous release (and of the reference): three stock Keras layers."""
    return [keras.layers.RandomFlip("horizontal", seed=seed, name="flip"),
            keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed, name="rotate"),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed, name="zoom")]


class Data:
    def __init__(self, photos: Path):
        self.ds = load_dataset(photos / "data.csv")
        self.inputs = model_inputs(self.ds.frame, self.ds.root, self.ds.features, SIZE)
        self.train, _ = ref.split(len(self.ds.frame))
        self.y = encode_target(self.ds.frame[self.ds.target], self.ds.task, self.ds.classes)


def reference(data: Data, policy: str = "float32"):
    """Plain Keras: float32 image arrays, a hand-made table matrix, the reference model."""
    table = ref.tabular_matrix(data.ds.frame, data.train)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = ref.build_model(SIZE, table.shape[1])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images = data.inputs["images"][:, 0].astype("float32")
    y = data.y.astype("float32")[:, None]
    return model, ref.make_dataset(images[data.train], table[data.train], y[data.train], BATCH, shuffle=True)


def project(data: Data, policy: str = "float32", stock: bool = False):
    """The library's model and pipeline as train() makes them: uint8 images cast in the graph, raw
    columns grouped at the model's door, the wide term, class weights batched with the rows."""
    ds = data.ds
    saved = branches.augmentation
    if stock:
        branches.augmentation = stock_augmentation
    try:
        stats = branches.tabular_stats(take(data.inputs, data.train), ds.features)
        model = build_model(ModelConfig(arch="late_concat", dropout=0.3, l2=1e-3), ds.features, stats, ds.task,
                            ds.classes, None, WeightsSource("small_cnn", "none"), image_policy=policy)
    finally:
        branches.augmentation = saved
    compile_model(model, ds.task, len(ds.classes), 1e-3, None, None)
    feed = select_inputs(model, data.inputs)
    weights = row_weights(data.y, data.train, len(ds.classes))
    return model, make_dataset(take(feed, data.train), data.y[data.train], BATCH, shuffle_seed=0,
                               sample_weight=weights[data.train])


def variants(data: Data) -> dict:
    native = image_policy("auto", on_gpu=False)
    found = {"reference (plain Keras, float32)": reference(data),
             "project, stock augmentation, float32 (previous release)": project(data, stock=True),
             "project, one-resampling augmentation, float32": project(data),
             f"project default here ({native})": project(data, native)}
    if native != "float32":
        found[f"reference under {native} (whole model)"] = reference(data, native)
    return found


def step_times(found: dict, steps: int, rounds: int) -> dict[str, list[float]]:
    iterators, times = {}, {name: [] for name in found}
    for name, (model, batches) in found.items():
        model.make_train_function()
        iterators[name] = iter(batches.repeat())
        for _ in range(10):                        # trace, warm up the kernels
            model.train_function(iterators[name])
    for _ in range(rounds):
        for name, (model, _) in found.items():
            started = time.perf_counter()
            for _ in range(steps):
                logs = model.train_function(iterators[name])
            float(np.asarray(tf.nest.flatten(logs)[0]).ravel()[0])   # wait for the last step
            times[name].append((time.perf_counter() - started) / steps * 1000)
    return times


def op_kind(row: dict) -> str:
    op, kind = row["operation"], row["type"].replace("_MklNative", "").replace("_Mkl", "")
    rules = [(row["type"] == "Dataset", "tf.data pipeline"),
             (re.search(r"random_|/augment(_\d+)?/|/flip|/rotate|/zoom", op), "augmentation"),
             ("/one_hot" in op, "categorical one-hot (keys, hash lookup, bincount)"),
             ("tabular_encoder" in op or "/normalization" in op, "numeric impute + normalise"),
             ("/adam" in op, "optimizer update (Adam)"),
             ("Conv2D" in kind, "convolution " + ("gradients" if "gradient_tape" in op else "forward")),
             ("MatMul" in kind, "dense layers (matmul)"),
             ("Pool" in kind, "pooling"),
             (kind == "Cast", "casts (uint8 / bfloat16)")]
    return next((name for hit, name in rules if hit), "other ops")


def profile(found: dict, names: list[str], folder: Path, steps: int = 20) -> dict[str, dict[str, float]]:
    """ms of op self time per step (summed over threads) by kind, for each of `names`."""
    from xprof.convert import raw_to_tool_data  # lazy: optional (requirements-bench.txt)
    out = {}
    for name in names:
        model, batches = found[name]
        iterator = iter(batches.repeat())
        logdir = folder / re.sub(r"\W+", "_", name)
        tf.profiler.experimental.start(str(logdir))
        for _ in range(steps):
            logs = model.train_function(iterator)
        float(np.asarray(tf.nest.flatten(logs)[0]).ravel()[0])
        tf.profiler.experimental.stop()
        data, _ = raw_to_tool_data.xspace_to_tool_data(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True),
                                                       "framework_op_stats", {})
        table = json.loads(data)[0]
        cols = [c["id"] for c in table["cols"]]
        kinds: collections.Counter = collections.Counter()
        for row in (dict(zip(cols, [c["v"] for c in r["c"]])) for r in table["rows"]):
            if row["type"] != "IDLE":
                kinds[op_kind(row)] += row["total_self_time"] / steps / 1000   # us -> ms per step
        out[name] = dict(kinds)
    return out


WIDE_CASES = ({"rows": 1000, "cols": 5000, "kind": "numeric"}, {"rows": 1000, "cols": 500, "kind": "integer"})


def wide_variants(case: dict, folder: Path) -> dict:
    """bench_wide's case: the project's tabular_only model on the CSV's columns, and the reference
    (plain Keras on a float32 matrix of as many columns)."""
    csv = write_case(folder, {**case, "image": False})
    overrides = {f"m{j}": "categorical" for j in range(case["cols"])} if case["kind"] == "integer" else None
    ds = load_dataset(csv, target="outcome", overrides=overrides)
    inputs = model_inputs(ds.frame, ds.root, ds.features, SIZE)
    y = encode_target(ds.frame[ds.target], ds.task, ds.classes)
    model = build_model(ModelConfig(arch="tabular_only"), ds.features, branches.tabular_stats(inputs, ds.features),
                        ds.task, ds.classes)
    compile_model(model, ds.task, len(ds.classes), 1e-3, None, None)
    def matrix(x: np.ndarray):
        rows = tf.data.Dataset.from_tensor_slices((x, y.astype("float32"))).shuffle(len(y), seed=0)
        return reference_model(x), rows.batch(BATCH).prefetch(2)
    found = {"reference (plain Keras, numeric matrix)": matrix(
        np.random.default_rng(0).normal(size=(len(y), case["cols"])).astype("float32"))}
    if ds.features.categorical_cols:   # what plain Keras needs for these columns: one-hot them first
        codes = ds.frame[ds.features.categorical_cols].astype(str).to_numpy()
        hot = np.concatenate([(column[:, None] == np.unique(column)[None, :]) for column in codes.T], axis=1)
        found[f"reference on the one-hot matrix ({hot.shape[1]:,} columns)"] = matrix(hot.astype("float32"))
    found["project"] = (model, make_dataset(select_inputs(model, inputs), y, BATCH, shuffle_seed=0))
    return found


def step_table(times: dict) -> list[str]:
    base = statistics.median(next(iter(times.values())))
    lines = ["| variant | ms / step, median | min - max of the rounds | throughput vs reference |", "|---|---|---|---|"]
    for name, t in times.items():
        lines.append(f"| {name} | {statistics.median(t):.2f} | {min(t):.2f} - {max(t):.2f} | "
                     f"**{base / statistics.median(t):.2f}x** |")
    return lines


def kinds_table(kinds: dict | None) -> list[str]:
    if not kinds:
        return ["The op profile was not recorded: xprof is not installed (`make bench` installs it)."]
    order = sorted({k for v in kinds.values() for k in v}, key=lambda k: -max(v.get(k, 0) for v in kinds.values()))
    lines = ["| kind | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for kind in order:
        lines.append(f"| {kind} | " + " | ".join(
            f"{v.get(kind, 0):.2f} ms ({100 * v.get(kind, 0) / sum(v.values()):.0f}%)" for v in kinds.values()) + " |")
    return lines + ["| **total** | " + " | ".join(f"**{sum(v.values()):.1f} ms**" for v in kinds.values()) + " |"]


def measure(found: dict, names: list[str], args) -> tuple[dict, dict | None]:
    times = step_times(found, args.steps, args.rounds)
    try:
        with tempfile.TemporaryDirectory(prefix="profile-step-") as folder:
            return times, profile(found, names, Path(folder))
    except ImportError:
        return times, None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--steps", type=int, default=25)
    args = p.parse_args()
    started = time.time()
    found = variants(Data(photo_dataset(1000)))
    times, kinds = measure(found, list(found)[:2] + [n for n in found if n.startswith("project default")], args)
    lines = ["# Profile of a training step: project vs plain Keras", "",
             f"Recorded {datetime.now():%Y-%m-%d %H:%M} by `.venv/bin/python -m bench.profile_step`. "
             + __doc__.split("\n\n")[2].replace("\n", " "), "", *machine_lines(), "",
             f"## Image + table step ({args.rounds} rounds x {args.steps} steps, in turns, one process)", "",
             *step_table(times), "", "Throughput vs reference = the reference's median step time / the variant's.",
             "", "Where the time goes (TensorFlow profiler, op self time per step, all threads):", "",
             *kinds_table(kinds)]
    for case in WIDE_CASES:
        with tempfile.TemporaryDirectory(prefix="profile-wide-") as folder:
            found = wide_variants(case, Path(folder))
            times, kinds = measure(found, list(found), args)
        lines += ["", f"## Wide table: {case['rows']:,} rows x {case['cols']:,} {case['kind']} columns, tabular_only",
                  "", *step_table(times), "", *kinds_table(kinds)]
        keras.backend.clear_session()
    lines += ["", f"Total time {time.time() - started:.0f} s."]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
