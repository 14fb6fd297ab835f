"""The person page in Chromium at 1440 and 390 px: no sideways scroll of the page, no
console error (CSP included), and editing a field through the form."""

import pytest
from playwright.sync_api import expect

from rapport.tenancy.permissions import Role
from tests.web.test_browser import (  # noqa: F401 - fixtures
    _sync_orm_beside_playwright,
    browser,
    open_page,
    person,
    shot,
    sign_in,
)

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth + 1"


@pytest.fixture
def kai(tenant):
    tenant.send(
        {
            "type": "identify",
            "userId": "kai-browser",
            "traits": {
                "name": "Kai Ito",
                "email": "kai.ito.with.a.rather.long.address@example.com",
                "address": {"city": "Brighton", "lines": ["1 Pier Road", "Flat 2"]},
                "notes": "x" * 300,
            },
            "messageId": "kb-1",
        },
        {
            "type": "track",
            "userId": "kai-browser",
            "event": "Order Completed",
            "properties": {"revenue": 42.5, "currency": "GBP", "products": [{"quantity": 3}]},
            "messageId": "kb-2",
        },
    )
    from rapport.profiles.models import Profile

    return Profile.objects.get(workspace=tenant.workspace, identifiers__value="kai-browser")


@pytest.mark.parametrize("width", [1440, 390])
def test_the_person_page_fits_and_edits(open_page, live_server, tenant, kai, width):  # noqa: F811
    page = open_page({"width": width, "height": 900})
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.goto(f"{live_server.url}/customers/{kai.pk}/")
    expect(page.get_by_role("heading", name="Kai Ito")).to_be_visible()
    expect(page.locator("#timeline-entries")).to_contain_text("Ordered 3 items for £42.50")
    expect(page.locator("table.person-traits")).to_contain_text("Brighton")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    shot(page, f"person-{width}")

    # "Edit fields" is a link to the form's own page: measure that page once it is
    # there, not the one being left (whose document may be gone mid-navigation).
    page.locator("#edit-button").click()
    page.wait_for_url(f"{live_server.url}/customers/{kai.pk}/traits/")
    expect(page.locator("#save-fields")).to_be_visible()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    page.get_by_label("name", exact=True).fill("Kai Ito-Smith")
    page.locator("input[name=new_name]").fill("favourite")
    page.locator("input[name=new_value]").fill("Ethiopia Guji")
    shot(page, f"person-edit-{width}")
    page.locator("#save-fields").click()
    expect(page.get_by_role("heading", name="Kai Ito-Smith")).to_be_visible()
    expect(page.locator("#timeline-entries")).to_contain_text(
        "Name, favourite changed by admin@browser.example.com"
    )

    # Export asks first; the confirmation page discloses nothing.
    page.locator("#export-button").click()
    expect(page.locator("#export-confirm")).to_be_visible()
    assert "Kai" not in page.content()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
