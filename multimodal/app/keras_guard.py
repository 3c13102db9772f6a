"""Streamlit's post-run cleanup without `keras.backend.clear_session()` (docs/ARCHITECTURE.md, "The app").

Why the hook is replaced is explained in `model_service.py`'s docstring, point 1. It lives in a
light module of its own so that the background import of TensorFlow (`warmup.py`) can install it
BEFORE Keras enters sys.modules: from then on Streamlit's hook would clear Keras' session after
every script run, even while the import is still under way.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

from streamlit.runtime.scriptrunner import script_runner

GUARD_FLAG = "_multimodal_keeps_keras"

_original_hook = getattr(script_runner, "_clean_problem_modules", None)


def _clean_problem_modules_keep_keras() -> None:
    """Streamlit's post-run cleanup without `keras.backend.clear_session()` (see module docstring)."""
    if "matplotlib.pyplot" in sys.modules:
        try:
            sys.modules["matplotlib.pyplot"].close("all")
        except Exception:  # noqa: BLE001, S110 - like Streamlit: cleanup must never break the app
            pass


setattr(_clean_problem_modules_keep_keras, GUARD_FLAG, True)


def install_keras_guard() -> bool:
    """Replace Streamlit's cleanup hook once; True when the guard is (now or already) in place."""
    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        return False   # Streamlit changed: the hook test flags it, nothing to patch here
    if not getattr(current, GUARD_FLAG, False):
        script_runner._clean_problem_modules = _clean_problem_modules_keep_keras
    return True


def original_hook() -> Callable[[], None] | None:
    """Streamlit's own hook, as it was before the guard (for the tests)."""
    return _original_hook


