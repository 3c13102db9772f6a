"""Finding and loading an image encoder's pretrained (ImageNet) weights.

Order: a weights file the user gives -> Keras' own cache ($KERAS_HOME/models, under the file
name Keras uses) -> a download through `keras.utils.get_file` (which caches it there) -> none.
With none, the caller chooses: random init (with a plain notice) or stop. The result names its
source and the file's SHA-256, which the run records. A file that is not this backbone's
weights is refused with its name, what was expected and what to do.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py

from multimodal.core.errors import DataError
from multimodal.core.lazy import LazyModule
from multimodal.models.backbones import EncoderSpec, encoder_spec

keras = LazyModule("keras")   # only a download needs it: the Model page reads the cache state without TensorFlow

log = logging.getLogger(__name__)

Source = Literal["file", "cache", "download", "none"]
OnMissing = Literal["random", "stop"]
WEIGHTS_SUFFIXES = (".h5", ".hdf5")  # what `Model.load_weights` reads as HDF5 (incl. ".weights.h5")


@dataclass(frozen=True)
class WeightsSource:
    encoder: str
    source: Source
    path: Path | None = None
    sha256: str | None = None
    keras_release: bool = False   # the file is exactly the one Keras publishes (its hash matches)
    notice: str = ""              # why there are no weights, when pretrained ones were wanted

    def record(self) -> dict:
        """What the run records: {"source": ..., "sha256": ...}."""
        return {"source": self.source, "sha256": self.sha256}


def keras_cache_dir() -> Path:
    """Where Keras caches downloaded weights: $KERAS_HOME/models, else ~/.keras/models.

    Read now rather than at Keras' import (keras.config caches it then), so a KERAS_HOME set
    later is honoured; the download is pointed at the same place.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def cached_weights(encoder: str) -> Path | None:
    """The encoder's ImageNet file in Keras' cache, if it is there (None too for small_cnn)."""
    spec = encoder_spec(encoder)
    path = keras_cache_dir() / spec.imagenet.file if spec.imagenet else None
    return path if path is not None and path.is_file() else None


def _expected(encoder: str, spec: EncoderSpec) -> str:
    file = spec.imagenet.file if spec.imagenet else "none"
    return (f"Expected {spec.title} weights for '{encoder}': Keras' ImageNet file {file} or a .weights.h5 saved "
            "from this backbone. Give that file, or train from random init.")


def _digests(path: Path) -> tuple[str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def _checked_source(encoder: str, source: Source, path: str | os.PathLike) -> WeightsSource:
    """A weights file that exists and opens as HDF5, with its hashes; refused with its name otherwise.

    Whether it fits the architecture is known only on loading (`load_encoder_weights`).
    """
    spec, path = encoder_spec(encoder), Path(path)
    if spec.imagenet is None:
        raise DataError(f"image encoder '{encoder}' takes no pretrained weights, so {path.name} cannot be used; "
                        "choose a pretrained encoder or drop the weights file")
    if not path.is_file():
        raise DataError(f"weights file {path} not found. {_expected(encoder, spec)}")
    if not path.name.endswith(WEIGHTS_SUFFIXES):
        raise DataError(f"{path.name} is not an HDF5 weights file (its name should end in .h5). "
                        f"{_expected(encoder, spec)}")
    try:
        h5py.File(path, "r").close()
    except OSError as err:  # h5py's message says why: "file signature not found", "truncated file", ...
        raise DataError(f"{path.name} is not a readable HDF5 weights file ({err}). {_expected(encoder, spec)}") from err
    sha256, md5 = _digests(path)
    return WeightsSource(encoder, source, path, sha256, keras_release=md5 == spec.imagenet.md5)


def _download(target: Path, fetch: Callable[[], str], on_progress: Callable[[int], None] | None) -> str:
    """Run Keras' download `fetch`, telling `on_progress` the bytes written so far: 0 as it starts,
    then about once a second (keras.utils.get_file has no progress callback: it prints its own bar)."""
    if on_progress is None:
        return fetch()
    on_progress(0)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(1.0):
            if target.is_file():
                on_progress(target.stat().st_size)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        return fetch()
    finally:
        done.set()
        watcher.join()


def resolve_weights(encoder: str, path: str | os.PathLike | None = None, *, download: bool = True,
                    on_missing: OnMissing = "random",
                    on_progress: Callable[[int], None] | None = None) -> WeightsSource:
    """Find `encoder`'s weights: the given file, else Keras' cache, else a download (if allowed).

    Encoders without pretrained weights (small_cnn) give source "none" with no notice. When
    pretrained weights cannot be had, on_missing="random" logs the notice and returns source
    "none" (train from random init); "stop" raises a DataError with that notice. on_progress:
    called with the bytes downloaded so far while a download runs (0 when it starts).
    """
    if on_missing not in ("random", "stop"):
        raise ValueError(f"on_missing must be 'random' or 'stop', not {on_missing!r}")
    spec = encoder_spec(encoder)
    if path is not None:
        return _checked_source(encoder, "file", path)
    if spec.imagenet is None:
        return WeightsSource(encoder, "none")
    cache, cached = keras_cache_dir(), cached_weights(encoder)
    if cached is not None:
        return _checked_source(encoder, "cache", cached)
    if download:
        try:
            # Prints Keras' progress bar; checks Keras' hash and removes a partial file on failure.
            fetched = _download(cache / spec.imagenet.file, lambda: keras.utils.get_file(
                spec.imagenet.file, spec.imagenet.origin, cache_subdir="models", cache_dir=str(cache.parent),
                file_hash=spec.imagenet.md5), on_progress)
        except Exception as err:  # offline, get_file raises a bare Exception("URL fetch failure on ...")
            log.info("download of %s failed: %s", spec.imagenet.origin, err)
        else:
            return _checked_source(encoder, "download", fetched)
    missing = f"No ImageNet weights for {encoder}: not in {cache}" + (" and no network" if download else "")
    if on_missing == "stop":
        raise DataError(f"{missing}. Give a weights file, connect to the network, or choose to train from random init.")
    notice = f"{missing}. Training from random init instead; give a weights file to start from pretrained ones."
    log.warning(notice)
    return WeightsSource(encoder, "none", notice=notice)


def load_encoder_weights(backbone: keras.Model, weights: WeightsSource) -> None:
    """Load `weights` into a backbone built by `backbones.build_backbone` (nothing for source "none")."""
    if weights.path is None:
        return
    spec = encoder_spec(weights.encoder)
    try:
        backbone.load_weights(weights.path)
    except (ValueError, OSError, KeyError) as err:  # Keras: layer/shape mismatch; h5py: unreadable groups
        reason = str(err).strip().splitlines()[0]
        raise DataError(f"{weights.path.name} does not hold {spec.title} weights ({reason}). "
                        f"{_expected(weights.encoder, spec)}") from err
    if weights.keras_release and spec.after_imagenet_load is not None:
        spec.after_imagenet_load(backbone)
