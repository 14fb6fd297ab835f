"""The UI in a real browser: Playwright driving Debian's Chromium against a live server.

Each test fails on any error in the browser console (a Content Security Policy
violation included) and saves screenshots of the pages it visits under
test-artifacts/screenshots/. Without /usr/bin/chromium the tests are skipped, except
in CI (CI=true), where a missing browser is a failure.
"""

import base64
import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from rapport.identity.models import ProfileMerge
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, member_add
from tests.chromium import CHROMIUM, chromium_launched

PASSWORD = "correct-horse-battery"
SHOTS = Path(os.environ.get("RAPPORT_TEST_ARTIFACTS", "test-artifacts")) / "screenshots"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing: CI installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def _sync_orm_beside_playwright():
    """Playwright's sync API runs an event loop in this thread; the ORM calls the tests
    make around it are ordinary synchronous ones. Only while this module runs: a server
    started by another test must not inherit it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(_sync_orm_beside_playwright):
    with chromium_launched() as browser:
        yield browser


CSP_VIOLATIONS_LOGGED = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  "CSP blocked", e.violatedDirective, e.sourceFile, e.lineNumber,
  e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 300) : ""));
"""


@pytest.fixture
def open_page(browser, live_server):
    """A new browser page; the console must stay free of errors."""
    contexts, errors = [], []

    def make(viewport=None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        # A blocked inline style or script names its element in the console.
        page.add_init_script(CSP_VIOLATIONS_LOGGED)
        page.on(
            "console",
            lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert errors == [], "errors in the browser console: " + " | ".join(errors)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def person(tenant, role: str) -> str:
    email = f"{role}@browser.example.com"
    member_add(
        workspace=tenant.workspace,
        email=email,
        role=role,
        password=PASSWORD,
        actor=Actor.system("tests"),
    )
    return email


@pytest.fixture
def customers(tenant):
    tenant.send(
        {
            "type": "identify",
            "userId": "ada-1815",
            "anonymousId": "anon-ada",
            "traits": {"name": "Ada Lovelace", "email": "ada@example.com", "plan": "pro"},
            "messageId": "b-ada-1",
        },
        {
            "type": "track",
            "userId": "ada-1815",
            "event": "Order Completed",
            "properties": {"revenue": 42, "note": "<img src=x onerror=alert(1)>"},
            "messageId": "b-ada-2",
        },
        {
            "type": "identify",
            "userId": "grace-1906",
            "traits": {"name": "Grace Hopper", "email": "grace@example.com"},
            "messageId": "b-grace-1",
        },
    )


def test_find_a_customer_and_see_the_timeline(open_page, live_server, tenant, customers):
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    shot(page, "home")
    page.get_by_role("link", name="Customers", exact=True).click()
    shot(page, "customers")
    page.get_by_label("Find a customer").fill("ADA@example.com")
    # The list narrows as one types (htmx), and the address follows.
    expect(page.locator("#results tbody tr")).to_have_count(1)
    page.wait_for_url(re.compile(r"q=ADA%40example\.com"))
    page.locator("#results").get_by_role("link", name="Ada Lovelace").click()
    page.get_by_role("heading", name="Ada Lovelace").wait_for()
    timeline = page.locator("#timeline-entries")
    # Sentences, not event names (rapport/profiles/timeline_sentences.py).
    assert "Ordered for 42.00" in timeline.inner_text()
    assert "Traits updated: email, name, plan" in timeline.inner_text()
    # What a customer sent is shown as text, never run.
    timeline.locator("details").first.click()
    assert "<img src=x onerror=alert(1)>" in timeline.inner_text()
    assert page.get_by_text("ada@example.com").count() >= 1
    shot(page, "customer-360")
    phone = open_page(viewport={"width": 390, "height": 844})
    sign_in(phone, live_server.url, "admin@browser.example.com")
    phone.goto(page.url)
    shot(phone, "customer-360-phone")


def test_merge_two_profiles_and_unmerge_them(open_page, live_server, tenant, customers):
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.goto(f"{live_server.url}/customers/?q=ada-1815")
    page.locator("#results").get_by_role("link", name="Ada Lovelace").click()
    page.get_by_role("heading", name="Ada Lovelace").wait_for()
    survivor_url = page.url
    page.get_by_role("link", name="Merge another profile into this one").click()
    page.get_by_label("The other profile").fill("grace@example.com")
    page.get_by_role("button", name="Find the profile").click()
    page.get_by_label("Why are they the same customer?").fill("Same person, two accounts")
    shot(page, "merge-confirm")
    page.get_by_role("button", name="Merge", exact=True).click()
    page.wait_for_url(survivor_url)
    # Grace's traits are newer, so the merged profile goes by her name now.
    page.get_by_role("heading", name="Grace Hopper").wait_for()
    merge = ProfileMerge.objects.get(workspace=tenant.workspace, reason="Same person, two accounts")
    assert merge.unmerged_at is None
    assert "grace@example.com" in page.locator("section", has_text="Identities").inner_text()
    page.get_by_role("link", name="Unmerge").click()
    page.get_by_role("button", name="Unmerge").click()
    page.get_by_role("heading", name="Ada Lovelace").wait_for()
    merge.refresh_from_db()
    assert merge.unmerged_at is not None
    assert "grace@example.com" not in page.locator("section", has_text="Identities").inner_text()
    actions = set(
        AuditLogEntry.objects.filter(workspace=tenant.workspace).values_list("action", flat=True)
    )
    assert {"profile.merge", "profile.unmerge"} <= actions


def test_a_new_write_key_and_its_event_in_the_debugger(open_page, live_server, tenant):
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.get_by_role("link", name="Sources").click()
    page.get_by_label("Name").fill("Browser test site")
    page.get_by_role("button", name="Create the source and its write key").click()
    key = page.locator("#new-write-key").inner_text().strip()
    assert len(key) > 20
    shot(page, "source-new-key")
    page.get_by_role("link", name="See this source's events in the debugger").click()
    page.get_by_text("No events yet").wait_for()

    body = json.dumps(
        {"userId": "debug-1", "event": "Browser Test Event", "messageId": "dbg-1"}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the local live server
        f"{live_server.url}/v1/track",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    # The debugger refreshes itself: no reload.
    page.locator(".debugger-row", has_text="Browser Test Event").wait_for()
    shot(page, "debugger")


def test_an_agent_sees_masked_emails_and_no_export(open_page, live_server, tenant, customers):
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.AGENT))
    page.goto(f"{live_server.url}/customers/?q=ada-1815")
    results = page.locator("#results").inner_text()
    assert "ada@example.com" not in results
    assert re.search(r"a•••@e•+\.com", results)
    page.locator("#results tbody").get_by_role("link").first.click()
    page.get_by_role("heading", name="Timeline").wait_for()
    assert "ada@example.com" not in page.content()
    assert page.locator("#export-button").count() == 0
    assert page.get_by_role("link", name="Erase").count() == 0
    shot(page, "customer-360-agent")
    # Typed in by hand, the export is refused all the same.
    response = page.context.request.get(page.url + "export/")
    assert response.status == 403


def test_an_account_its_hierarchy_and_a_duplicate_pair_merged(
    open_page, live_server, tenant, customers
):
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.get_by_role("link", name="Accounts", exact=True).click()
    page.get_by_label("Find an account").fill("acme")
    page.locator("#results").get_by_role("link", name="Acme", exact=True).click()
    page.get_by_role("heading", name="Hierarchy").wait_for()
    assert page.locator("#account-members li").count() == 2
    assert page.locator("#timeline-entries .entry").count() >= 2
    shot(page, "account")

    page.get_by_role("link", name="Duplicates").click()
    pair = page.locator("section.pair").first
    expect(pair.locator("table")).to_contain_text("one side only")
    shot(page, "duplicates")
    pair.get_by_label("Why they are the same").fill("Imported twice")
    pair.get_by_role("button", name="Merge").click()
    page.get_by_text("The pair was merged.").wait_for()
    assert page.locator("section.pair").count() == 0
    assert ProfileMerge.objects.filter(workspace=tenant.workspace, reason="Imported twice").exists()


def test_a_csv_import_shows_its_progress_as_a_worker_runs_it(
    open_page, live_server, tenant, tmp_path
):
    from rapport.ingest.models import ImportJob
    from rapport.ingest.tasks import import_run

    csv_file = tmp_path / "crm-export.csv"
    csv_file.write_text(
        "customer_id,name,email\nc-100,Lin,lin@example.com\nc-101,Max,max@example.com\n"
    )
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.MARKETER))
    page.get_by_role("link", name="Imports").click()
    page.get_by_label("Column holding the customer's id (CSV)").fill("customer_id")
    page.get_by_label("File", exact=True).set_input_files(str(csv_file))
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Waiting for a worker to start.").wait_for()
    job = ImportJob.objects.get(workspace=tenant.workspace, filename="crm-export.csv")
    import_run.call(import_job_id=str(job.pk))  # the worker's part
    # The page polls itself: no reload.
    page.get_by_text("Done.").wait_for()
    expect(page.locator("#import-accepted")).to_have_text("2")
    shot(page, "import-done")


