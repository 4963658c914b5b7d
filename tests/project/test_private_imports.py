"""No module reaches into another package's private names.

A leading underscore marks a name (module, function, constant) as private
to the package that holds it: modules of that package, its sub-packages
included, may import it; nobody else. What another package legitimately
needs is made public (no underscore, in ``__all__``) or moved where both can
use it. ``alertwire``'s own private modules (``_errors``, ``_secret``,
``_retry``...) belong to the root package, so every part of the library may
use them. Other libraries' private names (``argparse._SubParsersAction``)
are off limits everywhere: they change without notice.

Checked statically over ``src/alertwire`` with :mod:`ast`: imports, and
attributes read from an imported third-party module.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

#: Known crossings that other work removes (each named with the fix it waits for).
#: Nothing may be added here: make the name public or move it instead. Empty now.
PENDING: dict[tuple[str, str], str] = {}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_parts(path: Path, root: Path) -> tuple[list[str], list[str]]:
    """The module's dotted name, and the package it belongs to, as lists of parts."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return parts, parts
    return parts, parts[:-1]


def _owner(target: list[str], root: Path) -> list[str] | None:
    """The package a dotted name is private to, or ``None`` when no part of it is private."""
    for index, part in enumerate(target):
        if _private(part):
            owner = target[:index]
            # A private attribute of a module (not a package) belongs to the module's package.
            if index and not root.joinpath(*owner).is_dir():
                owner = owner[:-1]
            return owner
    return None


def crossings(root: Path, top: str = "alertwire") -> list[tuple[str, str, int]]:
    """``(importer, private name, line)`` for every private name used outside its package."""
    found: list[tuple[str, str, int]] = []
    for path in sorted((root / top).rglob("*.py")):
        module, package = _module_parts(path, root)
        importer = ".".join(module)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        third_party: set[str] = set()
        for node in ast.walk(tree):
            targets: list[list[str]] = []
            line = 0
            if isinstance(node, ast.ImportFrom):
                line = node.lineno
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    source = base + (node.module.split(".") if node.module else [])
                else:
                    source = (node.module or "").split(".")
                targets = [[*source, alias.name] for alias in node.names if alias.name != "*"]
            elif isinstance(node, ast.Import):
                line = node.lineno
                targets = [alias.name.split(".") for alias in node.names]
                third_party |= {
                    (alias.asname or alias.name).split(".")[0]
                    for alias in node.names
                    if alias.name.split(".")[0] != top
                }
            for target in targets:
                if target[0] != top:
                    if any(_private(part) for part in target):
                        found.append((importer, ".".join(target), line))
                    continue
                owner = _owner(target, root)
                if owner is not None and package[: len(owner)] != owner:
                    found.append((importer, ".".join(target), line))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id in third_party
            ):
                found.append((importer, f"{node.value.id}.{node.attr}", node.lineno))
    return found


def test_no_module_imports_another_packages_private_names() -> None:
    found = [
        f"{importer} line {line}: {name}"
        for importer, name, line in crossings(SRC)
        if not any(
            importer == waiting and (name == known or name.startswith(f"{known}."))
            for waiting, known in PENDING
        )
    ]
    assert found == []


def test_the_check_sees_each_kind_of_crossing(tmp_path: Path) -> None:
    """Guard against a check that can never fail: a small tree with one of each."""
    files = {
        "pkg/__init__.py": "",
        "pkg/_root.py": "X = 1\n",
        "pkg/a/__init__.py": "from ._impl import thing\n",
        "pkg/a/_impl.py": "thing = 1\n_hidden = 2\n",
        "pkg/a/public.py": "_secret = 1\n",
        "pkg/a/inner/__init__.py": "from .._impl import _hidden\nfrom ..public import _secret\n",
        "pkg/b/__init__.py": "",
        "pkg/b/ok.py": "from .._root import X\nfrom ..a import thing\nfrom ..a.public import *\n",
        "pkg/b/bad.py": (
            "import argparse\n"
            "from ..a._impl import thing\n"
            "from ..a.public import _secret\n"
            "from ..a import _impl\n"
            "import pkg.a._impl\n"
            "from argparse import _SubParsersAction\n"
            "Group = argparse._SubParsersAction\n"
        ),
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert crossings(tmp_path, top="pkg") == [
        ("pkg.b.bad", "pkg.a._impl.thing", 2),
        ("pkg.b.bad", "pkg.a.public._secret", 3),
        ("pkg.b.bad", "pkg.a._impl", 4),
        ("pkg.b.bad", "pkg.a._impl", 5),
        ("pkg.b.bad", "argparse._SubParsersAction", 6),
        ("pkg.b.bad", "argparse._SubParsersAction", 7),
    ]
