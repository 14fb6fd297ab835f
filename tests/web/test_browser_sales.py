"""The deals board in a real browser: a deal dragged to another column is moved (its
new version kept for the next drag); one someone else moved meanwhile goes back to
its column with a notice; the board, a deal and My tasks fit a phone without
sideways scrolling or script errors."""

import os
from pathlib import Path

import pytest

from rapport.sales import services
from rapport.sales.models import Deal
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, member_add
from tests.chromium import CHROMIUM, chromium_launched
from tests.conftest import tenant_create

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing: CI installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.one_database]

EMAIL, PASSWORD = "seller@board.example.com", "correct-horse-battery"
ACTOR = Actor.system("tests")


@pytest.fixture
def _sync_orm_beside_playwright():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def _signed_in(browser, base, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console", lambda m: m.type == "error" and "409" not in m.text and errors.append(m.text)
    )
    page.goto(f"{base}/login/")
    page.locator("#id_username").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{base}/")
    return page, errors


def _fits(page) -> None:
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{overflow}px of sideways scrolling on {page.url}"


def _drag(page, card: str, column: str) -> None:
    # By its amount: the name is a link, which does not start a drag.
    source = page.locator(f'[data-deal="{card}"] .amount')
    target = page.locator(f'.board-cards[data-stage="{column}"]')
    # The cards of the last drop slide into place (Sortable's animation): read where
    # they are once they stand still.
    page.wait_for_timeout(400)
    box, goal = source.bounding_box(), target.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 10)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(
            box["x"] + 20 + (goal["x"] + 30 - box["x"] - 20) * step / 10,
            box["y"] + 10 + (goal["y"] + 20 - box["y"] - 10) * step / 10,
        )
    page.mouse.up()


def test_dragging_a_deal_moves_it_and_a_stale_drag_goes_back(
    _sync_orm_beside_playwright, live_server
):
    tenant = tenant_create("Board", sample_data=False)
    workspace = tenant.workspace
    member_add(workspace=workspace, email=EMAIL, role=Role.SALES, password=PASSWORD, actor=ACTOR)
    pipeline = services.pipeline_create(workspace=workspace, actor=ACTOR, name="Office plans")
    stages = {s.name: s for s in pipeline.stages.all()}
    deal = services.deal_create(
        workspace=workspace,
        actor=ACTOR,
        data={"name": "Acme", "pipeline_id": pipeline.pk, "amount": "900"},
    )
    other = services.deal_create(
        workspace=workspace, actor=ACTOR, data={"name": "Globex", "pipeline_id": pipeline.pk}
    )
    base = live_server.url
    with chromium_launched() as browser:
        page, errors = _signed_in(browser, base, 1440)
        page.goto(f"{base}/deals/")
        page.locator("#deal-board.draggable").wait_for()
        _drag(page, str(deal.pk), str(stages["Meeting booked"].pk))
        page.wait_for_function("() => document.getElementById('deal-board').dataset.moves === '1'")
        assert Deal.objects.get(pk=deal.pk).stage == stages["Meeting booked"]
        # The card kept the new version: a second drag is not refused as stale.
        _drag(page, str(deal.pk), str(stages["Proposal sent"].pk))
        page.wait_for_function("() => document.getElementById('deal-board').dataset.moves === '2'")
        assert Deal.objects.get(pk=deal.pk).stage == stages["Proposal sent"]

        # Someone else moves Globex after the board was drawn.
        services.deal_move(deal=other, actor=ACTOR, stage_id=stages["Lost"].pk)
        _drag(page, str(other.pk), str(stages["Negotiation"].pk))
        notice = page.locator("#board-notice")
        notice.wait_for(state="visible")
        assert "Someone else moved this deal" in notice.inner_text()
        column = page.locator(f'.board-cards[data-stage="{stages["Qualified"].pk}"]')
        assert column.locator(f'[data-deal="{other.pk}"]').count() == 1
        assert Deal.objects.get(pk=other.pk).stage == stages["Lost"]
        _fits(page)
        assert errors == []

        phone, phone_errors = _signed_in(browser, base, 390)
        for url in ("/deals/", f"/deals/{deal.pk}/", "/deals/list/", "/tasks/"):
            phone.goto(f"{base}{url}")
            phone.wait_for_load_state("load")
            _fits(phone)
        assert phone_errors == []
