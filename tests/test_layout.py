"""The package's shape: one subpackage per concept, imports only running downward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NAS = Path(__file__).resolve().parent.parent / "nas"

# Each room of nas/ and the rooms it may import (besides itself).
MAY_IMPORT = {
    "errors": set(),
    "prune": set(),
    "data": set(),
    "space": {"errors", "prune"},
    "trial": {"errors", "prune", "data", "space"},
    "supernet": {"errors", "prune", "data", "space", "trial"},
    "search": {"errors", "prune", "data", "space", "trial", "supernet"},
    "report": {"errors", "prune", "data", "space", "trial"},
    "studies": {"errors", "prune", "data", "space", "trial", "supernet", "search", "report"},
    "cli": {"errors", "prune", "data", "space", "trial", "supernet", "search", "report", "studies"},
    "__main__": {"errors", "cli", "search"},
}


def room_of(path: Path) -> str:
    """The room of nas/ a source file belongs to: its subpackage, or its module's name."""
    return path.relative_to(NAS).parts[0].removesuffix(".py")


def imported_rooms(path: Path) -> set[str]:
    """The rooms of nas/ that the module at `path` imports, at any depth of its code."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "nas" and len(parts) > 1:
                rooms.add(parts[1])
    return rooms


SOURCES = sorted(p for p in NAS.rglob("*.py") if p != NAS / "__init__.py")


def test_every_module_lives_in_a_known_room():
    assert {room_of(path) for path in SOURCES} == set(MAY_IMPORT)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(NAS)))
def test_imports_run_only_downward(path):
    room = room_of(path)
    upward = imported_rooms(path) - MAY_IMPORT[room] - {room}
    assert not upward, f"{path.relative_to(NAS)} ({room}) imports {sorted(upward)}"


def test_every_subpackage_says_what_lives_there():
    for package in (p.parent for p in NAS.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), f"{package.name}: no word on its imports"
