"""Errors as JSON problem documents (RFC 9457) with a stable `code`, and the field at fault for bad input."""

from __future__ import annotations

from flask import Flask, current_app, jsonify
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from sync.gescom.adapter import GesComError
from sync.store.health import unavailable as store_unavailable

STORE_RETRY_AFTER = 5  # seconds: a locked store is usually free again by then

# Stable codes for HTTP errors raised by Flask/werkzeug/webargs themselves.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiProblem(Exception):
    """Raised by views: becomes a problem document."""

    def __init__(self, status: int, code: str, detail: str, *, title: str | None = None, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status, self.code, self.detail, self.title = status, code, detail, title
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict:
        return problem_body(self.status, self.code, self.detail, self.title, **self.extra)


def problem_body(status: int, code: str, detail: str | None = None, title: str | None = None, **extra) -> dict:
    from http import HTTPStatus

    body = {
        "type": "about:blank",  # the stable `code` says which problem; no per-problem page
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def problem_response(body: dict, headers: dict | None = None):
    response = jsonify(body)
    response.status_code = body["status"]
    response.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten(messages, prefix: str = "") -> dict[str, str]:
    """webargs/marshmallow messages -> {"tracking.header_field": "Not a valid string."}."""
    flat: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix and key != "_schema" else (prefix or str(key))
            flat.update(_flatten(value, path))
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(item, str) for item in messages):
            flat[prefix or "body"] = " ".join(messages)
        else:
            for item in messages:
                flat.update(_flatten(item, prefix))
    else:
        flat[prefix or "body"] = str(messages)
    return flat


def _from_http_exception(error: HTTPException) -> dict:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if status == 422 and messages:
        errors: dict[str, str] = {}
        for location, fields in messages.items():
            for path, message in _flatten(fields).items():
                name = path if location in ("json", "form") else f"{location}.{path}"
                errors[name] = message
        field = next(iter(errors), None)
        return problem_body(422, "validation_error", f"{field}: {errors[field]}" if field else "invalid input", field=field, errors=errors)
    if status == 400 and messages:
        return problem_body(400, "invalid_json", "the body is not valid JSON")
    detail = data.get("message") or error.description
    return problem_body(status, HTTP_CODES.get(status, f"http_{status}"), detail)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiProblem)
    def api_problem(error: ApiProblem):
        return problem_response(error.body(), error.headers)

    @app.errorhandler(GesComError)
    def gescom_down(error: GesComError):
        return problem_response(problem_body(503, "gescom_unavailable", str(error)))

    @app.errorhandler(DBAPIError)
    def store_down(error: DBAPIError):
        if not store_unavailable(error):
            return unexpected(error)
        current_app.logger.warning("the store cannot answer or write: %s", error.orig)
        detail = "the store cannot answer or take this write now (locked, read-only or unreachable): try again later"
        return problem_response(problem_body(503, "store_unavailable", detail), {"Retry-After": str(STORE_RETRY_AFTER)})

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        headers = {}
        if error.code == 405 and getattr(error, "valid_methods", None):
            headers["Allow"] = ", ".join(error.valid_methods)
        return problem_response(_from_http_exception(error), headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        current_app.logger.exception("unexpected error")
        return problem_response(problem_body(500, "internal_error", "an unexpected error occurred; it was logged"))
