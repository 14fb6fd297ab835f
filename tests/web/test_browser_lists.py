"""The customer list in a real browser: choose columns, sort, save a view, tick a
page and export it (a confirmed POST that downloads a file), and the same list on a
390 px phone without sideways scrolling. The browser helpers are test_browser's."""

import re
from pathlib import Path

from playwright.sync_api import expect

from rapport.tenancy.permissions import Role
from tests.web.test_browser import (  # noqa: F401 - fixtures
    _sync_orm_beside_playwright,
    browser,
    customers,
    open_page,
    person,
    shot,
    sign_in,
)


def test_arrange_the_list_save_it_and_export_a_ticked_page(
    open_page,  # noqa: F811
    live_server,
    tenant,
    customers,  # noqa: F811
):
    base = live_server.url
    page = open_page({"width": 1440, "height": 900})
    sign_in(page, base, person(tenant, Role.ADMIN))
    page.goto(f"{base}/customers/?view=none")
    page.locator(".column-picker summary").click()
    page.locator('.column-picker input[value="trait:plan"]').check()
    page.locator('.column-picker input[value="consent"]').check()
    page.locator(".column-picker").get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"col=trait%3Aplan"))
    expect(page.locator("#results thead")).to_contain_text("plan")
    page.locator("#results thead").get_by_role("link", name="plan").click()
    page.wait_for_url(re.compile(r"sort=trait%3Aplan"))
    page.locator(".views-manage summary").click()
    page.get_by_label("Save as a new view").fill("By plan")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".views-list")).to_contain_text("By plan")
    shot(page, "customers-arranged")

    page.locator("[data-select-page]").check()
    ticked = page.locator('#results input[name="ids"]:checked')
    assert ticked.count() == page.locator('#results input[name="ids"]').count() >= 2
    page.get_by_label("With the selected customers").select_option("export")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("main")).to_contain_text("customers")
    with page.expect_download() as exported:
        page.get_by_role("button", name="Confirm").click()
    text = Path(exported.value.path()).read_text()
    assert text.startswith("id,Name,") and "Ada Lovelace" in text

    phone = open_page({"width": 390, "height": 844})
    sign_in(phone, base, "admin@browser.example.com")
    phone.goto(f"{base}/customers/?col=email&col=trait:plan&col=stage&col=churn&col=clv")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(phone, "customers-arranged-phone")
