"""Operations: GET /metrics (Prometheus, read from the store at scrape time), a request id on every answer, JSON logs.

gunicorn runs several worker processes: counters kept in one would be that worker's only, so the collector asks the
store (sync/store/metrics.py) each time it is scraped. /metrics needs an API key (any scope) like the API, and is
left out of the OpenAPI document: it answers Prometheus' text format, not JSON.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

from flask import Blueprint, Flask, Response, current_app, g, has_request_context, request
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from models import db
from sync.services.dashboard import ConsumerLag, consumer_lags
from sync.services.push_retry import pushing_shop_ids
from sync.services.runs import CURRENT_RUN
from sync.store.metrics import StoreFigures, store_figures

log = logging.getLogger(__name__)

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_HEADER = "X-Request-Id"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
RUN_OUTCOMES = ("succeeded", "failed", "interrupted")
PUSH_STATUSES = ("pending", "pushed", "failed", "conflict", "dismissed")

blp = Blueprint("metrics", __name__)


# --- request id -----------------------------------------------------------------------------------------------


def request_id() -> str:
    """This request's id: the client's X-Request-Id when it is a sane token (≤ 64 of [A-Za-z0-9._-]), else a new one."""
    if "request_id" not in g:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = offered if SANE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    return g.request_id


def _note_request_id() -> None:
    request_id()  # returns None: a before_request hook's return value would be taken for the answer


def _answer_with_request_id(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    log.debug("%s %s -> %s", request.method, request.path, response.status_code)  # the path only: no query string
    return response


# --- logs -----------------------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and request_id / run_id when known."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            event["request_id"] = g.request_id
        if CURRENT_RUN.get() is not None:  # a line logged while a run goes on, in its thread
            event["run_id"] = CURRENT_RUN.get()
        for name in ("request_id", "run_id"):  # or given by the caller: log.info(..., extra={"run_id": run.id})
            if getattr(record, name, None) is not None:
                event[name] = getattr(record, name)
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            event["exception"] = record.exc_text
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        return json.dumps(event, ensure_ascii=False, default=str)


def log_handler(log_format: str) -> logging.Handler:
    """A handler to standard error writing LOG_FORMAT's lines ("text": today's format, "json": JsonFormatter)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(log_format: str, level: str) -> None:
    """The root logger's level and format; like logging.basicConfig, a root logger already set up is left as it is."""
    logging.basicConfig(level=level.upper(), handlers=[log_handler(log_format)])


# --- metrics --------------------------------------------------------------------------------------------------


def _timestamp(moment: datetime) -> float:
    return moment.replace(tzinfo=timezone.utc).timestamp()  # the store keeps naive UTC


def _age(figures: StoreFigures, since: datetime | None) -> float:
    return max(0.0, (figures.now - since).total_seconds()) if since is not None else 0.0


def _run_families(figures: StoreFigures) -> Iterator[Metric]:
    runs = figures.runs
    ended = CounterMetricFamily("gescom_sync_runs", "Runs that ended, by outcome (dry runs aside).", labels=["status"])
    for status in sorted(set(RUN_OUTCOMES) | set(runs) - {"running"}):
        ended.add_metric([status], runs[status].count if status in runs else 0)
    yield ended
    yield GaugeMetricFamily("gescom_sync_runs_running", "Runs going on now.", value=runs["running"].count if "running" in runs else 0)
    for name, attribute, text in (
        ("gescom_sync_run_orders_checked", "orders_checked", "Shop orders checked against GesCom, summed over runs."),
        ("gescom_sync_run_orders_skipped", "orders_skipped", "Shop orders a run could not read in GesCom (the next run retries them)."),
        ("gescom_sync_run_updates_created", "updates_created", "Updates created by runs."),
    ):
        yield CounterMetricFamily(name, text, value=sum(getattr(status, attribute) for status in runs.values()))
    succeeded = runs.get("succeeded")
    if succeeded is not None and succeeded.last_finished_at is not None:
        when = _timestamp(succeeded.last_finished_at)
        yield GaugeMetricFamily("gescom_sync_last_success_timestamp_seconds", "When the last successful run ended (Unix time).", value=when)
    last = figures.last_run
    if last is None:
        return
    yield GaugeMetricFamily("gescom_sync_last_run_duration_seconds", "How long the last run that ended took.", value=last.seconds)
    when = _timestamp(last.finished_at)
    yield GaugeMetricFamily("gescom_sync_last_run_finished_timestamp_seconds", "When the last run ended (Unix time).", value=when)
    outcome = GaugeMetricFamily("gescom_sync_last_run_status", "The last run's outcome: 1 for its status, 0 for the others.", labels=["status"])
    for status in sorted(set(RUN_OUTCOMES) | {last.status}):
        outcome.add_metric([status], 1 if status == last.status else 0)
    yield outcome
    yield GaugeMetricFamily("gescom_sync_last_run_warnings", "Warnings of the last run (GesCom data it had to work around).", value=last.warnings)
    yield GaugeMetricFamily("gescom_sync_last_run_orders_skipped", "Shop orders the last run could not read in GesCom.", value=last.orders_skipped)


