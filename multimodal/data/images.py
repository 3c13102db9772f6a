"""Image decoding: any file Pillow reads -> upright RGB uint8 at a fixed size, cached on disk.

Big JPEG photos decode in Pillow's draft mode (DCT-domain downscaling), many images decode in
parallel threads (Pillow releases the GIL), and a decoded-image cache on disk makes a second
pass over a dataset cheap.
"""
from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from multimodal.core import limits
from multimodal.core.errors import DataError

# Our default pixel limit is below Pillow's warning threshold, so a DecompressionBombWarning only ever
# fires for an image we reject anyway; turning it into an exception keeps the logs clean and
# lets load_image report it as a DataError (a warnings filter, unlike catch_warnings, is safe
# with the decoding threads).
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB; transparency is composited on white, 16-bit/float is rescaled."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or (img.mode == "I" and a.max() > 255) else 255.0
        if img.mode == "F" or a.max() > 65535 or a.min() < 0:  # unknown range: stretch
            lo, hi2 = float(a.min()), float(a.max())
            a, hi = a - lo, max(hi2 - lo, 1e-12)
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


@contextmanager
def _reading(shown: str) -> Iterator[None]:
    """Turn whatever opening or decoding an image raises into a DataError naming it."""
    try:
        yield
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"image '{shown}' not found; add the file or fix its path") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"image '{shown}' is too large (decompression bomb?); downscale it or remove it") from None
    except MemoryError:
        raise DataError(f"image '{shown}' needs too much memory; downscale it or remove it") from None
    except Exception:  # Pillow raises many types for damaged files
        raise DataError(f"image '{shown}' could not be read (truncated or not an image); replace or remove it") \
            from None


def _check_pixels(img: Image.Image, shown: str) -> None:
    limit = limits.MAX_IMAGE_PIXELS.get()
    w, h = img.size
    if w * h > limit:
        raise DataError(f"image '{shown}' is {w}x{h} pixels (limit {limit:,}); downscale it or remove it, "
                        f"or {limits.MAX_IMAGE_PIXELS.hint()}")


def image_size(path: Path, shown: str | None = None) -> tuple[int, int]:
    """(width, height) from the file's header, nothing decoded (cheap enough for every row).

    Refuses what the header already betrays: not an image, or over the pixel limit. A file cut
    short after its header only fails when decoded (load_image). shown: the name for messages.
    """
    with _reading(shown or str(path)), Image.open(path) as img:
        _check_pixels(img, shown or str(path))
        return img.size


def load_image(path: Path, size: int) -> np.ndarray:
    """Decode one image to uint8 (size, size, 3), upright (EXIF) and RGB; problems -> DataError."""
    path = Path(path)
    with _reading(str(path)), Image.open(path) as img:
        _check_pixels(img, str(path))
        if img.format == "JPEG":
            img.draft("RGB", (size * 2, size * 2))  # DCT-domain downscale: big photos decode fast
        img = ImageOps.exif_transpose(img) or img
        img = _to_rgb(img)
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img, dtype=np.uint8).copy()


def _cache_key(path: Path, size: int) -> str:
    p = Path(path).resolve()
    st = p.stat()
    return hashlib.sha256(f"{p}|{st.st_mtime_ns}|{st.st_size}|{size}".encode()).hexdigest()[:32]


def _load_cached(path: Path, size: int, cache_dir: Path | None) -> np.ndarray:
    if cache_dir is None:
        return load_image(path, size)
    try:
        file = Path(cache_dir) / f"{_cache_key(path, size)}.npy"
    except OSError:
        return load_image(path, size)  # let load_image produce the "not found" message
    arr = None
    if file.is_file():
        try:
            arr = np.load(file, allow_pickle=False)
            arr = arr if arr.shape == (size, size, 3) and arr.dtype == np.uint8 else None
        except (OSError, ValueError):
            arr = None  # damaged cache entry: decode again
    if arr is None:
        arr = load_image(path, size)
        # Write-then-rename so a concurrent reader never sees half a file.
        tmp = file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        os.replace(tmp, file)
    return arr


def load_images(paths: Sequence[Path], size: int, cache_dir: Path | None = None,
                workers: int | None = None) -> np.ndarray:
    """Decode many images in parallel (Pillow releases the GIL) -> uint8 (N, size, size, 3)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    if not len(paths):
        return out
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    workers = workers or min(8, os.cpu_count() or 1)

    def one(i: int) -> None:
        out[i] = _load_cached(Path(paths[i]), size, cache_dir)

    if workers <= 1 or len(paths) == 1:
        for i in range(len(paths)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(one, i) for i in range(len(paths))]
            try:
                for fut in futures:
                    fut.result()  # re-raises the first DataError
            except BaseException:
                for fut in futures:
                    fut.cancel()  # don't decode the rest of a dataset that already failed
                raise
    return out
