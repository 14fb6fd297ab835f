from datetime import UTC, datetime, timedelta

import time_machine

from rapport.channels.models import Message
from rapport.journeys import services
from rapport.journeys.models import Enrolment, StepRun
from tests.journeys.conftest import ACTOR, advance, customers, email, journey


def test_waits_walk_with_a_frozen_clock(shop):
    start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        j = journey(
            shop,
            {
                "welcome": {
                    "type": "send",
                    "channel": "email",
                    "purpose": "marketing",
                    "content": email(),
                    "next": "wait",
                },
                "wait": {"type": "wait", "seconds": 3600, "next": "again"},
                "again": {
                    "type": "send",
                    "channel": "email",
                    "purpose": "marketing",
                    "content": email("Again"),
                    "next": None,
                },
            },
        )
        (person,) = customers(shop, 1)
        e = services.enrolment_create(journey=j, profile=person, actor=ACTOR)
        assert e.state == "active" and e.step == "welcome"
        advance(shop)
        e.refresh_from_db()
        assert (e.step, e.resume, e.due_at) == ("wait", "again", start + timedelta(hours=1))
        assert Message.objects.filter(profile=person).count() == 1
        # Nothing more until it is due.
        assert advance(shop)["claimed"] == 0
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        advance(shop)
    e.refresh_from_db()
    assert e.state == "completed"
    assert Message.objects.filter(profile=person).count() == 2
    assert list(
        StepRun.objects.filter(enrolment=e).order_by("id").values_list("step", "outcome")
    ) == [("welcome", "sent"), ("wait", "waited"), ("again", "sent")]
    # Sends are exactly once: the idempotency key names the enrolment, step and visit.
    keys = set(Message.objects.values_list("idempotency_key", flat=True))
    assert keys == {f"journey:{e.pk}:welcome:1", f"journey:{e.pk}:again:1"}
    assert Enrolment.objects.count() == 1
