"""The suppression list over the API: listed (by channel, by part of an address, in
pages), added by hand (checked, normalised, audited, once), removed (audited), masked
for roles without pii.read; and an address added by hand is written to no more."""

from rapport.channels import services
from rapport.channels.models import EmailSettings, Suppression
from rapport.tenancy.models import AuditLogEntry
from tests.channels.conftest import customer, single


def test_an_address_is_suppressed_by_hand_listed_and_removed(tenant):
    api = tenant.api()
    response = api.post(
        "/api/v1/suppressions",
        {"channel": "email", "address": "  Asked.To.Stop@Example.COM ", "detail": "phoned"},
    )
    assert response.status_code == 201, response.content
    added = response.json()
    assert (added["address"], added["reason"], added["channel"]) == (
        "asked.to.stop@example.com",
        "manual",
        "email",
    )
    entry = AuditLogEntry.objects.get(action="suppression.add", target_id=added["id"])
    assert entry.workspace_id == tenant.workspace.pk
    assert "asked.to.stop" not in str(entry.details)

    # Twice: a conflict, still one row.
    again = api.post(
        "/api/v1/suppressions", {"channel": "email", "address": "asked.to.stop@example.com"}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "suppression_exists"
    assert Suppression.objects.filter(address="asked.to.stop@example.com").count() == 1

    listed = api.get("/api/v1/suppressions?q=ASKED").json()
    assert [row["id"] for row in listed["items"]] == [added["id"]]
    assert {row["reason"] for row in api.get("/api/v1/suppressions").json()["items"]} == {
        "manual",
        "bounce",
    }

    assert api.request("DELETE", f"/api/v1/suppressions/{added['id']}").status_code == 204
    assert not Suppression.objects.filter(pk=added["id"]).exists()
    assert AuditLogEntry.objects.filter(action="suppression.remove", target_id=added["id"]).exists()
    assert api.request("DELETE", f"/api/v1/suppressions/{added['id']}").status_code == 404


def test_the_list_is_filtered_by_channel_and_paged(tenant):
    api = tenant.api()
    for n in range(3):
        api.post("/api/v1/suppressions", {"channel": "email", "address": f"p{n}@example.com"})
    response = api.post("/api/v1/suppressions", {"channel": "sms", "address": "+44 7911 123456"})
    assert response.status_code == 201 and response.json()["address"] == "+447911123456"
    sms = api.get("/api/v1/suppressions?channel=sms").json()
    assert sms["count"] == 1 and sms["items"][0]["channel"] == "sms"
    first = api.get("/api/v1/suppressions?channel=email&limit=2").json()
    second = api.get("/api/v1/suppressions?channel=email&limit=2&offset=2").json()
    assert first["count"] == second["count"] == 4  # three by hand and the sample bounce
    assert len(first["items"]) == 2 and len(second["items"]) == 2
    assert not {r["id"] for r in first["items"]} & {r["id"] for r in second["items"]}
    assert api.get("/api/v1/suppressions?channel=pigeon").status_code == 422


def test_a_national_number_is_read_with_the_workspace_region(tenant):
    api = tenant.api()
    refused = api.post("/api/v1/suppressions", {"channel": "sms", "address": "07911 123457"})
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "address"
    EmailSettings.objects.update_or_create(
        workspace=tenant.workspace, defaults={"sms_default_region": "GB"}
    )
    response = api.post("/api/v1/suppressions", {"channel": "sms", "address": "07911 123457"})
    assert response.status_code == 201 and response.json()["address"] == "+447911123457"


def test_bad_suppressions_are_refused_naming_the_field(tenant):
    api = tenant.api()
    before = Suppression.objects.count()
    for body, field in (
        ({"channel": "email", "address": "not an email"}, "address"),
        ({"channel": "email", "address": ""}, "address"),
        ({"channel": "push", "address": "x@example.com"}, "channel"),
        ({"channel": "email", "address": "x@example.com", "reason": "bounce"}, "reason"),
        ({"channel": "email", "address": "x@example.com", "extra": 1}, "extra"),
    ):
        response = api.post("/api/v1/suppressions", body)
        assert response.status_code == 422, body
        assert field in response.content.decode(), body
    assert Suppression.objects.count() == before


def test_another_workspaces_suppressions_are_out_of_reach(tenant, other_tenant):
    theirs = Suppression.objects.get(workspace=other_tenant.workspace)
    api = tenant.api()
    assert api.request("DELETE", f"/api/v1/suppressions/{theirs.pk}").status_code == 404
    assert theirs.address not in api.get("/api/v1/suppressions").content.decode()
    assert Suppression.objects.filter(pk=theirs.pk).exists()


def test_readers_see_addresses_masked_and_may_not_change_the_list(tenant):
    mine = Suppression.objects.get(workspace=tenant.workspace)
    analyst = tenant.api("analyst")
    listed = analyst.get("/api/v1/suppressions").json()["items"]
    assert [row["id"] for row in listed] == [str(mine.pk)]
    assert listed[0]["address"] != mine.address and "@" in listed[0]["address"]
    assert analyst.post("/api/v1/suppressions", {"address": "a@example.com"}).status_code == 403
    assert analyst.request("DELETE", f"/api/v1/suppressions/{mine.pk}").status_code == 403
    assert tenant.api("marketer").get("/api/v1/suppressions").json()["items"][0]["address"] == (
        mine.address
    )


def test_an_address_suppressed_by_hand_is_written_to_no_more(shop, smtp):
    jane = customer(shop, "u1", email="Jane@Example.com", first_name="Jane")
    response = shop.api().post(
        "/api/v1/suppressions", {"channel": "email", "address": "jane@example.com"}
    )
    assert response.status_code == 201
    message = single(shop, jane, purpose="transactional")
    assert services.message_send(message_id=message.pk) == "skipped"
    message.refresh_from_db()
    assert message.skip_reason == "suppressed" and smtp.messages == []
    # Removed: the next message goes.
    shop.api().request("DELETE", f"/api/v1/suppressions/{response.json()['id']}")
    again = single(shop, jane, purpose="transactional", key="second")
    assert services.message_send(message_id=again.pk) == "sent"
    assert len(smtp.messages) == 1
