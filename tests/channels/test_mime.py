"""Email written as bytes (rapport/channels/mime.py) and sent over a direct SMTP
connection (rapport/channels/email.py): read back, the same headers and bodies as
Django's EmailMultiAlternatives gives; pipelined where the server offers it; refusals
and header injection fail only their own message."""

import email
import email.policy

import pytest
from django.core.mail import EmailMultiAlternatives

from rapport.channels import mime, services
from rapport.channels.models import Message
from tests.channels.conftest import customer, single
from tests.smtp_server import smtp_server

TRICKY_TEXT = (
    "Привет, Jane!\n"
    ".a line that starts with a dot\n"
    "..and two\n"
    "a = sign, =3D, a tab\tand trailing spaces   \n"
    "--=_not-a-boundary\n" + "a long line " * 40 + "\n"
)
TRICKY_HTML = (
    '<p style="color: #c00">Привет</p>' + "<p>" + "word " * 200 + "</p>" + "\n.\n<p>end</p>"
)
HEADERS = {
    "Message-ID": "<0a1b@rapport.example.com>",
    "List-Unsubscribe": "<https://crm.example.com/m/unsubscribe/" + "x" * 120 + ">",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def _parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


@pytest.mark.parametrize(
    "subject",
    [
        "Plain news",
        "Новости для вас, Jane: всё, что нового в этом месяце, и немного больше того",
        ("A very long subject line that goes on and on past the seventy characters " * 2).strip(),
    ],
)
@pytest.mark.parametrize("sender", ["news@shop.example.com", "Магазин <news@shop.example.com>"])
def test_bytes_read_back_as_djangos_message_does(subject, sender):
    ours = _parsed(
        mime.message_bytes(
            boundary_key="0a1b2c",
            from_header=mime.address_header("From", sender),
            to="jane@example.com",
            subject=subject,
            text=TRICKY_TEXT,
            html=TRICKY_HTML,
            headers={**HEADERS, "Reply-To": "help@shop.example.com"},
            date="Fri, 04 Dec 2026 10:00:00 -0000",
        )
    )
    django = EmailMultiAlternatives(
        subject=subject,
        body=TRICKY_TEXT,
        from_email=sender,
        to=["jane@example.com"],
        reply_to=["help@shop.example.com"],
        headers=dict(HEADERS),
    )
    django.attach_alternative(TRICKY_HTML, "text/html")
    theirs = _parsed(django.message().as_bytes(linesep="\r\n"))

    for name in ("Subject", "From", "To", "Reply-To", *HEADERS):
        # (Django's folding leaves a space before a value that starts on the next line.)
        assert str(ours[name]).strip() == str(theirs[name]).strip(), name
    for kind in ("plain", "html"):
        assert (
            ours.get_body(preferencelist=(kind,)).get_content()
            == theirs.get_body(preferencelist=(kind,)).get_content()
        )
    assert ours.get_content_type() == "multipart/alternative"
    # A URL header stays a URL (folded if need be, never an encoded word).
    assert ours["List-Unsubscribe"].startswith("<https://")


def test_no_line_is_longer_than_smtp_allows():
    data = mime.message_bytes(
        boundary_key="b",
        from_header="a@example.com",
        to="b@example.com",
        subject="S",
        text="x" * 5000,
        html="<p>" + "y" * 5000 + "</p>",
        headers={},
        date="Fri, 04 Dec 2026 10:00:00 -0000",
    )
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_a_text_only_message_is_one_part():
    message = _parsed(
        mime.message_bytes(
            boundary_key="b",
            from_header="a@example.com",
            to="b@example.com",
            subject="S",
            text="Just text",
            html="",
            headers={},
            date="Fri, 04 Dec 2026 10:00:00 -0000",
        )
    )
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "Just text"


@pytest.mark.parametrize("pipelining", [False, True])
def test_a_batch_over_one_connection_with_a_refused_recipient(
    shop, settings, pipelining, django_db_blocker
):
    settings.RAPPORT_PUBLIC_URL = "https://crm.example.com"
    with smtp_server(pipelining=pipelining) as box:
        box.refuse = {"nobody@example.com"}
        settings.RAPPORT_EMAIL_URL = f"smtp://{box.host}:{box.port}"
        people = [
            customer(shop, "u1", email="ann@example.com", first_name="Ann"),
            customer(shop, "u2", email="nobody@example.com", first_name="No"),
            customer(shop, "u3", email="cy@example.com", first_name="Cy"),
        ]
        messages = [single(shop, person) for person in people]
        counts = services.messages_send(message_ids=[str(m.pk) for m in messages])

    assert counts == {"sent": 2, "failed": 1}
    assert sorted(r for [r] in box.recipients) == ["ann@example.com", "cy@example.com"]
    assert sorted(m["Subject"] for m in box.messages) == ["Hello Ann", "Hello Cy"]
    refused = Message.objects.get(pk=messages[1].pk)
    assert refused.status == "failed" and "recipient refused" in refused.error
    for mail in box.messages:
        assert mail.get_body(preferencelist=("plain",)).get_content().startswith("Hi ")


def test_an_address_with_a_line_break_fails_that_message_alone(shop, smtp):
    sneaky = customer(shop, "u1", email="ann@example.com\r\nBcc: all@example.com")
    message = single(shop, sneaky)
    # The address the rules read is the trait as it is: the message fails, not the batch.
    assert services.message_send(message_id=message.pk) == "failed"
    message.refresh_from_db()
    assert "line break" in message.error
    assert smtp.messages == []


def test_an_international_domain_goes_through_django(shop, smtp):
    person = customer(shop, "u1", email="jane@exämple.com", first_name="Jane")
    message = single(shop, person)
    assert services.message_send(message_id=message.pk) == "sent"
    assert smtp.recipients == [["jane@xn--exmple-cua.com"]]
    assert smtp.messages[0]["Subject"] == "Hello Jane"
