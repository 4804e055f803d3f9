"""A ready Postman collection (v2.1) made from the API's OpenAPI document, kept in the repository and run by newman.

One request per operation, in folders by tag, with the document's examples for parameters and bodies (optional
query parameters present but switched off), the key in a collection variable `apiKey` sent as a bearer token,
a test on every request asserting its documented success status and content type, and a pre-request script
that signs the PrestaShop webhook (Standard Webhooks) from the variable `webhookSecret`. The requests are ordered
and chained (ETag, Location, feed cursor) so the whole collection passes in one run against a fresh server.

Regenerate with `flask --app wsgi openapi postman` whenever the API changes (a test compares it).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from flask import Flask

COLLECTION_PATH = Path(__file__).resolve().parent.parent / "docs" / "postman" / "gescom-prestashop.postman_collection.json"
REGENERATE = "flask --app wsgi openapi postman"
SCHEMA_URL = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
IDS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:gescom-prestashop:postman-collection")  # stable ids: same document, same file
# Within a folder: create (PUT), read, act (POST), change (PATCH), remove; then each request moves after the ones
# setting a variable it uses (an ETag, an id from a Location header, the feed's cursor).
PHASES = {"put": 0, "get": 1, "head": 1, "post": 2, "patch": 3, "delete": 4}
SIGNED_HEADER = "webhook-signature"  # an operation taking it is a signed webhook: the pre-request script signs it

# State the document cannot say: the feed's cursor, read from the pull, is what the acknowledgement sends, so the
# acknowledgement never goes beyond what the key was served (422 ack_beyond_served).
CAPTURES = {("get", "/api/v1/updates"): {"feedCursor": "pm.response.json().next"}}
BODIES = {("post", "/api/v1/updates/ack"): '{\n  "up_to": {{feedCursor}}\n}'}

WEBHOOK_SIGNING = """// Standard Webhooks: webhook-signature is "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)),
// the key being the bytes of webhookSecret after "whsec_" (base64), or the secret's own text.
var CryptoJS = require("crypto-js");
var secret = pm.variables.get("webhookSecret") || "";
var key = secret.indexOf("whsec_") === 0 ? CryptoJS.enc.Base64.parse(secret.slice(6)) : CryptoJS.enc.Utf8.parse(secret);
var id = "msg_" + pm.variables.replaceIn("{{$guid}}");
var timestamp = String(Math.floor(Date.now() / 1000));
var body = pm.request.body && pm.request.body.raw ? pm.variables.replaceIn(pm.request.body.raw) : "";
var signature = CryptoJS.enc.Base64.stringify(CryptoJS.HmacSHA256(id + "." + timestamp + "." + body, key));
pm.variables.set("webhookId", id);
pm.variables.set("webhookTimestamp", timestamp);
pm.variables.set("webhookSignature", "v1," + signature);"""
SIGNING_VARIABLES = {"webhook-id": "webhookId", "webhook-timestamp": "webhookTimestamp", "webhook-signature": "webhookSignature"}


def served_document(app: Flask) -> dict:
    """The OpenAPI document as the app serves it at /openapi.json, read as if at `make run`'s address (its `servers`
    is where it is read: the collection's `baseUrl` starts there)."""
    answer = app.test_client().get("/openapi.json", base_url=DEFAULT_BASE_URL)
    if answer.status_code != 200:
        raise RuntimeError(f"/openapi.json answered {answer.status_code}")
    return answer.get_json()


def collection_json(document: dict) -> str:
    """The collection as the committed file holds it: stable ids, stable order, indented, one newline at the end."""
    return json.dumps(build_collection(document), indent=2, ensure_ascii=False) + "\n"


def _id(*parts: str) -> str:
    return str(uuid.uuid5(IDS, " ".join(parts)))


def build_collection(document: dict) -> dict:
    """The Postman collection (v2.1) for this OpenAPI document."""
    operations = _operations(document)
    context = _Context(document, operations)
    folders = []
    for tag, description in _tags(document, operations):
        items = _in_order([_item(context, method, path, operation) for method, path, operation in operations if _tag_of(operation) == tag])
        folders.append({"id": _id("folder", tag), "name": tag, "description": description, "item": items})
    info = document.get("info", {})
    return {
        "info": {
            "_postman_id": _id("collection", info.get("title", "")),
            "name": info.get("title", "API"),
            "description": info.get("description", ""),
            "schema": SCHEMA_URL,
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{apiKey}}", "type": "string"}]},
        "variable": context.variables(),
        "item": folders,
    }


