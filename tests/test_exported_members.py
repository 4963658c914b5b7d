"""``alertwire.__all__`` is the public API: sorted, complete, and every name real.

Generic on purpose (httpx's ``tests/test_exported_members.py``): new exports
by any module keep passing as long as ``__all__`` stays honest.
"""

from __future__ import annotations
import __future__

import inspect
import types

import alertwire


def test_all_is_sorted_and_unique() -> None:
    assert list(alertwire.__all__) == sorted(alertwire.__all__)
    assert len(set(alertwire.__all__)) == len(alertwire.__all__)


def test_every_exported_name_exists() -> None:
    missing = [name for name in alertwire.__all__ if not hasattr(alertwire, name)]
    assert missing == []


def test_every_public_name_is_exported() -> None:
    """Public = no leading underscore, not a submodule (``alertwire.models``), not ``annotations``."""
    public = {
        name
        for name, value in vars(alertwire).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
    }
    assert public - set(alertwire.__all__) == set()


def test_exported_classes_and_functions_claim_a_public_home() -> None:
    """What we export comes from alertwire itself, not re-exported third-party objects."""
    for name in alertwire.__all__:
        value = getattr(alertwire, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("alertwire"), name
