"""The OpenAPI document is exact: OpenAPI 3.1, every error a problem document, an example everywhere, and every
example (in the document and in docs/api.md) valid against the schema of its operation.

Examples come from real answers; the schemathesis run (tests/integration/test_api_fuzz.py) holds the answers to
the document, these tests hold the document and docs/api.md to themselves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
METHODS = ("get", "put", "post", "delete", "patch")
SUCCESS_WITHOUT_BODY = {"204", "304"}


@pytest.fixture
def document(client) -> dict:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    return answer.json


def operations(document: dict):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def validator(document: dict, schema: dict):
    """A JSON Schema 2020-12 validator of `schema`, its $refs resolved in the document's components."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})


def errors_of(document: dict, schema: dict, instance) -> list[str]:
    return [f"{error.instance_path}: {error.message}" for error in validator(document, schema).iter_errors(instance)]


def media_examples(media: dict) -> list:
    if "example" in media:
        return [media["example"]]
    return [example["value"] for example in media.get("examples", {}).values()]


def test_the_document_is_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    assert OPENAPI_31_VALIDATOR.is_valid(document), [error.message for error in OPENAPI_31_VALIDATOR.iter_errors(document)][:5]
    assert [server["url"] for server in document["servers"]] == ["http://localhost"]  # where the test client read it
    text = json.dumps(document)
    assert '"nullable"' not in text  # 3.0's; 3.1 says null in the type
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid({**schema, "components": document["components"]}), name
    assert "Error" not in document["components"]["schemas"] and "responses" not in document["components"]


def test_servers_say_where_the_document_was_read(app):
    """Imported from its URL (Postman, a client generator), the document's requests go back to that server; behind
    a trusted proxy, to the address the proxy was asked for; printed by `flask openapi print`, it stays relative."""
    read_at = app.test_client().get("/openapi.json", base_url="http://sync.example.com:8443/").json
    assert read_at["servers"][0]["url"] == "http://sync.example.com:8443"
    with app.app_context():
        printed = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    assert printed["servers"] == [{"url": "/", "description": "This middleware"}]


def test_every_error_is_a_declared_problem_document(document):
    seen = set()
    for label, operation in operations(document):
        responses = operation["responses"]
        assert "default" not in responses, label
        assert {"406", "503"} <= set(responses), label
        if operation.get("security", document["security"]):
            assert {"401", "429"} <= set(responses), label
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= set(responses), label
        for status, response in responses.items():
            if int(status) < 400 or label == "GET /api/v1/health" and status == "503":
                continue
            assert list(response["content"]) == ["application/problem+json"], (label, status)
            media = response["content"]["application/problem+json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Problem"}, (label, status)
            for example in media_examples(media):
                assert example["status"] == int(status), (label, status)
                seen.add(example["code"])
    assert {"unauthorized", "validation_error", "settings_changed", "if_match_malformed", "ack_beyond_served", "cursor_beyond_head"} <= seen
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["status"]["type"] == "integer" and problem["properties"]["code"]["type"] == "string"
    assert problem["additionalProperties"] is True


def test_every_operation_has_examples_that_fit_their_schemas(document):
    wrong, checked = [], 0
    for label, operation in operations(document):
        bodies = [("request", operation["requestBody"]["content"])] if "requestBody" in operation else []
        bodies += [(status, response.get("content", {})) for status, response in operation["responses"].items()]
        for where, content in bodies:
            if where in SUCCESS_WITHOUT_BODY:
                wrong += [f"{label} {where}: a body"] if content else []
                continue
            wrong += [] if content else [f"{label} {where}: no content"]
            for media in content.values():
                examples = media_examples(media)
                wrong += [] if examples else [f"{label} {where}: no example"]
                for example in examples:
                    wrong += [f"{label} {where}: {error}" for error in errors_of(document, media["schema"], example)]
                    checked += 1
        for parameter in operation.get("parameters", ()):
            if "example" not in parameter:
                wrong.append(f"{label} {parameter['name']}: no example")
            elif errors_of(document, parameter["schema"], parameter["example"]):
                wrong.append(f"{label} {parameter['name']}: the example does not fit")
            if parameter["in"] == "query" and parameter["required"]:
                wrong.append(f"{label} {parameter['name']}: an optional query parameter said to be required")
    assert wrong == []
    assert checked > 50


def test_an_example_that_does_not_fit_is_caught(document):
    """The validation above can fail: a problem with a string status, a feed page with a string cursor."""
    assert errors_of(document, {"$ref": "#/components/schemas/Problem"}, {"type": "about:blank", "title": "x", "status": "422", "code": "x"})
    assert errors_of(document, {"$ref": "#/components/schemas/FeedPage"}, {"updates": [], "next": "7", "has_more": False, "head": 7})
    ack = document["paths"]["/api/v1/updates/ack"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert errors_of(document, ack, {}) and errors_of(document, ack, {"ids": [1], "up_to": 1}) and not errors_of(document, ack, {"up_to": 1})


# --- docs/api.md --------------------------------------------------------------------------------------------------


def docs_examples() -> list[tuple[str, dict]]:
    """(operation, JSON answer) for each JSON example of docs/api.md under an endpoint's heading (### `GET /api/...`);
    shortened ones (with …) are left out."""
    found, operation = [], None
    for block in re.split(r"^(#{2,3} .*)$", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE):
        heading = re.fullmatch(r"#{2,3} `([A-Z]+) (/api/v1/[^`]*)`", block.strip())
        if block.startswith("#"):
            operation = f"{heading.group(1)} {heading.group(2)}" if heading else None
            continue
        for code in re.findall(r"```json\n(.*?)```", block, flags=re.DOTALL):
            if operation is None or "…" in code:
                continue
            try:
                answers = [json.loads(code)]
            except ValueError:
                answers = [json.loads(line) for line in code.splitlines() if line.strip()]
            found += [(operation, answer) for answer in answers]
    return found


def response_schema(document: dict, operation: str, answer: dict) -> dict | None:
    method, path = operation.split(" ", 1)
    path = re.sub(r"\{id\}", "{run_id}", path)
    responses = document["paths"][path][method.lower()]["responses"]
    if "code" in answer and "status" in answer:
        response = responses.get(str(answer["status"]))
        return None if response is None else response["content"]["application/problem+json"]["schema"]
    success = [response for status, response in responses.items() if status.startswith("2")]
    return {"anyOf": [response["content"]["application/json"]["schema"] for response in success if "content" in response]}


def test_docs_examples_agree_with_the_document(document):
    examples = docs_examples()
    assert len(examples) >= 15
    for operation, answer in examples:
        schema = response_schema(document, operation, answer)
        assert schema is not None, f"{operation}: docs/api.md shows a status the document does not declare: {answer}"
        assert not errors_of(document, schema, answer), (operation, answer, errors_of(document, schema, answer))
