"""The workspace's commerce settings and exchange rates: validation naming the row and
field with nothing written, the API and the Settings page, isolation between
workspaces, and the migration that moved the purchase event out of segments."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from rapport.core.errors import InvalidInputError
from rapport.tenancy import commerce
from rapport.tenancy.models import AuditLogEntry, CommerceSettings, ExchangeRate
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor
from tests.web.clients import signed_in

ACTOR = Actor.system("tests")


def rates_of(workspace) -> list[tuple]:
    return list(
        ExchangeRate.objects.filter(workspace=workspace)
        .order_by("currency", "valid_from")
        .values_list("currency", "reporting_currency", "rate", "valid_from")
    )


@pytest.fixture
def gbp(tenant):
    commerce.commerce_settings_update(
        workspace=tenant.workspace, actor=ACTOR, reporting_currency="gbp"
    )
    ExchangeRate.objects.filter(workspace=tenant.workspace).delete()
    return tenant


def test_defaults_until_changed(db, tenant):
    settings = commerce.commerce_settings_get(workspace=tenant.workspace)
    assert settings.purchase_event == "Order Completed"
    assert settings.value_properties == ["revenue", "total", "value"]
    assert settings.reporting_currency == "USD"


def test_settings_change_and_are_audited(gbp):
    settings = commerce.commerce_settings_update(
        workspace=gbp.workspace, actor=ACTOR, purchase_event=" Bought ", value_properties=["t"]
    )
    assert (settings.purchase_event, settings.value_properties) == ("Bought", ["t"])
    assert settings.reporting_currency == "GBP"
    assert AuditLogEntry.objects.filter(
        workspace=gbp.workspace, action="workspace.commerce.update"
    ).exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reporting_currency": "POUND"}, "reporting_currency"),
        ({"reporting_currency": "XYZ"}, "reporting_currency"),
        ({"purchase_event": "  "}, "purchase_event"),
        ({"value_properties": []}, "value_properties"),
    ],
)
def test_bad_settings_name_their_field(gbp, changes, field):
    with pytest.raises(InvalidInputError) as error:
        commerce.commerce_settings_update(workspace=gbp.workspace, actor=ACTOR, **changes)
    assert error.value.field == field
    assert commerce.commerce_settings_get(workspace=gbp.workspace).reporting_currency == "GBP"


GOOD_CSV = (
    "currency,rate,valid_from\nEUR,0.86,2026-01-01\nusd,0.79,2026-01-01\nEUR,0.85,2026-06-01\n"
)


def test_a_csv_of_rates_is_added_and_a_day_given_again_replaces_its_rate(gbp):
    rows = commerce.exchange_rates_csv_parse(GOOD_CSV)
    commerce.exchange_rates_upload(workspace=gbp.workspace, actor=ACTOR, rows=rows)
    assert rates_of(gbp.workspace) == [
        ("EUR", "GBP", Decimal("0.86"), date(2026, 1, 1)),
        ("EUR", "GBP", Decimal("0.85"), date(2026, 6, 1)),
        ("USD", "GBP", Decimal("0.79"), date(2026, 1, 1)),
    ]
    again = commerce.exchange_rates_csv_parse("valid_from,currency,rate\n2026-01-01,EUR,0.87\n")
    commerce.exchange_rates_upload(workspace=gbp.workspace, actor=ACTOR, rows=again)
    assert rates_of(gbp.workspace)[0] == ("EUR", "GBP", Decimal("0.87"), date(2026, 1, 1))
    rates = commerce.money_rates_get(workspace=gbp.workspace)
    assert rates.reporting == "GBP"
    assert rates.rate_on("EUR", date(2026, 3, 1)) == Decimal("0.87")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("currency,rate,valid_from\nEUR,0.86,2026-01-01\nEUR,-1,2026-02-01\n", "line 3.rate"),
        ("currency,rate,valid_from\nEUR,0.86,2026-01-01\nEUR,abc,2026-02-01\n", "line 3.rate"),
        ("currency,rate,valid_from\nEUR,0,2026-01-01\n", "line 2.rate"),
        ("currency,rate,valid_from\nEURO,0.86,2026-01-01\n", "line 2.currency"),
        ("currency,rate,valid_from\nGBP,1,2026-01-01\n", "line 2.currency"),
        ("currency,rate,valid_from\nEUR,0.86,31/01/2026\n", "line 2.valid_from"),
        ("currency,rate,valid_from\nEUR,0.86\n", "line 2"),
        ("currency,rate\nEUR,0.86\n", "file"),
        ("", "file"),
        ("currency,rate,valid_from\nEUR,0.123456789012,2026-01-01\n", "line 2.rate"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_written(gbp, text, field):
    with pytest.raises(InvalidInputError) as error:
        rows = commerce.exchange_rates_csv_parse(text)
        commerce.exchange_rates_upload(workspace=gbp.workspace, actor=ACTOR, rows=rows)
    assert error.value.field == field
    assert field.split(".")[0] in error.value.message or field == "file"
    assert rates_of(gbp.workspace) == []


def test_a_rate_into_another_reporting_currency_is_kept_but_not_used(gbp):
    commerce.exchange_rates_upload(
        workspace=gbp.workspace,
        actor=ACTOR,
        rows=[{"currency": "EUR", "rate": "0.86", "valid_from": "2026-01-01"}],
    )
    commerce.commerce_settings_update(
        workspace=gbp.workspace, actor=ACTOR, reporting_currency="USD"
    )
    assert commerce.money_rates_get(workspace=gbp.workspace).rates == ()
    assert len(rates_of(gbp.workspace)) == 1


# --- API ------------------------------------------------------------------------------


def test_api_settings_and_rates(gbp):
    api = gbp.api()
    assert api.get("/api/v1/workspace/commerce").json()["reporting_currency"] == "GBP"
    answer = api.patch("/api/v1/workspace/commerce", {"reporting_currency": "EUR"})
    assert answer.status_code == 200 and answer.json()["reporting_currency"] == "EUR"
    answer = api.post(
        "/api/v1/exchange-rates",
        {
            "rates": [
                {"currency": "GBP", "rate": "1.16", "valid_from": "2026-01-01"},
                {"currency": "USD", "rate": 0.92, "valid_from": "2026-01-01"},
            ]
        },
    )
    assert answer.status_code == 201, answer.content
    listed = api.get("/api/v1/exchange-rates").json()
    assert {(r["currency"], r["rate"]) for r in listed["items"]} == {
        ("GBP", "1.1600000000"),
        ("USD", "0.9200000000"),
    }


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"currency": "EUR", "rate": "-2", "valid_from": "2026-01-01"}, "rates[1].rate"),
        ({"currency": "ZZZ", "rate": "2", "valid_from": "2026-01-01"}, "rates[1].currency"),
        ({"currency": "EUR", "rate": "2", "valid_from": "2026-13-01"}, "rates[1].valid_from"),
    ],
)
def test_api_names_the_bad_row_and_writes_nothing(gbp, row, field):
    good = {"currency": "USD", "rate": "0.79", "valid_from": "2026-01-01"}
    answer = gbp.api().post("/api/v1/exchange-rates", {"rates": [good, row]})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["details"][0]["field"] == field
    assert field in error["message"]
    assert rates_of(gbp.workspace) == []


def test_api_csv_upload(gbp):
    client = gbp.api().client
    headers = {"HTTP_AUTHORIZATION": f"Bearer {gbp.tokens['admin']}"}
    good = SimpleUploadedFile("rates.csv", GOOD_CSV.encode(), content_type="text/csv")
    answer = client.post("/api/v1/exchange-rates/csv", {"file": good}, **headers)
    assert answer.status_code == 201 and answer.json() == {"written": 3}
    bad = SimpleUploadedFile("rates.csv", b"currency,rate,valid_from\nJPY,x,2026-01-01\n")
    answer = client.post("/api/v1/exchange-rates/csv", {"file": bad}, **headers)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "line 2.rate"
    latin = SimpleUploadedFile("rates.csv", "currency,rate,valid_from\n£".encode("latin-1"))
    answer = client.post("/api/v1/exchange-rates/csv", {"file": latin}, **headers)
    assert answer.status_code == 422
    assert len(rates_of(gbp.workspace)) == 3


def test_api_rates_of_another_workspace_are_not_found(gbp, other_tenant):
    theirs = ExchangeRate.objects.filter(workspace=other_tenant.workspace).first()
    api = gbp.api()
    assert api.delete(f"/api/v1/exchange-rates/{theirs.pk}").status_code == 404
    assert ExchangeRate.objects.filter(pk=theirs.pk).exists()
    listed = api.get("/api/v1/exchange-rates").json()["items"]
    assert str(theirs.pk) not in {r["id"] for r in listed}


# --- The Settings page ----------------------------------------------------------------


def test_settings_page_uploads_rates_and_refuses_a_bad_file(gbp):
    client = signed_in(gbp)
    page = client.get("/settings/commerce/")
    assert page.status_code == 200 and 'id="rates-upload"' in page.content.decode()
    bad = SimpleUploadedFile("r.csv", b"currency,rate,valid_from\nEUR,0.86,2026-01-01\nEUR,,x\n")
    answer = client.post("/settings/commerce/rates/", {"file": bad})
    assert answer.status_code == 422
    assert "line 3.rate" in answer.content.decode()
    assert rates_of(gbp.workspace) == []
    good = SimpleUploadedFile("r.csv", GOOD_CSV.encode())
    assert client.post("/settings/commerce/rates/", {"file": good}).status_code == 302
    assert len(rates_of(gbp.workspace)) == 3
    html = client.get("/settings/commerce/").content.decode()
    assert "0.86" in html and "EUR" in html
    rate = ExchangeRate.objects.filter(workspace=gbp.workspace).first()
    assert client.post(f"/settings/commerce/rates/{rate.pk}/delete/").status_code == 302
    assert len(rates_of(gbp.workspace)) == 2
    answer = client.post(
        "/settings/commerce/",
        {
            "purchase_event": "Bought",
            "value_properties": "total, revenue",
            "reporting_currency": "EUR",
        },
    )
    assert answer.status_code == 302
    settings = commerce.commerce_settings_get(workspace=gbp.workspace)
    assert (settings.purchase_event, settings.value_properties) == ("Bought", ["total", "revenue"])


def test_settings_page_for_an_analyst_is_read_only(gbp):
    client = signed_in(gbp, Role.ANALYST)
    html = client.get("/settings/commerce/").content.decode()
    assert "<fieldset disabled" in html and 'id="rates-upload"' not in html
    answer = client.post("/settings/commerce/", {"reporting_currency": "EUR"})
    assert answer.status_code == 403
    good = SimpleUploadedFile("r.csv", GOOD_CSV.encode())
    assert client.post("/settings/commerce/rates/", {"file": good}).status_code == 403
    assert commerce.commerce_settings_get(workspace=gbp.workspace).reporting_currency == "GBP"


# --- The migration --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_purchase_event_setting_moves_with_its_data():
    """Forward from segments' SegmentSettings to tenancy's CommerceSettings, rows kept;
    and back."""
    before = [("segments", "0001_initial"), ("tenancy", "0004_invitations_and_last_workspace")]
    after = [("segments", "0002_commerce_settings"), ("tenancy", "0005_commerce_settings")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        Workspace = old_apps.get_model("tenancy", "Workspace")
        SegmentSettings = old_apps.get_model("segments", "SegmentSettings")
        shop = Workspace.objects.create(name="Migrated shop")
        plain = Workspace.objects.create(name="Never configured")
        SegmentSettings.objects.create(
            workspace=shop, purchase_event="Checkout Done", value_properties=["amount"]
        )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new_apps = executor.loader.project_state(after).apps
        Commerce = new_apps.get_model("tenancy", "CommerceSettings")
        moved = Commerce.objects.get(workspace_id=shop.pk)
        assert (moved.purchase_event, moved.value_properties) == ("Checkout Done", ["amount"])
        assert moved.reporting_currency == "USD"
        assert not Commerce.objects.filter(workspace_id=plain.pk).exists()
        tables = connection.introspection.table_names()
        assert "segments_segmentsettings" not in tables
        # And back: the old table again, with its row.
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        back = executor.loader.project_state(before).apps.get_model("segments", "SegmentSettings")
        assert back.objects.get(workspace_id=shop.pk).purchase_event == "Checkout Done"
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert CommerceSettings.objects.filter(workspace_id=shop.pk).exists()


def test_settings_page_speaks_russian(gbp):
    from rapport.tenancy.models import User

    client = signed_in(gbp, Role.ANALYST)
    User.objects.filter(memberships__workspace=gbp.workspace).update(language="ru")
    html = client.get("/settings/commerce/").content.decode()
    for russian in ("Коммерция", "Курсы валют", "Валюта отчётов", "курс никогда не угадывается"):
        assert russian in html
    for english in ("Exchange rates", "Reporting currency", "The event that is a purchase"):
        assert english not in html
