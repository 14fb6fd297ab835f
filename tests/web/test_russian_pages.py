"""Russian complete: every page of the demo workspace, rendered for a person who chose
Russian, shows no English word outside what people typed or sent (marked
`translate="no"` in the templates), and the JavaScript shows no word of its own.

The pages are found by crawling, not listed: from home, every link of the same site
is followed once per kind of page (ids and query values stripped), so a page added
to the navigation or to a list later is covered the day it lands. Forms are posted
once with empty fields, so their errors are read too."""

import json
import os
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import polib
import pytest
from django.test import Client

import rapport
from rapport.demo.services import demo_load
from rapport.tenancy.permissions import Role
from tests.conftest import tenant_create
from tests.web.clients import signed_in
from tests.web.messages_demo import messages_demo

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = Path(rapport.__file__).parent
STATIC = PACKAGE / "web" / "static" / "web"

# Words that stay as they are in a Russian page: names of products, standards and
# formats. Everything else Latin on a page is either marked translate="no" (people's
# data: names, emails, event names, trait keys, JSON) or a missing translation.
ALLOWED = {
    "rapport", "segment", "rudderstack", "api", "csv", "jsonl", "json", "rfm", "clv",
    "nps", "csat", "kpi", "kpis", "sdk", "echarts", "url", "id", "ids", "png", "http", "https",
    "utc", "bg", "nbd", "roc", "auc", "pii", "sql", "smtp", "uuid", "gamma", "webhook",
    "messageid", "userid", "anonymousid", "writekey", "identify", "track", "page", "screen",
    "group", "alias", "batch", "cdp", "crm", "ok", "js", "ios", "android",
    # The language menu names each language in itself; region codes as typed.
    "english", "gb", "us", "ru",
    # Acronyms and names of standards, brands and protocols.
    "sms", "push", "utm", "gamma-gamma", "google", "meta", "basic", "post", "get", "fm",
    # Formats of a message body.
    "html", "mjml",
}  # fmt: skip

# Not followed: leaving, downloads, the API and its documents, actions only a POST
# takes, and pages answered by a file.
SKIP = re.compile(r"^/(logout|api|static|admin|v1)/|/export/|\.csv|\.png|[?&]format=|/download")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EMAIL = re.compile(r"\S+@\S+")
# A literal in quotes: what a person typed or must type ("“Order Completed”", «admin»).
QUOTED = re.compile(r"“[^”]*”|«[^»]*»")
WEB_ADDRESS = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w.-]+\.(?:example|com|org|io)\S*")
WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*[A-Za-z]|[A-Za-z]")
TECHNICAL = re.compile(r"^[A-Za-z0-9]+(?:[_.][A-Za-z0-9]+)+$")  # keys: rule_json, context.ids
END = datetime(2026, 11, 1, tzinfo=UTC)


# Literals: identifiers, JSON, commands, origins; read as they are in any language.
LITERAL = ("code", "pre", "kbd", "samp")


class VisibleText(HTMLParser):
    """The words a person reads on a page: text outside scripts, styles, literals
    (code, pre) and translate="no" elements, and the attributes shown (titles, placeholders, labels,
    button values, alternative texts)."""

    SHOWN = ("title", "placeholder", "aria-label", "alt")
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}  # fmt: skip

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.links: list[str] = []
        self.forms: list[dict] = []
        self.stack: list[tuple[str, bool]] = []
        self.json_open = False
        self.title = ""
        self.json: list[str] = []  # the JSON scripts (the charts' options)
        self.data: list[str] = []  # what translate="no" holds

    def hidden(self) -> bool:
        return any(skip for _, skip in self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        skip = tag in ("script", "style", "template") or a.get("translate") == "no"
        skip = skip or tag in LITERAL
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        self.json_open = tag == "script" and a.get("type") == "application/json"
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "method": a.get("method", "get")})
        if not (skip or self.hidden()):
            for name in self.SHOWN:
                if a.get(name):
                    self.texts.append(a[name])
            if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
                self.texts.append(a["value"])
        if tag not in self.VOID:
            self.stack.append((tag, skip))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        tags = [tag for tag, _ in self.stack]
        if "title" in tags:
            self.title += data  # read against the page's data: it repeats a name
        elif self.stack and self.stack[-1][0] == "script" and self.json_open:
            self.json.append(data)
        elif any(tag in ("script", "style", "template") for tag in tags):
            pass
        elif self.hidden():
            self.data.append(data)
        elif data.strip():
            self.texts.append(data)


