"""A kept mail opened in a real browser: its HTML shows in the sealed frame, its
scripts do not run, its remote images and links load nothing (no open or click is
counted by reading it)."""

import os
from pathlib import Path

import pytest

from rapport.channels.models import Message, OutboxMail
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, member_add
from tests.chromium import CHROMIUM, chromium_launched
from tests.conftest import tenant_create

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing: CI installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL, PASSWORD = "admin@outbox.example.com", "correct-horse-battery"


@pytest.fixture
def _sync_orm_beside_playwright():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def test_a_kept_mail_shows_sealed(_sync_orm_beside_playwright, live_server):
    tenant = tenant_create("Outbox", sample_data=False)
    member_add(
        workspace=tenant.workspace,
        email=EMAIL,
        role=Role.ADMIN,
        password=PASSWORD,
        actor=Actor.system("tests"),
    )
    base = live_server.url
    message = Message.objects.create(
        workspace=tenant.workspace, channel="email", purpose="marketing", status="sent"
    )
    mail = OutboxMail.objects.create(
        workspace=tenant.workspace,
        message_id=f"<{message.pk}@example.com>",
        from_email="news@example.com",
        to=["jane@example.com"],
        subject="Spring",
        text="Spring is here",
        html=(
            '<h1 style="color: rgb(200, 0, 0)">Spring is here</h1>'
            "<script>parent.document.title = 'pwned'; document.title = 'pwned';</script>"
            f'<img id="pixel" src="{base}/m/o/tracked-open">'
            f'<a id="link" href="{base}/m/c/tracked-click">Shop now</a>'
        ),
        headers={"List-Unsubscribe": f"<{base}/m/unsubscribe/x>"},
    )
    requested: list[str] = []
    with chromium_launched() as browser:
        page = browser.new_page()
        page.on("request", lambda r: requested.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/login/")
        page.locator("#id_username").fill(EMAIL)
        page.locator("#id_password").fill(PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/messages/outbox/{mail.pk}/")
        frame = page.frame_locator("#mail-html")
        heading = frame.locator("h1")
        heading.wait_for()
        assert heading.inner_text() == "Spring is here"
        # The letter's own style applies; its script does not run.
        assert heading.evaluate("e => getComputedStyle(e).color") == "rgb(200, 0, 0)"
        assert page.title() != "pwned"
        assert frame.locator("html").evaluate("e => e.ownerDocument.title") != "pwned"
        # Clicking a link in the frame goes nowhere.
        frame.locator("#link").click()
        page.wait_for_timeout(500)
        assert page.url.endswith(f"/messages/outbox/{mail.pk}/")
    assert not [u for u in requested if "/m/o/" in u or "/m/c/" in u], requested
