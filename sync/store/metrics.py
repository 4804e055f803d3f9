"""What /metrics shows, read from the store at scrape time: a handful of aggregate queries, no row read one by one.

Figures come from the store, not from counters in memory, so that every gunicorn worker answers the same.
Dry runs (previews) are left out: they store nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models import ShopOrder, SyncRun, Update, utcnow


@dataclass
class RunStatus:
    """The runs that ended (or run) with one status, and what they did."""

    count: int = 0
    orders_checked: int = 0
    orders_skipped: int = 0
    updates_created: int = 0
    last_finished_at: datetime | None = None


@dataclass
class LastRun:
    status: str
    started_at: datetime
    finished_at: datetime
    warnings: int
    orders_skipped: int

    @property
    def seconds(self) -> float:
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


@dataclass
class PushStatus:
    """The updates in one push status ("pending", "pushed", "failed", "conflict": held, "dismissed")."""

    count: int = 0
    retried: int = 0  # tried more than once, or tried and waiting for another try
    oldest_created_at: datetime | None = None


@dataclass
class StoreFigures:
    now: datetime
    runs: dict[str, RunStatus] = field(default_factory=dict)
    last_run: LastRun | None = None
    shop_orders_open: int = 0
    shop_orders_closed: int = 0
    updates: int = 0
    updates_unacknowledged: int = 0
    oldest_unacknowledged_at: datetime | None = None
    push: dict[str, PushStatus] = field(default_factory=dict)


def run_figures(session: Session) -> tuple[dict[str, RunStatus], LastRun | None]:
    """Runs by status (one grouped query), and the last run that ended."""
    rows = session.execute(
        select(
            SyncRun.status,
            func.count(),
            func.coalesce(func.sum(SyncRun.orders_checked), 0),
            func.coalesce(func.sum(SyncRun.orders_skipped), 0),
            func.coalesce(func.sum(SyncRun.updates_created), 0),
            func.max(SyncRun.finished_at),
        )
        .where(SyncRun.dry_run.is_(False))
        .group_by(SyncRun.status)
    )
    runs = {status: RunStatus(int(count), int(checked), int(skipped), int(created), last) for status, count, checked, skipped, created, last in rows}
    last = session.execute(
        select(SyncRun.status, SyncRun.started_at, SyncRun.finished_at, SyncRun.warnings, SyncRun.orders_skipped)
        .where(SyncRun.dry_run.is_(False), SyncRun.status != "running", SyncRun.finished_at.is_not(None))
        .order_by(SyncRun.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return runs, None
    return runs, LastRun(last.status, last.started_at, last.finished_at, len(last.warnings or []), last.orders_skipped)


def update_figures(session: Session) -> tuple[int, int, datetime | None]:
    """Updates stored, those not acknowledged yet, and when the oldest of these was made."""
    waiting = Update.acked_at.is_(None)
    total, unacknowledged, oldest = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((waiting, 1), else_=0)), 0),
            func.min(case((waiting, Update.created_at))),
        )
    ).one()
    return int(total), int(unacknowledged), _as_datetime(oldest)


def push_figures(session: Session) -> dict[str, PushStatus]:
    """Updates by push status (one grouped query): how many, how many tried more than once, the oldest."""
    tried_and_waiting = (Update.push_status == "pending") & (Update.push_attempts > 0)  # a failed try, retried later
    rows = session.execute(
        select(
            Update.push_status,
            func.count(),
            func.coalesce(func.sum(case((Update.push_attempts > 1, 1), (tried_and_waiting, 1), else_=0)), 0),
            func.min(Update.created_at),
        ).group_by(Update.push_status)
    )
    return {status: PushStatus(int(count), int(retried), _as_datetime(oldest)) for status, count, retried, oldest in rows}


def store_figures(session: Session, *, push_mode: bool) -> StoreFigures:
    """Everything /metrics shows; the push's figures only in push mode (in pull mode every update stays "pending")."""
    figures = StoreFigures(now=utcnow())
    figures.runs, figures.last_run = run_figures(session)
    opened = session.execute(select(ShopOrder.is_open, func.count()).group_by(ShopOrder.is_open)).all()
    counts = {bool(is_open): int(count) for is_open, count in opened}
    figures.shop_orders_open, figures.shop_orders_closed = counts.get(True, 0), counts.get(False, 0)
    figures.updates, figures.updates_unacknowledged, figures.oldest_unacknowledged_at = update_figures(session)
    if push_mode:
        figures.push = push_figures(session)
    return figures


def _as_datetime(value) -> datetime | None:
    # min() over a CASE loses the column's type on SQLite: the driver then hands back the stored text.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
