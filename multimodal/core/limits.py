"""Every size limit in one place: a documented default, overridable by an environment variable.

Values are read from the environment each time they are used (call time, not import time), so
`MMSTUDIO_MAX_ROWS=500000 python -m multimodal train ...`, or an environment variable set before
`streamlit run`, takes effect without touching code, and a test can `monkeypatch.setenv` one.

| limit                  | default     | environment variable        | enforced in                        |
|------------------------|-------------|-----------------------------|------------------------------------|
| upload size (all files)| 500 MB      | MMSTUDIO_MAX_UPLOAD_MB      | Data page uploader, save_uploads   |
| CSV data rows          | 100,000     | MMSTUDIO_MAX_ROWS           | sources.read_csv                   |
| pixels per image       | 50,000,000  | MMSTUDIO_MAX_IMAGE_PIXELS   | images.load_image / check_image    |
| files in a zip/upload  | 5,000       | MMSTUDIO_MAX_ZIP_MEMBERS    | sources (zip), save_uploads        |
| unpacked size of a zip | 500 MB      | MMSTUDIO_MAX_ZIP_MB         | sources (zip extraction)           |
| concurrent trainings   | 2           | MMSTUDIO_MAX_JOBS           | jobs (app's training queue)        |
| uploaded .keras model  | 100 MB      | MMSTUDIO_MAX_MODEL_MB       | runs.import_model                  |
| orphaned training stop | 30 s        | MMSTUDIO_ORPHAN_SECONDS     | jobs (closed tab -> job stopped)   |
| a lesson file          | 64 KB       | MMSTUDIO_MAX_LESSON_KB      | data/lesson_store (upload, check)  |
| workspace kept unused  | 7 days      | MMSTUDIO_WORKSPACE_DAYS     | runs/workspaces (expiry sweep)     |
| one workspace's files  | 2,000 MB    | MMSTUDIO_WORKSPACE_MB       | runs/workspaces (uploads, jobs)    |

Pillow refuses images above ~179 million pixels by itself, so MMSTUDIO_MAX_IMAGE_PIXELS cannot
raise the pixel limit past that. Streamlit's own per-file ceiling is `server.maxUploadSize` in
`.streamlit/config.toml` (or STREAMLIT_SERVER_MAX_UPLOAD_SIZE); the uploader uses the smaller of
the two.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from multimodal.core.errors import DataError


@dataclass(frozen=True)
class Limit:
    """One limit: its environment variable, default and what it counts (for messages)."""

    env: str
    default: int
    counts: str

    def get(self) -> int:
        """The current value: the environment variable when set, else the default."""
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            value = int(raw.replace("_", "").replace(",", ""))  # "100_000" and "100,000" read as meant
        except ValueError:
            value = 0
        if value < 1:
            # A typo in the environment must not silently fall back to the default.
            raise DataError(f"environment variable {self.env}={raw!r} is not a positive whole number; "
                            f"unset it (default {self.default:,}) or set a number of {self.counts}")
        return value

    def hint(self) -> str:
        """How to raise the limit, for the end of a message."""
        return f"set {self.env} to allow more"


MAX_UPLOAD_MB = Limit("MMSTUDIO_MAX_UPLOAD_MB", 500, "megabytes uploaded at once")
MAX_ROWS = Limit("MMSTUDIO_MAX_ROWS", 100_000, "data rows in a CSV")
MAX_IMAGE_PIXELS = Limit("MMSTUDIO_MAX_IMAGE_PIXELS", 50_000_000, "pixels in one image")
MAX_ZIP_MEMBERS = Limit("MMSTUDIO_MAX_ZIP_MEMBERS", 5000, "files in a zip or an upload")
MAX_ZIP_MB = Limit("MMSTUDIO_MAX_ZIP_MB", 500, "megabytes a zip unpacks to")
MAX_JOBS = Limit("MMSTUDIO_MAX_JOBS", 2, "trainings running at the same time")
MAX_MODEL_MB = Limit("MMSTUDIO_MAX_MODEL_MB", 100, "megabytes in an uploaded .keras model")
MAX_LESSON_KB = Limit("MMSTUDIO_MAX_LESSON_KB", 64, "kilobytes in a lesson file")
ORPHAN_SECONDS = Limit("MMSTUDIO_ORPHAN_SECONDS", 30, "seconds a closed session's training keeps running")
WORKSPACE_DAYS = Limit("MMSTUDIO_WORKSPACE_DAYS", 7, "days a workspace is kept after its last use")
WORKSPACE_MB = Limit("MMSTUDIO_WORKSPACE_MB", 2000, "megabytes one workspace may hold")

# Not configurable: deflate rarely beats ~20x on real data while zip bombs reach ~1000x, so a
# member over 1 MB that expands more than this is refused whatever the size limit.
MAX_ZIP_RATIO = 200
