"""The library's layers import one way only (docs/ARCHITECTURE.md, "Layers and the import rule").

    core -> data -> models -> runs -> train -> explain -> app        (cli.py and __main__.py on top)

A module imports only its own sub-package or ones to its left; cli.py and __main__.py may import
every sub-package but app. Function-level imports count like top-level ones, and each says why it
is not at the top (`# lazy: ...`). Only multimodal/app imports Streamlit; core and data never
import TensorFlow or Keras; no file is longer than MAX_LINES. Read with `ast`, nothing is
imported, so a violation fails here in milliseconds. Test modules, in turn, never import each
other (helpers: tests/support, fixtures: conftest.py), and every citation of the architecture
doc names one of its headings.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "multimodal"
LAYERS = ("core", "data", "models", "runs", "train", "explain", "app")
TOP_MODULES = ("__init__", "__main__", "cli")     # multimodal/*.py: above every layer but app
NO_TENSORFLOW = ("core", "data")
HEAVY = ("tensorflow", "keras")
MAX_LINES = 450


def _module_name(path: Path, package: Path) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, at any depth; relative imports
    resolved, and `from multimodal import data` read as an import of multimodal.data."""
    here = _module_name(path, package)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - node.level + is_package]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == package.name:
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return found


def _layer(module: str, package_name: str) -> str | None:
    """The layer of a module of the package (its sub-package, or a TOP_MODULES name); None outside it."""
    parts = module.split(".")
    return parts[1] if parts[0] == package_name and len(parts) > 1 else None


def _modules(package: Path) -> list[Path]:
    return sorted(package.rglob("*.py"))


def _where(path: Path, package: Path, line: int | None = None) -> str:
    name = f"{package.name}/{path.relative_to(package).as_posix()}"
    return f"{name}:{line}" if line else name


