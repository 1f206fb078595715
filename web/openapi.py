"""`/api/v1/openapi.json`: the HTTP API described in OpenAPI 3.0 (SPEC.md section 4 and blipserver-api.md).

Written by hand as data, next to the routes it describes; `tests/test_openapi.py` runs schemathesis against the live
app with it, so a route that drifts from its description fails there.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from telemetry.exportformats import FORMATS
from telemetry.names import NAME_RE
from web.api import ALERT_HISTORY_LIMIT, ALERT_HISTORY_MAX, MAX_BUCKETS, POINTS_LIMIT
from web.blip import MAX_AGGREGATE_COUNT
from web.export import MAX_TAIL

bp = Blueprint("openapi", __name__)

EXAMPLE_SERIES = "lab.mainmeter.power"
MAX_NUMBER = 999_999_999_999_999  # every numeric parameter has at most 15 digits


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _int_param(name: str, where: str = "query", description: str = "", low: int = 0,
               high: int = MAX_NUMBER) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "description": description,
            "schema": {"type": "integer", "minimum": low, "maximum": high}}


_NAME = NAME_RE.pattern
SERIES_PATH = {"name": "series_id", "in": "path", "required": True, "description": "site.device.channel",
               "schema": {"type": "string", "pattern": f"^{_NAME}\\.{_NAME}\\.{_NAME}$"}, "example": EXAMPLE_SERIES}
BLIP_ID = {**SERIES_PATH, "name": "blip_id", "description": "a series id, or a name in web.blip_aliases",
           "schema": {"type": "string", "pattern": "^[^/]+$"}}
RANGE = [_int_param("from", description="Unix ms, inclusive (default: 24 h before `to`)"),
         _int_param("to", description="Unix ms, exclusive (default: now)")]


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "404": {"$ref": "#/components/responses/NotFound"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}


def _get(summary: str, params: list[dict[str, Any]], ok: dict[str, Any], errors: bool = True) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params, "responses": {"200": ok, **(ERRORS if errors else {})}}}


INT_PAIRS = {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}}
USAGE_ROWS = {"type": "array", "items": {"type": "array", "minItems": 5, "maxItems": 5,
                                         "items": {"type": "number"}}}


def _blip(path: str, summary: str, params: list[dict[str, Any]], ok: dict[str, Any]) -> dict[str, Any]:
    """A blipserver route in its two forms: the default series, and `/{route}/{blip_id}/...`."""
    name, _, rest = path.partition("/")
    rest = f"/{rest}" if rest else ""
    described = _get(summary, params, _json_response("blipserver's shape", ok))
    with_id = _get(summary, [BLIP_ID, *params], _json_response("blipserver's shape", ok))
    return {f"/{name}{rest}": described, f"/{name}/{{blip_id}}{rest}": with_id}


def document() -> dict[str, Any]:
    series_item = {
        "type": "object",
        "required": ["id", "site", "device", "channel", "unit", "last", "agent", "online", "gaps"],
        "properties": {
            "id": {"type": "string"}, "site": {"type": "string"}, "device": {"type": "string"},
            "channel": {"type": "string"}, "unit": {"type": "string"},
            "last": {"type": "object", "nullable": True, "required": ["ts"],
                     "properties": {"ts": {"type": "integer"}, "w": {"type": "number", "nullable": True},
                                    "value": {"type": "number", "nullable": True}}},
            "agent": {"type": "string", "nullable": True}, "online": {"type": "boolean", "nullable": True},
            "gaps": {"type": "integer", "nullable": True},
        },
    }
    bucket = {
        "type": "object", "required": ["ts", "mean_w", "min_w", "max_w", "count", "wh"],
        "properties": {"ts": {"type": "integer"}, "mean_w": {"type": "number"}, "min_w": {"type": "number"},
                       "max_w": {"type": "number"}, "count": {"type": "integer"},
                       "wh": {"type": "number", "nullable": True}},
    }
    alert_fields: dict[str, Any] = {
        "rule": {"type": "string"}, "site": {"type": "string"}, "subject": {"type": "string"},
        "state": {"type": "string", "enum": ["firing"]}, "since": {"type": "integer"},
        "severity": {"type": "string", "enum": ["warning", "critical"]}, "summary": {"type": "string"},
        "value": {"type": "number", "nullable": True}, "limit": {"type": "number", "nullable": True},
    }
    alert_item = {"type": "object", "required": list(alert_fields), "properties": alert_fields}
    history_item = {"type": "object", "required": [*alert_fields, "ts"], "properties": {
        **alert_fields, "state": {"type": "string", "enum": ["firing", "resolved"]}, "ts": {"type": "integer"}}}
    paths: dict[str, Any] = {
        "/api/v1/series": _get("every series with its newest point", [],
                               _json_response("series", {"type": "array", "items": series_item}), errors=False),
        "/api/v1/series/{series_id}/points": _get(
            "raw points, oldest first", [SERIES_PATH, *RANGE, _int_param("limit", low=1, high=POINTS_LIMIT)],
            _json_response("[[ts, w], ...]", {"type": "array", "items": {
                "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}})),
        "/api/v1/series/{series_id}/history": _get(
            "aggregated buckets (give `step` or `points`, not both)",
            [SERIES_PATH, *RANGE, _int_param("step", description="bucket length, ms", low=1),
             _int_param("points", description="let the server pick the step", low=1, high=MAX_BUCKETS)],
            _json_response("buckets", {"type": "array", "items": bucket})),
        "/api/v1/export.csv": {"get": {
            "summary": "CSV of a series", "responses": {
                "200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}, **ERRORS},
            "parameters": [{**SERIES_PATH, "name": "series", "in": "query"}, *RANGE,
                           {"name": "date", "in": "query", "schema": {"type": "string", "format": "date"}},
                           _int_param("tail", description="the newest N points (not with date)", low=1,
                                      high=MAX_TAIL),
                           {"name": "format", "in": "query", "schema": {"type": "string", "enum": list(FORMATS)}},
                           {"name": "tz", "in": "query", "description": "IANA time zone of `date`, and of "
                            "powergraph-daily's times (default UTC)", "schema": {"type": "string"}}]}},
        "/api/v1/alerts": {"get": {"summary": "the alerts firing now", "responses": {
            "200": _json_response("alerts", {"type": "array", "items": alert_item}),
            "503": {"$ref": "#/components/responses/Unavailable"}}}},
        "/api/v1/alerts/history": {"get": {
            "summary": "every firing and resolution, newest first, from the hub (web.hub_url)",
            "parameters": [{"name": "subject", "in": "query", "description": "a series id, a PDU, an agent",
                            "schema": {"type": "string"}},
                           _int_param("limit", description=f"default {ALERT_HISTORY_LIMIT}", low=1,
                                      high=ALERT_HISTORY_MAX)],
            "responses": {"200": _json_response("alert states", {"type": "array", "items": history_item}),
                          "400": {"$ref": "#/components/responses/BadRequest"},
                          "503": {"$ref": "#/components/responses/Unavailable"}}}},
        "/healthz": {"get": {"summary": "store reachable?", "responses": {
            "200": _json_response("ok", {"type": "object", "required": ["ok"]}),
            "503": {"$ref": "#/components/responses/Unavailable"}}}},
        "/metrics": {"get": {"summary": "Prometheus text", "responses": {
            "200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/api/v1/openapi.json": {"get": {"summary": "this document", "responses": {
            "200": _json_response("OpenAPI 3.0", {"type": "object"})}}},
    }
    paths.update(_blip("last", "the newest blink: [ts, ms]", [],
                       {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}))
    paths.update(_blip("since/{t}", "blinks after t", [_int_param("t", "path")], INT_PAIRS))
    paths.update(_blip("range/{a}/{b}", "blinks in [a, b]", [_int_param("a", "path"), _int_param("b", "path")],
                       INT_PAIRS))
    paths.update(_blip("aggregate/{since}/{interval}/{count}", "blink counts per interval",
                       [_int_param("since", "path"), _int_param("interval", "path", low=1),
                        _int_param("count", "path", high=MAX_AGGREGATE_COUNT)],
                       INT_PAIRS))
    paths.update(_blip("aggregate_hourly/{since}/{interval}/{count}",
                       "per interval, the sum of the hourly constant-free mean power (Studentergaarden's fork)",
                       [_int_param("since", "path"), _int_param("interval", "path", low=1),
                        _int_param("count", "path", high=MAX_AGGREGATE_COUNT)],
                       {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                                   "items": {"type": "number"}}}))
    paths.update(_blip("usage/{ms}", "[n]: the number of blinks in the last ms (Studentergaarden's fork)",
                       [_int_param("ms", "path")],
                       {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 1}))
    for route, what in (("hourly", "hour"), ("minutely", "minute")):
        paths.update(_blip(f"{route}/{{a}}/{{b}}", f"usage per {what}: [start, blinks, mean_w, min_ms, max_ms]",
                           [_int_param("a", "path"), _int_param("b", "path")], USAGE_ROWS))
    error = _json_response("error", _ref("Error"))
    return {
        "openapi": "3.0.3",
        "info": {"title": "powerhub", "version": "1",
                 "description": "Times are Unix milliseconds; /api/v1 ranges are half-open. Not described here: "
                                "the live routes (/api/v1/stream, server-sent events; /blip, a long-poll)."},
        "paths": paths,
        "components": {
            "schemas": {"Error": {"type": "object", "required": ["error"], "additionalProperties": False,
                                  "properties": {"error": {"type": "string", "minLength": 1}}}},
            "responses": {"BadRequest": {**error, "description": "bad input"},
                          "NotFound": {**error, "description": "unknown series or route"},
                          "Unavailable": {**error, "description": "the store does not answer"}},
        },
    }


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    from web import state

    return jsonify({**document(), "servers": [{"url": state().config.url_prefix or "/"}]})
