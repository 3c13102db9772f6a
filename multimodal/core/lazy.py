"""A module imported on its first attribute access: how light modules name Keras without importing it.

The fusion registry and the encoder catalog are read by pages, the CLI's argument handling and
the job queue, which must start without TensorFlow
(docs/ARCHITECTURE.md, "Layers and the import rule"); their graph-building bodies run only when a
model is built. `keras = LazyModule("keras")`
lets those bodies be written as usual while importing the registry stays light. Unlike
importlib.util.LazyLoader, nothing is put into sys.modules: Streamlit clears Keras' session after
every script run whenever "keras" is in sys.modules, which would import TensorFlow on the spot.
Standard library only.
"""
from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """Stands for the module `name`; the first attribute read imports it."""

    def __init__(self, name: str):
        self._name = name

    def _module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attr: str):
        return getattr(self._module(), attr)

    def __repr__(self) -> str:
        return f"<LazyModule {self._name!r}>"
