"""HTTP face: /api/v1 (flask-smorest: the OpenAPI document and the code come from the same declarations).

Every endpoint needs an API key but /api/v1/health, /openapi.json and /api/docs. Errors are problem documents.
GET /metrics (Prometheus) and the request id of every answer: api/observability.
The admin web page (/admin, api/admin) is registered here too; it has its own session login.
"""

from __future__ import annotations

import re
from copy import deepcopy

from flask import Flask, has_request_context, redirect, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api

from .auth import PUBLIC_ENDPOINTS, init_auth, needed_scope
from .cors import init_cors
from .limits import init_limits
from .negotiation import init_negotiation
from .observability import init_observability
from .problems import PROBLEM_SCHEMA, ApiProblem, document_problems, register_error_handlers
from .schemas import SCHEMA_EXTRAS

# Examples of the parameters whose schema has no default (Postman and Swagger UI fill them in).
PARAMETER_EXAMPLES = {
    "run_id": 1,
    "order_key": "1002",
    "before": 7,
    "shop": "default",
    "If-Match": '"settings-v0"',
    "If-None-Match": '"settings-v0"',
    "Idempotency-Key": "1043-6A10430000001",
    "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    "webhook-timestamp": "1764622651",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
}
METHODS = ("get", "put", "post", "delete", "patch")


class DocumentedApi(Api):
    """flask-smorest's Api whose document is finished by `finish_document` (served, and `flask openapi print`)."""

    DEFAULT_ERROR_RESPONSE_NAME = None  # no `default` answers: each operation declares its error statuses

    def _init_spec(self, **kwargs):
        super()._init_spec(**kwargs)
        app, made = self._app, self.spec.to_dict
        self.spec.to_dict = lambda: with_server(finish_document(deepcopy(made()), operation_scopes(app)))  # apispec's dicts stay as they are


api = DocumentedApi()


def with_server(document: dict) -> dict:
    """Served at /openapi.json: `servers` is where it was asked for (behind a proxy, as TRUSTED_PROXIES lets
    ProxyFix say), so that Postman or a client generator importing the URL needs nothing but a key. Printed by
    `flask openapi print`, it stays relative ("/")."""
    if has_request_context():
        document["servers"] = [{"url": request.url_root.rstrip("/") or "/", "description": "This middleware, where this document was read"}]
    return document


def operation_scopes(app: Flask) -> dict[tuple[str, str], str | None]:
    """(OpenAPI path, method) -> the scope its key needs; None for the public operations."""
    scopes = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^<>]*:)?([^<>:]+)>", r"{\1}", rule.rule)
        public = rule.endpoint in PUBLIC_ENDPOINTS
        for method in rule.methods or ():
            scopes[(path, method.lower())] = None if public else needed_scope(app.view_functions[rule.endpoint], method)
    return scopes


def finish_document(document: dict, scopes: dict) -> dict:
    """The document flask-smorest made, made exact: every error a problem document, examples for parameters, and
    only the components it uses."""
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                _finish_operation(path, item[method], scopes.get((path, method), "read"))
    components = document.setdefault("components", {})
    components.pop("responses", None)  # flask-smorest's per-status answers, with its own Error schema: none is used
    schemas = components.setdefault("schemas", {})
    for unused in ("Error", "PaginationMetadata"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    for name, extra in SCHEMA_EXTRAS.items():
        if name in schemas:
            schemas[name].update(extra)
    return document


def _finish_operation(path: str, operation: dict, scope: str | None) -> None:
    document_problems(path, operation, scope)
    for parameter in operation.get("parameters", ()):
        if "example" not in parameter and "examples" not in parameter:
            schema = parameter.get("schema", {})
            example = PARAMETER_EXAMPLES.get(parameter["name"], schema.get("default"))
            if example is not None:
                parameter["example"] = example


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


def no_nul_in_paths(endpoint, values) -> None:
    """A NUL character is in no key we store (PostgreSQL refuses it in text): such a path names nothing."""
    if values and any(isinstance(value, str) and "\x00" in value for value in values.values()):
        raise ApiProblem(404, "not_found", "no such resource: the path holds a NUL character")


def init_api(app: Flask) -> None:
    app.json = SafeJSONProvider(app)
    init_observability(app)  # first: every other hook's logs, and every answer, carry the request id
    assets = _swagger_assets_dir()
    app.config.setdefault("API_TITLE", "Sage 100 GesCom → PrestaShop order updates")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
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
            # Relative to where the document is served (/openapi.json): the paths, /api/v1/..., are on the same host.
            "servers": [{"url": "/", "description": "This middleware"}],
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
    app.url_value_preprocessor(no_nul_in_paths)
