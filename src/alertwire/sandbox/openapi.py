"""The sandbox's OpenAPI description, served at ``GET /sandbox/openapi.json``.

For schema-driven tools (schemathesis, client generators) and for readers.
The schemas describe the *shape* of requests; the rules that decide 202 or
400 are the shared sans-IO rules (for the REST subset, :mod:`.rest_query`
and :mod:`.rest_updates`), which JSON Schema cannot fully express
(a non-blank summary, an ISO 8601 timestamp, a named primary property), so
the description allows what the wire routes then judge. Every status a
route can give is listed, which is what lets a fuzzer flag an undocumented
answer.
"""

from __future__ import annotations

from typing import Any

from ..models.limits import DEDUP_KEY_MAX, ROUTING_KEY_LENGTH, SUMMARY_MAX
from ..models.pagerduty_rules import EVENT_ACTIONS, SEVERITIES

__all__ = ["openapi_document"]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str | None = None, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer.update(_json(_ref(schema)))
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return answer


_WIRE_REFUSALS = {
    "400": _answer("Invalid or unreadable event (PagerDuty's error body)", "Errors"),
    "404": {"description": "Unknown path"},
    "405": {"description": "Wrong method"},
    "429": _answer("Rate limited (sandbox --rate-limit, or an injected fault)", "Errors"),
    "500": _answer("Injected fault only", "Errors"),
    "502": _answer("Injected fault only", "Errors"),
    "503": _answer(
        "Injected fault, or the sink could not keep the event",
        "Errors",
        **{"Retry-After": "seconds"},
    ),
    "504": _answer("Injected fault only", "Errors"),
}

_LINKS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"href": {"type": "string"}, "text": {"type": "string"}},
        "required": ["href"],
    },
}
_IMAGES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "src": {"type": "string", "pattern": "^https://"},
            "href": {"type": "string"},
            "alt": {"type": "string"},
        },
        "required": ["src"],
    },
}
_ROUTING_KEY = {
    "type": "string",
    "minLength": ROUTING_KEY_LENGTH,
    "maxLength": ROUTING_KEY_LENGTH,
    "pattern": "^[A-Za-z0-9]+$",
}


def _schemas() -> dict[str, Any]:
    return {
        "AlertEvent": {
            "type": "object",
            "required": ["routing_key", "event_action"],
            "properties": {
                "routing_key": _ROUTING_KEY,
                "event_action": {"type": "string", "enum": list(EVENT_ACTIONS)},
                "dedup_key": {"type": "string", "maxLength": DEDUP_KEY_MAX},
                "payload": {
                    "type": "object",
                    "required": ["summary", "source", "severity"],
                    "properties": {
                        "summary": {"type": "string", "maxLength": SUMMARY_MAX},
                        "source": {"type": "string"},
                        "severity": {"type": "string", "enum": list(SEVERITIES)},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "component": {"type": "string"},
                        "group": {"type": "string"},
                        "class": {"type": "string"},
                        "custom_details": {"type": "object"},
                    },
                },
                "links": _LINKS,
                "images": _IMAGES,
                "client": {"type": "string"},
                "client_url": {"type": "string"},
            },
        },
        "ChangeEvent": {
            "type": "object",
            "required": ["routing_key", "payload"],
            "properties": {
                "routing_key": _ROUTING_KEY,
                "payload": {
                    "type": "object",
                    "required": ["summary"],
                    "properties": {
                        "summary": {"type": "string", "maxLength": SUMMARY_MAX},
                        "source": {"type": "string"},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "custom_details": {"type": "object"},
                    },
                },
                "links": _LINKS,
            },
        },
        "BigPandaAlert": {
            "type": "object",
            "required": ["app_key", "status"],
            "properties": {
                "app_key": {"type": "string"},
                "status": {
                    "type": "string",
                    "enum": ["ok", "critical", "warning", "acknowledged", "unknown"],
                },
                "host": {"type": "string"},
                "check": {"type": "string"},
                "description": {"type": "string", "maxLength": 2048},
                "timestamp": {"type": "integer", "minimum": 0},
            },
            "additionalProperties": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "integer"},
                    {"type": "array", "items": {"type": ["string", "integer"]}},
                ]
            },
        },
        "BigPandaBatch": {
            "type": "object",
            "required": ["app_key", "alerts"],
            "properties": {
                "app_key": {"type": "string"},
                "alerts": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            },
        },
        "Errors": {
            "type": "object",
            "required": ["errors", "message", "status"],
            "properties": {
                "errors": {"type": "array", "items": {"type": "string"}},
                "message": {"type": "string"},
                "status": {"type": "string"},
            },
        },
        "EventAccepted": {
            "type": "object",
            "required": ["status", "message", "dedup_key"],
            "properties": {
                "status": {"type": "string"},
                "message": {"type": "string"},
                "dedup_key": {"type": "string"},
            },
        },
        "ChangeAccepted": {
            "type": "object",
            "required": ["message", "status"],
            "properties": {"message": {"type": "string"}, "status": {"type": "string"}},
        },
        "Created": {"type": "object", "properties": {"status": {"type": "string"}}},
        "RestError": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "message": {"type": "string"},
                        "code": {"type": "integer"},
                        "errors": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
        "RestAnswer": {
            "type": "object",
            "description": 'PagerDuty\'s entity wrapper ({"incident": {...}}) or list page'
            ' ({"incidents": [...], "limit", "offset", "more", "total"});'
            " the tests check these against PagerDuty's own published schema",
        },
        "List": {"type": "array", "items": {"type": "object"}},
        "Faults": {
            "type": "object",
            "properties": {
                "fail_next": {"type": "array", "items": {}},
                "reset_next": {"type": "integer", "minimum": 0},
                "latency_ms": {"type": "number", "minimum": 0, "maximum": 60000},
                "fail_rate": {"type": "number", "minimum": 0, "maximum": 1},
                "fail_rate_status": {"type": "integer", "minimum": 400, "maximum": 599},
                "seed": {"type": "integer"},
                "rate_limit": {"type": ["integer", "null"], "minimum": 1},
                "rest_fail_next": {"type": "array", "items": {}},
                "rest_rate_limit": {"type": ["integer", "null"], "minimum": 1},
                "clear": {"type": "boolean"},
            },
        },
    }


