"""HTTP face: /api/v1 (flask-smorest: the OpenAPI document and the code come from the same declarations).

Every endpoint needs an API key but /api/v1/health, /openapi.json and /api/docs. Errors are problem documents.
GET /metrics (Prometheus) and the request id of every answer: api/observability.
The admin web page (/admin, api/admin) is registered here too; it has its own session login.
"""

from __future__ import annotations

from flask import Flask, redirect, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api

from .auth import init_auth
from .cors import init_cors
from .limits import init_limits
from .negotiation import init_negotiation
from .observability import init_observability
from .problems import register_error_handlers

api = Api()


def _swagger_assets_dir() -> str | None:
    try:
        import swagger_ui_bundle
    except ImportError:  # pragma: no cover - the docs page then uses a public copy
        return None
    return swagger_ui_bundle.swagger_ui_path


class SafeJSONProvider(DefaultJSONProvider):
    """JSON nested too deeply for Python's decoder is bad input (400), not a server error."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def init_api(app: Flask) -> None:
    app.json = SafeJSONProvider(app)
    init_observability(app)  # first: every other hook's logs, and every answer, carry the request id
    assets = _swagger_assets_dir()
    app.config.setdefault("API_TITLE", "Sage 100 GesCom → PrestaShop order updates")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "api/docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", "/api/docs/assets/" if assets else "https://unpkg.com/swagger-ui-dist@5/")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {
                "description": (
                    "Shop updates detected in Sage 100 GesCom, for the PrestaShop module (pull) and integrators.\n\n"
                    "Authenticate with `Authorization: Bearer <key>` (or `X-Api-Key`). Keys are created with "
                    "`flask apikey create NAME --scope read|write|admin`. Errors are `application/problem+json` "
                    "documents with a stable `code`."
                )
            },
            "security": [{"bearerAuth": []}, {"apiKeyHeader": []}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer"},
                    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                }
            },
        },
    )
    api.init_app(app)
    from .resources import BLUEPRINTS

    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)

    if assets:

        @app.get("/api/docs/assets/<path:filename>", endpoint="swagger_assets")
        def swagger_assets(filename: str):
            return send_from_directory(assets, filename, max_age=86400)

    @app.get("/api/v1/openapi.json", endpoint="openapi_v1")
    def openapi_v1():
        return redirect("/openapi.json", code=308)

    from .admin import init_admin
    from .ratelimit import init_ratelimit

    init_ratelimit(app)  # one limiter for the app: the admin login, failed API key checks (api/auth)
    init_admin(app)  # /admin: its own session guard (api/admin), not API keys
    init_cors(app)  # /api/v1 only, and only with CORS_ALLOWED_ORIGINS: its preflights pass init_auth's check
    init_auth(app)
    init_negotiation(app)  # 406 for an Accept the API cannot answer, once the key is checked
    init_limits(app)  # bodies read within the limit whatever their encoding; checked once the key is, before any view
    register_error_handlers(app)