def _store_families(figures: StoreFigures) -> Iterator[Metric]:
    orders = GaugeMetricFamily("gescom_sync_shop_orders", "Shop orders known; the open ones are followed by every run.", labels=["state"])
    orders.add_metric(["open"], figures.shop_orders_open)
    orders.add_metric(["closed"], figures.shop_orders_closed)
    yield orders
    yield GaugeMetricFamily("gescom_sync_updates", "Updates stored.", value=figures.updates)
    waiting = figures.updates_unacknowledged
    yield GaugeMetricFamily("gescom_sync_updates_unacknowledged", "Updates no consumer of the pull feed has acknowledged yet.", value=waiting)
    yield GaugeMetricFamily(
        "gescom_sync_updates_oldest_unacknowledged_age_seconds",
        "Age of the oldest update no consumer has acknowledged yet (0 when none waits).",
        value=_age(figures, figures.oldest_unacknowledged_at),
    )


def _consumer_families(lags: list[ConsumerLag], now: datetime) -> Iterator[Metric]:
    """The feed's lag per consumer (each key that may write acknowledges for itself), labelled by key name."""
    waiting = GaugeMetricFamily("gescom_sync_consumer_updates_waiting", "Updates this consumer has not acknowledged yet.", labels=["consumer"])
    oldest = GaugeMetricFamily(
        "gescom_sync_consumer_oldest_waiting_age_seconds",
        "Age of the oldest update this consumer has not acknowledged (0 when none waits).",
        labels=["consumer"],
    )
    for lag in lags:
        waiting.add_metric([lag.name], lag.waiting)
        oldest.add_metric([lag.name], max(0.0, (now - lag.oldest).total_seconds()) if lag.oldest else 0.0)
    yield waiting
    yield oldest


def _push_families(figures: StoreFigures) -> Iterator[Metric]:
    counts = GaugeMetricFamily(
        "gescom_sync_push_updates", "Updates by push status: pending, pushed, failed (for good), conflict (held), dismissed.", labels=["status"]
    )
    retried = GaugeMetricFamily(
        "gescom_sync_push_updates_retried", "Updates tried more than once, or tried and waiting for another try, by push status.", labels=["status"]
    )
    for status in sorted(set(PUSH_STATUSES) | set(figures.push)):
        figure = figures.push.get(status)
        counts.add_metric([status], figure.count if figure else 0)
        retried.add_metric([status], figure.retried if figure else 0)
    yield counts
    yield retried
    pending = figures.push.get("pending")
    yield GaugeMetricFamily(
        "gescom_sync_push_oldest_pending_age_seconds",
        "Age of the oldest update not pushed yet (0 when none waits).",
        value=_age(figures, pending.oldest_created_at if pending else None),
    )


class StoreCollector(Collector):
    """The store's figures, read when Prometheus scrapes (in the scrape's request: its store session)."""

    def collect(self) -> Iterator[Metric]:
        push_mode = bool(pushing_shop_ids(db.session, current_app.extensions["shops"]))
        figures = store_figures(db.session, push_mode=push_mode)
        yield from _run_families(figures)
        yield from _store_families(figures)
        if not push_mode:
            yield from _consumer_families(consumer_lags(db.session), figures.now)
        if push_mode:
            yield from _push_families(figures)


@blp.get("/metrics")
def metrics():
    """Prometheus' text format (or OpenMetrics when the scraper asks for it); a key of any scope."""
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(current_app.extensions["metrics_registry"]), content_type=content_type)


def init_observability(app: Flask) -> None:
    """A request id on every answer (registered first: the other hooks' logs carry it), and /metrics."""
    registry = CollectorRegistry()
    registry.register(StoreCollector())
    app.extensions["metrics_registry"] = registry
    app.before_request(_note_request_id)
    app.after_request(_answer_with_request_id)
    app.register_blueprint(blp)
