"""The layers run one way: the import graph of ``src/alertwire``, read with ``ast``.

docs/architecture.md's rules, checked on the source rather than trusted:

* (a) no cycle between packages, counting lazy (in a function) and
  type-only (``if TYPE_CHECKING:``) imports too: a lazy import is still a
  dependency, and hiding a cycle in a function is how one starts;
* (b) the outbox never imports who feeds it (``alertwire.ingest``) or who
  drains it (``alertwire.relay``), lazily or not;

both except the one documented alias, ``from alertwire.outbox import Relay``
(PEP 562, resolved on first use, kept for users' old imports);
* (c) nothing in production imports the sandbox (the test stand-in), lazily
  or not, except the two commands that run it;
* (d) :func:`cross_package_private_imports` lists imports of another
  package's ``_private`` module; once that list is empty, assert it here.

The graph is built from the files, not from ``sys.modules``, so a lazy import
inside a function counts for (b) to (d) although it never ran in this test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = "alertwire"


@dataclass(frozen=True, slots=True)
class Import:
    importer: str  # the module that imports (dotted)
    target: str  # the module imported (dotted, resolved)
    eager: bool  # runs when the importer is imported (module level, not TYPE_CHECKING)
    line: int


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(importer: str, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module>`` written in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base.pop()
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(module: str, nodes: list[ast.stmt], *, eager: bool) -> Iterator[Import]:
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, eager, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in MODULES else base
                yield Import(module, target, eager, node.lineno)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _walk(module, node.body, eager=False)
            yield from _walk(module, node.orelse, eager=eager)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # A class body runs at import; a function body only when called.
            lazy = not isinstance(node, ast.ClassDef)
            yield from _walk(module, node.body, eager=eager and not lazy)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    stmts = [c for c in children if isinstance(c, ast.stmt)]
                    stmts += [
                        s for c in children if isinstance(c, ast.ExceptHandler) for s in c.body
                    ]
                    yield from _walk(module, stmts, eager=eager)


def imports() -> list[Import]:
    """Every import of an ``alertwire`` module written anywhere in ``src/alertwire``."""
    found: list[Import] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += [
            i
            for i in _walk(module, tree.body, eager=True)
            if i.target == ROOT or i.target.startswith(ROOT + ".")
        ]
    return found


#: Lazy imports that are allowed to point back: (importer module, target package).
ALIASES: frozenset[tuple[str, str]] = frozenset({("alertwire.outbox", "alertwire.relay")})


def _alias(i: Import) -> bool:
    return not i.eager and (i.importer, package_of(i.target)) in ALIASES


def package_of(module: str) -> str:
    """``alertwire.outbox.sqlite`` -> ``alertwire.outbox``; a top-level module is its own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def package_cycles() -> list[list[str]]:
    """Cycles between packages, lazy imports included (each once, as a closed path)."""
    edges: dict[str, set[str]] = {}
    for i in imports():
        a, b = package_of(i.importer), package_of(i.target)
        if a != b and a != ROOT and not _alias(i):  # alertwire/__init__ only re-exports
            edges.setdefault(a, set()).add(b)
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                cycle = [*path[path.index(nxt) :], nxt]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append(cycle)
            elif len(path) < len(edges) + 1:
                visit(nxt, [*path, nxt])

    for start in sorted(edges):
        visit(start, [start])
    return cycles


def cross_package_private_imports() -> list[str]:
    """(d) Imports of another package's ``_private`` module (or of a private name of it).

    For the lead to assert empty once the public types are public; until then
    the list says what is left.
    """
    found: list[str] = []
    for i in imports():
        if package_of(i.importer) == package_of(i.target):
            continue
        rest = i.target.split(".")[2:]
        if any(part.startswith("_") and part != "__init__" for part in rest):
            found.append(f"{i.importer}:{i.line} imports {i.target}")
    return sorted(set(found))


# ---------------------------------------------------------------- the rules


def test_the_graph_sees_relative_lazy_and_type_only_imports() -> None:
    """The reader itself: known edges of each kind are found, so the rules below can fail."""
    found = {(i.importer, i.target, i.eager) for i in imports()}
    assert ("alertwire.relay._loop", "alertwire.outbox.machine", True) in found  # relative
    assert ("alertwire.relay._service", "alertwire.ingest", False) in found  # TYPE_CHECKING, lazy
    assert ("alertwire.cli.demo_cmd", "alertwire.sandbox", False) in found  # in a function
    assert package_of("alertwire._errors") == "alertwire._errors"


def test_no_cycle_between_packages() -> None:
    assert package_cycles() == []


def test_the_outbox_imports_neither_ingest_nor_relay() -> None:
    offenders = [
        f"{i.importer}:{i.line} imports {i.target}"
        for i in imports()
        if _within(i.importer, "alertwire.outbox")
        and (_within(i.target, "alertwire.ingest") or _within(i.target, "alertwire.relay"))
        and not _alias(i)
    ]
    assert offenders == []


def test_nothing_in_production_imports_the_sandbox() -> None:
    runs_it = {"alertwire.cli.sandbox_cmd", "alertwire.cli.demo_cmd"}
    offenders = [
        f"{i.importer}:{i.line} imports {i.target}"
        for i in imports()
        if _within(i.target, "alertwire.sandbox")
        and not _within(i.importer, "alertwire.sandbox")
        and i.importer not in runs_it
    ]
    assert offenders == []


def test_the_old_relay_path_is_an_alias_of_the_new_one() -> None:
    from alertwire.outbox import Relay as old
    from alertwire.relay import Relay

    assert old is Relay


def test_ingest_and_relay_ask_the_store_and_import_no_store_module() -> None:
    """Stores answer for themselves (write probe, explanation, which failures pass):
    ingest and the relay know only ``Store``."""
    stores = ("alertwire.outbox.sqlite", "alertwire.outbox.postgres")
    askers = ("alertwire.ingest", "alertwire.relay")
    offenders = [
        f"{i.importer}:{i.line} imports {i.target}"
        for i in imports()
        if any(_within(i.importer, a) for a in askers) and any(_within(i.target, s) for s in stores)
    ]
    assert offenders == []
    for module, path in MODULES.items():
        if any(_within(module, a) for a in askers):
            text = path.read_text(encoding="utf-8")
            assert "sqlite3" not in text, module
            assert '"path"' not in text, module  # no sniffing a store's file for its type
