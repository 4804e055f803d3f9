"""The pure rules of conflicts between the shop and Sage (sync/core/conflicts.py)."""

from __future__ import annotations

from datetime import date, datetime

from sync.core import conflicts as rules
from sync.prestashop.states import NATIVE_ORDER_STATES

NOW = datetime(2026, 12, 2, 9, 30)


def test_the_shops_cancelled_refunded_and_payment_error_states_and_the_setting():
    assert rules.conflict_states(NATIVE_ORDER_STATES) == {6: "PS_OS_CANCELED", 7: "PS_OS_REFUND", 8: "PS_OS_ERROR"}
    assert rules.conflict_states(NATIVE_ORDER_STATES, [10, 6]) == {6: "PS_OS_CANCELED", 7: "PS_OS_REFUND", 8: "PS_OS_ERROR", 10: "conflict_states"}
    # A shop whose configuration points elsewhere (an upgraded shop, a module's own "cancelled" state).
    configured = {"PS_OS_CANCELED": "15", "PS_OS_REFUND": "7", "PS_OS_ERROR": "", "PS_OS_SHIPPING": "4"}
    assert rules.from_configuration(configured) == {15: "PS_OS_CANCELED", 7: "PS_OS_REFUND"}


def test_what_would_act_on_the_order():
    nothing = {"tracking_numbers": None, "piece": None, "delivery_date": None, "deliveries": None}
    assert rules.acts(4, ["stage", "state"], nothing, 6)
    assert not rules.acts(6, ["stage", "state"], nothing, 6)  # the state it has already: nothing to write
    assert not rules.acts(None, ["stage"], nothing, 6)
    assert rules.acts(None, ["tracking"], {**nothing, "tracking_numbers": ["6A1"]}, 6)
    assert not rules.acts(None, ["tracking"], {**nothing, "tracking_numbers": []}, 6)
    assert rules.acts(None, ["delivery_date"], {**nothing, "delivery_date": date(2026, 12, 1)}, 6)
    assert not rules.acts(None, ["stage"], {**nothing, "piece": "BL00017"}, 6)  # a piece the update does not send


def test_a_record_opens_keeps_its_start_and_ends():
    record = rules.opened(6, "PS_OS_CANCELED", NOW, "push")
    assert record == {
        "status": "open",
        "shop_state_id": 6,
        "reason": "PS_OS_CANCELED",
        "since": "2026-12-02T09:30:00Z",
        "seen_by": "push",
        "apply": False,
    }
    assert rules.is_open(record) and not rules.overridden(record)
    later = rules.opened(8, "PS_OS_ERROR", datetime(2026, 12, 3), "webhook", before=record)
    assert later["since"] == record["since"] and later["shop_state_id"] == 8
    applied = rules.ended(record, rules.APPLIED_ANYWAY, NOW, by="Marie", via="admin")
    assert rules.overridden(applied) and applied["apply"] is True and applied["resolved_by"] == "Marie"
    assert rules.ended(record, rules.DISMISSED, NOW)["apply"] is False
    again = rules.reissue(applied, of=41)
    assert again["reissue_of"] == 41 and again["apply"] is True and again["status"] == rules.APPLIED_ANYWAY
    assert rules.reissued(applied, 57) == {**applied, "reissued_as": 57, "apply": False}
    # Ended once, a later conflict starts afresh.
    assert rules.opened(6, "PS_OS_CANCELED", datetime(2026, 12, 5), "run", before=applied)["since"] == "2026-12-05T00:00:00Z"
