"""A frozen image encoder's output maps, computed once per image and kept on disk.

With the encoder frozen, every fusion head reads the same last conv map of each image
(models/branches.py: image encoder -> (N, T, h, w, c)), so a comparison computes it once and
every head trains on the stored maps (train/stagewise.py; docs/ARCHITECTURE.md, "Training").
An entry is one `.npy` file per image, under a folder named by the encoder, the image size and
the SHA-256 of the encoder's weights, and named by the SHA-256 of the decoded image's bytes (its
uint8 frames at that size). A changed image, other weights (a retrained stage-1
encoder, another weights file) or another size is therefore a miss, never a stale hit. Entries are
written atomically, so concurrent comparisons can share a folder; deleting it is always safe.

The app keeps its cache inside the session's folder (deleted with it); the CLI in
`default_feature_cache()`, beside the decoded images.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from multimodal.models.branches import image_backbones
from multimodal.train.training import default_image_cache

MAP_DTYPE = np.float32   # stored as the encoder computes them: a hit equals a fresh computation


def default_feature_cache() -> Path:
    """The CLI's feature-map cache: `features/` inside the decoded-image cache
    (training.default_image_cache), so $MULTIMODAL_CACHE_DIR moves both."""
    return default_image_cache() / "features"


def weights_digest(encoder: keras.Model) -> str:
    """SHA-256 of the weights of every image backbone in `encoder` (names, shapes and values).

    Only the backbones: the augmentation layers' random-seed state is not part of what the
    encoder computes at inference."""
    digest = hashlib.sha256()
    for backbone in image_backbones(encoder):
        for variable in backbone.weights:
            value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
            # Not the variable's path: it can differ between two builds of the same backbone.
            digest.update(f"{value.dtype}:{value.shape};".encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


def image_digests(images: np.ndarray) -> list[str]:
    """SHA-256 of each row's decoded frames: uint8 (N, T, S, S, 3), the encoder's input."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in images]


class FeatureCache:
    """Output maps of frozen image encoders: in memory for this process, and on disk under `root`
    (None: in memory only, for a comparison whose folder would be deleted at its end anyway).

    Every map is read from disk at most once per cache: a comparison's methods read the same maps
    once per fold each. `hits` and `misses` count the images found and computed since it was opened."""

    def __init__(self, root: Path | None):
        self.root = None if root is None else Path(root)
        self.hits = 0
        self.misses = 0
        self._memory: dict[tuple[str, str], np.ndarray] = {}   # (space, image digest) -> its map

    @staticmethod
    def space(encoder_name: str, image_size: int, weights_sha256: str) -> str:
        """The maps of one encoder's weights at one image size: a folder name on disk."""
        return f"{encoder_name}-{image_size}px-{weights_sha256}"

    def folder(self, encoder_name: str, image_size: int, weights_sha256: str) -> Path:
        if self.root is None:
            raise ValueError("this feature cache keeps its maps in memory only: it has no folder")
        return self.root / self.space(encoder_name, image_size, weights_sha256)

    def maps(self, images: np.ndarray, *, encoder_name: str, weights_sha256: str,
             compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The maps of `images` (N >= 1, T, S, S, 3) uint8 by the encoder whose `weights_digest` is
        `weights_sha256`: found in memory or on disk; `compute(images)` (e.g. `predict_maps`) for the
        rest, which are then stored."""
        images = np.asarray(images, dtype=np.uint8)
        space = self.space(encoder_name, images.shape[2], weights_sha256)
        keys = image_digests(images)
        found = {i: value for i, key in enumerate(keys) if (value := self._stored(space, key)) is not None}
        todo = [i for i in range(len(keys)) if i not in found]
        if todo:
            folder = None if self.root is None else self.root / space
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
            for i, value in zip(todo, np.asarray(compute(images[todo]), dtype=MAP_DTYPE)):
                if folder is not None:
                    _write(folder / f"{keys[i]}.npy", value)
                self._memory[(space, keys[i])] = found[i] = value
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        return np.stack([found[i] for i in range(len(keys))])

    def _stored(self, space: str, key: str) -> np.ndarray | None:
        value = self._memory.get((space, key))
        if value is None and self.root is not None:
            value = _read(self.root / space / f"{key}.npy")
            if value is not None:
                self._memory[(space, key)] = value
        return value


def predict_maps(encoder: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """An image encoder's maps of uint8 images, in inference mode (augmentation off)."""
    return np.asarray(encoder.predict({"images": images}, batch_size=batch_size, verbose=0), dtype=MAP_DTYPE)


def _read(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):   # absent, or a damaged entry: computed again
        return None


def _write(path: Path, value: np.ndarray) -> None:
    """Write then rename: a reader never sees half a file, and two writers of one key agree."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, value, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
