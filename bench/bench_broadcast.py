"""A broadcast (issue 24), on PostgreSQL: planned, checked and handed to a local SMTP sink.

Measured, for BENCH_BROADCAST_PROFILES customers (default 20,000; the issue's target is
stated for 1,000,000) who all granted email marketing and are in one static segment:
- planning: a Message row per member and the sending tasks, in batches (per second);
- rendering and the rule checks alone (consent, suppression, caps, quiet hours, the
  personalisation context), without sending (per second; target 5,000/s);
- sending: the queued batches run in this process, over one SMTP connection per batch,
  to an aiosmtpd sink on this machine (per second; target 1,000/s);
- the peak memory of the process (flat: batches, no list of every recipient).
"""

import os
import resource
import time

from bench.filled import postgresql_ready

PROFILES = int(os.environ.get("BENCH_BROADCAST_PROFILES", "20000"))
SAMPLE = 2_000


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def _fill(workspace, count: int):
    from django.utils import timezone

    from rapport.profiles.models import ConsentChange, Profile
    from rapport.segments.models import SegmentMembership
    from rapport.segments.services import segment_create
    from rapport.tenancy.services import Actor

    now = timezone.now()
    segment = segment_create(
        workspace=workspace, name="Everyone", kind="static", actor=Actor.system("bench")
    )
    for start in range(0, count, 5_000):
        people = Profile.objects.bulk_create(
            [
                Profile(
                    workspace=workspace,
                    traits={"email": f"b{i}@example.com", "first_name": f"B{i}"},
                )
                for i in range(start, min(count, start + 5_000))
            ]
        )
        ConsentChange.objects.bulk_create(
            [
                ConsentChange(
                    workspace=workspace,
                    profile=p,
                    origin_profile_id=p.pk,
                    channel="email",
                    purpose="marketing",
                    status="granted",
                    at=now,
                    source="bench",
                )
                for p in people
            ]
        )
        SegmentMembership.objects.bulk_create(
            [
                SegmentMembership(workspace=workspace, segment=segment, profile=p, entered_at=now)
                for p in people
            ]
        )
    return segment


def run() -> dict:
    if not postgresql_ready():
        return {"skipped": "needs DATABASE_URL pointing at PostgreSQL"}
    from aiosmtpd.controller import Controller
    from django.conf import settings
    from django_tasks_db.models import DBTaskResult

    from rapport.channels import rules, services
    from rapport.channels.dispatch import transport_for
    from rapport.channels.models import Message
    from rapport.profiles.models import Profile
    from rapport.tenancy.services import Actor, workspace_create

    actor = Actor.system("bench")
    workspace = workspace_create(name=f"bench-broadcast-{int(time.time())}", actor=actor).workspace
    started = time.perf_counter()
    segment = _fill(workspace, PROFILES)
    fill_s = time.perf_counter() - started

    broadcast = services.broadcast_create(
        workspace=workspace,
        name="Bench",
        channel="email",
        purpose="marketing",
        segment=segment,
        subject="News for {{ customer.first_name|default:'you' }}",
        html="<style>p{color:#333}</style><p>Hello {{ customer.first_name }}</p>"
        '<p><a href="https://shop.example.com/">Shop</a></p>',
        actor=actor,
    )
    services.broadcast_send(broadcast=broadcast, actor=actor)
    DBTaskResult.objects.filter(task_path__endswith="broadcast_plan").delete()

    started = time.perf_counter()
    planned = services.broadcast_plan(broadcast_id=broadcast.pk)
    plan_s = time.perf_counter() - started

    # Rendering and checks alone, on a sample.
    transport = transport_for("email")
    sample = list(Message.objects.filter(broadcast=broadcast).select_related("broadcast")[:SAMPLE])
    profiles = {
        p.pk: p
        for p in Profile.objects.filter(pk__in=[m.profile_id for m in sample]).prefetch_related(
            "identifiers"
        )
    }
    started = time.perf_counter()
    for message in sample:
        profile = profiles[message.profile_id]
        address = transport.address(profile)
        rules.send_verdict(
            message=message, profile=profile, address=address, now=message.created_at
        )
        services._outgoing(message, profile, address)
    checks_s = time.perf_counter() - started

    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=8649)
    controller.start()
    settings.RAPPORT_EMAIL_URL = "smtp://127.0.0.1:8649"
    try:
        batches = list(
            DBTaskResult.objects.filter(task_path__endswith="messages_send").values_list(
                "args_kwargs", flat=True
            )
        )
        started = time.perf_counter()
        for args in batches:
            services.messages_send(message_ids=args["kwargs"]["message_ids"])
        send_s = time.perf_counter() - started
    finally:
        controller.stop()
    sent = Message.objects.filter(broadcast=broadcast, status="sent").count()
    return {
        "database": "postgresql",
        "profiles": PROFILES,
        "fill_seconds": round(fill_s, 1),
        "planned": planned["planned"],
        "plan_seconds": round(plan_s, 2),
        "plan_per_second": round(planned["planned"] / plan_s),
        "checks_and_render_per_second": round(SAMPLE / checks_s),
        "sent": sent,
        "received_by_sink": sink.count,
        "send_seconds": round(send_s, 1),
        "send_per_second": round(sent / send_s),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
