from rapport.decisions.models import Action, ActionModel
from rapport.tenancy.models import AuditLogEntry
from tests.conftest import tenant_create

OFFER = {
    "key": "subscribe-and-save",
    "name": "Subscribe and save 15%",
    "kind": "offer",
    "channels": ["web", "email"],
    "placements": ["home_banner"],
    "content": {"web": {"title": "15% off", "body": "<b>every</b> bag", "link_url": "/subscribe"}},
    "value": "30",
    "currency": "eur",
    "eligibility": {"trait": "plan", "op": "ne", "value": "subscription"},
    "lever": 1.5,
    "channel_levers": {"email": 0.5},
    "budget": 500,
    "starts_at": "2026-01-01T00:00:00Z",
}


def test_the_catalogue_over_the_api(shop):
    api = shop.api()
    r = api.post("/api/v1/actions", OFFER)
    assert r.status_code == 201, r.content
    made = r.json()
    assert made["value"] == "30.0000" and made["currency"] == "EUR"
    assert made["content"]["web"]["body"] == "<b>every</b> bag"  # stored as text
    assert ActionModel.objects.filter(action__key="subscribe-and-save").exists()
    assert api.post("/api/v1/actions", OFFER).status_code == 409
    assert [a["key"] for a in api.get("/api/v1/actions?channel=email").json()["items"]] == [
        "subscribe-and-save"
    ]
    assert api.get("/api/v1/actions?channel=sms").json()["items"] == []
    r = api.patch("/api/v1/actions/subscribe-and-save", {"lever": 2, "enabled": False})
    assert r.status_code == 200 and r.json()["lever"] == 2 and r.json()["enabled"] is False
    assert r.json()["name"] == OFFER["name"]  # untouched
    r = api.patch("/api/v1/actions/subscribe-and-save", {"budget": None})
    assert r.json()["budget"] is None
    assert api.get("/api/v1/actions/subscribe-and-save").json()["key"] == "subscribe-and-save"
    assert api.delete("/api/v1/actions/subscribe-and-save").status_code == 204
    assert api.get("/api/v1/actions/subscribe-and-save").status_code == 404
    actions = set(
        AuditLogEntry.objects.filter(workspace=shop.workspace).values_list("action", flat=True)
    )
    assert {"action.create", "action.update", "action.delete"} <= actions


def test_bad_actions_are_refused_naming_the_field(shop):
    api = shop.api()
    cases = [
        ({**OFFER, "key": "Not A Key"}, "key"),
        ({**OFFER, "channels": []}, "channels"),
        ({**OFFER, "channels": ["fax"]}, "channels"),
        ({**OFFER, "value": "-1"}, "value"),
        ({**OFFER, "currency": "EURO"}, "currency"),
        ({**OFFER, "ends_at": "2025-01-01T00:00:00Z"}, "ends_at"),
        ({**OFFER, "channel_levers": {"sms": 1}}, "channel_levers.sms"),
        (
            {**OFFER, "eligibility": {"trait": "plan", "op": "sounds_like", "value": "x"}},
            "eligibility",
        ),
        (
            {**OFFER, "eligibility": {"segment": "7b0c2f5e-0000-4000-8000-000000000000"}},
            "eligibility",
        ),
        ({**OFFER, "content": {"web": {"link_url": "javascript:alert(1)"}}}, "link_url"),
        ({**OFFER, "prior_propensity": 1}, "prior_propensity"),
        ({**OFFER, "template_id": "7b0c2f5e-0000-4000-8000-000000000000"}, "template_id"),
        ({**OFFER, "budget": 0}, "budget"),
    ]
    for body, field in cases:
        r = api.post("/api/v1/actions", body)
        assert r.status_code == 422, (body, r.content)
        assert field in r.json()["error"]["message"], (field, r.json())
    assert Action.objects.count() == 0


def test_roles_and_workspaces(shop):
    assert shop.api("analyst").post("/api/v1/actions", OFFER).status_code == 403
    assert shop.api("analyst").get("/api/v1/actions").status_code == 200
    assert shop.api("marketer").post("/api/v1/actions", OFFER).status_code == 201
    other = tenant_create("Other", sample_data=False)
    assert other.api().get("/api/v1/actions/subscribe-and-save").status_code == 404
    assert other.api().delete("/api/v1/actions/subscribe-and-save").status_code == 404
    assert Action.objects.filter(key="subscribe-and-save").count() == 1


def test_decision_settings(shop):
    api = shop.api()
    r = api.get("/api/v1/decision-settings")
    assert r.status_code == 200 and r.json()["control_percent"] == 5
    r = api.patch(
        "/api/v1/decision-settings",
        {"control_percent": 20, "placement_weights": {"home_banner": 2}, "half_life_days": 7},
    )
    assert r.status_code == 200, r.content
    assert r.json()["placement_weights"] == {"home_banner": 2} and r.json()["control_percent"] == 20
    for body, field in [
        ({"control_percent": 51}, "control_percent"),
        ({"channel_weights": {"fax": 1}}, "channel_weights"),
        ({"half_life_days": 0}, "half_life_days"),
        ({"control_mode": "sometimes"}, "control_mode"),
    ]:
        r = api.patch("/api/v1/decision-settings", body)
        assert r.status_code == 422 and field in r.json()["error"]["message"], r.content
    assert api.get("/api/v1/decision-settings").json()["control_percent"] == 20
