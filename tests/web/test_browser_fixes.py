"""In Chromium: the chart CSV buttons download a file, and the debugger keeps an
opened payload open while it refreshes itself."""

from datetime import date
from pathlib import Path

from playwright.sync_api import expect

from rapport.analytics.services import kpi_snapshots_take
from rapport.tenancy.permissions import Role
from tests.analytics.conftest import shop  # noqa: F401 - the fixture
from tests.web.test_browser import (  # noqa: F401 - the fixtures
    _sync_orm_beside_playwright,
    browser,
    open_page,
    person,
    shot,
    sign_in,
)


def test_every_chart_csv_button_downloads_a_file(open_page, live_server, shop):  # noqa: F811
    kpi_snapshots_take(workspace_id=shop.workspace.pk, day=date(2026, 10, 31), backfill_days=31)
    page = open_page()
    sign_in(page, live_server.url, person(shop, Role.ANALYST))
    pages = [
        "/analytics/",
        "/analytics/period/?start=2026-10-01&end=2026-10-31",
        "/analytics/funnel/",
        "/analytics/cohorts/?last_month=2026-10&months=3",
        "/analytics/lifecycle/",
        "/analytics/rfm/",
    ]
    downloaded = 0
    for path in pages:
        page.goto(live_server.url + path)
        buttons = page.locator("a[download]")
        assert buttons.count() >= 1, path
        for n in range(buttons.count()):
            with page.expect_download() as info:
                buttons.nth(n).click()
            download = info.value
            assert download.failure() is None, (path, download.failure())
            body = Path(download.path()).read_bytes()
            assert body.strip() and not body.lstrip().startswith(b"<"), (path, body[:200])
            assert b"422" not in body[:40] and b'"error"' not in body, (path, body[:200])
            downloaded += 1
    assert downloaded >= 7


def test_an_opened_payload_stays_open_across_refreshes(open_page, live_server, tenant):  # noqa: F811
    tenant.send(
        {"type": "track", "userId": "dbg", "event": "Kept Open", "messageId": "open-1"},
        {"type": "track", "userId": "dbg", "event": "Left Closed", "messageId": "open-2"},
    )
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.goto(f"{live_server.url}/data/debugger/")
    row = page.locator(".debugger-row", has_text="Kept Open")
    row.locator("summary").click()
    assert row.locator("details").evaluate("d => d.open")
    # Mark the rows so a refresh (htmx swapping them) is seen, then wait for one.
    page.evaluate("document.querySelectorAll('.debugger-row').forEach(r => r.dataset.old = '1')")
    expect(page.locator(".debugger-row[data-old]")).to_have_count(0, timeout=10_000)
    row = page.locator(".debugger-row", has_text="Kept Open")
    assert row.locator("details").evaluate("d => d.open")
    assert (
        not page.locator(".debugger-row", has_text="Left Closed")
        .locator("details")
        .evaluate("d => d.open")
    )
    assert '"Kept Open"' in row.inner_text()
    # A reload of the tab keeps it open too.
    page.reload()
    row = page.locator(".debugger-row", has_text="Kept Open")
    expect(page.locator("details[data-event][open]")).to_have_count(1)
    assert row.locator("details").evaluate("d => d.open")
    shot(page, "debugger-open-payload")


def _no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_home_on_a_desktop_and_a_phone(open_page, live_server, shop):  # noqa: F811
    kpi_snapshots_take(workspace_id=shop.workspace.pk, day=date(2026, 10, 31), backfill_days=61)
    email = person(shop, Role.ADMIN)
    for name, viewport in (("desktop", (1440, 900)), ("phone", (390, 844))):
        page = open_page(viewport={"width": viewport[0], "height": viewport[1]})
        sign_in(page, live_server.url, email)
        page.locator("#home-kpis").wait_for()
        assert "▲" in page.locator("#home-kpis").inner_text()
        assert _no_sideways_scroll(page), name
        shot(page, f"home-{name}")


def test_bulk_merge_on_a_phone(open_page, live_server, tenant):  # noqa: F811
    from rapport.identity.models import DuplicateCandidate

    page = open_page(viewport={"width": 390, "height": 844})
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.goto(f"{live_server.url}/duplicates/")
    assert _no_sideways_scroll(page)
    page.locator(".pair-head input[type=checkbox]").first.check()
    page.get_by_role("button", name="Merge the selected pairs…").click()
    page.get_by_label("Why they are the same").fill("Keyed in twice")
    assert _no_sideways_scroll(page)
    page.get_by_role("button", name="Merge 1 pair").click()
    expect(page.locator("#merge-results .merge-merged")).to_have_count(1)
    assert _no_sideways_scroll(page)
    shot(page, "duplicates-bulk-merged-phone")
    assert DuplicateCandidate.objects.filter(workspace=tenant.workspace, status="merged").exists()
