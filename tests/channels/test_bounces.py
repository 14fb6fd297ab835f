"""Bounces by mail (rapport/channels/bounces.py): RFC 3464 DSNs as Postfix and Exim
write them (tests/channels/fixtures/), for mail sent through a real SMTP server; one
end to end: the DSN delivered by SMTP into the bounce Maildir, read by the CLI."""

import io
import json
import mailbox
import smtplib
import sys
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox as MaildirHandler

from rapport.channels import bounces, services
from rapport.channels.models import Message, Suppression
from rapport.cli import _run, cli
from rapport.ingest.models import Event
from tests.channels.conftest import customer, single
from tests.smtp_server import free_port

FIXTURES = Path(__file__).parent / "fixtures"
JANE = "jane@example.com"


def _sent(shop, smtp):
    jane = customer(shop, "u1", email=JANE)
    message = single(shop, jane)
    assert services.message_send(message_id=message.pk) == "sent"
    header = smtp.messages[-1]["Message-ID"]
    return jane, message, header


def _dsn(name: str, header: str, recipient: str = JANE) -> bytes:
    text = (FIXTURES / name).read_text()
    return text.replace("{{MESSAGE_ID}}", header).replace("{{RECIPIENT}}", recipient).encode()


def _bounces(profile):
    return list(Event.objects.filter(profile=profile, event="Email Bounced"))


def test_a_permanent_failure_bounces_and_suppresses(shop, smtp):
    jane, message, header = _sent(shop, smtp)
    dsn = _dsn("dsn_postfix_permanent.eml", header)
    parsed = bounces.dsn_parse(dsn)
    assert parsed.message_ids == [header]
    [recipient] = parsed.recipients
    assert (recipient.address, recipient.action, recipient.status) == (JANE, "failed", "5.1.1")

    result = bounces.bounces_read(dsn)
    assert result.bounced == 1 and result.read == 1
    message.refresh_from_db()
    assert message.status == Message.Status.BOUNCED and message.bounced_at
    assert "5.1.1" in message.error
    suppressed = Suppression.objects.get(workspace=shop.workspace, address=JANE)
    assert suppressed.reason == "bounce" and "User unknown" in suppressed.detail
    [event] = _bounces(jane)
    assert event.properties["bounce_type"] == "permanent"
    # The same DSN again (a mailbox read twice): nothing more.
    bounces.bounces_read(dsn)
    assert len(_bounces(jane)) == 1
    assert Suppression.objects.filter(workspace=shop.workspace).count() == 1
    # And the next message to her is not sent.
    again = single(shop, jane)
    assert services.message_send(message_id=again.pk) == "skipped"


def test_a_transient_failure_is_recorded_not_suppressed(shop, smtp):
    jane, message, header = _sent(shop, smtp)
    result = bounces.bounces_read(_dsn("dsn_exim_delayed.eml", header))
    assert result.deferred == 1 and result.bounced == 0
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and "4.2.2" in message.error
    assert not Suppression.objects.filter(workspace=shop.workspace).exists()
    [event] = _bounces(jane)
    assert event.properties["bounce_type"] == "transient"
    assert "over quota" in event.properties["reason"]


def test_mail_that_is_no_dsn_or_not_ours_changes_nothing(shop, smtp):
    _, message, header = _sent(shop, smtp)
    assert bounces.bounces_read(_dsn("auto_reply.eml", header)).not_dsn == 1
    stranger = "<0190b1d2-0000-7000-8000-000000000000@elsewhere.example>"
    assert bounces.bounces_read(_dsn("dsn_postfix_permanent.eml", stranger)).not_ours == 1
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert not Suppression.objects.exists()


def test_end_to_end_the_dsn_arrives_by_smtp_and_the_cli_reads_the_maildir(
    shop, smtp, tmp_path, capsys
):
    jane, message, header = _sent(shop, smtp)
    maildir = tmp_path / "bounces"
    mailbox.Maildir(maildir, create=True)
    port = free_port()
    controller = Controller(MaildirHandler(str(maildir)), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # The recipient's MTA refused it: its DSN comes back to the bounce address.
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail(
                "", ["bounces@shop.example.com"], _dsn("dsn_exim_delayed.eml", header).decode()
            )
            client.sendmail(
                "", ["bounces@shop.example.com"], _dsn("dsn_postfix_permanent.eml", header).decode()
            )
    finally:
        controller.stop()

    assert _run(cli.main, ["bounces-read", str(maildir), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["read"] == 2 and counts["bounced"] == 1 and counts["deferred"] == 1
    message.refresh_from_db()
    assert message.status == Message.Status.BOUNCED
    assert Suppression.objects.filter(workspace=shop.workspace, address=JANE).exists()
    assert sorted(e.properties["bounce_type"] for e in _bounces(jane)) == [
        "permanent",
        "transient",
    ]


def test_cli_reads_stdin_and_mbox_and_refuses_a_missing_path(
    shop, smtp, tmp_path, capsys, monkeypatch
):
    _, _, header = _sent(shop, smtp)
    dsn = _dsn("dsn_exim_delayed.eml", header)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(dsn)))
    assert _run(cli.main, ["bounces-read"]) == 0
    assert "1 delayed" in capsys.readouterr().out

    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(_dsn("dsn_postfix_permanent.eml", header))
    box.flush()
    assert _run(cli.main, ["bounces-read", str(tmp_path / "bounces.mbox"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bounced"] == 1

    assert _run(cli.main, ["bounces-read", str(tmp_path / "nothing")]) == 1
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("status,kind", [("5.7.1", "bounced"), ("4.4.1", "deferred")])
def test_recipient_kind(status, kind):
    assert bounces.Recipient("a@b", "failed", status, "").kind == kind
    assert bounces.Recipient("a@b", "delivered", "2.0.0", "").kind == "delivered"
    assert bounces.Recipient("a@b", "failed", "", "").kind == "bounced"