def layer_violations(package: Path) -> list[str]:
    """Every import that goes against the direction, and every module outside a known layer."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    problems = []
    for path in _modules(package):
        own = _layer(_module_name(path, package), package.name) or "__init__"
        if own not in rank and own not in TOP_MODULES:
            problems.append(f"{_where(path, package)} is in no layer (known: {', '.join(LAYERS)}, top: {TOP_MODULES})")
            continue
        for line, module in _imports(path, package):
            target = _layer(module, package.name)
            if target is None or target == own:
                continue
            if target in TOP_MODULES:
                if own not in TOP_MODULES:
                    problems.append(f"{_where(path, package, line)} imports {module}: only the top modules import them")
            elif target not in rank:
                problems.append(f"{_where(path, package, line)} imports {module}: {target} is in no layer")
            elif own in TOP_MODULES:
                if target == "app":
                    problems.append(f"{_where(path, package, line)} imports {module}: the CLI stays below the app")
            elif rank[target] > rank[own]:
                problems.append(f"{_where(path, package, line)} imports {module}: {target} is above {own}")
    return problems


def forbidden_imports(package: Path) -> list[str]:
    """Streamlit outside the app layer; TensorFlow or Keras in the light layers."""
    problems = []
    for path in _modules(package):
        own = _layer(_module_name(path, package), package.name)
        for line, module in _imports(path, package):
            top = module.split(".")[0]
            if top == "streamlit" and own != "app":
                problems.append(f"{_where(path, package, line)} imports {module}: only {package.name}/app uses Streamlit")
            if top in HEAVY and own in NO_TENSORFLOW:
                problems.append(f"{_where(path, package, line)} imports {module}: {own} stays free of TensorFlow/Keras")
    return problems


def long_files(package: Path, limit: int = MAX_LINES) -> list[str]:
    return [f"{_where(path, package)} has {n} lines (limit {limit}): split it by idea"
            for path in _modules(package) if (n := len(path.read_text().splitlines())) > limit]


def lazy_imports_without_reason(package: Path) -> list[str]:
    """Function-level imports not marked `# lazy: <why>` on their line or in the comment, import
    or blank lines just above them (one comment may cover a group of imports, isort's sections too)."""
    problems = {}
    for path in _modules(package):
        lines = path.read_text().splitlines()
        for function in ast.walk(ast.parse("\n".join(lines), str(path))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                i = node.lineno - 1
                block = [lines[i]]
                while i > 0 and (not lines[i - 1].strip() or lines[i - 1].strip().startswith(("#", "import ", "from "))):
                    i -= 1
                    block.append(lines[i])
                if not any("# lazy:" in line for line in block):   # keyed: nested functions are walked twice
                    problems[(path, node.lineno)] = f"{_where(path, package, node.lineno)}: {lines[node.lineno - 1].strip()}"
    return list(problems.values())


# ---------------------------------------------------------------- the library

def test_imports_go_one_way():
    assert layer_violations(PACKAGE) == []


def test_streamlit_only_in_app_and_no_tensorflow_in_core_or_data():
    assert forbidden_imports(PACKAGE) == []


def test_modules_stay_short():
    assert long_files(PACKAGE) == []


def test_function_level_imports_are_deliberate_and_say_why():
    """Imports belong at the top; the exceptions are lazy imports of heavy modules, commented."""
    assert lazy_imports_without_reason(PACKAGE) == []


def test_no_module_imports_a_test_module():
    """Shared test helpers live in tests/support (functions) and tests/conftest.py (fixtures)."""
    problems = []
    for path in sorted([*REPO.glob("tests/**/*.py"), *REPO.glob("bench/*.py"), *REPO.glob("scripts/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            problems += [f"{path.relative_to(REPO)}:{node.lineno} imports {name}" for name in names
                         if any(part.startswith("test_") or part == "conftest" for part in name.split("."))]
    assert problems == []


def test_citations_of_the_architecture_doc_name_its_headings():
    """Code cites docs/ARCHITECTURE.md by heading; a renamed heading must take its citations along."""
    headings = {line.lstrip("#").strip() for line in (REPO / "docs" / "ARCHITECTURE.md").read_text().splitlines()
                if line.startswith("#")}
    cited = re.compile(r"ARCHITECTURE\.md,\s*(?:#\s*)?[\"']([^\"']+)[\"']")
    sources = [*REPO.glob("multimodal/**/*.py"), *REPO.glob("pages/*.py"), REPO / "app.py",
               *REPO.glob("tests/**/*.py"), *REPO.glob("bench/*.py"), *REPO.glob("scripts/*.py")]
    missing = sorted(f"{path.relative_to(REPO)}: {name!r}" for path in sources
                     for name in cited.findall(path.read_text()) if name not in headings)
    assert missing == []


def test_the_architecture_doc_names_every_module():
    """docs/ARCHITECTURE.md describes the code as it is: every library module and page is named in it."""
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    modules = [*REPO.glob("multimodal/**/*.py"), *REPO.glob("pages/*.py")]
    unnamed = sorted(str(path.relative_to(REPO)) for path in modules
                     if path.name != "__init__.py" and path.name not in doc)
    assert unnamed == []


# ---------------------------------------------------------------- the checker itself

def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "multimodal"
    for name, text in {"__init__.py": "", "cli.py": "", **files}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return package


def test_checker_accepts_imports_that_go_down(tmp_path):
    package = _tree(tmp_path, {
        "core/__init__.py": "", "core/errors.py": "class DataError(Exception): ...\n",
        "data/__init__.py": "", "data/io.py": "from multimodal.core.errors import DataError\nfrom . import io\n",
        "models/build.py": "import keras\nfrom multimodal.data import io\nfrom ..core import errors\n",
        "app/page.py": "import streamlit as st\nfrom multimodal.models import build\n",
        "cli.py": "def main():\n    from multimodal.explain import explain  # lazy: TensorFlow\n",
        "__main__.py": "from multimodal.cli import main\n",
    })
    assert layer_violations(package) == [] and forbidden_imports(package) == [] and long_files(package) == []


@pytest.mark.parametrize(("files", "expected"), [
    ({"core/config.py": "def f():\n    from multimodal.train import jobs\n"},
     "multimodal/core/config.py:2 imports multimodal.train: train is above core"),
    ({"data/io.py": "from ..models import build\n"},
     "multimodal/data/io.py:1 imports multimodal.models: models is above data"),
    ({"runs/run.py": "from multimodal import explain\n"},
     "multimodal/runs/run.py:1 imports multimodal.explain: explain is above runs"),
    ({"models/build.py": "from multimodal.cli import main\n"},
     "multimodal/models/build.py:1 imports multimodal.cli: only the top modules import them"),
    ({"cli.py": "import multimodal.app.state\n"},
     "multimodal/cli.py:1 imports multimodal.app.state: the CLI stays below the app"),
    ({"ui/view.py": ""}, "multimodal/ui/view.py is in no layer"),
])
def test_checker_finds_a_backwards_import(tmp_path, files, expected):
    problems = layer_violations(_tree(tmp_path, files))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_checker_finds_an_unexplained_function_level_import(tmp_path):
    package = _tree(tmp_path, {"cli.py": (
        "def train():\n    # lazy: TensorFlow only for this command\n    from multimodal.train import training\n"
        "    from multimodal.runs import run\n"
        "def samples():\n    x = 1\n\n    from multimodal.data import samples\n")})
    assert lazy_imports_without_reason(package) == ["multimodal/cli.py:8: from multimodal.data import samples"]


def test_checker_finds_streamlit_tensorflow_and_long_files(tmp_path):
    package = _tree(tmp_path, {
        "train/jobs.py": "def f():\n    import streamlit\n",
        "data/images.py": "from tensorflow import keras\n",
        "core/config.py": "import keras.ops\n" + "x = 1\n" * MAX_LINES,
    })
    assert forbidden_imports(package) == [
        "multimodal/core/config.py:1 imports keras.ops: core stays free of TensorFlow/Keras",
        "multimodal/data/images.py:1 imports tensorflow: data stays free of TensorFlow/Keras",
        "multimodal/train/jobs.py:2 imports streamlit: only multimodal/app uses Streamlit",
    ]
    assert long_files(package) == [f"multimodal/core/config.py has {MAX_LINES + 1} lines (limit {MAX_LINES}): split it by idea"]
