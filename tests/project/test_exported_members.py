"""Each public package's ``__all__`` is its API: sorted, complete, and every name real.

Generic on purpose (httpx's ``tests/project/test_exported_members.py``): new exports
by any module keep passing as long as ``__all__`` stays honest. Checked for
``alertwire`` and for ``alertwire.transport`` (the types a user writing or
faking a transport imports).
"""

from __future__ import annotations
import __future__

import inspect
import types

import pytest

import alertwire
import alertwire.transport

PACKAGES = [alertwire, alertwire.transport]
by_name = pytest.mark.parametrize("package", PACKAGES, ids=[p.__name__ for p in PACKAGES])


@by_name
def test_all_is_sorted_and_unique(package: types.ModuleType) -> None:
    assert list(package.__all__) == sorted(package.__all__)
    assert len(set(package.__all__)) == len(package.__all__)


@by_name
def test_every_exported_name_exists(package: types.ModuleType) -> None:
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []


@by_name
def test_every_public_name_is_exported(package: types.ModuleType) -> None:
    """Public = no leading underscore, not a submodule (``alertwire.models``), not ``annotations``."""
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
    }
    assert public - set(package.__all__) == set()


@by_name
def test_exported_classes_and_functions_claim_a_public_home(package: types.ModuleType) -> None:
    """What we export comes from alertwire itself, not re-exported third-party objects."""
    for name in package.__all__:
        value = getattr(package, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("alertwire"), name