def _in_order(items: list[dict]) -> list[dict]:
    """The same requests, each after those (still waiting) that set a collection variable it uses; else kept in order."""
    sets, uses = {}, {}
    for item in items:
        scripts = " ".join(line for event in item["event"] for line in event["script"]["exec"])
        sets[item["id"]] = set(re.findall(r'collectionVariables\.set\("(\w+)"', scripts))
        uses[item["id"]] = set(re.findall(r"\{\{(\w+)\}\}", json.dumps(item["request"])))
    placed, waiting = [], list(items)
    while waiting:
        ready = [item for item in waiting if not any(uses[item["id"]] & sets[other["id"]] for other in waiting if other is not item)]
        placed.append((ready or waiting)[0])
        waiting.remove(placed[-1])
    return placed


def _operations(document: dict) -> list[tuple[str, str, dict]]:
    """(method, path, operation): create, read, act, change, remove, each by path; path-level parameters merged in."""
    found = []
    for path in sorted(document.get("paths", {})):
        entry = document["paths"][path]
        for method in PHASES:
            if method in entry:
                operation = dict(entry[method])
                own = {(p.get("in"), p.get("name")) for p in operation.get("parameters", [])}
                shared = [p for p in entry.get("parameters", []) if (p.get("in"), p.get("name")) not in own]
                operation["parameters"] = shared + list(operation.get("parameters", []))
                found.append((method, path, operation))
    return sorted(found, key=lambda found: (PHASES[found[0]], found[1]))


def _tag_of(operation: dict) -> str:
    return (operation.get("tags") or ["other"])[0]


def _tags(document: dict, operations: list) -> list[tuple[str, str]]:
    """The folders: the document's tags in its order, then any other tag an operation uses, by name."""
    declared = [(tag["name"], tag.get("description", "")) for tag in document.get("tags", [])]
    used = {_tag_of(operation) for _, _, operation in operations}
    known = {name for name, _ in declared}
    return [(name, text) for name, text in declared if name in used] + [(name, "") for name in sorted(used - known)]


