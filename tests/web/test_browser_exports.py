"""In Chromium: a segment's export is a confirmation page, then a POST that downloads
the file; ECharts speaks Russian on Russian pages (its locale from node_modules,
registered without inline script); on a phone (390 px), the column chooser's buttons
reorder the columns and the accounts list's bulk export downloads."""

from datetime import date
from pathlib import Path

from rapport.analytics.services import kpi_snapshots_take
from rapport.segments.models import Segment
from rapport.tenancy.models import AuditLogEntry, User
from rapport.tenancy.permissions import Role
from tests.analytics.conftest import shop  # noqa: F401 - the fixture
from tests.web.test_browser import (  # noqa: F401 - the fixtures
    _sync_orm_beside_playwright,
    browser,
    open_page,
    person,
    sign_in,
)


def test_a_segment_export_asks_then_downloads(open_page, live_server, tenant):  # noqa: F811
    segment = Segment.objects.get(workspace=tenant.workspace, kind="static")
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.goto(f"{live_server.url}/segments/{segment.pk}/")
    page.get_by_role("link", name="Meta custom audience (hashed)").click()
    page.wait_for_url(f"**/segments/{segment.pk}/export/?format=meta")
    assert not AuditLogEntry.objects.filter(action="segment.export").exists()
    with page.expect_download() as info:
        page.locator("#export-confirm").click()
    body = Path(info.value.path()).read_bytes()
    assert body.startswith(b"EMAIL,PHONE")
    assert AuditLogEntry.objects.filter(action="segment.export").count() == 1


def test_echarts_speaks_russian_on_russian_pages(open_page, live_server, shop):  # noqa: F811
    kpi_snapshots_take(workspace_id=shop.workspace.pk, day=date(2026, 10, 31), backfill_days=31)
    email = person(shop, Role.ANALYST)
    page = open_page()
    sign_in(page, live_server.url, email)
    page.goto(f"{live_server.url}/analytics/")
    page.wait_for_selector("[data-drawn]")
    assert page.evaluate("window.rapportChartLocale") == "EN"
    User.objects.filter(email=email).update(language="ru")
    for path in ("/analytics/", "/analytics/cohorts/", "/analytics/rfm/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_selector("[data-drawn]")
        assert page.evaluate("window.rapportChartLocale") == "RU", path
        texts = page.evaluate(
            """() => {
              const chart = Object.values(window.rapportCharts)[0];
              const locale = chart.getModel().getLocaleModel();
              return [locale.get(["toolbox", "saveAsImage", "title"]),
                      locale.get(["time", "monthAbbr"])[0],
                      document.getElementById("chart-texts").dataset.noData,
                      document.getElementById("chart-texts").dataset.loading];
            }"""
        )
        assert texts == ["Сохранить картинку", "Янв", "Нет данных", "Загрузка…"], path


def _no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_column_order_with_buttons_on_a_phone(open_page, live_server, tenant):  # noqa: F811
    page = open_page({"width": 390, "height": 844})
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.goto(f"{live_server.url}/customers/?col=email&col=stage&col=churn")
    page.locator("#column-picker > summary").click()
    button = page.get_by_role("button", name="Move Churn risk up")
    button.scroll_into_view_if_needed()
    assert _no_sideways_scroll(page)
    button.click()
    page.wait_for_url("**picker=open**")
    assert "col=email&col=churn&col=stage" in page.url
    picker = page.locator("#column-picker")
    assert picker.get_attribute("open") is not None
    order = page.locator("#column-picker input[name=col]:checked").evaluate_all(
        "boxes => boxes.map(b => b.value)"
    )
    assert order == ["email", "churn", "stage"]
    assert _no_sideways_scroll(page)
    # Saved with the order; the view opens with it.
    views = page.locator("#list-views")
    views.locator("details.views-manage > summary").click()
    page.locator("#view-new-name").fill("Churn first")
    views.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url("**view=**")
    assert "col=email&col=churn&col=stage" in page.url
    assert _no_sideways_scroll(page)


def test_bulk_actions_on_accounts_on_a_phone(open_page, live_server, tenant):  # noqa: F811
    page = open_page({"width": 390, "height": 844})
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.goto(f"{live_server.url}/accounts/")
    assert _no_sideways_scroll(page)
    page.locator('input[name="ids"]').first.check()
    page.locator("#bulk-action").select_option("export")
    page.get_by_role("button", name="Continue").click()
    # The confirmation is a new page: measure it once it is there, not mid-navigation.
    page.get_by_role("button", name="Confirm").wait_for()
    page.wait_for_load_state()
    assert _no_sideways_scroll(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Confirm").click()
    body = Path(info.value.path()).read_bytes()
    assert body.startswith(b"id,Name,Group id")
    assert AuditLogEntry.objects.filter(action="accounts.export").count() == 1
