"""Running the sync: one scheduler tick, the loop that repeats it, and a recorded run done in the background.

One scheduler per deployment: `flask sync schedule`, started and watched by gunicorn's master (see
supervisor.py) or run as its own process. A run asked for over HTTP goes through `execute_in_background`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta

from sqlalchemy.orm import Session

from models import SyncRun
from sync.gescom.adapter import GesCom
from sync.prestashop.client import PrestaShopClient, ShopError
from sync.prestashop.connections import ShopConnections
from sync.services.notifications import DeliveryOptions, notify_consumers
from sync.services.push import push_pending
from sync.services.run_config import RunConfig
from sync.services.runs import RunInProgress, abandon_run, execute_run, first_line, is_unsettled, run_sync, settle_run
from sync.services.shop_poll import poll_shop_tracking
from sync.services.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def tick(
    session: Session,
    gescom: GesCom,
    shop: PrestaShopClient | ShopConnections | None,
    config: RunConfig,
    stop: threading.Event,
    *,
    employee_id: int | None = None,
    workers: int = 1,
    webhooks: DeliveryOptions | None = None,
) -> None:
    """One tick: a run, then, when a shop is configured, the push and the shop poll (which does nothing unless
    tracking.import_from_shop). `shop`: the default shop's client, or the ShopConnections (app.extensions["shops"]):
    then every connected shop is pushed to and polled, each with its own settings, one failing not stopping the others.
    Each step is isolated: one failing is logged and the next still happens. The tick owns the transaction: each step
    commits its work as it goes through the tick's unit of work. With `webhooks`,
    consumers' endpoints are told of the committed updates by a thread of its own (sync/services/notifications.py)."""
    with UnitOfWork(session) as uow:
        with _isolated("run", uow):
            _run(uow, gescom, config, stop)
        if webhooks is not None:
            with _isolated("webhooks to consumers", uow):
                notify_consumers(uow, webhooks)
        if shop is None or stop.is_set():
            return
        with _isolated("push", uow):
            _push(uow, shop, employee_id, workers)
        with _isolated("shop poll", uow):
            _poll(uow, gescom, shop)


@contextmanager
def _isolated(step: str, uow: UnitOfWork) -> Iterator[None]:
    """Log what a step raises and roll its transaction back, so that the tick goes on with the next step."""
    try:
        yield
    except ShopError as error:
        uow.rollback()
        log.warning("shop unreachable this tick (%s): %s", step, error)
    except Exception:  # the scheduler must survive anything a step throws; the next tick is a fresh chance
        uow.rollback()
        log.exception("%s failed this tick", step)


def _run(uow: UnitOfWork, gescom: GesCom, config: RunConfig, stop: threading.Event) -> None:
    try:
        run = run_sync(uow, gescom, config=config, should_stop=stop.is_set).run
    except RunInProgress:
        log.info("a run is already in progress; skipping this tick")
        return
    log.info("run %s %s: %s orders checked, %s updates", run.id, run.status, run.orders_checked, run.updates_created)


def _push(uow: UnitOfWork, shop: PrestaShopClient | ShopConnections, employee_id: int | None, workers: int) -> None:
    report = push_pending(uow, shop, employee_id=employee_id, workers=workers)
    log.info(
        "push: %s pushed, %s failed, %s to retry, %s held by a conflict%s",
        report.pushed,
        report.failed,
        report.retry_later,
        report.held,
        f"; stopped: {report.error}" if report.error else "",
    )


def _poll(uow: UnitOfWork, gescom: GesCom, shop: PrestaShopClient | ShopConnections) -> None:
    polled = poll_shop_tracking(uow, gescom, shop)
    if polled.written or polled.warnings:
        log.info("tracking from the shop: %s written to GesCom; %s", polled.written, "; ".join(polled.warnings[:5]))


def run_periodically(job: Callable[[], None], interval: float, stop: threading.Event, max_runs: int | None = None) -> int:
    """Call `job` every `interval` seconds (measured start to start) until `stop` is set; returns how many ran.

    A failing job is logged and the loop goes on: the next tick is a fresh chance.
    """
    runs = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            job()
        except Exception:  # the scheduler must survive anything a run throws
            log.exception("scheduled run failed")
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    return runs


def serve(job: Callable[[threading.Event], None], interval: float, max_runs: int | None = None) -> int:
    """The scheduler process: `job(stop)` every `interval` seconds until SIGTERM or SIGINT sets `stop` (a run in
    progress then ends between two chunks). Returns how many ticks ran."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return run_periodically(lambda: job(stop), interval, stop, max_runs)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def execute_in_background(
    open_session: Callable[[], AbstractContextManager[Session]], gescom: GesCom, run_id: int, holder: str, config: RunConfig
) -> threading.Thread:
    """Do the run `start_run` recorded (it holds the run lock) in a daemon thread, in a session of its own from
    `open_session`, so that the request that asked for it answers at once."""

    def target() -> None:
        with open_session() as session, UnitOfWork(session) as uow:
            try:
                execute_run(uow, gescom, _recorded_run(uow, run_id, holder), holder, config=config)
            except Exception:  # recorded on the run by execute_run, or remembered when the store refused; logged only
                log.exception("run %s failed", run_id)
        _settle(open_session, run_id, patience=config.lock_ttl)

    thread = threading.Thread(target=target, name=f"sync-run-{run_id}", daemon=True)
    try:
        thread.start()
    except BaseException as error:  # no thread to run it (the process is out of threads): the run ends here
        with open_session() as session, UnitOfWork(session) as uow:
            abandon_run(uow, run_id, holder, f"the run could not start: {error}")
        raise
    return thread


def _recorded_run(uow: UnitOfWork, run_id: int, holder: str) -> SyncRun:
    """The run `start_run` recorded; when its record cannot be read, the run is abandoned and its lock given back."""
    try:
        run = uow.session.get(SyncRun, run_id)
        if run is None:
            raise LookupError(f"no run {run_id} in the store")
    except Exception as error:
        abandon_run(uow, run_id, holder, f"the run could not start: {first_line(error)}")
        raise
    return run


def _settle(
    open_session: Callable[[], AbstractContextManager[Session]],
    run_id: int,
    *,
    patience: timedelta,
    first_wait: float = 0.5,
    longest_wait: float = 10.0,
) -> bool:
    """When the store refused to record the end of this run or to take its lock back, retry (waits doubling up to
    `longest_wait`) until it is done, so that other processes need not wait for the lock's expiry.
    Gives up after `patience` (the lock has expired by then). Returns whether nothing is left to record."""
    deadline, wait = time.monotonic() + patience.total_seconds(), first_wait
    while is_unsettled(run_id):
        try:
            with open_session() as session, UnitOfWork(session) as uow:
                if settle_run(uow, run_id):
                    log.info("run %s settled: its end recorded, its lock given back", run_id)
                    return True
        except Exception as error:  # the store still refuses: the next try may find it healed
            log.warning("run %s: its end or its lock still refused by the store: %s", run_id, first_line(error))
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)
        wait = min(wait * 2, longest_wait)
    return True
