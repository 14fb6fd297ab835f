"""The template editor and a broadcast's page in a real browser: the preview frame
shows the letter with its own styles, runs none of its script, follows none of its
links, and the editor's live preview follows what is typed."""

import os
from pathlib import Path

import pytest

from rapport.channels import services
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, member_add
from tests.chromium import CHROMIUM, chromium_launched
from tests.conftest import tenant_create

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing: CI installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL, PASSWORD = "marketer@messages.example.com", "correct-horse-battery"
ACTOR = Actor.system("tests")
LETTER = (
    "<style>h1 { color: rgb(0, 128, 0) }</style>"
    '<h1 style="font-style: italic">Spring for {{ customer.first_name|default:"you" }}</h1>'
    "<script>parent.document.title = 'pwned'; document.title = 'pwned';</script>"
    '<a id="link" href="https://shop.example.com/">Shop now</a>'
)


@pytest.fixture
def _sync_orm_beside_playwright():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def _signed_in(browser, base):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{base}/login/")
    page.locator("#id_username").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{base}/")
    return page, errors


def _letter_is_sealed(page, frame_selector: str, *, words: str) -> None:
    frame = page.frame_locator(frame_selector).first
    heading = frame.locator("h1")
    heading.wait_for()
    assert heading.inner_text() == words
    # The letter's own styles apply (inlined from its <style>, and its own attribute).
    assert heading.evaluate("e => getComputedStyle(e).color") == "rgb(0, 128, 0)"
    assert heading.evaluate("e => getComputedStyle(e).fontStyle") == "italic"
    # Its script does not run, and its link goes nowhere.
    assert page.title() != "pwned"
    url = page.url
    frame.locator("#link").click()
    page.wait_for_timeout(300)
    assert page.url == url


def test_previews_show_the_letter_sealed_and_follow_the_editor(
    _sync_orm_beside_playwright, live_server
):
    tenant = tenant_create("Letters")
    member_add(
        workspace=tenant.workspace,
        email=EMAIL,
        role=Role.ADMIN,
        password=PASSWORD,
        actor=ACTOR,
    )
    template = services.template_create(
        workspace=tenant.workspace,
        name="Spring",
        channel="email",
        subject="Spring",
        html=LETTER,
        actor=ACTOR,
    )
    from rapport.segments.models import Segment

    segment = Segment.objects.filter(workspace=tenant.workspace).first()
    broadcast = services.broadcast_create(
        workspace=tenant.workspace,
        name="Spring",
        channel="email",
        purpose="marketing",
        segment=segment,
        template=template,
        actor=ACTOR,
    )
    base = live_server.url
    with chromium_launched() as browser:
        page, errors = _signed_in(browser, base)

        page.goto(f"{base}/messages/templates/{template.pk}/")
        _letter_is_sealed(page, "#template-preview iframe", words="Spring for you")
        # Typing changes the preview (debounced, posted, swapped in).
        body = page.locator("#t-html")
        body.fill(LETTER.replace("Spring for", "Summer for"))
        page.frame_locator("#template-preview iframe").first.locator(
            "h1", has_text="Summer for you"
        ).wait_for()
        _letter_is_sealed(page, "#template-preview iframe", words="Summer for you")

        page.goto(f"{base}/messages/broadcasts/{broadcast.pk}/")
        _letter_is_sealed(page, "iframe.preview-frame", words="Spring for you")
        # The only complaints are the refusals: the letter's script, its link.
        refused = ("sandboxed and the 'allow-scripts'", "frame-src 'none'")
        others = [e for e in errors if not any(r in e for r in refused)]
        assert others == []
