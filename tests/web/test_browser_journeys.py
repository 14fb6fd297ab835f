"""The journey editor in a real browser: the graph drawn with Drawflow, two steps
connected by dragging one's exit onto the other's entry, saved, and the saved graph
has the edge (and the steps' positions); the step panel edits a wait; the pages fit a
desktop (1440 px) and a phone (390 px) without sideways scrolling or script errors."""

import os
from pathlib import Path

import pytest

from rapport.journeys import services
from rapport.journeys.models import Journey
from rapport.tenancy.services import Actor
from tests.chromium import CHROMIUM, chromium_launched
from tests.conftest import tenant_create

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing: CI installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.one_database]

EMAIL, PASSWORD = "marketer@journeys.example.com", "correct-horse-battery"
ACTOR = Actor.system("tests")
# A folder for screenshots of the pages, for a person to look at (not compared).
SHOTS = os.environ.get("RAPPORT_SCREENSHOTS", "")


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


@pytest.fixture
def _sync_orm_beside_playwright():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def _signed_in(browser, base, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{base}/login/")
    page.locator("#id_username").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{base}/")
    return page, errors


def _journey(workspace) -> Journey:
    return services.journey_create(
        workspace=workspace,
        graph={
            "name": "Welcome month",
            "trigger": {"type": "event", "event": "Signed Up", "where": []},
            "goal": {"event": "Order Completed", "where": [], "within_days": 30},
            "start": "hello",
            "steps": {
                "hello": {
                    "type": "send",
                    "channel": "email",
                    "purpose": "marketing",
                    "content": {"subject": "Hi", "html": "<p>Hi</p>"},
                    "next": None,
                },
                "done": {"type": "exit"},
            },
            "layout": {"hello": {"x": 300, "y": 60}, "done": {"x": 620, "y": 200}},
        },
        actor=ACTOR,
    )


def _drag(page, source, target) -> None:
    page.locator("#journey-canvas").evaluate("e => e.scrollIntoView({block: 'center'})")
    a, b = source.bounding_box(), target.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + 2, b["y"] + 2, steps=8)
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=4)
    page.mouse.up()


def _fits(page) -> None:
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{overflow}px of sideways scrolling"


def test_drag_to_connect_two_steps_and_save(_sync_orm_beside_playwright, live_server):
    # tenant_create adds marketer@journeys.example.com with this password.
    tenant = tenant_create("Journeys", sample_data=False)
    journey = _journey(tenant.workspace)
    base = live_server.url
    with chromium_launched() as browser:
        page, errors = _signed_in(browser, base, 1440)
        page.goto(f"{base}/journeys/")
        page.locator(f'a[href="/journeys/{journey.pk}/"]').first.wait_for()
        _fits(page)

        page.goto(f"{base}/journeys/{journey.pk}/")
        page.locator("#journey-canvas[data-ready]").wait_for()
        _fits(page)
        _shot(page, "journey-1440.png")
        # The trigger is connected to the first step; "done" is not reached yet.
        assert page.locator('#journey-canvas [data-step="hello"]').is_visible()
        _drag(
            page,
            page.locator('#journey-canvas [data-step="hello"] .output_1'),
            page.locator('#journey-canvas [data-step="done"] .input_1'),
        )
        assert page.locator("#journey-canvas svg.connection").count() == 2
        assert page.evaluate("() => window.rapportJourneyGraph().steps.hello.next") == "done"

        # A new wait, edited in the side panel (2 days), saved unconnected, placed.
        page.select_option("#step-type", "wait")
        page.locator("#step-add").click()
        page.locator('#journey-canvas [data-step="wait_1"]').wait_for()
        panel = page.locator("#step-panel")
        panel.locator('input[aria-label="days"]').fill("2")
        panel.locator('input[aria-label="hours"]').fill("0")

        page.locator("[data-save]").click()
        page.wait_for_url(f"{base}/journeys/{journey.pk}/?saved=1")
        page.locator("#journey-canvas[data-ready]").wait_for()
        journey.refresh_from_db()
        saved = services.journey_version(journey).graph
        assert journey.version == 2
        assert saved["start"] == "hello"
        assert saved["steps"]["hello"]["next"] == "done"
        assert saved["steps"]["wait_1"]["seconds"] == 2 * 86400
        assert set(saved["layout"]) == {"hello", "done", "wait_1"}
        assert saved["layout"]["done"] == {"x": 620, "y": 200}
        # Drawn again from what was saved: the edge is there.
        assert page.locator("#journey-canvas svg.connection").count() == 2

        # Validate names the step that is not reached, beside it.
        page.locator("[data-validate]").click()
        page.locator('.journey-errors [data-select-step="wait_1"]').wait_for()
        assert page.locator('#journey-canvas [data-step="wait_1"] .jn-error').count() >= 1
        # The only complaint: the browser noting the validation's 422.
        assert [e for e in errors if "status of 422" not in e] == []

        phone, phone_errors = _signed_in(browser, base, 390)
        for url in ("/journeys/", f"/journeys/{journey.pk}/", "/journeys/new/"):
            phone.goto(f"{base}{url}")
            phone.wait_for_load_state("load")
            _fits(phone)
            if "/new/" not in url and url != "/journeys/":
                phone.locator("#journey-canvas[data-ready]").wait_for()
                _shot(phone, "journey-390.png")
        assert phone_errors == []
