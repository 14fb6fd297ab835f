"""Home: what needs the person now, as cards (rapport/web/home_cards.py) — KPIs that
moved, segments that grew or shrank, duplicates waiting, pipeline trouble and failed
imports for those who run the data, recent changes in sentences, and first steps in
an empty workspace. Each card only for those allowed to see it; few queries."""

from datetime import date

import pytest

from rapport.analytics.services import kpi_snapshots_take
from rapport.identity.models import DuplicateCandidate
from rapport.identity.services import profile_merge
from rapport.ingest.models import ImportJob
from rapport.profiles.models import Profile
from rapport.segments import services as segment_services
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor
from rapport.web import home_cards
from tests.analytics.conftest import shop  # noqa: F401 - the fixture
from tests.conftest import tenant_create
from tests.web.clients import signed_in
from tests.web.test_pipeline import parked  # noqa: F401 - the fixture


def _cards(response) -> list[str]:
    return [card["key"] for card in response.context["cards"]]


@pytest.fixture
def empty(db):
    return tenant_create("Empty", sample_data=False)


def test_an_empty_workspace_says_how_to_start(empty):
    response = signed_in(empty).get("/")
    assert response.status_code == 200
    assert _cards(response)[0] == "getting_started"
    html = response.content.decode()
    assert "Getting started" in html and "/data/sources/" in html and "rapport demo" in html


def test_kpis_that_moved_with_arrows_and_percent(shop):  # noqa: F811
    kpi_snapshots_take(workspace_id=shop.workspace.pk, day=date(2026, 10, 31), backfill_days=61)
    response = signed_in(shop, Role.ANALYST).get("/")
    (card,) = [c["context"] for c in response.context["cards"] if c["key"] == "kpis"]
    rows = {row["name"]: row for row in card["rows"]}
    assert list(rows)[:2] == ["revenue", "active_customers"]
    assert rows["revenue"]["value"] == "$150.00" and rows["revenue"]["direction"] == "up"
    assert rows["revenue"]["good"] is True and rows["revenue"]["percent"] is None  # from 0
    html = response.content.decode()
    assert "Key figures" in html and "▲" in html and 'href="/analytics/"' in html
    assert "getting_started" not in _cards(response)


def test_duplicates_waiting_with_a_link(tenant):
    open_pairs = DuplicateCandidate.objects.filter(workspace=tenant.workspace, status="open")
    count = open_pairs.filter(kind="profile").count()
    assert count >= 1  # the sample data's pair
    html = signed_in(tenant, Role.MARKETER).get("/").content.decode()
    assert 'href="/duplicates/?kind=profile"' in html
    assert f"{count} pair of customers may be one person" in html or f"{count} pairs" in html
    open_pairs.update(status="dismissed")
    assert "duplicates" not in _cards(signed_in(tenant).get("/"))


def test_segments_that_grew(tenant):
    segment_services.segment_create(
        workspace=tenant.workspace,
        name="Everyone with an email",
        rule={"trait": "email", "op": "exists"},
        actor=Actor.system("tests"),
        refresh="now",
    )
    html = signed_in(tenant, Role.ANALYST).get("/").content.decode()
    assert "Segments that moved" in html and "Everyone with an email" in html
    assert "grew by" in html


def test_failed_imports_and_pipeline_trouble_only_for_those_who_run_data(tenant, parked):  # noqa: F811
    ImportJob.objects.create(
        workspace=tenant.workspace,
        kind=ImportJob.Kind.values[0],
        filename="customers-march.csv",
        file_sha256="0" * 64,
        status=ImportJob.Status.FAILED,
        failure="bad file",
    )
    admin = signed_in(tenant).get("/")
    assert {"pipeline", "imports"} <= set(_cards(admin))
    html = admin.content.decode()
    assert "customers-march.csv" in html and "events failed" in html
    analyst = _cards(signed_in(tenant, Role.ANALYST).get("/"))
    assert "pipeline" not in analyst and "imports" not in analyst


def test_recent_changes_are_sentences_not_codes(tenant):
    a, b = Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True)[:2]
    profile_merge(survivor=a, merged=b, reason="same", actor=Actor.system("Alice"))
    html = signed_in(tenant).get("/").content.decode()
    assert "Alice merged two customers" in html
    assert "profile.merge" not in html and "<code>" not in html
    assert home_cards.action_sentence("something.new", "Bob") == "Bob made a change"
    # Only those who read the audit log see it.
    assert "recent" not in _cards(signed_in(tenant, Role.ANALYST).get("/"))


def test_other_apps_add_their_cards(tenant, monkeypatch):
    monkeypatch.setattr(home_cards, "_CARDS", dict(home_cards._CARDS))
    home_cards.home_card("tasks", order=5, template="web/home/_recent.html", perm="audit.read")(
        lambda principal: {"entries": []}
    )
    home_cards.home_card("inbox", order=6, template="web/home/_recent.html")(
        lambda principal: {"entries": [{"at": None, "sentence": "3 conversations wait"}]}
    )
    response = signed_in(tenant, Role.AGENT).get("/")
    assert "inbox" in _cards(response) and "tasks" not in _cards(response)
    assert "3 conversations wait" in response.content.decode()


def test_home_takes_a_bounded_number_of_queries(tenant, django_assert_max_num_queries):
    client = signed_in(tenant)
    client.get("/")
    with django_assert_max_num_queries(30):
        assert client.get("/").status_code == 200


def test_home_speaks_russian(tenant):
    a, b = Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True)[:2]
    profile_merge(survivor=a, merged=b, reason="same", actor=Actor.system("Alice"))
    client = signed_in(tenant)
    client.post("/preferences/language/", {"language": "ru", "next": "/"})
    html = client.get("/").content.decode()
    assert "Дубликаты на проверку" in html and "Alice объединил(а) двух клиентов" in html  # noqa: RUF001
    assert "merged two customers" not in html and "Duplicates to review" not in html
