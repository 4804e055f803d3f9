"""A run: read what changed in GesCom, follow each touched shop order, store the updates. One at a time."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from models import OrderPiece, ShopOrder, SyncRun, Update, utcnow
from sync.core import conflicts as conflict_rules
from sync.core.settings import Settings, SettingsError
from sync.core.stages import Outcome, follow
from sync.gescom.adapter import CHUNK, GesCom, GesComBusy, GesComError, LoadedChains, Named, Nominations, chunks, parse_document
from sync.gescom.settings_check import check_settings
from sync.prestashop.states import NATIVE_ORDER_STATES
from sync.services.conflicts import HELD, record_opened, would_act
from sync.services.run_config import RunConfig
from sync.services.unit_of_work import UnitOfWork
from sync.store.bulk import PendingUpdates, insert_shop_orders, record_pieces, stored_orders, update_shop_orders
from sync.store.feed import preview_of, update_values
from sync.store.locks import acquire_lock, extend_lock, new_holder, release_lock
from sync.store.memory import load_memory, memory_values
from sync.store.settings import all_settings, current_settings
from sync.store.shops import StoredShops, stored_shops

log = logging.getLogger(__name__)
# The run this thread is doing, for log records (api.observability adds it to each line as run_id).
CURRENT_RUN: ContextVar[int | None] = ContextVar("current_run", default=None)

LOCK_NAME = "sync"
MAX_WARNINGS = 200
MAX_SKIPPED = 1000  # skipped shop orders kept on a run (each retried by the next run)
MAX_PREVIEW = 10000  # a dry run keeps at most this many updates on its run record
VANISHED_CHECK = datetime(1970, 1, 1)  # checked_at of an order found empty: due at once, and first

# Runs of this process that ended while the store refused to record their end or to take their lock back (broken at
# that moment): run id -> (lock holder, why its end went unrecorded, or None when only its lock is left to give back).
# Settled by this process's next run (it takes the lock over) or by the retry of a background run (`settle_run`).
_unsettled: dict[int, tuple[str, str | None]] = {}
_unsettled_guard = threading.Lock()


class RunInProgress(RuntimeError):
    """Another run holds the lock."""


class RunStopped(RuntimeError):
    """The process was asked to stop; the run ended between two chunks."""


@dataclass
class RunResult:
    run: SyncRun
    updates: list[dict] = field(default_factory=list)  # on a dry run: the updates it would store
    changes: Counter = field(default_factory=Counter)  # how many updates carry each change
    stages: Counter = field(default_factory=Counter)  # stage of each order with an update


@dataclass
class _Tally:
    """Counts kept apart from the run row: a dry run rolls back each chunk, and must not lose them."""

    checked: int = 0
    changed: int = 0
    skipped: int = 0
    created: int = 0
    warnings: list[str] = field(default_factory=list)
    skipped_orders: list[dict] = field(default_factory=list)

    def apply(self, run: SyncRun) -> None:
        run.orders_checked, run.orders_changed, run.orders_skipped, run.updates_created = self.checked, self.changed, self.skipped, self.created
        run.warnings = list(self.warnings)
        run.skipped = list(self.skipped_orders)

    def warn(self, message: str) -> None:
        log.warning(message)
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)

    def skip(self, key: str, reason: str, documents: set[tuple[int, str]] = frozenset()) -> None:
        """One shop order not read this run: counted, said, and kept on the run so the next run retries it."""
        self.skipped += 1
        self.warn(f"shop order {key} skipped: {reason}")
        if len(self.skipped_orders) < MAX_SKIPPED:
            self.skipped_orders.append({"order_key": key, "reason": reason, "documents": [f"{t}:{p}" for t, p in sorted(documents)]})


def id_order_of(link_value: str) -> int | None:
    """The PrestaShop id_order when the link value is one (DO_NoWeb holds it), else None (a reference)."""
    key = link_value.strip()
    return int(key) if key.isdigit() and len(key) <= 18 else None


def start_run(uow: UnitOfWork, *, dry_run: bool = False, full: bool = False, config: RunConfig = RunConfig()) -> tuple[SyncRun, str]:
    """Take the lock and record a new run: the run's first step, committed through `uow` (a run that could not
    be recorded gives the lock back). Raises RunInProgress when another run holds the lock.

    Returns the run and the lock holder's name, to hand to `execute_run` (possibly in another thread).
    """
    session = uow.session
    holder = new_holder()
    if not acquire_lock(session, LOCK_NAME, holder, config.lock_ttl):
        raise RunInProgress("a run is already in progress")
    try:
        settled = _close_stale_runs(session)
        run = SyncRun(status="running", dry_run=dry_run, full=full, warnings=[])
        session.add(run)
        uow.commit()
    except BaseException:
        uow.rollback()
        release_lock(session, LOCK_NAME, holder)
        raise
    _forget_unsettled(settled)
    return run, holder


def _close_stale_runs(session: Session) -> list[int]:
    """Runs left "running" are over (the lock says nobody else runs): failed with the reason when this process knows
    why their end went unrecorded, else interrupted. Returns the ids of this process's unsettled runs, settled by this."""
    with _unsettled_guard:
        reasons = {run_id: why for run_id, (_holder, why) in _unsettled.items()}
    for stale in session.scalars(select(SyncRun).where(SyncRun.status == "running")):
        status, why = ("failed", reasons[stale.id]) if reasons.get(stale.id) else ("interrupted", "the process running it stopped")
        stale.status, stale.finished_at, stale.error = status, stale.finished_at or utcnow(), why
    return list(reasons)


