"""Next best action in a real browser: the person page's simulator answers for another
channel in place (htmx), an action's report draws its learning curve with ECharts,
and the decisions pages fit a desktop (1440 px) and a phone (390 px) without sideways
scrolling or script errors."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from rapport.decisions import services
from rapport.decisions.models import DecisionSettings
from rapport.profiles.models import Profile
from rapport.tenancy.services import Actor
from tests.chromium import CHROMIUM, chromium_launched
from tests.conftest import tenant_create
from tests.decisions.conftest import given_plant

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing: CI installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.one_database]

# tenant_create adds marketer@<name>.example.com with this password.
EMAIL, PASSWORD = "marketer@decisions.example.com", "correct-horse-battery"
ACTOR = Actor.system("tests")
SHOTS = os.environ.get("RAPPORT_SCREENSHOTS", "")


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


def _fits(page) -> None:
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{overflow}px of sideways scrolling on {page.url}"


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def _history(workspace, action) -> None:
    """Twenty days of impressions, model-chosen and control, some clicked."""
    now = timezone.now()
    for i in range(60):
        at = now - timedelta(days=i % 20, hours=1)
        given_plant(
            workspace,
            action,
            at=at,
            control=i % 4 == 0,
            outcomes=["clicked"] if i % 3 == 0 else [],
            propensity=0.2,
        )


def test_the_simulator_and_a_report_chart(_sync_orm_beside_playwright, live_server):
    tenant = tenant_create("Decisions", sample_data=False)
    workspace = tenant.workspace
    web = services.action_create(
        workspace=workspace,
        actor=ACTOR,
        data={"key": "spring-sale", "name": "Spring sale", "channels": ["web"], "value": 20},
    )
    services.action_create(
        workspace=workspace,
        actor=ACTOR,
        data={"key": "call-back", "name": "Call back", "channels": ["assisted"], "value": 5},
    )
    _history(workspace, web)
    # No control group: a customer in it (5 % by default, by the hash of a random id)
    # is shown "in the control group" instead of the model's choice.
    DecisionSettings.objects.update_or_create(workspace=workspace, defaults={"control_percent": 0})
    person = Profile.objects.create(workspace=workspace, traits={"name": "Ada"})
    base = live_server.url
    with chromium_launched() as browser:
        page, errors = _signed_in(browser, base, 1440)
        page.goto(f"{base}/customers/{person.pk}/")
        panel = page.locator("#next-action")
        panel.wait_for()
        assert panel.locator('[data-candidate="spring-sale"]').count() == 1
        assert panel.locator('[data-chosen="spring-sale"]').count() == 1
        # Another channel: the panel is replaced in place, the page stays.
        page.select_option("#nba-channel", "assisted")
        page.locator('#next-action [data-chosen="call-back"]').wait_for()
        assert page.url == f"{base}/customers/{person.pk}/"
        assert page.locator("#nba-channel").input_value() == "assisted"
        _fits(page)
        _shot(page, "simulator-1440.png")

        page.goto(f"{base}/decisions/actions/{web.key}/")
        page.locator('[data-chart="decision-learning-curve"][data-drawn]').wait_for()
        series = page.evaluate(
            "() => window.rapportCharts['decision-learning-curve'].getOption().series.length"
        )
        assert series == 2
        _fits(page)
        _shot(page, "report-1440.png")
        assert errors == []

        phone, phone_errors = _signed_in(browser, base, 390)
        for url in (
            "/decisions/actions/",
            "/decisions/new/",
            f"/decisions/actions/{web.key}/",
            f"/decisions/actions/{web.key}/edit/",
            "/decisions/settings/",
            f"/customers/{person.pk}/",
        ):
            phone.goto(f"{base}{url}")
            phone.wait_for_load_state("load")
            _fits(phone)
        phone.goto(f"{base}/decisions/actions/{web.key}/")
        phone.locator('[data-chart="decision-learning-curve"][data-drawn]').wait_for()
        _shot(phone, "report-390.png")
        assert phone_errors == []