_REST_AUTH = {
    "name": "Authorization",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "pattern": "^(Token token=|Bearer ).+"},
}
_FROM = {"name": "From", "in": "header", "required": False, "schema": {"type": "string"}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_STRING: dict[str, Any] = {"type": "string"}
_PAGING = [
    _query("limit", {"type": "integer"}),
    _query("offset", {"type": "integer"}),
    _query("total", {"type": "boolean"}),
]
_REST_REFUSALS = {
    "400": _answer("Invalid Input Provided (2001), or no From header (2016)", "RestError"),
    "401": _answer("No token, or not the sandbox's configured one (2006)", "RestError"),
    "429": _answer(
        "rest_rate_limit exceeded or an injected 429 (2020)",
        "RestError",
        **{"ratelimit-limit": "requests per minute", "ratelimit-reset": "seconds"},
    ),
    "500": _answer("Injected fault only", "RestError"),
    "502": _answer("Injected fault only", "RestError"),
    "503": _answer("Injected fault only", "RestError"),
    "504": _answer("Injected fault only", "RestError"),
}


def _rest(
    summary: str,
    parameters: list[dict[str, Any]],
    *,
    body: bool = False,
    not_found: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [_REST_AUTH, *parameters],
        "responses": {"200": _answer("PagerDuty's answer", "RestAnswer"), **_REST_REFUSALS},
    }
    if body:
        operation["requestBody"] = {"required": True, **_json({"type": "object"})}
    if not_found:
        operation["responses"]["404"] = _answer("Not Found (2100)", "RestError")
    return operation


def _rest_paths() -> dict[str, Any]:
    incident_filters = [
        _query("statuses[]", {"type": "array", "items": _STRING}),
        _query("service_ids[]", {"type": "array", "items": _STRING}),
        _query("urgencies[]", {"type": "array", "items": _STRING}),
        _query("incident_key", _STRING),
        _query("since", _STRING),
        _query("until", _STRING),
        _query("date_range", _STRING),
        _query("sort_by", _STRING),
        *_PAGING,
    ]
    return {
        "/incidents": {
            "get": _rest("List incidents", incident_filters),
            "put": _rest("Update incidents in bulk", [_FROM], body=True, not_found=True),
        },
        "/incidents/{id}": {
            "get": _rest("Get an incident", [_ID], not_found=True),
            "put": _rest("Update an incident", [_ID, _FROM], body=True, not_found=True),
        },
        "/incidents/{id}/alerts": {
            "get": _rest(
                "An incident's alerts",
                [_ID, _query("alert_key", _STRING), *_PAGING],
                not_found=True,
            )
        },
        "/incidents/{id}/log_entries": {
            "get": _rest("An incident's log entries", [_ID, *_PAGING], not_found=True)
        },
        "/services": {"get": _rest("List services", [_query("query", _STRING), *_PAGING])},
        "/services/{id}": {"get": _rest("Get a service", [_ID], not_found=True)},
        "/oncalls": {"get": _rest("Who is on call", _PAGING)},
    }


_LAST = {
    "name": "last",
    "in": "query",
    "required": False,
    "description": "Only the newest N entries, still oldest first",
    "schema": {"type": "integer", "minimum": 0, "maximum": 999_999_999},
}
_BAD_LAST = {"400": {"description": "A last that is not a whole number"}}


def _inspection(summary: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": [
                {
                    "name": "X-Routing-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                },
                {
                    "name": "routing_key",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                },
                _LAST,
            ],
            "responses": {
                "200": _answer("The list; keys shown only as their last four characters", "List"),
                **_BAD_LAST,
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document for the sandbox (the wire routes plus inspection and faults)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "alertwire sandbox",
            "version": "1",
            "description": "A local PagerDuty Events API v2, a PagerDuty REST API v2 subset"
            " and BigPanda Alerts API, with inspection and faults.",
        },
        "paths": {
            "/v2/enqueue": {
                "post": {
                    "summary": "PagerDuty alert event (trigger, acknowledge, resolve)",
                    "requestBody": {"required": True, **_json(_ref("AlertEvent"))},
                    "responses": {"202": _answer("Accepted", "EventAccepted"), **_WIRE_REFUSALS},
                }
            },
            "/v2/change/enqueue": {
                "post": {
                    "summary": "PagerDuty change event",
                    "requestBody": {"required": True, **_json(_ref("ChangeEvent"))},
                    "responses": {"202": _answer("Accepted", "ChangeAccepted"), **_WIRE_REFUSALS},
                }
            },
            "/data/v2/alerts": {
                "post": {
                    "summary": "BigPanda alert, one or a batch",
                    "parameters": [
                        {
                            "name": "Authorization",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^Bearer .+"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        **_json({"oneOf": [_ref("BigPandaAlert"), _ref("BigPandaBatch")]}),
                    },
                    "responses": {
                        "201": _answer("Accepted", "Created"),
                        "401": _answer("Missing or empty Bearer token", "Errors"),
                        **_WIRE_REFUSALS,
                    },
                }
            },
            **_rest_paths(),
            "/sandbox/alerts": _inspection("One entry per alert"),
            "/sandbox/incidents": _inspection("One entry per incident"),
            "/sandbox/services": {
                "get": {
                    "summary": "Every service",
                    "responses": {"200": _answer("The list", "List")},
                }
            },
            "/sandbox/events": _inspection("Every accepted request, in arrival order"),
            "/sandbox/changes": _inspection("Change events"),
            "/sandbox/bigpanda": {
                "get": {
                    "summary": "BigPanda alerts",
                    "parameters": [
                        {
                            "name": "X-BigPanda-Token",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        _LAST,
                    ],
                    "responses": {"200": _answer("The list", "List"), **_BAD_LAST},
                }
            },
            "/sandbox/summary": {
                "get": {
                    "summary": "How many alerts (per status), incidents, change events,"
                    " BigPanda alerts and accepted requests there are",
                    "responses": {"200": {"description": "The counts"}},
                }
            },
            "/sandbox/reset": {
                "post": {
                    "summary": "Forget everything",
                    "responses": {"200": {"description": "Reset"}},
                }
            },
            "/sandbox/faults": {
                "get": {
                    "summary": "Current faults",
                    "responses": {"200": _answer("Faults", "Faults")},
                },
                "post": {
                    "summary": "Inject faults",
                    "requestBody": {"required": False, **_json(_ref("Faults"))},
                    "responses": {
                        "200": _answer("Faults now in force", "Faults"),
                        "400": {"description": "A specification that makes no sense"},
                    },
                },
            },
        },
        "components": {"schemas": _schemas()},
    }
