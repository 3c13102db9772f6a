"""TensorFlow imported in the background once the server has served its first page.

Importing TensorFlow, Keras and the explainers takes 5-10 s on 2 cores. Paid inside a page's
script, it stalls the first What-if or Explain visit; paid here, in a daemon thread started by
app.py's first run, it is done by the time a newcomer has picked data and a model, while the light
pages (Home, Data, Model) render at once (docs/ARCHITECTURE.md, "The app"). Keras' cleanup guard is
installed before the import starts (`keras_guard.py`). MMSTUDIO_PRELOAD=0 turns it off: a server
that should stay small, or a test of which pages import TensorFlow themselves.
"""
from __future__ import annotations

import importlib
import os
import threading

from multimodal.app.keras_guard import install_keras_guard

HEAVY_MODULE = "multimodal.app.model_service"   # TensorFlow, Keras, the explainers and the shared caches
_lock = threading.Lock()
_thread: threading.Thread | None = None


def preload_enabled() -> bool:
    return os.environ.get("MMSTUDIO_PRELOAD", "1").strip() != "0"


def import_in_background() -> threading.Thread | None:
    """Start the import once per server process (later calls return the same thread); None when
    MMSTUDIO_PRELOAD=0."""
    global _thread
    if not preload_enabled():
        return None
    with _lock:
        if _thread is None:
            install_keras_guard()
            _thread = threading.Thread(target=importlib.import_module, args=(HEAVY_MODULE,),
                                       name="mmstudio-preload", daemon=True)
            _thread.start()
        return _thread
