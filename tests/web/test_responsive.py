"""Every page of a demo workspace on a desktop (1440 px) and a phone (390 px): no
sideways scroll of the page itself (wide tables and charts scroll or shrink inside
their own box) and no error in the browser console.

The pages are found by crawling, not listed: the side bar's links, then the links on
those pages (one page of each kind: a customer, an account, a segment...), so a page
added later is covered the day it is linked. Without /usr/bin/chromium the test is
skipped, except in CI (CI=true), where a missing browser is a failure.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from rapport.demo.services import demo_load
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, member_add
from tests.chromium import CHROMIUM, chromium_launched
from tests.conftest import tenant_create
from tests.web.messages_demo import messages_demo

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing: CI installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

# Layout and the browser's console: nothing here depends on the database, and every
# page is rendered on PostgreSQL too by tests/web/test_russian_pages.py.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.one_database]

PASSWORD = "correct-horse-battery"
EMAIL = "admin@responsive.example.com"
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}
SHOTS = Path(os.environ.get("RAPPORT_TEST_ARTIFACTS", "test-artifacts")) / "responsive"
# How far from the side bar the crawl goes, and how many pages it visits at most.
DEPTH = 2
MAX_PAGES = 90
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Not pages to look at: signing out, the API and its documents, the admin site, files.
_SKIP = re.compile(r"^/(api|admin|static|logout|invitations)/|/(export|erase)/|\.(csv|json|png)$")


@pytest.fixture
def _sync_orm_beside_playwright():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture
def demo_workspace():
    tenant = tenant_create("Northwind", sample_data=False)
    demo_load(workspace=tenant.workspace, customers=120, months=8, seed=5)
    _messages_kept_and_failed(tenant.workspace)
    messages_demo(tenant.workspace)
    member_add(
        workspace=tenant.workspace,
        email=EMAIL,
        role=Role.ADMIN,
        password=PASSWORD,
        actor=Actor.system("tests"),
    )
    return tenant


def _messages_kept_and_failed(workspace) -> None:
    """A mail in the outbox and a failed message, so their pages have rows to fit."""
    from rapport.channels.models import Message, OutboxMail
    from rapport.profiles.models import Profile

    profile = Profile.objects.filter(workspace=workspace).first()
    message = Message.objects.create(
        workspace=workspace,
        profile=profile,
        channel="email",
        purpose="marketing",
        subject="Our spring collection is here, with a rather long subject line",
        status="failed",
        attempts=5,
        error="550 5.1.1 <someone.with.a.long.address@example.com>: Recipient address "
        "rejected: User unknown in virtual mailbox table",
    )
    OutboxMail.objects.create(
        workspace=workspace,
        message_id=f"<{message.pk}@example.com>",
        from_email="Northwind <news@northwind.example.com>",
        to=["someone.with.a.long.address@example.com"],
        subject=message.subject,
        text="Hello,\n\nOur spring collection is here.",
        html='<table width="600"><tr><td><h1>Spring</h1><p>Our collection is here.</p>'
        "</td></tr></table>",
        headers={
            "Message-ID": f"<{message.pk}@example.com>",
            "List-Unsubscribe": "<https://crm.example.com/m/unsubscribe/" + "a" * 80 + ">",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def kind_of(path: str) -> str:
    """One page of each kind: ids stand for any id, and the query is left out."""
    return _UUID.sub("{id}", path.partition("?")[0])


def sign_in(page, base: str) -> None:
    page.goto(f"{base}/login/")
    page.locator("#id_username").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{base}/")


def links(page, base: str, selector: str) -> list[str]:
    hrefs = page.eval_on_selector_all(selector, "els => els.map(e => e.href)")
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != base or _SKIP.search(parts.path):
            continue
        # The query is kept: some pages need theirs (the customers behind a chart's point).
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


def crawl(page, base: str) -> list[str]:
    """The pages reachable from the side bar, one of each kind, in the order found."""
    page.goto(f"{base}/")
    frontier = ["/", *links(page, base, "#sidenav a[href]")]
    kinds: dict[str, str] = {}
    for depth in range(DEPTH + 1):
        following = []
        for path in frontier:
            if kind_of(path) in kinds or len(kinds) >= MAX_PAGES:
                continue
            kinds[kind_of(path)] = path
            if depth < DEPTH:
                response = page.goto(base + path)
                if response is not None and response.ok:
                    following += links(page, base, "main a[href]")
        frontier = following
    return list(kinds.values())


def search_from_the_keyboard(page, base: str) -> None:
    """ "/" focuses the global search, results come as one types, the arrow keys and
    Enter open one."""
    from rapport.identity.models import Identifier

    holder = Identifier.objects.filter(kind="phone").select_related("profile").first()
    surname = holder.profile.traits["name"].split()[-1]
    page.goto(f"{base}/segments/")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "global-search"
    page.keyboard.type(surname)
    page.locator("#search-popover .search-hits a").first.wait_for()
    assert surname in page.locator("#search-popover").inner_text()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/customers/[0-9a-f-]{36}/$"))
    page.keyboard.press("Control+k")
    assert page.evaluate("document.activeElement.id") == "global-search"


def test_every_page_fits_a_desktop_and_a_phone(
    _sync_orm_beside_playwright, demo_workspace, live_server
):
    base = live_server.url
    problems: list[str] = []
    with chromium_launched() as browser:
        for device, (width, height) in WIDTHS.items():
            context = browser.new_context(viewport={"width": width, "height": height})
            context.set_default_timeout(20_000)
            page = context.new_page()
            errors: list[str] = []
            page.on(
                "console",
                lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            sign_in(page, base)
            if device == "desktop":
                pages = crawl(page, base)
                # The side bar's groups and the detail pages behind the lists are there.
                for expected in (
                    "/customers/{id}/",
                    "/accounts/{id}/",
                    "/segments/{id}/",
                    "/messages/failed/",
                    "/messages/suppressions/",
                    "/messages/outbox/",
                    "/messages/outbox/{id}/",
                    "/settings/channels/",
                    "/messages/broadcasts/{id}/",
                    "/messages/templates/{id}/",
                ):
                    assert expected in {kind_of(p) for p in pages}, pages
            for path in pages:
                errors.clear()
                response = page.goto(base + path)
                page.wait_for_load_state("networkidle")
                status = response.status if response is not None else 0
                if status < 400 and page.locator("body > .shell").count() == 0:
                    # A fragment that htmx swaps into a page (the next page of a
                    # timeline), opened on its own: not a page of the layout.
                    continue
                if status >= 400:
                    problems.append(f"{device} {path}: HTTP {status}")
                scroll, inner = page.evaluate(
                    "[document.documentElement.scrollWidth, window.innerWidth]"
                )
                if scroll > inner:
                    SHOTS.mkdir(parents=True, exist_ok=True)
                    name = re.sub(r"\W+", "-", kind_of(path)).strip("-") or "home"
                    page.screenshot(path=str(SHOTS / f"{name}-{device}.png"), full_page=True)
                    problems.append(
                        f"{device} {path}: the page scrolls sideways ({scroll} > {inner})"
                    )
                problems += [f"{device} {path}: console: {error}" for error in errors]
            if device == "desktop":
                search_from_the_keyboard(page, base)
            if device == "phone":
                # The side bar folds into a menu that opens.
                page.goto(f"{base}/")
                assert not page.locator("#sidenav").is_visible()
                page.locator("[data-menu-toggle]").click()
                assert page.locator("#sidenav").is_visible()
            context.close()
    assert len(pages) >= 20, pages
    assert problems == [], "\n".join(problems)
