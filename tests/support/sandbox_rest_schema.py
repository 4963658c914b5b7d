"""PagerDuty's REST response schemas, read the way OpenAPI 3.0 clients read them.

The schemas are PagerDuty's own, carried in ``tests/data/pagerduty-rest-subset.json``
(see ``tests/data/extract_pagerduty_rest_subset.py`` for where it comes from).
They are checked with ``openapi-schema-validator``'s OpenAPI 3.0 validator
(``nullable``, ``readOnly``, OpenAPI's formats) with two readings that
PagerDuty's schema needs, both measured on PagerDuty's own response examples
in ``test_sandbox_rest_schema.py``:

* ``oneOf`` is read as "at least one": PagerDuty's branches overlap (a
  ``ServiceReference`` also matches ``Service``, a trigger log entry matches
  several log-entry branches), so strict JSON Schema ``oneOf`` fails
  PagerDuty's own examples (2 of 9);
* ``null`` is accepted where the schema types a string, object or array:
  PagerDuty's examples send ``"resolved_at": null``, ``"resolve_reason":
  null`` and more in fields the schema does not mark ``nullable`` (4 and 6
  errors in the incident examples otherwise).

Everything else (types, enums, required properties, formats) is checked as
written, with one known defect of PagerDuty's schema worked around:
``AcknowledgeLogEntry`` is ``LogEntry`` (whose ``type`` enum lists
``acknowledge_log_entry``) *and* a ``type`` enum of only
``acknowledgement_log_entry``, which no value satisfies. The sandbox sends
``acknowledge_log_entry``, as ``LogEntry`` and PagerDuty's API do, and such an
entry is checked against ``LogEntry`` itself (a test keeps the defect
measured, so a fixed schema will be noticed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import validators
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry
from referencing.jsonschema import DRAFT4

SUBSET = Path(__file__).resolve().parents[1] / "data" / "pagerduty-rest-subset.json"
_BASE = "urn:pagerduty-rest-subset"


def _null_tolerant(name: str) -> Any:
    check = OAS30Validator.VALIDATORS[name]

    def validate(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if instance is None:
            return
        yield from check(validator, value, instance, schema)

    return validate


def _no_errors(*args: Any) -> Iterator[Any]:
    return iter(())


#: OAS30Validator with PagerDuty's overlapping ``oneOf`` and examples' ``null``s accepted.
PagerDutyReading = validators.extend(
    OAS30Validator,
    {
        "oneOf": OAS30Validator.VALIDATORS["anyOf"],
        "type": _null_tolerant("type"),
        "enum": _null_tolerant("enum"),
        "nullable": _no_errors,
    },
)


@cache
def document() -> dict[str, Any]:
    return json.loads(SUBSET.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def _registry() -> Registry[Any]:
    registry: Registry[Any] = Registry().with_resource(_BASE, DRAFT4.create_resource(document()))
    return registry


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def response_schema_ref(method: str, path: str, status: int | str) -> str:
    """The ``$ref`` of a response's JSON schema (following a ``components/responses`` ref)."""
    answer = document()["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in answer:
        name = answer["$ref"].rsplit("/", 1)[1]
        return f"{_BASE}#/components/responses/{name}/content/application~1json/schema"
    return f"{_BASE}#/{_pointer('paths', path, method.lower(), 'responses', str(status))}/content/application~1json/schema"


ACK_ENTRY = "acknowledge_log_entry"
LOG_ENTRY_REF = f"{_BASE}#/components/schemas/LogEntry"


def errors_for_ref(ref: str, body: Any, *, strict: bool = False) -> list[str]:
    reading = OAS30Validator if strict else PagerDutyReading
    validator = reading({"$ref": ref}, registry=_registry(), format_checker=oas30_format_checker)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message[:300]}"
        for e in validator.iter_errors(body)
    ]


def errors(
    method: str, path: str, status: int | str, body: Any, *, strict: bool = False
) -> list[str]:
    """Every way ``body`` breaks the response schema, as ``location: message`` lines."""
    found: list[str] = []
    if path == "/incidents/{id}/log_entries" and isinstance(body, dict) and not strict:
        entries = body.get("log_entries")
        if isinstance(entries, list):
            acks = [e for e in entries if isinstance(e, dict) and e.get("type") == ACK_ENTRY]
            for entry in acks:
                found += [
                    f"log_entries/{ACK_ENTRY}/{line}"
                    for line in errors_for_ref(LOG_ENTRY_REF, entry)
                ]
            body = {**body, "log_entries": [e for e in entries if not any(e is a for a in acks)]}
    return found + errors_for_ref(response_schema_ref(method, path, status), body, strict=strict)


def assert_valid(method: str, path: str, status: int, body: Any) -> None:
    found = errors(method, path, status, body)
    assert not found, f"{method} {path} {status} breaks PagerDuty's schema:\n" + "\n".join(
        found[:20]
    )
