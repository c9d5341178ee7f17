"""The package's shape: one subpackage per concept, imports only running downward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NAS = Path(__file__).resolve().parent.parent / "nas"

# Each room of nas/ and the rooms it may import (besides itself).
BASE = {"errors", "checks", "optuna_internals", "progress", "prune", "data", "space"}
MAY_IMPORT = {
    "errors": set(),
    "checks": {"errors"},
    "optuna_internals": set(),
    "progress": set(),
    "prune": {"checks"},
    "data": {"checks"},
    "space": {"errors", "checks", "prune"},
    "trial": BASE,
    "record": BASE | {"trial"},
    "derive": BASE | {"trial", "supernet"},
    "supernet": BASE | {"trial"},
    "search": BASE | {"trial", "record", "supernet"},
    "report": BASE | {"trial", "record"},
    "studies": BASE | {"trial", "record", "supernet", "search", "report"},
    "cli": BASE | {"trial", "record", "supernet", "search", "report", "studies"},
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


def imports_of(path: Path) -> set[str]:
    """Top-level packages the module at `path` imports, at any depth of its code."""
    packages = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            packages.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            packages.update(alias.name.split(".")[0] for alias in node.names)
    return packages


@pytest.mark.parametrize("path", sorted((NAS / "trial").glob("*.py")), ids=lambda p: p.name)
def test_the_trial_knows_nothing_of_optuna(path):
    assert "optuna" not in imports_of(path)


def test_every_subpackage_says_what_lives_there():
    for package in (p.parent for p in NAS.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), f"{package.name}: no word on its imports"


# The one module that may use private Optuna and Hydra names, for what no public API does.
PRIVATE_DOOR = NAS / "optuna_internals.py"
# Packages whose private names no other module imports (`nas`: one module's private
# helper is not another's to import).
GUARDED = ("optuna", "hydra", "omegaconf", "torch_pruning", "nas")
# Underscored names that are public: namedtuple's `_replace` (SQLAlchemy's URL), and
# torch's `_BatchNorm`, the base of BatchNorm1d/2d/3d (torch is not guarded here).
PUBLIC_UNDERSCORED = {"_replace", "_BatchNorm"}
CHECKED = sorted(
    [p for p in SOURCES if p != PRIVATE_DOOR] + list((NAS.parent / "benchmarks").glob("*.py"))
)


def _private(name: str) -> bool:
    """Underscored, but neither a dunder nor a Hydra config key (`_target_`)."""
    return name.startswith("_") and not name.endswith("_")


def private_uses(source: str) -> list[str]:
    """The private names of a guarded package that `source` imports, and the underscored
    attributes it reads off anything but `self` and `cls`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            modules = []
        for module in modules:
            parts = module.split(".")
            if parts[0] in GUARDED and any(map(_private, parts)):
                found.append(module)
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and node.attr not in PUBLIC_UNDERSCORED
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{ast.unparse(node.value)}.{node.attr}")
    return found


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: str(p.relative_to(NAS.parent)))
def test_no_module_but_the_private_door_reaches_into_private_names(path):
    used = private_uses(path.read_text())
    assert not used, f"{path.relative_to(NAS.parent)} uses {used}: see nas.optuna_internals"


@pytest.mark.parametrize(
    "source",
    [
        "from optuna._hypervolume import compute_hypervolume",
        "import optuna.visualization._utils",
        "from optuna.visualization import _pareto_front",
        "from hydra._internal.utils import get_args",
        "storage = study._storage",
        "ok = distribution._contains(1.0)",
        "from nas.search.study import Search, _instantiate",
    ],
)
def test_a_private_reach_in_is_found(source):
    assert private_uses(source)


@pytest.mark.parametrize(
    "source",
    ["self._cache = {}", "cls._registry", "node = cfg._target_", "url._replace(password=None)"],
)
def test_own_attributes_config_keys_and_namedtuple_methods_are_not_reach_ins(source):
    assert private_uses(source) == []
