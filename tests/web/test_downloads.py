"""Every download in the UI gives a file: the pages are rendered, every download link
(`<a download>`, a link asking for `format=`, an export link) and every download form
(`<form data-download>`, or one posting to an export) found on them is followed, and
each must answer 200 with a non-empty body that is not an HTML page. A link to a
confirmation page (an export that discloses personal data asks first, then downloads on
POST) counts when the page's own confirming form, posted, gives the file.

New pages with downloads belong in PAGES; the crawl finds their buttons itself."""

import re
from datetime import date
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest

from rapport.analytics.services import kpi_snapshots_take
from rapport.profiles.models import Profile
from rapport.segments import services as segment_services
from rapport.tenancy.services import Actor
from tests.analytics.conftest import shop  # noqa: F401 - the fixture
from tests.web.clients import signed_in

OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}


class _PostForms(HTMLParser):
    """Collects the POST forms of a page, with their fields."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "get").lower() == "post":
            self._form = {"action": a.get("action") or "", "fields": {}}
            self.forms.append(self._form)
        elif tag in ("input", "select") and self._form is not None and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self._form["fields"].setdefault(a["name"], a.get("value") or "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def _confirmed(client, url: str, response):
    """A confirmation page answers a download link with HTML: post its confirming form
    (the one posting back to the page itself) and return what that gives."""
    if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
        return response
    parser = _PostForms()
    parser.feed(response.content.decode())
    path = url.split("?")[0]
    mine = [f for f in parser.forms if urljoin(url, f["action"] or url).split("?")[0] == path]
    if len(mine) != 1:
        return response  # not a confirmation page: the HTML fails the check
    return client.post(urljoin(url, mine[0]["action"] or url), mine[0]["fields"])


class _Downloads(HTMLParser):
    """Collects download links and forms (with their fields) from a page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.forms: list[dict] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            href = a["href"]
            if "download" in a or re.search(r"[?&]format=|/export", href):
                self.links.append(href)
        elif tag == "form":
            action = a.get("action") or ""
            if "data-download" in a or "export" in action:
                self._form = {
                    "action": action,
                    "method": (a.get("method") or "get").lower(),
                    "fields": {},
                }
                self.forms.append(self._form)
        elif tag in ("input", "select") and self._form is not None and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self._form["fields"].setdefault(a["name"], a.get("value") or "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def _downloads(html: str) -> _Downloads:
    parser = _Downloads()
    parser.feed(html)
    return parser


def _body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def _assert_a_file(response, where: str) -> None:
    assert response.status_code == 200, (where, response.status_code, _body(response)[:300])
    assert not response["Content-Type"].startswith("text/html"), (where, "an HTML page")
    body = _body(response)
    assert body.strip(), (where, "an empty file")


@pytest.fixture
def pages(shop):  # noqa: F811
    kpi_snapshots_take(workspace_id=shop.workspace.pk, day=date(2026, 10, 31), backfill_days=31)
    segment = segment_services.segment_create(
        workspace=shop.workspace,
        name="Pros",
        rule={"trait": "plan", "op": "eq", "value": "pro"},
        actor=Actor.system("tests"),
        refresh="now",
    )
    customer = Profile.objects.filter(workspace=shop.workspace, merged_into__isnull=True).first()
    return [
        ("/analytics/", {}),
        ("/analytics/", {"segment": str(segment.pk)}),
        ("/analytics/period/", OCTOBER),
        ("/analytics/funnel/", {}),
        ("/analytics/cohorts/", {"last_month": "2026-10", "months": 3}),
        ("/analytics/cohorts/", {"segment": str(segment.pk)}),
        ("/analytics/lifecycle/", {}),
        ("/analytics/lifecycle/", {"segment": str(segment.pk), "cohort": "2026-10"}),
        ("/analytics/rfm/", {}),
        (f"/segments/{segment.pk}/", {}),
        (f"/customers/{customer.pk}/", {}),
    ]


def test_every_download_on_every_page_gives_a_file(shop, pages):  # noqa: F811
    client = signed_in(shop)
    seen = 0
    chart_csvs = set()
    for path, params in pages:
        page = client.get(path, params)
        assert page.status_code == 200, (path, page.status_code)
        found = _downloads(page.content.decode())
        for href in found.links:
            url = urljoin(path, href.replace("&amp;", "&"))
            _assert_a_file(_confirmed(client, url, client.get(url)), f"{path} → {url}")
            seen += 1
            if url.startswith("/api/v1/analytics/"):
                chart_csvs.add(url.split("?")[0])
        for form in found.forms:
            url = urljoin(path, form["action"] or path)
            send = client.post if form["method"] == "post" else client.get
            _assert_a_file(send(url, form["fields"]), f"{path} → {form['method']} {url}")
            seen += 1
    # The three chart CSVs that once answered 422 to an empty `segment=`.
    assert {
        "/api/v1/analytics/kpis/history",
        "/api/v1/analytics/cohorts",
        "/api/v1/analytics/lifecycle",
    } <= chart_csvs
    assert seen >= 12


@pytest.mark.parametrize("path", ["/analytics/", "/analytics/cohorts/", "/analytics/lifecycle/"])
def test_chart_csv_links_leave_unset_filters_out(shop, path):  # noqa: F811
    kpi_snapshots_take(workspace_id=shop.workspace.pk, day=date(2026, 10, 31), backfill_days=31)
    html = signed_in(shop).get(path).content.decode()
    links = [h for h in _downloads(html).links if h.startswith("/api/")]
    assert links and all("segment=&" not in h and not h.endswith("segment=") for h in links)
    assert all("cohort=&" not in h for h in links)
