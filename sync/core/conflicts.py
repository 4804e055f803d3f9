"""Conflicts between the shop and Sage (pure rules): an update that would act on a shop order the shop holds in a
state the merchant decided (cancelled, refunded, payment error, or a state of the `conflict_states` setting).

Such an update is held: nothing of it reaches the shop (no state, no tracking number, no message, no e-mail) until
the merchant applies it anyway, dismisses it, or changes the order's state in the shop to one out of the conflict
states (then it is released and goes as usual, in order). Its `conflict` record says what the shop said, why it
conflicts, since when, and how it ended; the pull feed shows it, so a module can apply the same rule.

A record (`Update.conflict`):
    status         open | applied_anyway | dismissed | released
    shop_state_id  the shop's state when the conflict was seen (or last judged)
    reason         the PrestaShop configuration key that makes it a conflict state (PS_OS_CANCELED, PS_OS_REFUND,
                   PS_OS_ERROR), or "conflict_states" (the setting)
    since          when the conflict was first seen (ISO 8601, UTC)
    seen_by        push (the shop read before writing), webhook (the module said the order's state), or run (the
                   state the module said last, when a run made the update)
    apply          whether the update is to be applied now: false while open or dismissed, and for an update
                   issued again to a pull module (`reissued_as`: that one is)
    resolved_at, resolved_by, via   who ended it, when (a merchant: by a key's or a person's name; released: the shop)
    reissued_as / reissue_of        pull mode: the update issued again when the conflict ended, and the one it repeats
"""

from __future__ import annotations

from datetime import datetime

CONFLICT_KEYS = ("PS_OS_CANCELED", "PS_OS_REFUND", "PS_OS_ERROR")  # the shop's own states for them (its configuration)
SETTING = "conflict_states"

OPEN, APPLIED_ANYWAY, DISMISSED, RELEASED = "open", "applied_anyway", "dismissed", "released"
STATUSES = (OPEN, APPLIED_ANYWAY, DISMISSED, RELEASED)


def conflict_states(states: list[dict], extra: list[int] | tuple[int, ...] = ()) -> dict[int, str]:
    """The shop's conflict states, state id -> reason: the states its configuration names PS_OS_CANCELED,
    PS_OS_REFUND or PS_OS_ERROR (`states`: the shop's order states with their `config_keys`), and `extra` (the
    `conflict_states` setting)."""
    found: dict[int, str] = {}
    for state in states:
        for key in CONFLICT_KEYS:
            if key in state.get("config_keys", ()):
                found.setdefault(int(state["id"]), key)
    for state_id in extra:
        found.setdefault(int(state_id), SETTING)
    return found


def from_configuration(values: dict[str, str], extra: list[int] | tuple[int, ...] = ()) -> dict[int, str]:
    """`conflict_states` from the shop's configuration values read by name (PS_OS_CANCELED -> "6")."""
    states = [{"id": int(value), "config_keys": [key]} for key, value in values.items() if key in CONFLICT_KEYS and str(value).isdigit()]
    return conflict_states(states, extra)


def acts(state_id: int | None, changes: list[str], values: dict, shop_state_id: int | None) -> bool:
    """Whether an update would write anything to a shop order in `shop_state_id`: another state, a tracking number,
    or a back-office message (document number, delivery date, deliveries). `values`: the update's own values by
    change name (tracking_numbers, piece, delivery_date, deliveries)."""
    if state_id is not None and state_id != shop_state_id:
        return True
    if "tracking" in changes and values.get("tracking_numbers"):
        return True
    return any(name in changes and values.get(name) for name in ("piece", "delivery_date", "deliveries"))


def opened(shop_state_id: int, reason: str, now: datetime, seen_by: str, before: dict | None = None) -> dict:
    """The record of an open conflict; an open one `before` keeps its `since` (the shop's state may have changed
    from one conflict state to another)."""
    since = before["since"] if before and before.get("status") == OPEN else iso(now)
    return {"status": OPEN, "shop_state_id": shop_state_id, "reason": reason, "since": since, "seen_by": seen_by, "apply": False}


def ended(record: dict, status: str, now: datetime, *, by: str | None = None, via: str | None = None) -> dict:
    """The record once its conflict ends: applied anyway, dismissed, or released (the shop's state changed)."""
    return {**record, "status": status, "resolved_at": iso(now), "resolved_by": by, "via": via, "apply": status != DISMISSED}


def reissue(record: dict, of: int) -> dict:
    """The record of the update issued again to a pull module when the conflict of update `of` ended (`record`)."""
    return {**record, "reissue_of": of, "apply": True}


def reissued(record: dict, again: int) -> dict:
    """The ended record of an update issued again as update `again`: that one is to be applied, not this one."""
    return {**record, "reissued_as": again, "apply": False}


def is_open(record: dict | None) -> bool:
    return bool(record) and record.get("status") == OPEN


def overridden(record: dict | None) -> bool:
    """Applied anyway: pushed as usual, whatever the shop's state."""
    return bool(record) and record.get("status") == APPLIED_ANYWAY


def iso(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat() + "Z"