def test_settings_members_tokens_and_identity_rules(open_page, live_server, tenant):
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.get_by_role("link", name="Settings", exact=True).click()
    page.get_by_label("Default phone region (for numbers without a country code, e.g. GB)").fill(
        "DE"
    )
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    shot(page, "settings-identity")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name (what uses it)").fill("Warehouse sync")
    page.get_by_role("button", name="Create", exact=True).click()
    assert page.locator("#new-api-token").inner_text().strip()
    shot(page, "settings-tokens")
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Email").fill("new.agent@browser.example.com")
    page.get_by_label("Role", exact=True).select_option("agent")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(page.locator("#invitation-sent")).to_contain_text("new.agent@browser.example.com")
    expect(page.locator("#invitations")).to_contain_text("new.agent@browser.example.com")
    shot(page, "settings-members")
    # On a phone, the navigation wraps and every page stays usable.
    phone = open_page({"width": 390, "height": 844})
    sign_in(phone, live_server.url, person(tenant, Role.ANALYST))
    for path in ("/accounts/", "/duplicates/", "/data/quarantine/", "/settings/identity/"):
        phone.goto(f"{live_server.url}{path}")
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
    shot(phone, "phone-identity-rules")


def test_build_a_segment_without_typing_json(open_page, live_server, tenant, customers):
    from rapport.segments import services as segment_services
    from rapport.segments.models import Segment

    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.MARKETER))
    page.get_by_role("link", name="Segments", exact=True).click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Name", exact=True).fill("Pro buyers")
    builder = page.locator("#rule-builder")
    builder.get_by_label("Trait name").fill("plan")
    builder.get_by_label("Value").fill("pro")
    builder.get_by_role("button", name="+ Condition").click()
    second = builder.locator(".rule-row").nth(1)
    second.get_by_label("Condition").select_option("event")
    second.get_by_label("Event").fill("Order Completed")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("1 customer matches")
    expect(page.locator("#preview")).to_contain_text("Ada Lovelace")
    shot(page, "segment-builder")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/segments/[0-9a-f-]{36}/$"))
    segment = Segment.objects.get(workspace=tenant.workspace, name="Pro buyers")
    assert segment.rule == {
        "all": [
            {"trait": "plan", "op": "eq", "value": "pro"},
            {"event": "Order Completed"},
        ]
    }
    segment_services.segment_refresh(segment=segment)  # what the queued task does
    page.reload()
    expect(page.get_by_role("heading", name="1 customer")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Ada Lovelace")
    shot(page, "segment-detail")
    segment_services.rfm_refresh(workspace_id=tenant.workspace.pk)
    page.get_by_role("link", name="RFM").click()
    expect(page.locator(".rfm-grid")).to_contain_text("New")
    shot(page, "rfm")
    segment_services.lifecycle_refresh(workspace_id=tenant.workspace.pk)
    page.get_by_role("link", name="Lifecycle").click()
    expect(page.locator("main")).to_contain_text("Onboarding")
    shot(page, "lifecycle")


def test_the_builder_offers_every_condition_of_the_language(open_page, live_server, tenant):
    """Each registered condition (segments' own and those other apps register), chosen in
    the builder with its fields as they come, writes JSON the rule language accepts as
    that condition."""
    from rapport.segments import rules

    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.MARKETER))
    page.goto(f"{live_server.url}/segments/new/")
    row = page.locator("#rule-builder .rule-row").first
    offered = (
        row.get_by_label("Condition")
        .locator("option")
        .evaluate_all("options => options.map(o => o.value)")
    )
    assert offered == [c.key for c in rules.conditions_all()]
    for key in offered:
        row.get_by_label("Condition").select_option(key)
        for box in row.locator("input[type=text]").all():
            if not box.input_value():
                box.fill("plan")  # a name the person types
        written = json.loads(page.locator("#rule-json").input_value())["all"][0]
        parsed = rules.rule_parse(written)
        assert rules.condition_of(parsed).key == key, written


