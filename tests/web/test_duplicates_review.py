"""Reviewing duplicates on the exact cases a new user found: "Kai"/"Kaai" is not
labelled as agreeing, "020 7946 0100"/"+44 20 7946 0100" is one phone number, each
pair shows its own probability, and selected pairs are merged together after a
confirmation, each pair reported on its own, safely sent twice."""

import pytest
from django.utils import translation

from rapport.identity.models import DuplicateCandidate
from rapport.identity.services import identity_rules_update
from rapport.profiles.models import Profile
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor
from rapport.web.duplicates import probability_shown
from tests.web.clients import signed_in


def _profile(tenant, user_id: str, **traits) -> Profile:
    tenant.send({"type": "identify", "userId": user_id, "traits": traits})
    return Profile.objects.get(
        workspace=tenant.workspace, identifiers__kind="user_id", identifiers__value=user_id
    )


def _pair(tenant, a: Profile, b: Profile, probability: float, agreeing=()) -> DuplicateCandidate:
    first, second = sorted((a.pk, b.pk))
    return DuplicateCandidate.objects.update_or_create(
        workspace=tenant.workspace,
        kind="profile",
        record_a=first,
        record_b=second,
        defaults={"probability": probability, "agreeing_fields": list(agreeing)},
    )[0]


@pytest.fixture
def kai(tenant):
    identity_rules_update(
        workspace=tenant.workspace, actor=Actor.system("tests"), default_phone_region="GB"
    )
    a = _profile(tenant, "kai-1", first_name="Kai", last_name="Ito", phone="020 7946 0100")
    b = _profile(tenant, "kai-2", first_name="Kaai", last_name="Ito", phone="+44 20 7946 0100")
    DuplicateCandidate.objects.filter(workspace=tenant.workspace).delete()
    return _pair(tenant, a, b, 0.9731, agreeing=["first_name", "last_name", "phone"])


def _shown(response, candidate) -> dict:
    (pair,) = [p for p in response.context["pairs"] if p["candidate"].pk == candidate.pk]
    return pair


def test_kai_and_kaai_are_similar_and_the_two_phones_agree(tenant, kai):
    response = signed_in(tenant).get("/duplicates/")
    rows = {row["field"]: row["state"] for row in _shown(response, kai)["rows"]}
    assert rows == {"first_name": "similar", "last_name": "agree", "phone": "agree"}
    html = response.content.decode()
    assert "97.3% likely the same" in html and ">similar<" in html


@pytest.mark.parametrize(
    "probability, shown",
    [
        (0.9731, "97.3"),
        (0.99951, "99.95"),
        (0.999991, "99.999"),
        (0.99999996, "> 99.9999"),
        (1.0, "> 99.9999"),
    ],
)
def test_each_probability_shows_the_digits_that_tell_it_apart(probability, shown):
    with translation.override("en"):
        assert probability_shown(probability) == shown


def test_pairs_show_their_own_probabilities(tenant, kai):
    c = _profile(tenant, "p-1", first_name="Mia", last_name="Roe")
    d = _profile(tenant, "p-2", first_name="Mia", last_name="Roe")
    _pair(tenant, c, d, 0.99951)
    html = signed_in(tenant).get("/duplicates/").content.decode()
    assert "97.3% likely" in html and "99.95% likely" in html and "100.0%" not in html


@pytest.fixture
def three(tenant, kai):
    pairs = [kai]
    for n in range(2):
        a = _profile(tenant, f"twin-{n}-a", first_name="Lee", last_name=f"Twin{n}")
        b = _profile(tenant, f"twin-{n}-b", first_name="Lee", last_name=f"Twin{n}")
        pairs.append(_pair(tenant, a, b, 0.95))
    return pairs


def test_bulk_merge_asks_first_then_merges_each_pair_and_is_safe_to_resend(tenant, three):
    client = signed_in(tenant)
    page = client.get("/duplicates/").content.decode()
    assert 'form="bulk-merge"' in page and 'action="/duplicates/merge/"' in page
    ids = [str(p.pk) for p in three]
    merges = AuditLogEntry.objects.filter(workspace=tenant.workspace, action="profile.merge")
    before = merges.count()
    # The first POST only asks: nothing is merged yet.
    confirm = client.post("/duplicates/merge/", {"candidates": ids})
    assert confirm.status_code == 200 and 'name="confirm" value="yes"' in confirm.content.decode()
    assert not DuplicateCandidate.objects.filter(pk__in=ids, status="merged").exists()
    # A reason is required.
    response = client.post("/duplicates/merge/", {"candidates": ids, "confirm": "yes"})
    assert response.status_code == 422 and "reason:" in response.content.decode()
    # One pair was dismissed by someone else meanwhile: it fails, the others merge.
    DuplicateCandidate.objects.filter(pk=three[2].pk).update(status="dismissed")
    sent = {"candidates": ids, "confirm": "yes", "reason": "Same people, keyed twice"}
    done = client.post("/duplicates/merge/", sent)
    assert done.status_code == 200
    outcomes = {row["candidate"].pk: row["outcome"] for row in done.context["done"]}
    assert outcomes == {three[0].pk: "merged", three[1].pk: "merged", three[2].pk: "failed"}
    assert "it was dismissed since" in done.content.decode()
    for pair in three[:2]:
        pair.refresh_from_db()
        assert pair.status == "merged"
        assert Profile.objects.get(pk=pair.record_b).merged_into_id == pair.record_a
    assert merges.count() == before + 2
    # Sent again (a reload of the result page): nothing merged twice.
    again = client.post("/duplicates/merge/", sent)
    outcomes = {row["candidate"].pk: row["outcome"] for row in again.context["done"]}
    assert outcomes[three[0].pk] == outcomes[three[1].pk] == "already"
    assert merges.count() == before + 2


def test_bulk_merge_refuses_bad_input_other_workspaces_and_other_roles(tenant, other_tenant, kai):
    client = signed_in(tenant)
    response = client.post("/duplicates/merge/", {})
    assert response.status_code == 422 and "candidates:" in response.content.decode()
    response = client.post("/duplicates/merge/", {"candidates": ["1=1"]})
    assert response.status_code == 422 and "candidates:" in response.content.decode()
    theirs = DuplicateCandidate.objects.filter(workspace=other_tenant.workspace).first()
    sent = {"candidates": [str(kai.pk), str(theirs.pk)], "confirm": "yes", "reason": "x"}
    assert client.post("/duplicates/merge/", sent).status_code == 404
    assert client.get("/duplicates/merge/").status_code == 405
    sent = {"candidates": [str(kai.pk)], "confirm": "yes", "reason": "x"}
    assert signed_in(tenant, Role.ANALYST).post("/duplicates/merge/", sent).status_code == 403
    kai.refresh_from_db()
    theirs.refresh_from_db()
    assert kai.status == theirs.status == "open"
