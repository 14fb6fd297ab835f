"""A broadcast sent by real `rapport worker` processes to a real SMTP server; the
worker is killed (SIGKILL) in the middle, two more are started: every recipient gets
the message, under one Message-ID each, and no message is sent twice except the one
whose send the kill interrupted, which is resumed under the same Message-ID (so the
receiving side can tell it is the same message)."""

import asyncio
import email
import email.policy
import threading
from collections import Counter

import pytest
from aiosmtpd.controller import Controller

from tests.core.test_leases_kill import _migrated, deployment  # noqa: F401 - fixtures
from tests.smtp_server import free_port

RECIPIENTS = 600

PLAN = """
import json
from django.utils import timezone
from rapport.channels import services
from rapport.profiles.models import ConsentChange, Profile
from rapport.segments.models import SegmentMembership
from rapport.segments.services import segment_create
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor
actor = Actor.system("test")
ws = Workspace.objects.get(name={workspace!r})
now = timezone.now()
people = Profile.objects.bulk_create(
    [Profile(workspace=ws, traits={{"email": f"k{{i}}@example.com", "first_name": f"K{{i}}"}})
     for i in range({count})]
)
ConsentChange.objects.bulk_create([
    ConsentChange(workspace=ws, profile=p, origin_profile_id=p.pk, channel="email",
                  purpose="marketing", status="granted", at=now, source="test")
    for p in people
])
segment = segment_create(workspace=ws, name="Everyone", kind="static", actor=actor)
SegmentMembership.objects.bulk_create(
    [SegmentMembership(workspace=ws, segment=segment, profile=p, entered_at=now) for p in people]
)
broadcast = services.broadcast_create(
    workspace=ws, name="News", channel="email", purpose="marketing", segment=segment,
    subject="News for {{{{ customer.first_name }}}}", html="<p>Hello</p>", actor=actor,
)
services.broadcast_send(broadcast=broadcast, actor=actor)
print(json.dumps({{"broadcast": str(broadcast.pk)}}))
"""


class SlowMailbox:
    """Accepts each message after a few milliseconds, as a real server takes a while."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.01)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((tuple(envelope.rcpt_tos), message["Message-ID"]))
        return "250 OK"


@pytest.mark.slow
def test_a_broadcast_killed_midway_reaches_everyone_once(deployment):  # noqa: F811
    box = SlowMailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        deployment.env["RAPPORT_EMAIL_URL"] = f"smtp://127.0.0.1:{port}"
        planned = deployment.script(PLAN.format(workspace=deployment.workspace, count=RECIPIENTS))
        broadcast = deployment.key(planned["broadcast"])
        first = deployment.worker_start()
        deployment.wait_for(
            "SELECT COUNT(*) > 100 FROM channels_message WHERE broadcast_id = %s "
            "AND status = 'sent'",
            broadcast,
            what="the broadcast to be under way",
        )
        deployment.worker_kill(first)
        sent_before = deployment.value(
            "SELECT COUNT(*) FROM channels_message WHERE broadcast_id = %s AND status = 'sent'",
            broadcast,
        )
        assert sent_before < RECIPIENTS
        # The killed worker held a sending task: it is taken over, not lost.
        assert deployment.value(
            "SELECT COUNT(*) FROM django_tasks_database_dbtaskresult WHERE status = 'RUNNING'"
        )

        deployment.worker_start()
        deployment.worker_start()
        deployment.queue_drained()
    finally:
        deployment.env.pop("RAPPORT_EMAIL_URL", None)
        controller.stop()

    assert deployment.rows(
        "SELECT status, COUNT(*) FROM channels_message WHERE broadcast_id = %s GROUP BY status",
        broadcast,
    ) == [("sent", RECIPIENTS)]
    assert (
        deployment.value("SELECT status FROM channels_broadcast WHERE id = %s", broadcast) == "sent"
    )
    by_recipient: dict[tuple, set] = {}
    for recipients, message_id in box.messages:
        by_recipient.setdefault(recipients, set()).add(message_id)
    # Everyone, each under exactly one Message-ID.
    assert len(by_recipient) == RECIPIENTS
    assert all(len(ids) == 1 for ids in by_recipient.values())
    # At most the send in flight at the kill was made again (same Message-ID).
    repeats = Counter(recipients for recipients, _ in box.messages)
    assert sum(n - 1 for n in repeats.values()) <= 1
    assert deployment.value("SELECT COUNT(*) FROM core_tasktakeover") >= 1