CYRILLIC = re.compile("[\\u0400-\\u04ff]")


def english_words(
    texts: list[str], names: frozenset = frozenset(), values: frozenset = frozenset()
) -> set[str]:
    """The English words of `texts`. A text that is one of `values` (a name or a value
    the workspace holds, alone in its element) is data; so are, in a Russian sentence,
    the words of `names` (event, trait and segment names a rule or a timeline entry
    quotes)."""
    found = set()
    for text in texts:
        if text.strip() in values:
            continue
        allowed = names if CYRILLIC.search(text) else frozenset()
        text = WEB_ADDRESS.sub(" ", EMAIL.sub(" ", UUID.sub(" ", QUOTED.sub(" ", text))))
        for token in text.split():
            if TECHNICAL.match(token.strip(".,:;()[]{}\"'«»")) or any(c.isdigit() for c in token):
                continue  # a key, a hex id, a version: data, not words
            if token.endswith("…"):
                continue  # the cut end of a long text
            for word in WORD.findall(token):
                if len(word) > 1 and word.lower() not in ALLOWED | allowed:
                    found.add(word)
    return found


SHOWN_KEYS = {"text", "label", "after", "op_label", "value_label", "days_label"}


def json_texts(scripts: list[str]) -> list[str]:
    """What the page's JSON scripts put before people: a chart's title, series and axis
    names and legend; the rule builder's condition names, field labels, choices and
    buttons. (Categories, suggestions and values are dates, scores or data.)"""
    texts: list[str] = []

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "texts" and isinstance(v, dict):
                    texts.extend(str(t) for t in v.values())
                elif k == "choices" and isinstance(v, list):
                    texts.extend(str(c[1]) for c in v if isinstance(c, list) and len(c) > 1)
                elif (k in SHOWN_KEYS and isinstance(v, str)) or (
                    k == "name" and isinstance(v, str) and key in ("series", "xAxis", "yAxis")
                ):
                    texts.append(v)
                elif k == "legend" and isinstance(v, dict):
                    texts.extend(str(d) for d in v.get("data", []))
                else:
                    walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)

    for script in scripts:
        walk(json.loads(script))
    return texts


