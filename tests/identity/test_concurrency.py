"""Several workers resolving one workspace at once: the graph phase of a batch runs one
worker at a time, the apply phase beside the others, and what they write together is
what one worker would have written."""

import random
import threading
from collections import defaultdict

import psycopg
import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from rapport.identity import services as identity
from rapport.identity.models import Identifier
from rapport.ingest.models import Event
from rapport.ingest.services import Destination, events_dispatched, events_ingest, events_parse
from rapport.profiles.models import Profile
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="row and advisory locks are PostgreSQL's"
)


def _store(tenant, calls: list[dict]) -> list[str]:
    """Calls stored by ingestion and not yet resolved; their message ids."""
    now = timezone.now()
    rows, refused = events_parse(calls, received_at=now)
    destination = Destination(workspace_id=tenant.workspace.pk, source_id=tenant.created.source.pk)
    return events_ingest(
        destination=destination, rows=rows, refused=refused, received_at=now
    ).message_ids


def _batch(tenant, message_ids: list[str]) -> list:
    return events_dispatched(workspace_id=tenant.workspace.pk, message_ids=message_ids)


def _resolve(tenant, message_ids: list[str]) -> int:
    return identity.events_resolve(tenant.workspace.pk, _batch(tenant, message_ids))


@pytest.mark.django_db
def test_a_merge_made_between_the_two_phases_is_followed():
    tenant = tenant_create("Phases", sample_data=False)
    _resolve(tenant, _store(tenant, [{"type": "identify", "userId": "u1", "messageId": "p"}]))
    _resolve(tenant, _store(tenant, [{"type": "page", "anonymousId": "a2", "messageId": "q"}]))
    merged = Profile.objects.get(identifiers__value="u1")
    survivor = Profile.objects.get(identifiers__value="a2")
    batch = _batch(
        tenant,
        _store(
            tenant,
            [
                {
                    "type": "identify",
                    "userId": "u1",
                    "traits": {"plan": "pro"},
                    "messageId": "late",
                    "timestamp": "2030-01-01T00:00:00Z",
                }
            ],
        ),
    )
    resolved = identity._resolution_graph(
        tenant.workspace.pk,
        batch,
        {e.id: identity._event_identities(e, *_parse_rules(tenant)) for e in batch},
        identity.identity_rules_get(workspace_id=tenant.workspace.pk),
    )
    assert set(resolved.final.values()) == {merged.pk}
    # Another worker (here a person) merges the batch's profile before it is applied.
    identity.profile_merge(
        survivor=survivor, merged=merged, reason="same person", actor=Actor.system("test")
    )
    assert len(identity._resolution_apply(tenant.workspace.pk, resolved)) == 1

    assert Event.objects.get(message_id="late").profile_id == survivor.pk
    survivor.refresh_from_db()
    assert survivor.traits["plan"] == "pro"
    assert survivor.last_seen_at.year == 2030
    merged.refresh_from_db()
    assert "plan" not in merged.traits and merged.last_seen_at.year != 2030


@pytest.mark.django_db
def test_a_chain_of_merges_made_between_the_two_phases_is_followed_to_its_end():
    tenant = tenant_create("Chain", sample_data=False)
    for anonymous_id in ("a1", "a2", "a3"):
        _resolve(tenant, _store(tenant, [{"type": "page", "anonymousId": anonymous_id}]))
    first, second, third = (
        Profile.objects.get(identifiers__value=value) for value in ("a1", "a2", "a3")
    )
    batch = _batch(
        tenant,
        _store(
            tenant,
            [
                {"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"}},
                {"type": "page", "anonymousId": "a2", "messageId": "on-second"},
            ],
        ),
    )
    resolved = identity._resolution_graph(
        tenant.workspace.pk,
        batch,
        {e.id: identity._event_identities(e, *_parse_rules(tenant)) for e in batch},
        identity.identity_rules_get(workspace_id=tenant.workspace.pk),
    )
    actor = Actor.system("test")
    identity.profile_merge(survivor=second, merged=first, reason="same", actor=actor)
    second.refresh_from_db()
    identity.profile_merge(survivor=third, merged=second, reason="same", actor=actor)

    assert len(identity._resolution_apply(tenant.workspace.pk, resolved)) == 2
    assert set(
        Event.objects.filter(pk__in=[e.id for e in batch]).values_list("profile_id", flat=True)
    ) == {third.pk}
    third.refresh_from_db()
    assert third.traits == {"plan": "pro"}