def _remember_unsettled(run_id: int, holder: str, why: str | None) -> None:
    if why is not None:
        log.error("run %s: %s", run_id, why)
    with _unsettled_guard:
        _unsettled[run_id] = (holder, why)


def _forget_unsettled(run_ids: list[int]) -> None:
    with _unsettled_guard:
        for run_id in run_ids:
            _unsettled.pop(run_id, None)


def is_unsettled(run_id: int) -> bool:
    """Whether this run of this process ended without the store recording its end or taking its lock back."""
    with _unsettled_guard:
        return run_id in _unsettled


def settle_run(uow: UnitOfWork, run_id: int) -> bool:
    """Give back the lock of a run of this process the store refused to end (a no-op when it was taken over since),
    and record the run failed with the reason. True once done; raises or returns False while the store refuses."""
    with _unsettled_guard:
        holder, why = _unsettled.get(run_id, (None, None))
    if holder is None:
        return True
    released = release_lock(uow.session, LOCK_NAME, holder)  # first: the lock matters most, any next run records the end
    if why is not None:
        run = uow.session.get(SyncRun, run_id)
        if run is not None and run.status == "running":
            run.status, run.error, run.finished_at = "failed", why, utcnow()
            uow.commit()
    if released:
        _forget_unsettled([run_id])
    return released


def abandon_run(uow: UnitOfWork, run_id: int, holder: str, why: str) -> None:
    """A recorded run that cannot go on: recorded failed with `why` and its lock given back, or, when the store
    refuses, remembered for later (`settle_run`, or this process's next run)."""
    _remember_unsettled(run_id, holder, why)
    try:
        uow.rollback()
        settle_run(uow, run_id)
    except Exception as error:  # the store refuses: remembered above, recorded later
        log.warning("run %s: its end is recorded later: %s", run_id, first_line(error))


