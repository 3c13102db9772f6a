"""How `make test` spreads the suite over pytest-xdist's processes (tests/conftest.py installs it)."""
from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

BROWSER_SCOPE = "tests/browser"


class ModuleScheduling(LoadScopeScheduling):
    """pytest-xdist work units: each test module whole on one process (its module-scoped trained
    runs are built once), and every browser test on one process (they share one server).

    xdist's own `--dist loadgroup` cannot do this with pytest 9: it tags groups by rewriting
    `item._nodeid`, which pytest 9's `nodeid` no longer reads, so every test was scheduled alone."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return BROWSER_SCOPE if module.startswith(f"{BROWSER_SCOPE}/") else module
