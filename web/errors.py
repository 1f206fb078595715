"""One JSON error shape for every route: `{"error": "..."}` (SPEC.md section 4)."""

from __future__ import annotations

from typing import NoReturn

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from hub.stores import StoreUnavailable


class JsonError(HTTPException):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.code = status
        self.message = message


def abort_json(status: int, message: str) -> NoReturn:
    raise JsonError(status, message)


def _response(status: int, message: str) -> Response:
    resp = jsonify({"error": message})
    resp.status_code = status
    return resp


def install(app: Flask) -> None:
    @app.errorhandler(JsonError)
    def _json_error(exc: JsonError) -> Response:
        return _response(exc.code or 400, exc.message)

    @app.errorhandler(StoreUnavailable)
    def _store_down(exc: StoreUnavailable) -> Response:
        app.logger.warning("store unavailable: %s", exc)
        return _response(503, "store unavailable")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        resp = _response(exc.code or 500, exc.description or exc.name)
        for name, value in exc.get_headers():  # e.g. 405's `Allow`, which RFC 9110 requires
            if name.lower() != "content-type":
                resp.headers[name] = value
        return resp

    @app.errorhandler(Exception)
    def _internal(exc: Exception) -> Response:
        app.logger.exception("internal error")
        return _response(500, "internal error")
