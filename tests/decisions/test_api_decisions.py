import base64
from decimal import Decimal

from django.test import Client

from rapport.decisions.models import Decision, Outcome
from rapport.profiles.models import Profile
from tests.conftest import ApiClient, tenant_create
from tests.decisions.conftest import action_add, settings_set


def basic(write_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def gold_customer(tenant) -> Profile:
    tenant.send(
        {"type": "identify", "userId": "jo", "anonymousId": "anon-jo", "traits": {"plan": "gold"}}
    )
    return Profile.objects.get(workspace=tenant.workspace, identifiers__value="jo")


def test_a_decision_and_its_outcomes_over_the_api(shop):
    action_add(
        shop,
        "gold-upgrade",
        value=Decimal("50"),
        currency="EUR",
        eligibility={"trait": "plan", "op": "eq", "value": "gold"},
        content={"web": {"title": "Go platinum", "link_url": "/upgrade"}},
    )
    settings_set(shop, control_percent=0)
    gold_customer(shop)
    api = shop.api()
    r = api.post("/api/v1/decisions", {"user_id": "jo", "channel": "web", "placement": "home"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["control"] is False
    (action,) = body["actions"]
    assert action["key"] == "gold-upgrade" and action["value"] == "50.0000"
    assert action["currency"] == "EUR" and action["content"] == {
        "title": "Go platinum",
        "link_url": "/upgrade",
    }
    assert any("eligibility holds" in reason for reason in action["reasons"])
    assert 0 < action["propensity"] < 1 and action["rank"] == 1
    url = f"/api/v1/decisions/{body['decision_id']}/outcomes"
    first = api.post(url, {"action": "gold-upgrade", "outcome": "clicked"})
    again = api.post(url, {"action": "gold-upgrade", "outcome": "clicked"})
    assert first.status_code == again.status_code == 200
    assert first.json()["recorded"] is True and again.json()["recorded"] is False
    assert first.json()["outcome_id"] == again.json()["outcome_id"]
    assert Outcome.objects.count() == 1
    # The anonymous id names the same customer.
    r = api.post("/api/v1/decisions", {"anonymous_id": "anon-jo", "channel": "web", "limit": 3})
    assert r.status_code == 200 and len(r.json()["actions"]) == 1


def test_a_write_key_asks_for_the_web_and_the_app_only(shop):
    action_add(shop, "banner", channels=["web", "email"])
    settings_set(shop, control_percent=0)
    gold_customer(shop)
    site = ApiClient(None)
    # A site's request carries no CSRF token: as a browser's, with the checks on.
    site.client = Client(enforce_csrf_checks=True)
    key = basic(shop.created.write_key)
    r = site.post("/api/v1/decisions", {"user_id": "jo", "channel": "web"}, **key)
    assert r.status_code == 200, r.content
    decision_id = r.json()["decision_id"]
    r = site.post(
        f"/api/v1/decisions/{decision_id}/outcomes",
        {"action": "banner", "outcome": "impression"},
        **key,
    )
    assert r.status_code == 200 and r.json()["recorded"] is True
    r = site.post("/api/v1/decisions", {"user_id": "jo", "channel": "email"}, **key)
    assert r.status_code == 403
    # Nothing else of the API opens to a write key.
    assert site.get("/api/v1/profiles", **key).status_code == 401
    # A wrong key is refused: 401, or 403 from the session's CSRF check, tried last.
    assert site.post(
        "/api/v1/decisions", {"user_id": "jo", "channel": "web"}, **basic("nope")
    ).status_code in (401, 403)
    assert not Decision.objects.filter(channel="email").exists()


def test_bad_input_is_refused_naming_the_field_and_writes_nothing(shop):
    action_add(shop, "banner")
    gold_customer(shop)
    api = shop.api()
    cases = [
        ({"channel": "web"}, "body"),
        (
            {
                "user_id": "jo",
                "profile_id": "7b0c2f5e-0000-4000-8000-000000000000",
                "channel": "web",
            },
            "body",
        ),
        ({"user_id": "jo", "channel": "fax"}, "channel"),
        ({"user_id": "jo", "channel": "web", "limit": 0}, "limit"),
        ({"user_id": "jo", "channel": "web", "limit": "2"}, "limit"),
        ({"user_id": "jo", "channel": "web", "context": {"x": {"nested": 1}}}, "context"),
        ({"user_id": "jo", "channel": "web", "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        r = api.post("/api/v1/decisions", body)
        assert r.status_code == 422, (body, r.content)
        assert field in r.json()["error"]["message"], (body, r.json())
    r = api.post("/api/v1/decisions", {"user_id": "nobody", "channel": "web"})
    assert r.status_code == 404
    assert Decision.objects.count() == 0


def test_another_workspaces_decisions_and_customers_are_not_found(shop):
    action_add(shop, "banner")
    settings_set(shop, control_percent=0)
    jo = gold_customer(shop)
    decided = (
        shop.api().post("/api/v1/decisions", {"profile_id": str(jo.pk), "channel": "web"}).json()
    )
    other = tenant_create("Other", sample_data=False)
    api = other.api()
    assert (
        api.post("/api/v1/decisions", {"profile_id": str(jo.pk), "channel": "web"}).status_code
        == 404
    )
    r = api.post(
        f"/api/v1/decisions/{decided['decision_id']}/outcomes",
        {"action": "banner", "outcome": "clicked"},
    )
    assert r.status_code == 404
    r = shop.api().post(
        f"/api/v1/decisions/{decided['decision_id']}/outcomes",
        {"action": "ghost", "outcome": "clicked"},
    )
    assert r.status_code == 404
    assert Outcome.objects.count() == 0
