"""In Chromium: a segment's export is a confirmation page, then a POST that downloads
the file; ECharts speaks Russian on Russian pages (its locale from node_modules,
registered without inline script)."""

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
