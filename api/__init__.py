"""HTTP face: /api/v1. Errors are JSON problem documents with a stable `code`."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from models import db
from sync.gescom import GesComError

api_blueprint = Blueprint("api", __name__, url_prefix="/api/v1")


def problem(status: int, code: str, title: str, detail: str | None = None, **extra):
    body = {"type": f"about:blank#{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


@api_blueprint.get("/health")
def health():
    """Store and GesCom connectivity; 503 when one of them is down."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["store"] = {"ok": True}
    except Exception as error:  # any driver error means "down" here
        db.session.rollback()
        checks["store"] = {"ok": False, "error": str(error).splitlines()[0]}
    try:
        current_app.extensions["gescom"].ping()
        checks["gescom"] = {"ok": True}
    except GesComError as error:
        checks["gescom"] = {"ok": False, "error": str(error)}
    healthy = all(check["ok"] for check in checks.values())
    response = jsonify({"status": "ok" if healthy else "unavailable", "checks": checks})
    response.status_code = 200 if healthy else 503
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        return problem(error.code or 500, code, error.name, error.description)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unexpected error")
        return problem(500, "internal_error", "Internal Server Error", "an unexpected error occurred; it was logged")
