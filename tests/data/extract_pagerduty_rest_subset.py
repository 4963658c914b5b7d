"""Cut the part of PagerDuty's REST OpenAPI schema the sandbox tests need.

The sandbox's REST answers are checked against PagerDuty's own published
response schemas (PagerDuty/api-schema on GitHub, file
``reference/REST/openapiv3.json``). The whole file is 2.7 MB; the tests carry
only the operations the sandbox serves plus every component those reach,
copied unchanged, so the repository stands on its own::

    python tests/data/extract_pagerduty_rest_subset.py path/to/rest-openapiv3.json \
        > tests/data/pagerduty-rest-subset.json

Whole named components are copied (``components/schemas/Tag``, not only the
part a ``$ref`` points into), so every JSON pointer of the original still
resolves in the subset.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

#: (path, method) pairs the sandbox serves.
OPERATIONS = (
    ("/incidents", "get"),
    ("/incidents", "put"),
    ("/incidents/{id}", "get"),
    ("/incidents/{id}", "put"),
    ("/incidents/{id}/alerts", "get"),
    ("/incidents/{id}/log_entries", "get"),
    ("/services", "get"),
    ("/services/{id}", "get"),
    ("/oncalls", "get"),
)
_KEPT = ("parameters", "requestBody", "responses", "operationId", "summary")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def subset(document: dict[str, Any], source: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, method in OPERATIONS:
        operation = document["paths"][path][method]
        paths.setdefault(path, {})[method] = {k: operation[k] for k in _KEPT if k in operation}
    components: dict[str, dict[str, Any]] = {}
    todo = list(_refs(paths))
    while todo:
        ref = todo.pop()
        parts = ref.removeprefix("#/").split("/")
        if parts[0] != "components" or len(parts) < 3:
            raise ValueError(f"unexpected $ref {ref!r}")
        kind, name = parts[1], parts[2].replace("~1", "/").replace("~0", "~")
        if name in components.get(kind, {}):
            continue
        value = document["components"][kind][name]
        components.setdefault(kind, {})[name] = value
        todo.extend(_refs(value))
    return {
        "openapi": document["openapi"],
        "info": {
            "title": document["info"]["title"] + " (subset for alertwire's sandbox tests)",
            "version": document["info"]["version"],
            "description": f"Cut from {source} by tests/data/extract_pagerduty_rest_subset.py;"
            " operations and components are PagerDuty's, unchanged.",
        },
        "paths": paths,
        "components": {kind: dict(sorted(v.items())) for kind, v in sorted(components.items())},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: extract_pagerduty_rest_subset.py REST-OPENAPIV3.JSON", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        document = json.load(f)
    source = "PagerDuty/api-schema reference/REST/openapiv3.json (snapshot of 2026-08-14)"
    json.dump(subset(document, source), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