def execute_run(
    uow: UnitOfWork,
    gescom: GesCom,
    run: SyncRun,
    holder: str,
    *,
    config: RunConfig = RunConfig(),
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Do the run `start_run` recorded, each chunk committed through `uow`, then release its lock. See `run_sync`.
    A run whose end the store refuses to record is remembered, and recorded failed with the reason later."""
    run_id = inspect(run).identity[0]  # known without asking the store, which may be broken by the end
    result, recorded = RunResult(run=run), False
    logged_as = CURRENT_RUN.set(run_id)  # every log line of this run carries its id (LOG_FORMAT=json: "run_id")
    try:
        failure = _conclude(uow, gescom, run, result, holder, config, progress, should_stop)
        run.finished_at = utcnow()
        uow.commit()
        recorded = True
        if failure is not None:
            raise failure  # recorded, then re-raised: a bug must be visible, not swallowed
        return result
    except Exception as error:
        if not recorded:
            _remember_unsettled(run_id, holder, f"the run could not record its end: {first_line(error)}")
        raise
    finally:
        try:
            uow.rollback()  # nothing half-done is left in the session while the lock goes back
        finally:
            # In a session of its own. When the store refuses, the lock is taken over by this process's next run, or
            # given back by `settle_run`: remembered for it.
            if not release_lock(uow.session, LOCK_NAME, holder) and recorded:
                _remember_unsettled(run_id, holder, None)
            CURRENT_RUN.reset(logged_as)


def _conclude(uow: UnitOfWork, gescom: GesCom, run: SyncRun, result: RunResult, holder: str, config: RunConfig, progress, should_stop):
    """Do the run and say on its record how it ended (not committed); returns an unexpected error, to raise once recorded."""
    try:
        _run(uow, gescom, run, result, config, run.dry_run, run.full, holder, progress, should_stop)
        run.status = "succeeded"
        if run.dry_run:
            run.preview = result.updates[:MAX_PREVIEW]
            if len(result.updates) > MAX_PREVIEW:
                run.warnings = [*(run.warnings or []), f"preview cut to the first {MAX_PREVIEW} of {len(result.updates)} updates"]
    except RunStopped as error:
        uow.rollback()
        run.status, run.error = "interrupted", str(error)
    except (GesComError, SettingsError) as error:
        uow.rollback()
        run.status, run.error = "failed", _explain(error, uow.session, gescom)
        log.warning("run %s failed: %s", run.id, run.error)
    except Exception as error:
        uow.rollback()
        run.status, run.error = "failed", f"{error.__class__.__name__}: {error}"
        return error
    return None


def first_line(error: BaseException) -> str:
    """An error in one line: SQLAlchemy's carry the statement and its parameters on the next ones."""
    return (str(error).splitlines() or [""])[0] or error.__class__.__name__


def run_sync(
    uow: UnitOfWork,
    gescom: GesCom,
    *,
    dry_run: bool = False,
    full: bool = False,
    config: RunConfig = RunConfig(),
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Detect and store the updates of every shop order GesCom changed since the last run.

    Raises RunInProgress when another run holds the lock. Any other failure is recorded on the run
    (status "failed", error) and the store keeps only whole chunks: an order's memory and its update
    are committed together or not at all. `should_stop` is asked between chunks: when it says yes the run
    ends "interrupted", its lock released, and the next run reads the same window again.
    """
    run, holder = start_run(uow, dry_run=dry_run, full=full, config=config)
    return execute_run(uow, gescom, run, holder, config=config, progress=progress, should_stop=should_stop)


def load_chains(
    session: Session,
    gescom: GesCom,
    conn,
    settings: Settings,
    keys: list[str],
    carriers: dict,
    carriage: set,
    *,
    documents: dict[str, set[tuple[int, str]]] | None = None,
    orders: dict[str, ShopOrder] | None = None,
    shops: StoredShops | None = None,
) -> tuple[LoadedChains, dict[str, set[str]]]:
    """The GesCom chains of these shop orders, read through the indexes of a real base from what our store
    knows of each (its BC numbers, the documents it remembers) and the `documents` a discovery read found.

    One order that cannot be read never stops the others: when the batched read fails and GesCom still
    answers, each order is read alone, and those that still fail are returned in `malformed` with the reason
    (documents locked by a Sage transaction, a value SQL cannot convert...)."""
    known_pieces = _known_pieces(session, keys)
    known_documents = _known_documents(session, keys, documents or {}, orders)
    claims = (shops or stored_shops(session)).claims

    def load(some: list[str]) -> LoadedChains:
        return gescom.load(conn, settings, some, known_pieces, carriers, carriage, partial(piece_owners, session), known_documents, claims)

    try:
        return load(keys), known_pieces
    except GesComError as error:
        conn.rollback()
        failure = error
    # GesCom gone, or its columns changed under the settings: that is no one order's fault, the run fails.
    gescom.ping()
    check_settings(settings.to_document(), gescom.schema())
    if len(keys) == 1:
        loaded = LoadedChains()
        loaded.malformed[keys[0]] = _unreadable(failure)  # read alone already
        return loaded, known_pieces
    log.warning("reading %d shop orders at once failed (%s): reading them one by one", len(keys), failure)
    return _load_one_by_one(conn, keys, load, failure), known_pieces


def _known_pieces(session: Session, keys: list[str]) -> dict[str, set[str]]:
    """The BC numbers our store knows for each of these shop orders."""
    known: dict[str, set[str]] = {key: set() for key in keys}
    for key, piece in session.execute(select(ShopOrder.order_key, OrderPiece.piece).join(OrderPiece).where(ShopOrder.order_key.in_(keys))):
        known[key].add(piece)
    return known


def _known_documents(session: Session, keys: list[str], documents: dict, orders: dict[str, ShopOrder] | None) -> dict[str, set[tuple[int, str]]]:
    """The documents to read for each shop order: those it remembers, and those a discovery read found."""
    if orders is None:
        orders = {order.order_key: order for order in session.scalars(select(ShopOrder).where(ShopOrder.order_key.in_(keys)))}
    known: dict[str, set[tuple[int, str]]] = {}
    for key in keys:
        remembered = {parse_document(name) for name in load_memory(orders.get(key)).documents}
        known[key] = {doc for doc in remembered if doc is not None} | set(documents.get(key, ()))
    return known


def _load_one_by_one(conn, keys: list[str], load: Callable[[list[str]], LoadedChains], failure: GesComError) -> LoadedChains:
    """Each order read alone, after reading them together failed with `failure`: the ones that fail are malformed."""
    loaded = LoadedChains()
    errors: list[GesComError] = []
    for key in keys:
        try:
            one = load([key])
        except GesComError as error:
            conn.rollback()
            errors.append(error)
            loaded.malformed[key] = _unreadable(error)
            continue
        loaded.chains.update(one.chains)
        loaded.pieces.update(one.pieces)
        loaded.malformed.update(one.malformed)
    if len(errors) == len(keys) and not any(isinstance(error, GesComBusy) for error in errors):
        raise failure  # every order fails alike: not a bad record, something is wrong with GesCom
    return loaded


def piece_owners(session: Session, pieces: Iterable[str]) -> dict[str, str]:
    """The shop order our store knows each of these BC numbers belongs to (those it knows)."""
    owners: dict[str, str] = {}
    for batch in chunks(sorted(pieces)):
        owners.update(session.execute(select(OrderPiece.piece, ShopOrder.order_key).join(ShopOrder).where(OrderPiece.piece.in_(batch))).all())
    return owners


def _unreadable(error: GesComError) -> str:
    if isinstance(error, GesComBusy):
        return f"its documents are held by a Sage transaction (retried next run): {error}"
    return f"GesCom could not read it: {error}"


def _explain(error: Exception, session: Session, gescom: GesCom) -> str:
    """The failure in words; when GesCom's columns changed under the settings, say which setting."""
    if isinstance(error, GesComError):
        try:
            check_settings(current_settings(session)[0], gescom.schema())
        except SettingsError as mismatch:
            return f"{error}. The settings no longer match GesCom: {mismatch}"
        except GesComError:
            pass
    return str(error)


def _previous_run(session: Session) -> SyncRun | None:
    return session.scalars(
        select(SyncRun)
        .where(SyncRun.status == "succeeded", SyncRun.dry_run.is_(False), SyncRun.watermark_modified.is_not(None))
        .order_by(SyncRun.id.desc())
        .limit(1)
    ).first()


def _discover(
    session: Session, gescom: GesCom, scout, run: SyncRun, reading: _Reading, previous: SyncRun | None, read_at: datetime, config: RunConfig
) -> tuple[Nominations, datetime]:
    """Which shop orders may have changed since the previous run, read without waiting for Sage users.

    Every run: headers and lines created since the cbMarq high-water marks (a range of the clustered key).
    The cbModification window, a scan of both tables on a real base, only on the first run (looking back
    `initial_lookback`; not when it is full: it reads every order), then at most every `full_scan_interval`, or
    every run when the base indexes it. Changes to existing rows in between (a tracking number typed later, a date,
    a deletion) are seen by the re-read of open orders. Returns the nominations and the GesCom time the last scan read up to."""
    settings, claims = reading.settings, reading.shops.claims
    if previous is None:
        header_marq, line_marq = gescom.max_marqs(scout)
        since = read_at - config.initial_lookback
        run.window_from, run.modified_scan, scanned_at = since, True, read_at
        if run.full:
            # A first full run reads the chain of every order `all_documents` names: the look-back scan (both tables,
            # on a real base) would only name them again.
            return Nominations(max_header_marq=header_marq, max_line_marq=line_marq), scanned_at
        found = gescom.modified_rows(scout, settings, since, claims)
        found.max_header_marq, found.max_line_marq = max(header_marq, found.max_header_marq), max(line_marq, found.max_line_marq)
    else:
        found = gescom.new_rows(scout, settings, previous.watermark_header_marq or 0, previous.watermark_line_marq or 0, claims)
        last_scan = previous.watermark_modified
        interval = config.full_scan_interval
        if gescom.catalog.modification_indexed or (interval is not None and read_at - last_scan >= interval):
            # Overlap: cbModification is rounded to the nearest minute and a transaction may commit a little
            # after it stamped its rows.
            since = last_scan - config.overlap
            found.merge(gescom.modified_rows(scout, settings, since, claims))
            run.window_from, run.modified_scan, scanned_at = since, True, read_at
        else:
            run.window_from, run.modified_scan, scanned_at = None, False, last_scan

    gescom.resolve(scout, settings, found, partial(piece_owners, session), claims)
    return found, scanned_at


def _run(
    uow: UnitOfWork, gescom: GesCom, run: SyncRun, result: RunResult, config: RunConfig, dry_run: bool, full: bool, holder: str, progress, should_stop
) -> None:
    """Discover which shop orders may have changed, follow each, and move the watermarks on (not on a dry run)."""
    session = uow.session
    shops = stored_shops(session)
    schema = gescom.schema()
    settings_of = {shop_id: check_settings(document, schema) for shop_id, document in all_settings(session, shops.ids.values()).items()}
    previous = _previous_run(session)
    with gescom.reader() as conn, gescom.scout() as scout:
        carriers, carriage = gescom.carriers(conn)
        read_at = gescom.now(conn)
        reading = _Reading(gescom, conn, settings_of[shops.default_id], carriers, carriage, shops, settings_of)
        found, scanned_at = _discover(session, gescom, scout, run, reading, previous, read_at, config)
        found.origins.clear()  # as big as the base on a first run: only its high-water marks are kept
        found.orphans.clear()
        nominated = _nominated(session, gescom, scout, reading, found, previous, full, config)
        run.documents_unclaimed = len(found.unclaimed)
        if found.unclaimed:
            log.warning("run %s: %d documents carry a link value no shop's rule claims: ignored", run.id, len(found.unclaimed))
        found.unclaimed.clear()
        scout.rollback()  # discovery is over: hold nothing
        _follow_all(uow, reading, run, result, nominated, holder, config, progress, should_stop)
    if not dry_run:
        run.watermark_modified, run.watermark_header_marq, run.watermark_line_marq = scanned_at, found.max_header_marq, found.max_line_marq


def _nominated(
    session, gescom: GesCom, scout, reading: _Reading, found: Nominations, previous: SyncRun | None, full: bool, config: RunConfig
) -> _Nominated:
    """The shop orders this run follows, in order, each with the documents that named it: every one on a full run;
    else those discovery found, those the previous run could not read, and open orders due for a re-read.
    Empties `found.documents` on the way (on a first run it names every order of the base)."""
    nominated = _Nominated()
    if full:
        # What discovery found of an order moves over as the scan names it: the two are never both whole in memory.
        for key, doc in gescom.all_documents(scout, reading.settings, reading.shops.claims, found.unclaimed):
            nominated.add(key, (doc, *found.documents.take(key)))
        for key in session.scalars(select(ShopOrder.order_key).order_by(ShopOrder.id)):
            nominated.add(key)
    for key in sorted(found.documents.in_order()):  # the rest of what discovery found, in the order of their keys
        nominated.add(key, found.documents.take(key))
    for entry in (previous.skipped or []) if previous is not None else []:
        nominated.add(entry.get("order_key", ""), [doc for doc in map(parse_document, entry.get("documents", [])) if doc is not None])
    if not full:
        due = utcnow()
        # One range of the (is_open, checked_at) index: orders found empty last time carry the epoch as
        # checked_at, so they come first, and the query costs the same at 10^3 or 10^6 orders.
        for key in session.scalars(
            select(ShopOrder.order_key)
            .where(ShopOrder.is_open.is_(True), ShopOrder.checked_at < due - config.recheck_age)
            .order_by(ShopOrder.checked_at)
            .limit(config.recheck_limit)
        ):
            nominated.add(key)
    return nominated


# Shop orders a run follows, in the order first named, each with the documents that named it (compact).
_Nominated = Named


@dataclass(frozen=True)
class _Reading:
    """What reading chains in GesCom needs, for the whole run: `settings` the default shop's (the Sage-side settings
    every shop shares), `settings_of` each shop's by id (what following its orders needs)."""

    gescom: GesCom
    conn: object
    settings: Settings
    carriers: dict
    carriage: set
    shops: StoredShops
    settings_of: dict[int, Settings]

    def conflicts_of(self, shop_id: int) -> dict[int, str]:
        """The shop's conflict states as a run knows them: PrestaShop's native ids and its `conflict_states` setting
        (a push judges again with the shop's own, read from its configuration)."""
        return conflict_rules.conflict_states(NATIVE_ORDER_STATES, self.settings_of[shop_id].conflict_states)


def _follow_all(
    uow: UnitOfWork, reading: _Reading, run: SyncRun, result: RunResult, nominated: _Nominated, holder: str, config: RunConfig, progress, should_stop
) -> None:
    """Follow the nominated shop orders chunk by chunk, each chunk stored (or, on a dry run, rolled back) whole."""
    total = len(nominated)
    window = (run.window_from, run.modified_scan)
    done = 0
    tally = _Tally()
    for batch in nominated.take_chunks(CHUNK):  # taken chunk by chunk: nothing of an order stays once its chunk is done
        if should_stop is not None and should_stop():
            raise RunStopped(f"stopped on request after {done} of {total} shop orders")
        for moved_to in _follow_batch(uow.session, reading, run, result, tally, batch):
            nominated.add(moved_to)  # followed under the key its documents carry now, later in this run
        reading.conn.rollback()  # end the chain read's transaction between chunks: no snapshot held for the whole run
        if run.dry_run:
            uow.rollback()
            run.window_from, run.modified_scan = window  # what discovery read, kept on a dry run's record too
        tally.apply(run)
        uow.commit()  # the chunk stands: each order's memory with its update
        extend_lock(uow.session, LOCK_NAME, holder, config.lock_ttl)
        done += len(batch)
        if progress:
            progress(done, total)
    tally.apply(run)


def _follow_batch(session, reading: _Reading, run: SyncRun, result: RunResult, tally: _Tally, documents: dict[str, set]) -> list[str]:
    """Follow one chunk of shop orders (each with the documents that named it): read their chains, remember what each
    concluded, store their updates. Returns the keys of the orders whose documents another shop's rule claims now."""
    keys = list(documents)
    orders = stored_orders(session, keys)
    loaded, known_pieces = load_chains(
        session,
        reading.gescom,
        reading.conn,
        reading.settings,
        keys,
        reading.carriers,
        reading.carriage,
        documents=documents,
        orders=orders,
        shops=reading.shops,
    )
    writes = _Writes(now=utcnow())
    new_pieces: dict[str, str] = {}
    created = PendingUpdates()  # no ORM object in the session: a run's memory stays flat
    moved: list[str] = []
    for key in keys:
        tally.checked += 1
        if _moved(key, orders.get(key), loaded, tally, writes, moved):
            continue
        shop_id = reading.shops.shop_id_of(key)
        followed = _follow_one(key, orders.get(key), loaded, reading, tally, documents[key])
        if followed is None:
            continue
        outcome, id_order = followed
        writes.remember(key, orders.get(key), id_order, outcome, shop_id)
        new_pieces.update({piece: key for piece in loaded.pieces.get(key, ()) if piece not in known_pieces.get(key, ())})
        if outcome.update is not None:
            tally.changed += 1
            values = update_values(key, id_order, outcome.update, run_id=run.id, created_at=writes.now, shop_id=shop_id)
            created.add(_held_at_once(values, orders.get(key), reading.conflicts_of(shop_id), writes.now))  # inserted below
    owners = writes.store(session, orders)
    if new_pieces:
        record_pieces(session, owners, new_pieces)
    created.insert(session)
    _record_held(session, run, [values for values in created.rows if values.get("push_status") == HELD])
    tally.created += len(created.rows)
    for update in created.rows:
        result.changes.update(update["changes"])
        result.stages[update["stage"]] += 1
        if run.dry_run:
            result.updates.append(preview_of(update))
    return moved


def _held_at_once(values: dict, order: ShopOrder | None, conflicts: dict[int, str], now: datetime) -> dict:
    """A new update of an order the module said the shop holds in a conflict state is held from the start (its
    push judges it again with the shop's state; a pull module sees it marked)."""
    state = order.shop_state_id if order is not None else None
    if state in conflicts and would_act(values, state):
        values["push_status"], values["conflict"] = HELD, conflict_rules.opened(state, conflicts[state], now, "run")
    return values


def _record_held(session: Session, run: SyncRun, held: list[dict]) -> None:
    """Each order whose new update is held gets a conflict_opened event naming it."""
    if not held:
        return
    query = select(Update.order_key, Update.id).where(Update.run_id == run.id, Update.push_status == HELD)
    ids = dict(session.execute(query.where(Update.order_key.in_([values["order_key"] for values in held]))).all())
    for values in held:
        record = values["conflict"]
        record_opened(session, values["order_key"], [ids[values["order_key"]]], record["shop_state_id"], record["reason"], "run")


def _moved(key: str, order: ShopOrder | None, loaded: LoadedChains, tally: _Tally, writes: _Writes, moved: list[str]) -> bool:
    """Whether the order's documents went to another shop (the shops' rules changed): then it is not followed under
    this key any more (closed, never taken for vanished: no update is made of it), and its new key is (`moved`)."""
    if key not in loaded.moved or key in loaded.malformed or not loaded.chains[key].is_empty():
        return False
    moved_to = loaded.moved[key]
    where = f"shop order {moved_to}'s" if moved_to else "no shop's"
    tally.warn(f"shop order {key}: its documents are {where} now (the shops' rules changed): no longer followed under this key")
    if order is not None:
        writes.stored.append({"id": order.id, "is_open": False, "checked_at": writes.now})
    if moved_to:
        moved.append(moved_to)
    return True


def _follow_one(
    key: str, order: ShopOrder | None, loaded: LoadedChains, reading: _Reading, tally: _Tally, documents: set
) -> tuple[Outcome, int | None] | None:
    """What following one shop order concludes, and its id_order; None when it is skipped or not ours."""
    if key in loaded.malformed:
        tally.skip(key, loaded.malformed[key], documents)
        return None
    chain = loaded.chains[key]
    if order is None and chain.is_empty():
        return None  # never seen and nothing there: not ours to follow
    # Everything that can fail on odd data is computed before the order is touched: one bad order is
    # skipped whole, and never left half-updated.
    try:
        outcome = follow(chain, load_memory(order), reading.settings_of[reading.shops.shop_id_of(key)])
        id_order = order.id_order if order is not None else id_order_of(reading.shops.link_value_of(key))
    except Exception as error:  # noqa: BLE001 - isolated on purpose, logged with its traceback
        log.exception("shop order %s: following it failed", key)
        tally.skip(key, f"{error.__class__.__name__}: {error}", documents)
        return None
    return outcome, id_order


@dataclass
class _Writes:
    """What one chunk concluded for its shop orders, written in bulk at the chunk's end (sync/store/bulk.py)."""

    now: datetime
    new: list[dict] = field(default_factory=list)
    stored: list[dict] = field(default_factory=list)

    def remember(self, key: str, order, id_order: int | None, outcome: Outcome, shop_id: int) -> None:
        """What following the shop order concluded (a new one is stored from now on). Of its memory, only what changed
        is written; when it read empty, it is re-read first next time."""
        checked_at = self.now if outcome.memory.vanished_runs == 0 else VANISHED_CHECK
        updated = {"updated_at": self.now} if outcome.update is not None else {}
        if order is None:
            self.new.append(
                {
                    "order_key": key,
                    "shop_id": shop_id,
                    "id_order": id_order,
                    "first_seen_at": self.now,
                    "updated_at": self.now,
                    "checked_at": checked_at,
                }
                | memory_values(outcome.memory)
            )
        else:
            # Only the columns whose value changed, as the ORM did: what the push or the shop poll wrote meanwhile stays.
            stored = memory_values(load_memory(order))
            changed = {name: value for name, value in memory_values(outcome.memory).items() if stored[name] != value}
            self.stored.append({"id": order.id, "checked_at": checked_at, **updated, **changed})

    def store(self, session, orders: dict) -> dict[str, int]:
        """Write them; returns the id of every shop order of the chunk, stored before or now, by order key."""
        owners = {key: order.id for key, order in orders.items()}
        owners.update(insert_shop_orders(session, self.new))
        update_shop_orders(session, self.stored)
        return owners


def list_runs(session: Session, limit: int = 20, before: int | None = None) -> tuple[list[SyncRun], int | None]:
    """Runs newest first, and the cursor for older ones (None at the end)."""
    statement = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit + 1)
    if before is not None:
        statement = statement.where(SyncRun.id < before)
    runs = list(session.scalars(statement))
    more = len(runs) > limit
    runs = runs[:limit]
    return runs, (runs[-1].id if more and runs else None)
