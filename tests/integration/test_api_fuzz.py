"""Property-based run of the whole API from its own OpenAPI document (schemathesis): no input makes it fail.

Every operation gets generated requests, valid and invalid, with an admin key; none may answer 5xx.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from models import db
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from tests.conftest import bearer

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "40"))  # per operation; CI may raise it


@pytest.fixture
def api_schema(app, clock):
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    for key in ("4711", "4712"):
        piece = warehouse.create_order(key, [("MUG", "Mug", 2)])
        warehouse.transform((1, piece), 3, take={"MUG": 1})
    app.config["WEBHOOK_SECRET"] = "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTEyMzQ1Njc4OTA="
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def test_no_input_makes_the_api_fail(api_schema, keys):
    """Each operation of the document, with EXAMPLES generated requests (hypothesis drives schemathesis'
    strategies directly: its pytest plugin does not run on this pytest)."""
    headers = bearer(keys["admin"])
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            nonlocal calls
            response = case.call(headers={**(case.headers or {}), **headers})
            calls += 1
            case.validate_response(response, checks=(not_a_server_error,))

        check()
    assert calls >= len(operations)  # every operation was called (hypothesis may need fewer examples)