def test_read_the_models_and_save_a_driver_as_a_segment(open_page, live_server, tenant):
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.MARKETER))
    page.get_by_role("link", name="Predictions").click()
    expect(page.get_by_role("heading", name="Churn drivers")).to_be_visible()
    expect(page.locator("svg.calibration polyline")).to_have_count(1)
    shot(page, "predictions")
    page.get_by_role("button", name="Save as segment").first.click()
    page.wait_for_url("**/segments/*/")
    assert "Churn driver: plan is free" in page.content()
    # On a phone the page (tables of metrics and drivers) does not scroll sideways.
    phone = open_page({"width": 390, "height": 844})
    sign_in(phone, live_server.url, person(tenant, Role.ANALYST))
    phone.goto(f"{live_server.url}/models/")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(phone, "phone-predictions")


def test_kpi_dashboard_funnel_and_cohorts_with_png_and_csv(open_page, live_server, tenant):
    from datetime import date

    from rapport.analytics.services import analytics_settings_update, kpi_snapshots_take
    from rapport.segments.models import Segment
    from tests.analytics.conftest import SHOP_EVENTS

    analytics_settings_update(
        workspace=tenant.workspace, actor=Actor.system("tests"), timezone="Europe/London"
    )
    tenant.send(*[{**call, "messageId": f"kpi-{n}"} for n, call in enumerate(SHOP_EVENTS)])
    kpi_snapshots_take(workspace_id=tenant.workspace.pk, day=date(2026, 10, 31), backfill_days=31)
    page = open_page()
    base = live_server.url
    sign_in(page, base, person(tenant, Role.ANALYST))
    page.get_by_role("link", name="Analytics").click()
    page.wait_for_selector('[data-chart="trend"][data-drawn]')
    revenue = page.locator('[data-kpi="revenue"]')
    assert "150.00" in revenue.inner_text()
    assert "Value of the purchases in the period" in revenue.inner_text()
    assert page.locator("[data-drawn]").count() == 16  # 15 cards and the trend
    shot(page, "analytics-dashboard")
    with page.expect_download() as png:
        page.locator('[data-png="trend"]').click()
    assert Path(png.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The funnel of October, broken down by campaign; the customers who went no further.
    page.goto(f"{base}/analytics/funnel/?start=2026-10-01&end=2026-10-31&breakdown=utm_source")
    page.wait_for_selector('[data-chart="funnel-chart"][data-drawn]')
    shot(page, "analytics-funnel")
    with page.expect_download() as exported:
        page.get_by_role("link", name="CSV").click()
    text = Path(exported.value.path()).read_text()
    assert text.startswith("group,step,label,customers") and "google" in text
    page.get_by_role("row", name=re.compile("2. Signed Up")).get_by_role(
        "link", name="went no further"
    ).click()
    expect(page.locator("main")).to_contain_text("1 customer")
    page.get_by_label("Save them as a static segment named").fill("Signed up, never bought")
    page.get_by_role("button", name="Save as segment").click()
    page.wait_for_url("**/segments/*/")
    assert Segment.objects.get(workspace=tenant.workspace, name="Signed up, never bought").size == 1
    # The cohort heat map: a click on a cell opens its customers.
    page.goto(f"{base}/analytics/cohorts/?last_month=2026-10&months=3")
    page.wait_for_selector('[data-chart="cohort-chart"][data-drawn]')
    shot(page, "analytics-cohorts")
    for path, chart in (("lifecycle", "loyalty-chart"), ("rfm", "rfm-revenue")):
        page.goto(f"{base}/analytics/{path}/")
        page.wait_for_selector(f'[data-chart="{chart}"][data-drawn]')
        shot(page, f"analytics-{path}")
    # On a phone the dashboard does not scroll sideways.
    phone = open_page({"width": 390, "height": 844})
    sign_in(phone, base, person(tenant, Role.AGENT))
    phone.goto(f"{base}/analytics/")
    phone.wait_for_selector('[data-chart="trend"][data-drawn]')
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(phone, "phone-analytics")


def test_an_invited_person_joins_through_the_mailed_link(open_page, live_server, tenant, mailbox):
    page = open_page()
    sign_in(page, live_server.url, person(tenant, Role.ADMIN))
    page.goto(f"{live_server.url}/settings/members/")
    page.get_by_label("Email").fill("joiner@browser.example.com")
    page.get_by_label("Role", exact=True).select_option("analyst")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(page.locator("#invitation-sent")).to_contain_text("joiner@browser.example.com")

    link = re.search(r"(http://\S+/invitations/\S+/)", mailbox.body()).group(1)
    assert link.startswith(live_server.url)
    joiner = open_page()
    joiner.goto(link)
    joiner.get_by_label("Name").fill("Joan")
    joiner.get_by_label("Password (at least 10 characters)").fill("a-long-passphrase-42")
    joiner.get_by_label("The same password again").fill("a-long-passphrase-42")
    joiner.get_by_role("button", name="Create my login and accept").click()
    joiner.wait_for_url(f"{live_server.url}/")
    expect(joiner.locator("h1")).to_have_text("Alpha")
    expect(joiner.locator(".user")).to_contain_text("Analyst")
    shot(joiner, "invitation-accepted")
