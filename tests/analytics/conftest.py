"""A small shop whose KPIs, funnel and cohorts were worked out by hand.

The workspace counts days in Europe/London (summer time until 25 October 2026). The
period under test is October 2026; the previous period of the same length is
31 August - 30 September.

- u1: first seen 20 Aug; a page in September; buys 100 on 5 Oct; answers NPS 10.
- u2: first seen 5 Sep; in October only a newsletter delivered and opened.
- u3: browses anonymously on 10 Oct (from a Google campaign), signs up, buys 50 and
  30, is refunded 30, answers NPS 5.
- u4: two anonymous histories (a page on 15 Sep, another on 2 Oct) joined by a log-in on
  12 Oct: one customer, merged mid-period.
- u5: first seen at 23:30 UTC on 30 Sep, which is 00:30 on 1 Oct in London; signs up
  30 minutes later; answers NPS 9.
- u6: active on 20 Sep only.
- u7: first seen on 2 Nov, after the period.
"""

import pytest

from rapport.analytics.services import analytics_settings_update
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create


def _track(user: str, at: str, event: str, properties=None, **extra) -> dict:
    call = {"type": "track", "userId": user, "event": event, "timestamp": at, **extra}
    if properties:
        call["properties"] = properties
    return call


def _page(at: str, *, anonymous: str | None = None, user: str | None = None, **extra) -> dict:
    call = {"type": "page", "name": "Home", "timestamp": at, **extra}
    if anonymous:
        call["anonymousId"] = anonymous
    if user:
        call["userId"] = user
    return call


def _identify(user: str, at: str, **extra) -> dict:
    return {"type": "identify", "userId": user, "timestamp": at, **extra}


SHOP_EVENTS = [
    # u1
    _identify("u1", "2026-08-20T10:00:00Z", traits={"email": "u1@example.com"}),
    _page("2026-08-20T10:01:00Z", user="u1"),
    _page("2026-09-10T10:00:00Z", user="u1"),
    _track("u1", "2026-10-05T12:00:00Z", "Order Completed", {"revenue": 100}),
    _track("u1", "2026-10-06T12:00:00Z", "Survey Answered", {"survey": "nps", "score": 10}),
    # u2
    _identify("u2", "2026-09-05T09:00:00Z"),
    _page("2026-09-05T09:01:00Z", user="u2"),
    _track("u2", "2026-10-02T08:00:00Z", "Email Delivered"),
    _track("u2", "2026-10-03T08:00:00Z", "Email Opened"),
    # u3
    _page(
        "2026-10-10T09:00:00Z",
        anonymous="anon-3",
        context={"campaign": {"source": "google", "name": "brand"}},
    ),
    _identify("u3", "2026-10-10T09:04:00Z", anonymousId="anon-3", traits={"plan": "pro"}),
    _track("u3", "2026-10-10T09:05:00Z", "Signed Up"),
    _track("u3", "2026-10-10T10:00:00Z", "Order Completed", {"revenue": 50}),
    _track("u3", "2026-10-20T10:00:00Z", "Order Completed", {"revenue": 30}),
    _track("u3", "2026-10-21T10:00:00Z", "Order Refunded", {"revenue": 30}),
    _track("u3", "2026-10-22T10:00:00Z", "Survey Answered", {"survey": "nps", "score": 5}),
    # u4: two anonymous histories, joined on 12 Oct
    _page("2026-09-15T10:00:00Z", anonymous="anon-4a"),
    _page("2026-10-02T10:00:00Z", anonymous="anon-4b"),
    _identify("u4", "2026-10-12T10:00:00Z", anonymousId="anon-4a"),
    _identify("u4", "2026-10-12T10:01:00Z", anonymousId="anon-4b"),
    # u5: the month boundary
    _page("2026-09-30T23:30:00Z", anonymous="anon-5"),
    _identify("u5", "2026-09-30T23:59:00Z", anonymousId="anon-5"),
    _track("u5", "2026-10-01T00:00:00Z", "Signed Up"),
    _track("u5", "2026-10-15T00:00:00Z", "Survey Answered", {"survey": "nps", "score": 9}),
    # u6
    _identify("u6", "2026-09-20T10:00:00Z"),
    # u7
    _identify("u7", "2026-11-02T10:00:00Z"),
    _track("u7", "2026-11-02T10:05:00Z", "Order Completed", {"revenue": 999}),
]


def user_ids(workspace, profile_ids) -> set[str]:
    from rapport.identity.models import Identifier

    return set(
        Identifier.objects.filter(
            workspace=workspace, profile_id__in=list(profile_ids), kind="user_id"
        ).values_list("value", flat=True)
    )


@pytest.fixture
def shop(db):
    tenant = tenant_create("Analytics", sample_data=False)
    analytics_settings_update(
        workspace=tenant.workspace, actor=Actor.system("tests"), timezone="Europe/London"
    )
    for n, call in enumerate(SHOP_EVENTS):
        call.setdefault("messageId", f"m{n}")
    tenant.send(*SHOP_EVENTS)
    return tenant
