import pytest

from rapport.channels.transports import (
    DeliveryStatus,
    InboundKind,
    Transport,
    TransportError,
    backoff_delay,
    get_transport,
    http_status_error,
    transport_names,
)
from rapport.channels.transports.sms import inbound_kind, keyword_of, to_e164


def test_every_transport_keeps_the_contract():
    assert transport_names() == ["twilio", "vonage", "webhook", "webpush"]
    for name in transport_names():
        transport = get_transport(name)
        assert isinstance(transport, Transport)
        assert transport.name == name


def test_an_unknown_transport_is_named():
    with pytest.raises(KeyError, match="carrier-pigeon"):
        get_transport("carrier-pigeon")


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (301, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
def test_http_statuses_are_classified(status, retryable):
    error = http_status_error(status, "x", retry_after=3)
    assert error.retryable is retryable
    assert error.http_status == status
    assert error.retry_after == 3
    assert error.status == DeliveryStatus.FAILED


def test_backoff_grows_exponentially_with_bounded_jitter_and_stops():
    delays = [
        backoff_delay(n, key="m1", base=10, factor=2, cap=1000, jitter=0.2, max_attempts=8)
        for n in range(1, 10)
    ]
    assert delays[-1] is None  # the ninth retry: give up
    for n, delay in enumerate(delays[:-1], start=1):
        nominal = min(1000, 10 * 2 ** (n - 1))
        assert nominal * 0.8 <= delay <= nominal * 1.2
    # Pure: the same question, the same answer; another message gets another spread.
    assert backoff_delay(3, key="m1") == backoff_delay(3, key="m1")
    spread = {backoff_delay(3, key=f"m{i}") for i in range(50)}
    assert len(spread) > 40
    # A provider's Retry-After is a floor.
    assert backoff_delay(1, key="m1", base=1, retry_after=120) == 120
    with pytest.raises(ValueError):
        backoff_delay(0, key="m1")


@pytest.mark.parametrize(
    ("number", "region", "expected"),
    [
        ("+7 916 123-45-67", None, "+79161234567"),
        ("8 (916) 123-45-67", "RU", "+79161234567"),
        ("(415) 555-2671", "us", "+14155552671"),
        ("+1 415 555 2671", "RU", "+14155552671"),
    ],
)
def test_numbers_become_e164(number, region, expected):
    assert to_e164(number, region) == expected


@pytest.mark.parametrize("number", ["12345", "not a number", "+7 123", "8 916 123-45-67"])
def test_a_bad_number_is_a_final_error_that_names_it(number):
    with pytest.raises(TransportError) as caught:
        to_e164(number, None)
    assert caught.value.retryable is False
    assert repr(number) in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        " Stop. ",
        "STOPALL",
        "Unsubscribe",
        "cancel",
        "END",
        "quit!",
        "СТОП",
        "стоп",
        "Стоп!!",
        "отписаться",
        "Revoke",
        "OPTOUT",
    ],
)
def test_opt_out_keywords(text):
    assert inbound_kind(text) == InboundKind.OPT_OUT


@pytest.mark.parametrize("text", ["START", "unstop", "Старт"])
def test_opt_in_keywords(text):
    assert inbound_kind(text) == InboundKind.OPT_IN


@pytest.mark.parametrize(
    "text", ["please stop texting me", "Stop it now", "", "thanks", "yes", "стоп-кран"]
)
def test_other_replies_are_messages(text):
    assert inbound_kind(text) == InboundKind.MESSAGE


def test_keyword_folding():
    assert keyword_of("  ¡СТОП!  ") == "стоп"
    assert keyword_of("Opt   Out") == "opt out"
