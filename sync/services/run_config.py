"""How a run reads GesCom: windows, limits and intervals, with their defaults in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta


def _seconds(value: int) -> timedelta:
    return timedelta(seconds=value)


def _days(value: int) -> timedelta:
    return timedelta(days=value)


def _interval(value: int) -> timedelta | None:
    return timedelta(seconds=value) if value > 0 else None  # 0: no periodic full scan


@dataclass(frozen=True)
class RunConfig:
    overlap: timedelta = timedelta(minutes=2)  # cbModification is rounded to the nearest minute
    recheck_limit: int = 1000  # open orders re-read per run, to see deletions that leave no trace
    recheck_age: timedelta = timedelta(minutes=10)
    initial_lookback: timedelta = timedelta(days=30)  # how far back the very first run looks
    lock_ttl: timedelta = timedelta(minutes=15)
    # The cbModification window, a scan of both tables on a real base: at most this often (None: never, after
    # the first run). Every run when the base has an index on cbModification.
    full_scan_interval: timedelta | None = timedelta(hours=1)

    @classmethod
    def from_mapping(cls, config: Mapping) -> RunConfig:
        """From the app's configuration; a key absent (or None) keeps the default above."""
        values = {name: convert(int(config[key])) for key, (name, convert) in CONFIG_KEYS.items() if config.get(key) is not None}
        return cls(**values)


# Configuration key -> (RunConfig field, how its whole number becomes the field's value).
CONFIG_KEYS = {
    "SYNC_OVERLAP_SECONDS": ("overlap", _seconds),
    "SYNC_RECHECK_LIMIT": ("recheck_limit", int),
    "SYNC_RECHECK_AGE": ("recheck_age", _seconds),
    "SYNC_INITIAL_LOOKBACK_DAYS": ("initial_lookback", _days),
    "SYNC_FULL_SCAN_INTERVAL": ("full_scan_interval", _interval),
}