class _Context:
    """What requests share: the document (to resolve $ref), the collection variables and where they are set."""

    def __init__(self, document: dict, operations: list):
        self.document = document
        self.values: dict[str, object] = {}
        self.etags: dict[str, str] = {}  # path -> variable holding the ETag its GET answered
        self.locations: dict[tuple[str, str], str] = {}  # (method, path) -> variable set from the Location header
        self.named: dict[str, str] = {}  # a parameter's example, by name, from wherever the document gives one
        for method, path, operation in operations:
            self._learn(method, path, operation, {p for _, p, _ in operations})

    def _learn(self, method: str, path: str, operation: dict, paths: set[str]) -> None:
        for parameter in map(self.resolve, operation["parameters"]):
            if parameter.get("in") in ("path", "query") and self.has_example(parameter):
                self.named.setdefault(parameter["name"], _text(self.example_of_parameter(parameter)))
        headers = self.resolve(_success(operation)[1]).get("headers", {})
        if method == "get" and "ETag" in headers:
            name = _camel([part for part in path.split("/") if part and "{" not in part][-1]) + "Etag"
            self.etags[path], self.values[name] = name, ""
        if "Location" in headers:
            for other in sorted(paths):
                tail = other[len(path) :]
                if other.startswith(path + "/{") and tail.count("/") == 1 and tail.endswith("}"):
                    self.locations[(method, path)] = tail[2:-1]
                    self.values[tail[2:-1]] = ""

    def has_example(self, parameter: dict) -> bool:
        return "example" in parameter or bool(parameter.get("examples")) or "example" in self.resolve(parameter.get("schema", {}))

    def path_value(self, parameter: dict) -> str:
        """A path parameter's example; else a collection variable of its name (set by a response, or holding the example
        the document gives to a parameter of that name elsewhere, or empty: to set)."""
        parameter, name = self.resolve(parameter), parameter["name"]
        if name not in self.locations.values() and self.has_example(parameter):
            return _text(self.example_of_parameter(parameter))
        self.values.setdefault(name, "" if name in self.locations.values() else self.named.get(name, ""))
        return "{{" + name + "}}"

    def variables(self) -> list[dict]:
        servers = self.document.get("servers") or [{}]
        url = str(servers[0].get("url", "")).rstrip("/")
        fixed = {"baseUrl": url if url.startswith("http") else DEFAULT_BASE_URL, "apiKey": "", "webhookSecret": ""}
        captured = {name: "" for capture in CAPTURES.values() for name in capture}
        merged = {**fixed, **{k: self.values[k] for k in sorted(self.values)}, **captured}
        return [{"key": key, "value": _text(value), "type": "string"} for key, value in merged.items()]

    def resolve(self, node: dict) -> dict:
        while isinstance(node, dict) and "$ref" in node:
            target = self.document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def example_of_parameter(self, parameter: dict) -> object:
        parameter = self.resolve(parameter)
        if "example" in parameter:
            return parameter["example"]
        examples = list(parameter.get("examples", {}).values())
        if examples:
            return self.resolve(examples[0]).get("value")
        return self.example_of_schema(parameter.get("schema", {}))

    def example_of_schema(self, schema: dict, depth: int = 0) -> object:
        """The schema's example or default; else a value built from its type (required properties only)."""
        schema = self.resolve(schema)
        for key in ("example", "default"):
            if key in schema:
                return schema[key]
        if schema.get("enum"):
            return schema["enum"][0]
        kind = schema.get("type", "object" if "properties" in schema else "string")
        if kind == "object" and depth < 8:
            properties = schema.get("properties", {})
            return {name: self.example_of_schema(properties[name], depth + 1) for name in schema.get("required", []) if name in properties}
        if kind == "array":
            return [self.example_of_schema(schema.get("items", {}), depth + 1)] if schema.get("minItems") else []
        return {"integer": schema.get("minimum", 1), "number": schema.get("minimum", 1), "boolean": False}.get(kind, "string")

    def body_example(self, operation: dict) -> object:
        media = self.resolve(operation["requestBody"]).get("content", {}).get("application/json", {})
        if "example" in media:
            return media["example"]
        examples = list(media.get("examples", {}).values())
        if examples:
            return self.resolve(examples[0]).get("value")
        return self.example_of_schema(media.get("schema", {}))


def _camel(text: str) -> str:
    words = text.replace("_", "-").split("-")
    return words[0].lower() + "".join(word.capitalize() for word in words[1:])


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _successes(operation: dict) -> list[int]:
    """The documented success statuses (2xx), lowest first; 200 when the document names none."""
    return sorted(int(code) for code in operation.get("responses", {}) if code.isdigit() and code.startswith("2")) or [200]


def _success(operation: dict) -> tuple[int, dict]:
    """The lowest documented success status and its response."""
    status = _successes(operation)[0]
    return status, operation.get("responses", {}).get(str(status), {})


def _item(context: _Context, method: str, path: str, operation: dict) -> dict:
    request = {
        "method": method.upper(),
        "header": _headers(context, method, path, operation),
        "url": _url(context, path, operation),
        "description": "\n\n".join(part for part in (operation.get("summary"), operation.get("description")) if part),
    }
    body = _body(context, method, path, operation)
    if body is not None:
        request["body"] = body
    if operation.get("security") == []:
        request["auth"] = {"type": "noauth"}
    events = [
        {"listen": "test", "script": {"id": _id("test", method, path), "type": "text/javascript", "exec": _tests(context, method, path, operation)}}
    ]
    if any(p.get("in") == "header" and p.get("name", "").lower() == SIGNED_HEADER for p in operation["parameters"]):
        script = {"id": _id("prerequest", method, path), "type": "text/javascript", "exec": WEBHOOK_SIGNING.splitlines()}
        events.insert(0, {"listen": "prerequest", "script": script})
    return {"id": _id("request", method, path), "name": f"{method.upper()} {path}", "event": events, "request": request, "response": []}


