"""Timeline entries in words: one rule per kind of event, registered in one place,
translated, money in the reader's language, values escaped."""

from types import SimpleNamespace

import pytest
from django.utils import translation

from rapport.profiles import timeline_sentences
from rapport.profiles.timeline_sentences import entry_sentence, event_sentence, sentence_register


def _event(type_="track", event="", properties=None, traits=None, group_id=""):
    return SimpleNamespace(
        type=type_, event=event, properties=properties or {}, traits=traits or {}, group_id=group_id
    )


@pytest.mark.parametrize(
    ("event", "sentence"),
    [
        (_event("page", "Ethiopia Guji"), 'Viewed <em translate="no">Ethiopia Guji</em>'),
        (_event("page", properties={"title": "Pricing"}), 'Viewed <em translate="no">Pricing</em>'),
        (
            _event("page", properties={"path": "/coffees"}),
            'Viewed <em translate="no">/coffees</em>',
        ),
        (_event("page"), "Viewed a page"),
        (_event("screen", "Basket"), 'Opened the <em translate="no">Basket</em> screen'),
        (
            _event(
                "track",
                "Order Completed",
                {"revenue": 42.5, "currency": "GBP", "products": [{"quantity": 2}, {}]},
            ),
            "Ordered 3 items for £42.50",
        ),
        (
            _event("track", "Order Completed", {"total": "9.9", "currency": "EUR"}),
            "Ordered for €9.90",
        ),
        (
            _event("track", "Order Completed", {"revenue": 1200, "products": [{"sku": "a"}]}),
            "Ordered 1 item for 1,200.00",
        ),
        (_event("track", "Order Completed"), "Placed an order"),
        (_event("track", "Signed Up"), "Signed up"),
        (
            _event("track", "Email Opened", {"subject": "This month's coffees"}),
            'Opened email <em translate="no">This month&#x27;s coffees</em>',
        ),
        (
            _event("identify", traits={"plan": "pro", "email": "a@b.c"}),
            'Traits updated: <span translate="no">email, plan</span>',
        ),
        (
            _event("group", traits={"name": "Acme"}, group_id="acme"),
            'Joined account <em translate="no">Acme</em>',
        ),
        (_event("group", group_id="acme"), 'Joined account <em translate="no">acme</em>'),
        (_event("alias"), "Linked an earlier identity"),
        (_event("track", "Brew Planner Used"), 'Did <em translate="no">Brew Planner Used</em>'),
        (
            _event("track", "<script>alert(1)</script>"),
            'Did <em translate="no">&lt;script&gt;alert(1)&lt;/script&gt;</em>',
        ),
    ],
)
def test_event_sentences(event, sentence):
    with translation.override("en"):
        assert event_sentence(event) == sentence


def test_sentences_follow_the_language():
    order = _event(
        "track", "Order Completed", {"revenue": 1042.5, "currency": "GBP", "products": [{}, {}]}
    )
    with translation.override("ru"):
        text = str(event_sentence(order))
    # Russian wording, Russian number format (narrow no-break space, comma) and a plural.
    assert text.startswith("Заказ") and "1\u00a0042,50\u00a0£" in text, text
    with translation.override("ru"):
        assert str(event_sentence(_event("track", "Signed Up"))) == "Зарегистрировался"


def test_other_apps_add_their_own_event_types(monkeypatch):
    monkeypatch.setattr(timeline_sentences, "_BY_EVENT", dict(timeline_sentences._BY_EVENT))
    sentence_register(
        event="Points Earned",
        sentence=lambda e: timeline_sentences.format_html(
            "Earned {n} points", n=e.properties["points"]
        ),
    )
    assert event_sentence(_event("track", "Points Earned", {"points": 40})) == "Earned 40 points"
    with pytest.raises(ValueError):
        sentence_register(event="x", type="track", sentence=lambda e: "")


def test_an_entry_that_is_not_an_event_reads_by_what_it_holds():
    edit = SimpleNamespace(
        changes={"name": {"from": "Kai", "to": "Kai Ito"}, "plan": {"from": "x", "removed": True}},
        actor_label="alice@shop.example.com",
    )
    entry = SimpleNamespace(kind="trait_change", title="", data={"trait_edit": edit})
    with translation.override("en"):
        assert (
            entry_sentence(entry)
            == "Name changed by alice@shop.example.com; Plan removed by alice@shop.example.com"
        )
    consent = SimpleNamespace(channel="email", purpose="marketing", status="granted")
    entry = SimpleNamespace(kind="consent", title="", data={"consent": consent})
    with translation.override("en"):
        assert entry_sentence(entry) == "Consent for email (marketing): granted"
    unknown = SimpleNamespace(kind="event", title="<b>Something</b>", data={})
    assert entry_sentence(unknown) == "&lt;b&gt;Something&lt;/b&gt;"