def _parse_rules(tenant):
    rules = identity.identity_rules_get(workspace_id=tenant.workspace.pk)
    return rules, identity.blocked_set(rules.blocked_values)


@pytest.mark.django_db
def test_a_profile_deleted_between_the_two_phases_leaves_its_events_unresolved():
    tenant = tenant_create("Gone", sample_data=False)
    batch = _batch(tenant, _store(tenant, [{"type": "page", "anonymousId": "a", "messageId": "x"}]))
    resolved = identity._resolution_graph(
        tenant.workspace.pk,
        batch,
        {e.id: identity._event_identities(e, *_parse_rules(tenant)) for e in batch},
        identity.identity_rules_get(workspace_id=tenant.workspace.pk),
    )
    Profile.objects.filter(pk__in=resolved.final.values()).delete()
    assert len(identity._resolution_apply(tenant.workspace.pk, resolved)) == 0
    assert Event.objects.get(message_id="x").profile_id is None


def _calls(people: int, n: int, seed: int) -> list[dict]:
    """Anonymous browsing on one or two devices, sign-ups joining them, known visits."""
    rng = random.Random(seed)
    devices = {p: [f"anon-{p}-{d}" for d in range(1 + (rng.random() < 0.4))] for p in range(people)}
    known: set[int] = set()
    calls = []
    for i in range(n):
        p = rng.randrange(people)
        anon = rng.choice(devices[p])
        if p not in known and rng.random() < 0.3:
            known.add(p)
            call = {"type": "identify", "userId": f"user-{p}", "traits": {"n": i}}
        elif p in known and rng.random() < 0.5:
            call = {"type": "track", "userId": f"user-{p}", "event": "Order Completed"}
        else:
            call = {"type": "page"}
        calls.append({**call, "anonymousId": anon, "messageId": f"m{i}"})
    return calls