def _url(context: _Context, path: str, operation: dict) -> dict:
    values = {p["name"]: context.path_value(p) for p in map(context.resolve, operation["parameters"]) if p.get("in") == "path"}
    segments = [values.get(segment[1:-1], segment) if segment.startswith("{") else segment for segment in path.strip("/").split("/")]
    query = []
    for parameter in operation["parameters"]:
        parameter = context.resolve(parameter)
        if parameter.get("in") != "query":
            continue
        entry = {"key": parameter["name"], "value": _text(context.example_of_parameter(parameter))}
        if parameter.get("description"):
            entry["description"] = parameter["description"]
        if not parameter.get("required"):
            entry["disabled"] = True
        query.append(entry)
    enabled = "&".join(f"{q['key']}={q['value']}" for q in query if not q.get("disabled"))
    url = {"raw": "{{baseUrl}}/" + "/".join(segments) + (f"?{enabled}" if enabled else ""), "host": ["{{baseUrl}}"], "path": segments}
    if query:
        url["query"] = query
    return url


def _headers(context: _Context, method: str, path: str, operation: dict) -> list[dict]:
    headers = []
    for parameter in operation["parameters"]:
        parameter = context.resolve(parameter)
        if parameter.get("in") != "header":
            continue
        name = parameter["name"]
        if name.lower() == "if-match" and path in context.etags:
            value = "{{" + context.etags[path] + "}}"
        elif name.lower() in SIGNING_VARIABLES:
            value = "{{" + SIGNING_VARIABLES[name.lower()] + "}}"
        else:
            value = _text(context.example_of_parameter(parameter))
        entry = {"key": name, "value": value, "type": "text"}
        if parameter.get("description"):
            entry["description"] = parameter["description"]
        if not parameter.get("required"):
            entry["disabled"] = True
        headers.append(entry)
    if _body(context, method, path, operation) is not None:
        headers.append({"key": "Content-Type", "value": "application/json", "type": "text"})
    return headers


def _body(context: _Context, method: str, path: str, operation: dict) -> dict | None:
    """The request's JSON body: the document's example, sent when the body is required or has an example."""
    if (method, path) in BODIES:
        raw = BODIES[(method, path)]
    elif "requestBody" in operation:
        body = context.resolve(operation["requestBody"])
        example = context.body_example(operation)
        if not body.get("required") and not example:
            return None
        raw = json.dumps(example, indent=2, ensure_ascii=False)
    else:
        return None
    return {"mode": "raw", "raw": raw, "options": {"raw": {"language": "json"}}}


def _tests(context: _Context, method: str, path: str, operation: dict) -> list[str]:
    """The test script: the documented success status, the documented content type, then what later requests need."""
    status, response = _success(operation)
    statuses = _successes(operation)
    if len(statuses) == 1:
        lines = [f'pm.test("status is {status}, as documented", function () {{', f"    pm.response.to.have.status({status});", "});"]
    else:
        listed = ", ".join(str(code) for code in statuses)
        lines = [
            f'pm.test("status is one of {listed}, as documented", function () {{',
            f"    pm.expect(pm.response.code).to.be.oneOf([{listed}]);",
            "});",
        ]
    if status != 204:
        media = next(iter(context.resolve(response).get("content", {})), "application/json")
        lines += [
            f'pm.test("content type is {media}", function () {{',
            f'    pm.expect(pm.response.headers.get("Content-Type") || "").to.include("{media}");',
            "});",
        ]
    sets = []
    if method == "get" and path in context.etags:
        sets.append(f'pm.collectionVariables.set("{context.etags[path]}", pm.response.headers.get("ETag"));')
    if (method, path) in context.locations:
        variable = context.locations[(method, path)]
        sets.append(f'pm.collectionVariables.set("{variable}", (pm.response.headers.get("Location") || "").split("/").pop());')
    sets += [f'pm.collectionVariables.set("{name}", {expression});' for name, expression in CAPTURES.get((method, path), {}).items()]
    if sets:
        lines += ["if (pm.response.code >= 200 && pm.response.code < 300) {"] + [f"    {line}" for line in sets] + ["}"]
    return lines


def write_collection(app: Flask, path: Path = COLLECTION_PATH) -> bool:
    """Write the collection for the app's document; True when the file changed."""
    text = collection_json(served_document(app))
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
