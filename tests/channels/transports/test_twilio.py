"""Twilio Programmable Messaging against a local receiver standing in for api.twilio.com,
checked against Twilio's documented request, answer and callback formats."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import QueryDict

from rapport.channels.transports import (
    DeliveryStatus,
    InboundKind,
    TransportError,
    get_transport,
    twilio,
)

SID = "AC" + "a" * 32
TOKEN = "auth-token-123"


def _config(receiver, **extra):
    config = {
        "account_sid": SID,
        "auth_token": TOKEN,
        "from": "+15005550006",
        "base_url": receiver.url,
        "default_region": "RU",
        "status_callback": "https://rapport.example/hooks/twilio/status?workspace=w1",
    }
    config.update(extra)
    return config


def _created(sid="SM" + "b" * 32, status="queued"):
    return json.dumps(
        {"sid": sid, "status": status, "num_segments": "1", "to": "+79161234567", "body": "Hi"}
    )


def test_send_posts_the_documented_form(receiver):
    receiver.reply(201, _created(), Content_Type="application/json")
    result = get_transport("twilio").send(
        message_id="msg-1",
        to="8 916 123-45-67",
        content={"text": "Привет, Анна"},
        config=_config(receiver),
    )
    assert result.provider_message_id == "SM" + "b" * 32
    assert result.status == DeliveryStatus.QUEUED

    request = receiver.last
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert (
        request.headers["authorization"]
        == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    )
    form = parse_qs(request.body.decode(), strict_parsing=True)
    assert form["To"] == ["+79161234567"]
    assert form["From"] == ["+15005550006"]
    assert form["Body"] == ["Привет, Анна"]
    callback = urlsplit(form["StatusCallback"][0])
    assert callback.netloc == "rapport.example"
    assert parse_qs(callback.query) == {"workspace": ["w1"], "message_id": ["msg-1"]}


def test_a_messaging_service_and_an_api_key(receiver):
    receiver.reply(201, _created(status="accepted"))
    config = _config(
        receiver, messaging_service_sid="MG123", api_key_sid="SK1", api_key_secret="s3cret"
    )
    del config["status_callback"]
    get_transport("twilio").send(
        message_id="m", to="+14155552671", content={"body": "x"}, config=config
    )
    form = parse_qs(receiver.last.body.decode())
    assert form["MessagingServiceSid"] == ["MG123"]
    assert "From" not in form and "StatusCallback" not in form
    assert (
        receiver.last.headers["authorization"]
        == "Basic " + base64.b64encode(b"SK1:s3cret").decode()
    )


def test_a_bad_number_never_reaches_twilio(receiver):
    with pytest.raises(TransportError) as caught:
        get_transport("twilio").send(
            message_id="m", to="12", content={"text": "x"}, config=_config(receiver)
        )
    assert not caught.value.retryable
    assert "'12'" in caught.value.message
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, 21211, False),
        (400, 21610, False),
        (401, 20003, False),
        (429, 20429, True),
        (500, 20500, True),
        (503, None, True),
    ],
)
def test_errors_are_classified(receiver, status, code, retryable):
    body = {
        "code": code,
        "message": "nope",
        "more_info": "https://www.twilio.com/docs/errors",
        "status": status,
    }
    receiver.reply(status, json.dumps(body), Retry_After="7")
    with pytest.raises(TransportError) as caught:
        get_transport("twilio").send(
            message_id="m", to="+79161234567", content={"text": "x"}, config=_config(receiver)
        )
    assert caught.value.retryable is retryable
    assert caught.value.http_status == status
    assert caught.value.retry_after == 7
    if code:
        assert caught.value.provider_code == str(code)


def test_a_timeout_is_retryable(receiver):
    from tests.channels.transports.conftest import Reply

    receiver.replies.append(Reply(201, _created().encode(), delay=1.0))
    with pytest.raises(TransportError) as caught:
        get_transport("twilio").send(
            message_id="m",
            to="+79161234567",
            content={"text": "x"},
            config=_config(receiver, timeout=0.2),
        )
    assert caught.value.retryable


def test_an_empty_message_or_missing_credentials_are_final(receiver):
    with pytest.raises(TransportError) as caught:
        get_transport("twilio").send(
            message_id="m", to="+79161234567", content={"text": " "}, config=_config(receiver)
        )
    assert not caught.value.retryable
    config = _config(receiver)
    del config["auth_token"]
    with pytest.raises(TransportError, match="auth_token") as caught:
        get_transport("twilio").send(
            message_id="m", to="+79161234567", content={"text": "x"}, config=config
        )
    assert not caught.value.retryable


# Twilio's reference vector (the SDKs' request-validator tests).
_VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
_VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


def test_signature_matches_twilios_reference_vector():
    assert twilio.signature(_VECTOR_URL, _VECTOR_PARAMS, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio.signature_valid(
        _VECTOR_URL, _VECTOR_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "12345"
    )
    # The URL with an explicit port validates too (a proxy may add or drop it).
    assert twilio.signature_valid(
        _VECTOR_URL.replace(".com", ".com:1234"),
        _VECTOR_PARAMS,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        "12345",
    )
    assert not twilio.signature_valid(
        _VECTOR_URL, {**_VECTOR_PARAMS, "Digits": "9"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "12345"
    )
    assert not twilio.signature_valid(
        _VECTOR_URL, _VECTOR_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "54321"
    )
    assert not twilio.signature_valid(_VECTOR_URL, _VECTOR_PARAMS, "", "12345")


def test_signature_of_a_repeated_parameter(settings):
    params = QueryDict("Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234")
    assert twilio.signature(_VECTOR_URL, params, "12345") == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_status_callbacks_are_normalised():
    url = "https://rapport.example/hooks/twilio/status?workspace=w1&message_id=msg-1"
    fields = {
        "MessageSid": "SM1",
        "SmsSid": "SM1",
        "MessageStatus": "undelivered",
        "SmsStatus": "undelivered",
        "ErrorCode": "30003",
        "AccountSid": SID,
        "From": "+15005550006",
        "To": "+79161234567",
        "ApiVersion": "2010-04-01",
    }
    signature = twilio.signature(url, fields, TOKEN)
    assert twilio.signature_valid(url, fields, signature, TOKEN)
    assert twilio.is_status_callback(fields)
    report = twilio.parse_status_callback(fields, url_query=QueryDict(urlsplit(url).query))
    assert report.provider_message_id == "SM1"
    assert report.message_id == "msg-1"
    assert report.status == DeliveryStatus.UNDELIVERED
    assert report.provider_status == "undelivered"
    assert report.error_code == "30003"
    assert report.to == "+79161234567"
    for theirs, ours in [
        ("delivered", "delivered"),
        ("failed", "failed"),
        ("sent", "sent"),
        ("queued", "queued"),
        ("read", "read"),
        ("canceled", "failed"),
    ]:
        fields["MessageStatus"] = theirs
        assert twilio.parse_status_callback(fields).status == ours
    with pytest.raises(ValueError):
        twilio.parse_status_callback({"From": "+1"})


def test_inbound_stop_is_an_opt_out():
    fields = {
        "MessageSid": "SM9",
        "SmsMessageSid": "SM9",
        "AccountSid": SID,
        "From": "+79161234567",
        "To": "+15005550006",
        "Body": "Стоп",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    assert not twilio.is_status_callback(fields)
    message = twilio.parse_inbound(fields)
    assert message.kind == InboundKind.OPT_OUT
    assert message.from_number == "+79161234567"
    assert message.to_number == "+15005550006"
    assert message.provider_message_id == "SM9"
    # Twilio's Advanced Opt-Out names the keyword itself (e.g. a custom one).
    assert twilio.parse_inbound({**fields, "Body": "halt", "OptOutType": "STOP"}).kind == "opt_out"
    assert twilio.parse_inbound({**fields, "Body": "go", "OptOutType": "START"}).kind == "opt_in"
    assert twilio.parse_inbound({**fields, "Body": "When is my order due?"}).kind == "message"


def test_parse_callback_tells_the_kinds_apart():
    status = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+79161234567"}
    inbound = {
        "MessageSid": "SM2",
        "SmsStatus": "received",
        "From": "+79161234567",
        "To": "+15005550006",
        "Body": "STOP",
    }
    assert twilio.parse_callback(status).status == "delivered"
    assert twilio.parse_callback(inbound).kind == "opt_out"
    assert twilio.EMPTY_TWIML.endswith("<Response></Response>")


def test_a_message_too_long_for_twilio_is_final(receiver):
    with pytest.raises(TransportError, match="1600") as caught:
        get_transport("twilio").send(
            message_id="m",
            to="+79161234567",
            content={"text": "x" * 1601},
            config=_config(receiver),
        )
    assert not caught.value.retryable
    assert receiver.requests == []
