"""The webservice request: format, ps_method, authentication and permissions in the order the core checks them
(dispatcher, then WebserviceRequest::fetch), dispatch to reads and writes, the answer's headers. Mixed into
ShopSimulator with Reads and Writes."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from urllib.parse import parse_qsl

from .php import did_you_mean, php_int
from .protocol import Ctx, PhpFatal, Response, WsError
from .reads import Reads
from .render import Output, errors_body, php_json, resource_list_body
from .shopdata import PS_RESOURCES, RESOURCES
from .writes import Writes

REALM = 'Basic realm="Welcome to PrestaShop Webservice, please enter the authentication key as the login. No password required."'
AFTER_COMMIT = {"500_after_commit", "timeout", "reset_after_commit"}


class Webservice(Reads, Writes):
    def api(self, ctx: Ctx, headers) -> Response:
        params = ctx.params
        # §2.3: first match wins; the value must be exactly "JSON" (recorded: orders_list_output_format_lowercase
        # answers XML to output_format=json; order_2_output_format_header, order_2_io_format_header).
        fmt = headers.get("Io-Format") or headers.get("Output-Format") or params.get("output_format") or params.get("io_format")
        ctx.json = fmt == "JSON"
        ctx.ws_url = f"http://{headers.get('Host') or f'{self.host}:{self.port}'}/api/"

        # A form-encoded POST may carry the XML in an `xml` field and ps_method (dispatcher reads $_REQUEST).
        form: dict = {}
        if ctx.http_method == "POST" and "application/x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
            form = dict(parse_qsl(ctx.body, keep_blank_values=True))
        override = params.get("ps_method") if isinstance(params.get("ps_method"), str) else form.get("ps_method")
        # The dispatcher takes ps_method as is (case-sensitive: "put" is not a valid method, code 23; recorded:
        # ps_method_put_via_post, ps_method_patch_via_post).
        ctx.method = override if override is not None else ctx.http_method
        if "xml" in form:
            ctx.body = form["xml"]
        elif ctx.http_method not in ("POST", "PUT", "PATCH"):
            ctx.body = ""  # the body is only read for real POST/PUT/PATCH requests (§2.4 ps_method)

        # Dispatcher: Basic auth user first, then ws_key; neither → bare 401 text (§2.2; recorded: auth_no_key,
        # auth_ws_key_query; auth_key_as_password reads the empty user, code 17).
        key = None
        auth = headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                key = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = None
        if key is None and isinstance(params.get("ws_key"), str):
            key = params["ws_key"]
        if key is None:
            return Response(401, b"401 Unauthorized", "text/html; charset=utf-8", {"WWW-Authenticate": REALM})

        with self.lock:
            try:
                self._checks(ctx, key.strip())
            except WsError as error:
                return self.error_response(ctx, error)
            fault = self.take_fault(ctx.method, ctx.resource)
            ctx.fault = fault
            if fault and fault["kind"] not in AFTER_COMMIT:
                return self.fault_before(ctx, fault)
            try:
                response = self._dispatch(ctx)
            except WsError as error:
                return self.error_response(ctx, error)
            except PhpFatal:
                return Response(500, b"", "text/html; charset=utf-8")
        if fault and 200 <= response.status < 300:
            kind = fault["kind"]
            if kind == "500_after_commit":
                return self.error_response(ctx, WsError(500, 46, "Unable to save resource"))
            if kind == "timeout":
                response.delay = fault["delay"]
            elif kind == "reset_after_commit":
                response.reset = True
        return response

    def _checks(self, ctx: Ctx, key: str) -> None:
        params = ctx.params
        if not self.webservice_enabled:  # §2.1
            raise WsError(503, 22, "The PrestaShop webservice is disabled. Please activate it in the PrestaShop Back Office")
        www = {"WWW-Authenticate": REALM}
        if not key:  # recorded: auth_key_as_password
            raise WsError(401, 17, "Authentication key is empty", www)
        if len(key) != 32:  # §2.2
            raise WsError(401, 18, "Invalid authentication key format", www)
        # Recorded (auth_wrong_key): an unknown 32-character key is both not active (20) and without permission
        # (21), two errors in one answer; a known key switched off has its permissions, so only 20.
        if key != self.key:
            raise WsError(401, 20, "Authentification key is not active", www, more=((21, "No permission for this authentication key"),))
        if not self.key_active:
            raise WsError(401, 20, "Authentification key is not active", www)
        if not self.permissions:
            raise WsError(401, 21, "No permission for this authentication key", www)
        ctx.authenticated = True

        # Shop context (groupShopExists, shopExists, shopHasRight): §2.2 code 132, §2.4 id_shop / code 999.
        group = params.get("id_shop_group", params.get("id_group_shop"))
        if isinstance(group, str) and group.isdigit():
            if int(group) != 1:
                raise WsError(500, 999, "This shop group doesn't have shops")
            ctx.shop_ids = sorted(self.shops)
        elif "id_shop" in params:
            value = params["id_shop"]
            if value == "all":
                ctx.shop_ids = sorted(self.shops)
            elif isinstance(value, str) and re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
                ctx.shop_ids = [php_int(value)]
            else:
                raise WsError(404, 999, "This shop id does not exist")
        else:
            ctx.shop_ids = [1]
        if self.key_shops is not None and not any(s in self.key_shops for s in ctx.shop_ids):
            raise WsError(403, 132, "No permission for this key on this shop")
        if not any(s in self.shops for s in ctx.shop_ids):
            raise WsError(403, 132, "No permission for this key on this shop")

        ctx.languages = self._languages(params.get("language"))

        # checkResource, then checkHTTPMethod: §2.2 codes 26 / 25 / 101, §2.6 codes 27 / 23 (PATCH from 8.0, §0).
        resource = ctx.resource
        if resource:
            if resource not in PS_RESOURCES:
                raise WsError(400, 27, did_you_mean(f'Resource of type "{resource}" does not exists', resource, sorted(PS_RESOURCES)))
            if resource not in self.permissions:
                raise WsError(401, 26, f'Resource of type "{resource}" is not allowed with this authentication key')
        valid = {"GET", "PUT", "POST", "DELETE", "HEAD"} | ({"PATCH"} if self.supports_patch else set())
        if ctx.method not in valid:
            raise WsError(405, 23, f"Method {ctx.method} is not valid")
        if resource and ctx.method in PS_RESOURCES[resource][1]:
            raise WsError(405, 101, f"Method {ctx.method} is not allowed for the resource {resource}")
        if resource and ctx.method not in {m.upper() for m in self.permissions[resource]}:
            raise WsError(405, 25, f"Method {ctx.method} is not allowed for the resource {resource} with this authentication key")

    def _languages(self, value) -> list[int]:
        """WebserviceRequest::filterLanguage (§2.4 language)."""
        if value is None:
            return list(self.languages)
        if not isinstance(value, str):
            raise WsError(400, 79, "language value is wrong")
        if re.fullmatch(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*", value):
            wanted = [php_int(value)]
        elif value.startswith("[") and value.endswith("]"):
            inner = value[1:-1]
            if ("|" in inner) != ("," in inner):
                if "|" in inner:
                    parts = inner.split("|")
                else:
                    bounds = inner.split(",")
                    if len(bounds) != 2:
                        raise WsError(400, 78, "A range value for a language must contains only 2 values")
                    parts = [str(i) for i in range(php_int(bounds[0]), php_int(bounds[1]) + 1)]
                if not all(p.strip().isdigit() for p in parts):
                    raise WsError(400, 80, "Language ID must be numeric")
                wanted = [int(p) for p in parts]
            else:
                found = re.search(r"\[(\d+)\]", value)
                wanted = [int(found.group(1))] if found else []
        else:
            raise WsError(400, 79, "language value is wrong")
        languages = [lang for lang in wanted if lang in self.languages]
        if not languages:
            raise WsError(400, 81, "language is not available")
        return languages

    # --- dispatch ------------------------------------------------------------------------------------------

    def _dispatch(self, ctx: Ctx) -> Response:
        if not ctx.resource:
            if ctx.method not in ("GET", "HEAD"):
                raise WsError(405, 101, f"Method {ctx.method} is not allowed for the resource list")
            if ctx.json:
                if self.version_tuple >= (8,):
                    # Recorded (root_json): a TypeError in the 8.1.2 JSON renderer, 500 with an empty body.
                    # 9.x is assumed the same (reference §0: the legacy webservice is unchanged).
                    raise PhpFatal()
                return self.ok(ctx, 200, php_json([n for n in sorted(PS_RESOURCES) if n in self.permissions]))
            body = resource_list_body(self.output(ctx), self.shop_name, self.permissions, self.supports_patch)
            return self.ok(ctx, 200, body)
        res = RESOURCES.get(ctx.resource)
        if ctx.method in ("POST", "PUT", "PATCH"):
            return self.save(ctx, res)
        if res is None or ctx.method not in res.methods:
            # Simulator choice: a resource or a method the simulator does not model answers 501 code 124
            # (the core's "not implemented" answer) rather than pretending.
            raise WsError(501, 124, f"Simulator: {ctx.method} on the {ctx.resource!r} resource is not simulated")
        return self.get(ctx, res)

    def output(self, ctx: Ctx) -> Output:
        return Output(ctx.json, ctx.ws_url, ctx.languages or list(self.languages), self.version_tuple, display_in_query="display" in ctx.params)

    def ok(self, ctx: Ctx, status: int, content: str | None) -> Response:
        if content is None:  # GET of an unknown id: 404 with an empty body and no content type (§2.6)
            return Response(status, b"", None, self._ps_headers(ctx))
        body = content.encode("utf-8")
        headers = self._ps_headers(ctx)
        headers["Content-Sha1"] = hashlib.sha1(body).hexdigest()
        return Response(status, body, self.output(ctx).content_type, headers)

    def _ps_headers(self, ctx: Ctx) -> dict:
        # Recorded: PSWS-Version is the version once authenticated, else "0" (auth_wrong_key,
        # auth_key_as_password): the output builder's default header value, there since 1.5.
        return {
            "PSWS-Version": self.version if ctx.authenticated else "0",
            "Access-Time": str(int(time.time())),
            "X-Powered-By": "PrestaShop Webservice",
            "Execution-Time": f"{time.monotonic() - ctx.started:.3f}",
        }

    def error_response(self, ctx: Ctx, error: WsError) -> Response:
        """Recorded: the error documents carry the webservice headers but no Content-Sha1."""
        headers = self._ps_headers(ctx)
        headers.update(error.headers)
        body = errors_body(self.output(ctx), error.errors).encode("utf-8")
        return Response(error.status, body, self.output(ctx).content_type, headers)