def kind_of(url: str) -> str:
    """One page per kind: ids become <id>, query values are dropped."""
    parts = urlsplit(url)
    path = UUID.sub("<id>", parts.path)
    keys = sorted({k for k, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return path + ("?" + "&".join(keys) if keys else "")


@pytest.fixture
def demo():
    tenant = tenant_create("Northwind", sample_data=False)
    demo_load(workspace=tenant.workspace, customers=120, months=8, seed=3, end=END, snapshot_days=3)
    messages_demo(tenant.workspace)
    return tenant


def demo_names(workspace) -> frozenset:
    """Lower-case words of what the demo's data names: events, their properties,
    traits and their short values, segments, accounts."""
    from rapport.ingest.models import Event
    from rapport.profiles.models import Account, Profile
    from rapport.segments.models import Segment

    texts = set(Event.objects.filter(workspace=workspace).values_list("event", flat=True))
    texts |= set(Segment.objects.filter(workspace=workspace).values_list("name", flat=True))
    # An account's name inside a sentence ("Select Globex Corporation UK").
    texts |= set(Account.objects.filter(workspace=workspace).values_list("name", flat=True))
    for properties in Event.objects.filter(workspace=workspace).values_list(
        "properties", flat=True
    )[:5000]:
        texts |= set(properties or {})
    for traits in Profile.objects.filter(workspace=workspace).values_list("traits", flat=True):
        for key, value in (traits or {}).items():
            texts.add(key)
            if isinstance(value, str) and len(value) < 40:
                texts.add(value)
    return frozenset(w.lower() for text in texts if text for w in WORD.findall(str(text)))


def demo_values(workspace) -> frozenset:
    """Whole values a page may show alone: the workspace's, its sources' and segments'
    names, the customers' and accounts' trait values (as text and as JSON)."""

    from rapport.profiles.models import Account, Profile
    from rapport.segments.models import Segment
    from rapport.tenancy.models import Source

    values = {
        workspace.name,
        *Source.objects.filter(workspace=workspace).values_list("name", flat=True),
        *Segment.objects.filter(workspace=workspace).values_list("name", flat=True),
    }
    every = [
        *Profile.objects.filter(workspace=workspace).values_list("traits", flat=True),
        *Account.objects.filter(workspace=workspace).values_list("traits", flat=True),
    ]
    for traits in every:
        for value in (traits or {}).values():
            values |= {str(value), json.dumps(value, ensure_ascii=False)}
            if isinstance(value, bool):
                values.add(json.dumps(value))
    return frozenset(values)


def crawl(client, start: list[str], limit: int = 400) -> dict[str, tuple[int, str]]:
    seen_kinds: set[str] = set()
    pages: dict[str, tuple[int, str]] = {}
    queue = list(start)
    while queue and len(pages) < limit:
        url = queue.pop(0)
        kind = kind_of(url)
        if kind in seen_kinds or SKIP.search(url):
            continue
        seen_kinds.add(kind)
        response = client.get(url)
        if response.status_code in (301, 302):
            queue.append(response["Location"])
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        pages[url] = (response.status_code, html)
        parser = VisibleText()
        parser.feed(html)
        for href in parser.links:
            href = href.split("#")[0]
            if href.startswith("/") and not href.startswith("//"):
                queue.append(href)
            elif href.startswith("?"):
                queue.append(urlsplit(url).path + href)
    return pages


def test_every_page_of_the_demo_reads_in_russian(demo):
    client = signed_in(demo, Role.ADMIN)
    client.post("/preferences/language/", {"language": "ru", "next": "/"})
    pages = crawl(client, ["/"])
    # Forms posted empty: their errors speak Russian too.
    for url, (_, html) in list(pages.items()):
        parser = VisibleText()
        parser.feed(html)
        for form in parser.forms:
            action = form["action"] or urlsplit(url).path
            if form["method"].lower() != "post" or SKIP.search(action):
                continue
            if re.search(r"/(erase|delete|revoke|remove|logout|language|switch)/", action):
                continue
            key = "POST " + kind_of(action)
            if key in pages:
                continue
            response = client.post(action, {})
            if "text/html" in response.get("Content-Type", ""):
                pages[key] = (response.status_code, response.content.decode())
    # Pages before signing in speak the browser's language.
    for url in ("/login/",):
        response = Client(HTTP_ACCEPT_LANGUAGE="ru").get(url)
        pages["anonymous " + url] = (response.status_code, response.content.decode())
    kinds = {kind_of(url.removeprefix("POST ").removeprefix("anonymous ")) for url in pages}
    # The crawl reached a detail page of each kind the demo has.
    for expected in (
        "/customers/<id>/",
        "/accounts/<id>/",
        "/segments/<id>/",
        "/segments/new/",
        "/data/sources/<id>/",
        "/lifecycle/",
        "/rfm/",
        "/models/",
        "/analytics/",
        "/duplicates/",
        "/settings/members/",
        "/messages/failed/",
        "/messages/suppressions/",
        "/messages/outbox/",
        "/settings/channels/",
        "/messages/broadcasts/",
        "/messages/broadcasts/<id>/",
        "/messages/broadcasts/new/",
        "/messages/templates/",
        "/messages/templates/<id>/",
    ):
        assert expected in kinds, expected
    assert all(status < 500 for status, _ in pages.values())
    names, values = demo_names(demo.workspace), demo_values(demo.workspace)
    failures = {}
    dump = os.environ.get("RAPPORT_PAGES_DUMP")  # a folder to read the pages in
    for url, (_, html) in pages.items():
        if dump:
            Path(dump, re.sub(r"[^\w-]+", "_", url)[:120] + ".html").write_text(html)
        assert '<html lang="ru"' in html or not html.lstrip().startswith("<!"), url
        parser = VisibleText()
        parser.feed(html)
        words = english_words([*parser.texts, *json_texts(parser.json)], names, values)
        # The title repeats a name the page shows (a customer's, a segment's).
        words |= english_words([parser.title]) - english_words([*parser.data, *values])
        if words:
            failures[url] = sorted(words)
    assert not failures, "\n".join(f"{u}: {' '.join(w)}" for u, w in failures.items())


# A string literal in the JavaScript that a person would read: starts with a capital
# or holds two words. Keys, CSS classes, tags and event names are lower-case single
# words and pass.
SHOWN_LITERAL = re.compile(r"""(["'])((?:[A-Z][a-z]+|[A-Za-z]+\s+[A-Za-z]+)[^"']*)\1""")
JS_ALLOWED = {
    "use strict",
    "Number",
    "Math",
    "String",
    "Array",
    "Object",
    "JSON",
    "SELECT",
    "CustomEvent",
    # Key names (KeyboardEvent.key) and a CSS selector.
    "ArrowDown",
    "ArrowUp",
    "Escape",
    "main table",
}


@pytest.mark.parametrize("script", sorted(STATIC.glob("*.js")), ids=lambda p: p.name)
def test_the_javascript_shows_no_words_of_its_own(script):
    code = re.sub(r"^\s*//.*$", "", script.read_text(), flags=re.M)
    shown = [m.group(2) for m in SHOWN_LITERAL.finditer(code) if m.group(2) not in JS_ALLOWED]
    assert shown == [], f"{script.name}: put these in the page (translated), not in the script"
    # Numbers and dates in the person's language, not the browser's.
    assert "toLocaleString(undefined" not in code and "toFixed(" not in code


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "locale" / "ru" / "LC_MESSAGES").glob("*.po")), ids=lambda p: p.name
)
def test_the_catalogues_have_no_fuzzy_or_empty_entries(path):
    po = polib.pofile(str(path))
    assert [e.msgid for e in po if e.fuzzy] == []
    empty = [
        e.msgid
        for e in po
        if not e.obsolete and not (all(e.msgstr_plural.values()) if e.msgid_plural else e.msgstr)
    ]
    assert empty == []