def _partition(workspace) -> set[frozenset[str]]:
    """The workspace's events grouped by profile, as sets of message ids."""
    groups = defaultdict(set)
    for message_id, profile_id in Event.objects.filter(workspace=workspace).values_list(
        "message_id", "profile_id"
    ):
        groups[profile_id].add(message_id)
    return {frozenset(group) for group in groups.values()}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_workers_resolving_one_workspace_at_once_write_what_one_worker_writes():
    calls = _calls(people=150, n=3000, seed=3)
    one, many = tenant_create("One", sample_data=False), tenant_create("Many", sample_data=False)
    chunks = [calls[start : start + 100] for start in range(0, len(calls), 100)]
    for chunk in chunks:
        _resolve(one, _store(one, chunk))
    queue = [_store(many, chunk) for chunk in reversed(chunks)]
    failures: list[BaseException] = []
    taken = threading.Lock()

    def worker():
        try:
            while True:
                with taken:
                    if not queue:
                        return
                    message_ids = queue.pop()
                _resolve(many, message_ids)
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures

    live = set(
        Profile.objects.filter(workspace=many.workspace, merged_into__isnull=True).values_list(
            "pk", flat=True
        )
    )
    events = Event.objects.filter(workspace=many.workspace)
    assert not events.filter(profile__isnull=True).exists()
    assert set(events.values_list("profile_id", flat=True)) <= live
    # Every event is on the profile that holds its identifiers.
    owner = dict(
        Identifier.objects.filter(workspace=many.workspace).values_list("value", "profile_id")
    )
    for user_id, anonymous_id, profile_id in events.values_list(
        "user_id", "anonymous_id", "profile_id"
    ):
        assert owner[anonymous_id] == profile_id
        if user_id:
            assert owner[user_id] == profile_id
    assert _partition(many.workspace) == _partition(one.workspace)
    # Traits: the latest identify of each person wins, whatever the order of batches.
    expected = {}
    for call in calls:
        if call["type"] == "identify":
            expected[call["userId"]] = call["traits"]["n"]
    for user_id, n in expected.items():
        assert Profile.objects.get(pk=owner[user_id]).traits["n"] == n


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_undoing_a_merge_or_erasing_waits_for_batches_in_flight():
    tenant = tenant_create("Waits", sample_data=False)
    inside, release = threading.Event(), threading.Event()

    def batch_in_flight():
        try:
            with identity._resolving(tenant.workspace.pk):
                inside.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=batch_in_flight)
    thread.start()
    try:
        assert inside.wait(10)
        with pytest.raises(OperationalError), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
            identity._graph_rewrite_lock(tenant.workspace.pk)
    finally:
        release.set()
        thread.join()
    with transaction.atomic():
        identity._graph_rewrite_lock(tenant.workspace.pk)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_batch_ended_by_a_deadlock_is_resolved_again(monkeypatch):
    tenant = tenant_create("Deadlock", sample_data=False)
    message_ids = _store(tenant, [{"type": "identify", "userId": "u", "anonymousId": "a"}])
    apply = identity._resolution_apply
    attempts = []

    def apply_once_deadlocked(workspace_id, resolved):
        attempts.append(1)
        if len(attempts) == 1:
            error = OperationalError("deadlock detected")
            error.__cause__ = psycopg.errors.DeadlockDetected()
            raise error
        return apply(workspace_id, resolved)

    monkeypatch.setattr(identity, "_resolution_apply", apply_once_deadlocked)
    assert _resolve(tenant, message_ids) == 1
    assert len(attempts) == 2
    assert Profile.objects.filter(workspace=tenant.workspace).count() == 1
    assert Identifier.objects.filter(workspace=tenant.workspace).count() == 2
    assert not Event.objects.filter(workspace=tenant.workspace, profile__isnull=True).exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_other_errors_are_not_retried(monkeypatch):
    tenant = tenant_create("Errors", sample_data=False)
    message_ids = _store(tenant, [{"type": "page", "anonymousId": "a"}])
    attempts = []

    def fails(workspace_id, resolved):
        attempts.append(1)
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(identity, "_resolution_apply", fails)
    with pytest.raises(OperationalError):
        _resolve(tenant, message_ids)
    assert len(attempts) == 1


@pytest.mark.django_db
def test_the_profiles_a_resolution_gave_are_kept_for_the_consumers_after_it():
    """Segments read where the batch's events went from resolution, not the events."""
    tenant = tenant_create("Handed on", sample_data=False)
    message_ids = _store(
        tenant,
        [
            {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "x"},
            {"type": "page", "anonymousId": "a2", "messageId": "y"},
        ],
    )
    batch = _batch(tenant, message_ids)
    assert identity.events_resolve(tenant.workspace.pk, batch) == 2
    stored = dict(Event.objects.filter(workspace=tenant.workspace).values_list("id", "profile_id"))
    assert identity.events_profiles_resolved([e.id for e in batch]) == stored
    assert identity.events_profiles_resolved([batch[0].id]) == {batch[0].id: stored[batch[0].id]}
    # Events the last resolution did not take: the caller reads them from the events.
    other = _store(tenant, [{"type": "page", "anonymousId": "a3", "messageId": "z"}])
    assert identity.events_profiles_resolved([_batch(tenant, other)[0].id]) is None
    assert identity.events_profiles_resolved([]) is None
