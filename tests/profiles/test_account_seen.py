"""An account's last seen includes its people's activity, kept on write (the account
list reads one column, whatever the number of people)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rapport.identity.services import profile_merge
from rapport.profiles.models import Account, Profile
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create
from tests.web.clients import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def b2b():
    tenant = tenant_create("Seen", sample_data=False)
    tenant.send(
        {
            "type": "group",
            "userId": "ann",
            "groupId": "acme",
            "traits": {"name": "Acme"},
            "timestamp": "2026-03-01T09:00:00Z",
        }
    )
    return tenant


def _acme(tenant) -> Account:
    return Account.objects.get(workspace=tenant.workspace, group_id="acme")


def test_a_members_later_activity_moves_the_accounts_last_seen(b2b):
    assert _acme(b2b).last_seen_at == datetime(2026, 3, 1, 9, tzinfo=UTC)
    b2b.send(
        {
            "type": "track",
            "userId": "ann",
            "event": "Report Exported",
            "timestamp": "2026-05-02T10:00:00Z",
        }
    )
    assert _acme(b2b).last_seen_at == datetime(2026, 5, 2, 10, tzinfo=UTC)
    # An older event moves nothing back.
    b2b.send({"type": "track", "userId": "ann", "event": "X", "timestamp": "2026-04-01T00:00:00Z"})
    assert _acme(b2b).last_seen_at == datetime(2026, 5, 2, 10, tzinfo=UTC)
    # Someone outside the account moves nothing.
    b2b.send({"type": "track", "userId": "bob", "event": "X", "timestamp": "2026-06-01T00:00:00Z"})
    assert _acme(b2b).last_seen_at == datetime(2026, 5, 2, 10, tzinfo=UTC)


def test_joining_brings_the_persons_activity_and_so_does_a_merge(b2b):
    b2b.send(
        {"type": "track", "userId": "cy", "event": "X", "timestamp": "2026-07-01T00:00:00Z"},
        {"type": "group", "userId": "cy", "groupId": "acme", "timestamp": "2026-02-01T00:00:00Z"},
    )
    account = _acme(b2b)
    assert account.last_seen_at == datetime(2026, 7, 1, tzinfo=UTC)
    assert account.first_seen_at == datetime(2026, 2, 1, tzinfo=UTC)
    b2b.send({"type": "track", "userId": "dee", "event": "X", "timestamp": "2026-08-01T00:00:00Z"})
    ann = Profile.objects.get(workspace=b2b.workspace, identifiers__value="ann")
    dee = Profile.objects.get(workspace=b2b.workspace, identifiers__value="dee")
    profile_merge(survivor=ann, merged=dee, reason="same", actor=Actor.system())
    assert _acme(b2b).last_seen_at == datetime(2026, 8, 1, tzinfo=UTC)


def test_the_account_pages_show_it_from_one_column(b2b):
    b2b.send({"type": "track", "userId": "ann", "event": "X", "timestamp": "2026-05-02T10:00:00Z"})
    client = signed_in(b2b)
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/accounts/").content.decode()
    assert "2026-05-02 10:00" in html
    assert not any("profiles_profile" in q["sql"] for q in queries.captured_queries)
    detail = client.get(f"/accounts/{_acme(b2b).pk}/").content.decode()
    assert "2026-05-02 10:00" in detail


def test_the_migration_backfills_existing_accounts(b2b):
    from importlib import import_module

    from django.apps import apps

    account = _acme(b2b)
    Account.objects.filter(pk=account.pk).update(last_seen_at=datetime(2026, 1, 1, tzinfo=UTC))
    Profile.objects.filter(workspace=b2b.workspace).update(
        last_seen_at=datetime(2026, 9, 9, tzinfo=UTC)
    )
    migration = import_module("rapport.profiles.migrations.0011_account_seen_includes_people")
    migration.widen(apps, None)
    assert _acme(b2b).last_seen_at == datetime(2026, 9, 9, tzinfo=UTC)
