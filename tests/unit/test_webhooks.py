"""Standard Webhooks signing around the reference library: our secret rule, our error codes, lenient parsing of
the signature list."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from sync.store.webhooks import WebhookRejected, secret_key, sign, verify

BODY = b'{"type": "order.status_changed", "data": {"id_order": 4711, "state_id": 4}}'


def headers(secret: str, *, message_id="msg_1", offset=0, body=BODY, signature=None) -> dict[str, str]:
    timestamp = int(time.time()) + offset
    signature = signature or sign(secret, message_id, timestamp, body)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def rejected(secret: str, sent: dict[str, str], body=BODY) -> str:
    with pytest.raises(WebhookRejected) as caught:
        verify(secret, sent, body)
    return caught.value.code


def test_the_specification_example_signs_as_published():
    # The example of the Standard Webhooks specification and of its reference libraries.
    assert sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}') == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_plain_secret_is_its_utf8_bytes():
    digest = hmac.new("clé secrète".encode(), b"m1.1700000000." + BODY, hashlib.sha256).digest()
    assert sign("clé secrète", "m1", 1700000000, BODY) == "v1," + base64.b64encode(digest).decode()
    assert secret_key("whsec_" + base64.b64encode(b"raw key").decode()) == b"raw key"


@pytest.mark.parametrize("secret", ["whsec_***not base64***", "whsec_abc", "whsec_"])
def test_a_whsec_secret_must_be_base64_of_something(secret):
    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        secret_key(secret)


@pytest.mark.parametrize("secret", ["plain text secret", "whsec_" + base64.b64encode(b"k" * 24).decode()])
def test_a_signed_webhook_message_gives_its_id(secret):
    assert verify(secret, headers(secret, message_id="order-1041"), BODY) == "order-1041"


def test_any_of_several_signatures_may_match():
    good = headers("s")["webhook-signature"]
    for listed in (f"v1,AAAA {good}", f"v2,BBBB   {good}", f"garbage v1,AAA v1,a,b {good}", f"v0,{good[3:]} {good}"):
        assert verify("s", headers("s", signature=listed), BODY) == "msg_1", listed


@pytest.mark.parametrize(
    "change, code",
    [
        ({"offset": -301}, "webhook_timestamp_stale"),
        ({"offset": 301}, "webhook_timestamp_stale"),
        ({"message_id": "x" * 201}, "webhook_id_invalid"),
        ({"signature": "v2,AAAA"}, "webhook_signature_invalid"),
        ({"signature": "not a signature"}, "webhook_signature_invalid"),
        ({"body": b"another body"}, "webhook_signature_invalid"),
    ],
)
def test_a_webhook_message_that_cannot_be_trusted_says_why(change, code):
    assert rejected("s", headers("s", **change)) == code


def test_only_v1_is_taken():
    good = headers("s")["webhook-signature"]
    assert rejected("s", headers("s", signature="v2," + good[3:])) == "webhook_signature_invalid"


def test_missing_or_malformed_headers():
    sent = headers("s")
    for name in sent:
        assert rejected("s", {**sent, name: "  "}) == "webhook_signature_missing"
    for timestamp in ("yesterday", "1.7e9", ""):
        expected = "webhook_signature_missing" if not timestamp else "webhook_timestamp_invalid"
        assert rejected("s", {**sent, "webhook-timestamp": timestamp}) == expected


def test_a_body_that_is_not_utf8_matches_no_signature():
    timestamp = int(time.time())
    digest = hmac.new(b"s", f"m1.{timestamp}.".encode() + b"\xff\xfe", hashlib.sha256).digest()
    sent = {"webhook-id": "m1", "webhook-timestamp": str(timestamp), "webhook-signature": "v1," + base64.b64encode(digest).decode()}
    assert rejected("s", sent, b"\xff\xfe") == "webhook_signature_invalid"
