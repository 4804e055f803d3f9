"""The project's own rule: no function over 60 lines, outside the tests and the demo generator."""

from __future__ import annotations

import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60
# Tests read best as one scenario each; the demo generator writes a whole Sage base in one pass.
EXCLUDED_DIRS = {"tests"}
# The demo generator: the demo base's generator and its table declarations (one Column per line, as Sage has them).
EXCLUDED_FILES = {"sync/gescom/demo/generator.py", "sync/gescom/demo/schema.py"}


def long_functions(source: str, path: str, limit: int = MAX_LINES) -> list[str]:
    """'path:line name (N lines)' for each function or method longer than limit; decorators do not count."""
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1  # lineno is the `def` line, below any decorator
            if length > limit:
                found.append((node.lineno, f"{path}:{node.lineno} {node.name} ({length} lines)"))
    return [text for _, text in sorted(found)]


def project_files(root: Path = ROOT) -> list[str]:
    """The project's .py files, relative to root, without tests, hidden folders (virtualenv, caches) and the generator."""
    paths = []
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__" and not (relative == Path() and d in EXCLUDED_DIRS))
        paths += [(relative / name).as_posix() for name in sorted(files) if name.endswith(".py")]
    return [path for path in paths if path not in EXCLUDED_FILES]


def test_no_function_is_longer_than_60_lines():
    offenders = [found for path in project_files() for found in long_functions((ROOT / path).read_text(encoding="utf-8"), path)]
    assert not offenders, "functions over 60 lines (split them):\n" + "\n".join(offenders)


def _function(body_lines: int, decorators: int = 0) -> str:
    return "".join(["@staticmethod\n"] * decorators + ["def f():\n"] + ["    x = 1\n"] * (body_lines - 1))


def test_a_61_line_function_is_reported_with_its_place_and_length():
    source = "import os\n\n\n" + _function(61)
    assert long_functions(source, "pkg/mod.py") == ["pkg/mod.py:4 f (61 lines)"]


def test_60_lines_pass_and_decorators_do_not_count():
    assert long_functions(_function(60, decorators=3), "mod.py") == []


def test_methods_and_nested_functions_are_checked_too():
    body = "".join("    " + line for line in _function(61).splitlines(keepends=True))
    source = "class C:\n" + body + "\n\nasync def outer():\n" + body
    assert long_functions(source, "mod.py") == ["mod.py:2 f (61 lines)", "mod.py:65 outer (62 lines)", "mod.py:66 f (61 lines)"]


def test_tests_hidden_folders_and_the_generator_are_left_out():
    files = project_files()
    assert "app.py" in files and "sync/core/stages.py" in files
    assert not [path for path in files if path.startswith(("tests/", ".")) or "/." in path]
    assert "sync/gescom/demo/generator.py" not in files