def test_the_word_finder():
    texts = ["Клиенты 3 ada@example.com", "rule_json", "Ещё Customers", "API и CSV"]
    assert english_words(texts) == {"Customers"}
    parser = VisibleText()
    parser.feed(
        '<p>Имя <span translate="no">Kai Ito</span><br> <input placeholder="Search">'
        "<script>var x = 'Hello';</script><style>p{}</style></p>"
    )
    assert english_words(parser.texts) == {"Search"}
    assert kind_of("/customers/0b7e1c9a-4a8e-4f5e-9d1a-2c3b4d5e6f70/?tab=x&b=1") == (
        "/customers/<id>/?b&tab"
    )


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ('{"trait": "plan", "op": "about", "value": 1}', "допустимо:"),
        ('{"event": "Order Completed", "colour": "red"}', "лишний ключ"),
        ('{"all": {}}', "нужен список"),
        ("{not json", "не корректный JSON"),
    ],
)
def test_a_mistake_in_a_rule_reads_in_russian(tenant, rule, words):
    client = signed_in(tenant, Role.ADMIN)
    client.post("/preferences/language/", {"language": "ru", "next": "/"})
    response = client.post("/segments/new/", {"name": "Пробный", "rule": rule})
    html = response.content.decode()
    assert response.status_code == 422 and words in html
    parser = VisibleText()
    parser.feed(html)
    errors = [t for t in parser.texts if words in t]
    assert errors and english_words(errors) <= {"Order", "Completed"}, errors
