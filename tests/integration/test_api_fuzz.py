"""Property-based run of the whole API from its own OpenAPI document (schemathesis), with all its checks.

Every operation gets generated requests, valid and invalid, with an admin key. Each answer must be what the
document says: a declared status, its content type and schema, its headers; valid input accepted, invalid input
refused, a missing required header refused, no key refused, and never a 5xx.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.config import ChecksConfig, PositiveDataAcceptanceConfig, SchemathesisConfig

from models import db
from sync.gescom.adapter import GesCom
from sync.gescom.demo.schema import create_gescom
from sync.gescom.demo.warehouse import Warehouse
from sync.services.run_config import RunConfig
from sync.services.runs import run_sync
from sync.services.unit_of_work import UnitOfWork
from tests.conftest import bearer, make_test_app

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "40"))  # per operation; CI raises it to 200
# Valid input the document cannot tell from input the store refuses: 412 an If-Match that is well-formed but not
# the current ETag; 422 a refusal that depends on data (ack_beyond_served: ids never served; invalid_settings: a
# field name that is not a column of this GesCom; invalid_tracking_number: characters the shop cannot take).
WEBHOOK_SECRET = "whsec_c2VjcmV0LWZvci10ZXN0cy1vbmx5LTEyMzQ1Njc4OTA="
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "412", "422", "429"]


def all_checks() -> list:
    """Every check schemathesis has (`--checks all`)."""
    load_all_checks()
    return [check for check in CHECKS.get_all() if not is_check_class(check)]


@pytest.fixture
def app(store_db, gescom_db):
    """Failed key checks are not throttled here: the `ignored_auth` check sends many requests without a key, and a
    throttled address would be answered 429 whatever it sends."""
    app = make_test_app(store_db, gescom_db, SYNC_RECHECK_AGE=0, RATELIMIT_ENABLED=False, WEBHOOK_SECRET=WEBHOOK_SECRET)
    if gescom_db.engine_options:  # PostgreSQL: the test's own schema, as conftest's `app` does
        app.extensions["gescom"] = GesCom(gescom_db.engine)
    return app


@pytest.fixture
def api_schema(app, clock):
    engine = app.extensions["gescom"].engine
    create_gescom(engine)
    warehouse = Warehouse(engine, clock)
    for key in ("4711", "4712"):
        piece = warehouse.create_order(key, [("MUG", "Mug", 2)])
        warehouse.transform((1, piece), 3, take={"MUG": 1})
    with app.app_context():
        run_sync(UnitOfWork(db.session), app.extensions["gescom"], config=RunConfig(recheck_age=timedelta(0)))
        db.session.remove()
    config = SchemathesisConfig()
    config.projects.default.checks = ChecksConfig(positive_data_acceptance=PositiveDataAcceptanceConfig(expected_statuses=ACCEPTED))
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)


def test_the_api_answers_as_its_document_says(api_schema, keys):
    """Each operation of the document, with EXAMPLES generated requests (hypothesis drives schemathesis'
    strategies directly: its pytest plugin does not run on this pytest)."""
    headers = bearer(keys["admin"])
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    checks = all_checks()
    assert len(checks) >= 10
    calls, statuses = 0, Counter()
    started = time.monotonic()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            nonlocal calls
            sent = {**(case.headers or {}), **headers}
            response = case.call(headers=sent)
            calls += 1
            statuses[response.status_code] += 1
            case.validate_response(response, checks=checks, headers=sent)

        check()
    assert calls >= len(operations)  # every operation was called (hypothesis may need fewer examples)
    assert statuses[429] == 0 and sum(count for status, count in statuses.items() if status < 300) >= len(operations)
    print(f"{calls} calls in {time.monotonic() - started:.0f} s: {sorted(statuses.items())}")
