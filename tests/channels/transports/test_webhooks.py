"""Signed webhooks against a local receiver; signatures verified with the
standardwebhooks library (the specification's reference implementation)."""

import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rapport.channels.transports import DeliveryStatus, TransportError, get_transport, webhooks
from tests.channels.transports.conftest import Reply

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

PAYLOAD = {
    "type": "message.sent",
    "timestamp": "2026-12-04T14:00:00Z",
    "data": {"profile_id": "0193", "text": "Ваш заказ в пути"},
}


def _config(**extra):
    return {"secret": SECRET, "allow_private_addresses": True, **extra}


def _send(receiver, **config):
    return get_transport("webhook").send(
        message_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        to=receiver.url + "/hooks/rapport",
        content=PAYLOAD,
        config=_config(**config),
    )


def test_a_delivered_webhook_verifies_with_the_reference_library(receiver):
    receiver.reply(204)
    result = _send(receiver, headers={"X-Api-Key": "theirs"})
    assert result.status == DeliveryStatus.DELIVERED
    assert result.provider_message_id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

    request = receiver.last
    assert request.method == "POST"
    assert request.path == "/hooks/rapport"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-api-key"] == "theirs"
    assert request.headers["webhook-id"] == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(request.body, request.headers) == PAYLOAD
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body.replace(b"0193", b"0194"), request.headers)


def test_a_retry_keeps_its_webhook_id(receiver):
    receiver.reply(503)
    receiver.reply(200)
    with pytest.raises(TransportError) as caught:
        _send(receiver)
    assert caught.value.retryable
    _send(receiver)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert Webhook(SECRET).verify(second.body, second.headers) == PAYLOAD


def test_rotating_secrets_sign_with_each(receiver):
    new = webhooks.secret_generate()
    assert new.startswith("whsec_")
    receiver.reply(200)
    _send(receiver, secret=None, secrets=[SECRET, new])
    request = receiver.last
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)


def test_sign_matches_the_reference_library():
    from datetime import UTC, datetime

    body = json.dumps(PAYLOAD).encode()
    ours = webhooks.sign(msg_id="msg_1", timestamp=1_700_000_000, body=body, secret=SECRET)
    theirs = Webhook(SECRET).sign(
        "msg_1", datetime.fromtimestamp(1_700_000_000, tz=UTC), body.decode()
    )
    assert ours == theirs


@pytest.mark.parametrize(
    ("status", "retryable", "final"),
    [
        (410, False, "expired"),
        (400, False, "failed"),
        (401, False, "failed"),
        (404, False, "failed"),
        (302, False, "failed"),
        (429, True, "failed"),
        (500, True, "failed"),
        (502, True, "failed"),
    ],
)
def test_answers_are_classified(receiver, status, retryable, final):
    receiver.reply(status, b"", Retry_After="30", Location="https://elsewhere.example/")
    with pytest.raises(TransportError) as caught:
        _send(receiver)
    assert caught.value.retryable is retryable
    assert caught.value.status == final
    assert caught.value.http_status == status
    if status != 410:
        assert caught.value.retry_after == 30
    assert len(receiver.requests) == 1  # a redirect is not followed


def test_a_timeout_is_retryable(receiver):
    receiver.replies.append(Reply(200, delay=1.0))
    with pytest.raises(TransportError) as caught:
        _send(receiver, timeout=0.2)
    assert caught.value.retryable


def test_a_refused_connection_is_retryable():
    with pytest.raises(TransportError) as caught:
        get_transport("webhook").send(
            message_id="m", to="http://127.0.0.1:9/x", content=PAYLOAD, config=_config(timeout=1)
        )
    assert caught.value.retryable


def test_a_huge_answer_is_read_only_up_to_the_cap(receiver):
    receiver.reply(200, b"x" * 5_000_000)
    result = _send(receiver, max_response_bytes=1024)
    assert result.status == DeliveryStatus.DELIVERED


def test_private_addresses_are_refused_unless_allowed(receiver):
    for url in [
        receiver.url,
        "http://localhost/x",
        "http://10.0.0.1/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
    ]:
        with pytest.raises(TransportError, match="non-public") as caught:
            get_transport("webhook").send(
                message_id="m", to=url, content=PAYLOAD, config={"secret": SECRET}
            )
        assert not caught.value.retryable
    with pytest.raises(TransportError, match="http"):
        get_transport("webhook").send(
            message_id="m", to="ftp://example.com/x", content=PAYLOAD, config={"secret": SECRET}
        )
    assert receiver.requests == []


def test_no_or_a_bad_secret_is_final(receiver):
    for config in [
        {"allow_private_addresses": True},
        {"secret": "whsec_not base64!", "allow_private_addresses": True},
    ]:
        with pytest.raises(TransportError) as caught:
            get_transport("webhook").send(
                message_id="m", to=receiver.url, content=PAYLOAD, config=config
            )
        assert not caught.value.retryable
    assert receiver.requests == []


def test_the_retry_schedule_backs_off_with_jitter_and_ends():
    schedule = webhooks.retry_schedule("msg_1")
    assert len(schedule) == webhooks.RETRY_MAX_ATTEMPTS
    nominal = [
        min(webhooks.RETRY_CAP, webhooks.RETRY_BASE * webhooks.RETRY_FACTOR**n)
        for n in range(webhooks.RETRY_MAX_ATTEMPTS)
    ]
    for delay, expected in zip(schedule, nominal, strict=True):
        assert expected * 0.75 <= delay <= expected * 1.25
    assert schedule[0] < 10 and max(schedule) <= webhooks.RETRY_CAP * 1.25
    assert webhooks.retry_schedule("msg_1") == schedule  # pure
    assert webhooks.retry_schedule("msg_2") != schedule  # spread per message
    assert webhooks.retry_delay(webhooks.RETRY_MAX_ATTEMPTS + 1, message_id="msg_1") is None
    assert webhooks.retry_delay(1, message_id="msg_1", retry_after=600) == 600


def test_a_bad_port_is_a_final_error():
    with pytest.raises(TransportError, match="http") as caught:
        get_transport("webhook").send(
            message_id="m",
            to="https://example.com:99999/x",
            content=PAYLOAD,
            config={"secret": SECRET},
        )
    assert not caught.value.retryable
