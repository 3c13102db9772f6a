"""The README.md of an export folder: what the files are and a short, plain-Python usage example
(load, build the inputs from a CSV row and an image file, predict), written from the export's own
signature so every name, column and size in it is the model's (docs/ARCHITECTURE.md, "Export and model card").
"""
from __future__ import annotations

from multimodal.data.cells import MISSING_TOKEN

LOADERS = {
    "saved_model": ("import tensorflow as tf",
                    'model = tf.saved_model.load("saved_model").signatures["serving_default"]',
                    "output = list(model(**{k: tf.constant(v) for k, v in inputs.items()}).values())[0].numpy()"),
    "tflite": ("import tensorflow as tf",
               'model = tf.lite.Interpreter(model_path="model.tflite").get_signature_runner()',
               "output = list(model(**inputs).values())[0]"),
    "onnx": ("import onnxruntime",
             'model = onnxruntime.InferenceSession("model.onnx")',
             "output = model.run(None, inputs)[0]"),
}


def _input_line(spec: dict, size: int) -> str:
    name, cols = spec["name"], spec["columns"]
    if name == "images":
        return (f'    "images": np.stack([np.asarray(ImageOps.exif_transpose(Image.open(row[c])).convert("RGB")'
                f'.resize(({size}, {size}), Image.BILINEAR)) for c in {cols!r}])[None],')
    if name.endswith("_codes"):
        return (f'    "{name}": np.array([[vocab[c].index(v) + 1 if v in vocab[c] else 0 for c in {cols!r} '
                f'for v in [row[c] or "{MISSING_TOKEN}"]]], np.int64),')
    if spec["dtype"] == "string":
        return f'    "{name}": np.array([[row[c] or "{MISSING_TOKEN}" for c in {cols!r}]]),'
    return f'    "{name}": np.array([[float(row[c] or "nan") for c in {cols!r}]], np.{spec["dtype"]}),'


def _reading_line(sig: dict) -> str:
    classes = sig["classes"]
    if sig["task"] == "regression":
        return f'print("{sig["target"]} =", float(output[0, 0]))'
    if len(classes) == 2:
        return f'print("P({classes[1]}) =", float(1 / (1 + np.exp(-output[0, 0]))))'
    return f"p = np.exp(output[0] - output[0].max()); print(dict(zip({classes!r}, p / p.sum())))"


def usage_example(sig: dict) -> str:
    """The Python example: runs as is from the export folder with `data.csv` and its images beside it."""
    runtime_import, load, run = LOADERS[sig["format"]]
    needs_images = any(s["name"] == "images" for s in sig["inputs"])
    lines = ["import csv" + (", json" if sig["format"] == "onnx" else ""), "import numpy as np",
             *(["from PIL import Image, ImageOps"] if needs_images else []), runtime_import, "",
             'row = next(csv.DictReader(open("data.csv", newline="")))   # a CSV with the training columns']
    if any(s["name"].endswith("_codes") for s in sig["inputs"]):
        lines.append('vocab = json.load(open("vocabulary.json"))["columns"]')
    lines += ["inputs = {", *(_input_line(s, sig["image_size"]) for s in sig["inputs"]), "}", load, run,
              _reading_line(sig)]
    return "\n".join(lines)


def usage_readme(run, sig: dict, has_card: bool) -> str:
    """README.md for an export folder of `run` with signature `sig` (signature.json's content)."""
    v = sig["verified"]
    files = [f"- `{sig['file']}`: the model ({sig['format']}), loaded with {sig['runtime']}",
             "- `signature.json`: input names, dtypes, shapes, the columns behind each input, the output and classes",
             *(["- `model_card.md`: what the model was trained on, how good it is and where it breaks"] if has_card
               else [])]
    if sig["format"] == "onnx" and any(s["name"].endswith("_codes") for s in sig["inputs"]):
        files.append("- `vocabulary.json`: each categorical column's values; code i + 1 for the i-th value, 0 for "
                     "a value not seen in training")
    notes = "".join(f"\nNote: {n}.\n" for n in sig["notes"])
    return f"""# {run.arch} ({run.name}) exported as {sig['format']}

Predicts '{sig['target']}' ({sig['task']}) from raw column values and images: every preprocessing step
(filling gaps, scaling, one-hot, image scaling) is inside the model, so there is nothing else to apply.
Images are resized to {sig['image_size']}x{sig['image_size']} RGB with bilinear resampling, as in training;
an empty cell is NaN for a number and "{MISSING_TOKEN}" for a category.

Verified after export: on {v['rows_from']}, the largest difference from the original Keras model was
{v['max_difference']:.2g} ({v['measure']}; refused above {v['tolerance']:g}).

{chr(10).join(files)}
{notes}
## Use it

Run from this folder with `data.csv` (one row or more, image paths relative to it) beside it:

```python
{usage_example(sig)}
```

Output: {sig['output']['meaning']}.
"""
