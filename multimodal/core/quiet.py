"""Keep TensorFlow's C++ start-up chatter out of the CLI's stderr, the workers' and the app server's log.

TensorFlow 2.21 prints "All log messages before absl::InitializeLog()...", the oneDNN notice and
the CPU-feature notice while it is imported, whatever TF_CPP_MIN_LOG_LEVEL says; later C++ log
lines (an "E0000 ... oneDNN supports DT_UINT8 only ..." during prediction) do honour it.
`quiet_tensorflow()` sets the level and arranges that whenever `tensorflow` is first imported, by
whichever module, file descriptor 2 points at /dev/null for the length of that import. Nothing is
imported here (the app's home page must start without TensorFlow). Standard library only.

TensorFlow's Python logger is set to errors only: a comparison builds a model per fold, and each
fold's prediction function makes TensorFlow warn about "retracing", a developer's hint that floods
the app's log and the CLI's stderr without anything for the user to do.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys


class _QuietLoader(importlib.abc.Loader):
    """The tensorflow package's own loader, run with stderr's file descriptor on /dev/null. Other
    threads' stderr output in those few seconds goes there too (the app server logs nothing then)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                self.loader.exec_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)   # once: only the first import runs the start-up code
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow() -> None:
    """Call at a process's start, before TensorFlow is imported (later it changes nothing)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
