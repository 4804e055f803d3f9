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


# --- problems in the OpenAPI document ----------------------------------------------------------------------
# Every operation declares each error status it can answer, as a problem document: those its views declare
# (`@blp.alt_response(409, description=..., example=...)`), and those the hooks in front of every view answer
# (api/auth, api/negotiation, api/limits, webargs, the store). `document_problems` adds them to the document
# flask-smorest made, so that a new endpoint gets them without doing anything.

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "A problem document (RFC 9457), sent as application/problem+json. Tell problems apart by `code`.",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "description": "Always about:blank: `code` says which problem.", "examples": ["about:blank"]},
        "title": {"type": "string", "description": "The HTTP status phrase.", "examples": ["Unprocessable Entity"]},
        "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "The HTTP status, repeated."},
        "code": {
            "type": "string",
            "description": "Stable, machine-readable name of the problem (docs/api.md lists them).",
            "examples": ["validation_error"],
        },
        "detail": {"type": "string", "description": "A sentence for humans; its wording may change."},
        "field": {
            "type": "string",
            "description": "For input errors: the field at fault (`tracking.send`, `query.limit`, `Idempotency-Key`, `data.state_id`).",
        },
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "For validation errors: every field at fault, with its message.",
        },
    },
    "additionalProperties": True,  # members of some problems: head, served_up_to, existing_value
}


# The answers of the hooks in front of every view (taken from real answers), and when an operation gets them.
HOOK_PROBLEMS = {
    400: (
        "The body is not valid JSON, or nests too deeply (`invalid_json`); a malformed Content-Length (`bad_request`).",
        problem_body(400, "invalid_json", "the body is not valid JSON"),
    ),
    401: (
        "No API key (`unauthorized`), or an unknown or revoked one (`invalid_api_key`).",
        problem_body(401, "unauthorized", "send an API key: Authorization: Bearer <key> (or X-Api-Key)"),
    ),
    403: (
        "The key's scope is too low (`insufficient_scope`).",
        problem_body(403, "insufficient_scope", "this endpoint needs a key with scope 'write'; this key has 'read'"),
    ),
    404: (
        "No such resource (`not_found`, or the resource's own code).",
        problem_body(
            404,
            "not_found",
            "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.",
        ),
    ),
    406: (
        "`Accept` takes neither application/json nor application/problem+json (`not_acceptable`).",
        problem_body(406, "not_acceptable", "this API answers application/json (errors: application/problem+json); accept one of them, or */*"),
    ),
    411: (
        "A body whose Transfer-Encoding the server could not decode (`length_required`).",
        problem_body(411, "length_required", "this server cannot decode a body with that Transfer-Encoding: send a Content-Length"),
    ),
    413: (
        "The body is over MAX_CONTENT_LENGTH (`payload_too_large`).",
        problem_body(413, "payload_too_large", "the body is larger than 1048576 bytes"),
    ),
    415: (
        "A body that is not application/json (`unsupported_media_type`).",
        problem_body(415, "unsupported_media_type", "send the body as JSON, with Content-Type: application/json"),
    ),
    422: (
        "The input does not fit (`validation_error`): `field` and `errors` say which.",
        problem_body(422, "validation_error", "query.since: Unknown field.", field="query.since", errors={"query.since": "Unknown field."}),
    ),
    429: (
        "Too many failed key checks from this address (`too_many_failures`); `Retry-After` says when to try again.",
        problem_body(429, "too_many_failures", "too many requests from this address without a valid API key: wait 42 s"),
    ),
    503: (
        "The store cannot answer or take the write now (`store_unavailable`, with `Retry-After`), or GesCom is unreachable (`gescom_unavailable`).",
        problem_body(503, "store_unavailable", "the store cannot answer or take this write now (locked, read-only or unreachable): try again later"),
    ),
}


def hook_statuses(operation: dict, path: str, scope: str | None) -> set[int]:
    """The error statuses the hooks in front of the view may answer for this operation (scope None: no key needed)."""
    statuses = {406, 503}
    if scope is not None:
        statuses |= {401, 429} | ({403} if scope != "read" else set())
    if "requestBody" in operation:
        statuses |= {400, 411, 413, 415, 422}
    if any(parameter.get("in") == "query" for parameter in operation.get("parameters", ())):
        statuses.add(422)
    if "{" in path:
        statuses.add(404)
    return statuses


def _problem_response(declared: dict | None, status: int) -> dict:
    """A declared error response (its description and example kept), or the hooks' one, as a problem document."""
    from http import HTTPStatus

    description, example = HOOK_PROBLEMS.get(status, (HTTPStatus(status).phrase, None))
    declared = declared if declared and "$ref" not in declared else {}
    media = next(iter(declared.get("content", {}).values()), {})
    content = {"schema": PROBLEM_REF}
    if "examples" in media:
        content["examples"] = media["examples"]
    else:
        content["example"] = media.get("example", example or problem_body(status, HTTP_CODES.get(status, f"http_{status}")))
    response = {"description": declared.get("description", description), "content": {"application/problem+json": content}}
    if "headers" in declared:
        response["headers"] = declared["headers"]
    elif status == 429:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}, "required": True}}
    return response


def document_problems(path: str, operation: dict, scope: str | None) -> None:
    """Every error status of the operation as a problem document; no `default`. A declared error answer with a
    schema of its own (health's 503 report) is left as it is."""
    responses = operation.setdefault("responses", {})
    responses.pop("default", None)
    statuses = {int(code) for code in responses if int(code) >= 400} | hook_statuses(operation, path, scope)
    for status in sorted(statuses):
        declared = responses.get(str(status))
        if declared and any("schema" in media for media in declared.get("content", {}).values()):
            continue
        responses[str(status)] = _problem_response(declared, status)
    operation["responses"] = dict(sorted(responses.items()))
