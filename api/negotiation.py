"""Content negotiation for /api/v1: an `Accept` that takes neither JSON nor problem documents gets 406.

No `Accept` (or an empty one) takes anything. OPTIONS answers carry no body and are left alone.
"""

from __future__ import annotations

from flask import Flask, request

from .problems import ApiProblem

OFFERED = ("application/json", "application/problem+json")
# What clients usually send (curl and requests: */*), taken without parsing: the parse costs a poll a few percent.
USUAL = frozenset({"*/*", "application/json", "application/problem+json", "application/json, */*"})


def check_accept() -> None:
    """406 not_acceptable when the client accepts none of what the API answers."""
    if request.endpoint is None or request.method == "OPTIONS" or not request.path.startswith("/api/v1/"):
        return None  # unknown routes get their 404/405 from Flask; /metrics and the docs negotiate on their own
    accept = request.headers.get("Accept", "").strip()
    if not accept or accept in USUAL:
        return None
    if request.accept_mimetypes.best_match(OFFERED) is None:
        raise ApiProblem(406, "not_acceptable", "this API answers application/json (errors: application/problem+json); accept one of them, or */*")
    return None


def init_negotiation(app: Flask) -> None:
    app.before_request(check_accept)
