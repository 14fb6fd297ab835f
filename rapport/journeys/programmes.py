"""The programmes Rapport ships as templates (the practice's programme per stage of the
relationship): the Onboarding month, the Win-back and After a support ticket, each a
journey graph in the contract of JOURNEY_SCHEMA.md with its messages written out.

`programme_templates` gives them for a workspace, in the language of the person asking:
the workspace's own purchase and key-feature events (Settings → Commerce) are in the
triggers, waits and goals, its name is in the messages, and each send carries its
content inline, so that every template validates as it is. `programme_install` makes
one of them the workspace's own: each message becomes a channel template (editable on
the templates page, shared by every version of the journey) and the journey a draft
that someone reviews and starts.

Messages use the channels' template language (rapport/channels/render.py): the
customer's first name with a fallback, `{{ customer.first_name|default:"there" }}`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.html import escape
from django.utils.translation import gettext, pgettext

from rapport.core.errors import InvalidInputError
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor

DAY = 86400
SIGN_UP = "Signed Up"
SIGN_IN = "Signed In"
TICKET_RESOLVED = "Ticket Resolved"
SURVEY_ANSWERED = "Survey Answered"
# The win-back's trigger: the churn model's probability crossing into "high"
# (rapport/predictions/churn.py bands it so from 0.7).
HIGH_CHURN_RISK = 0.7
# RFM cells worth a person's call rather than an email.
CALL_CELLS = ["Can't lose them", "Champions", "Loyal"]


@dataclass(frozen=True)
class _Words:
    """What a message may say about the workspace, ready to go into a template: its
    name (text for a subject, escaped for HTML, never read as a template tag) and the
    customer's name with a fallback in the person's language."""

    company: str
    company_html: str
    name: str

    @classmethod
    def of(cls, workspace: Workspace) -> _Words:
        company = _literal(workspace.name)
        fallback = pgettext("greeting, when the first name is unknown", "there")
        fallback = fallback.replace('"', "").replace("\\", "")
        return cls(
            company=company,
            company_html=_literal(escape(workspace.name)),
            name='{{ customer.first_name|default:"' + fallback + '" }}',
        )


def _literal(text: str) -> str:
    """`text` as it is in a message template: its braces (which could open a tag or a
    variable) written as the template language's own escapes."""
    out = []
    for ch in text:
        if ch == "{":
            out.append("{% templatetag openbrace %}")
        elif ch == "}":
            out.append("{% templatetag closebrace %}")
        else:
            out.append(ch)
    return "".join(out)


def _letter(words: _Words, *paragraphs: str, signature: str = "") -> str:
    """A short letter: a greeting, the paragraphs (HTML already), a signature."""
    greeting = gettext("Hello %(name)s,") % {"name": words.name}
    signature = signature or gettext("The %(company)s team") % {"company": words.company_html}
    body = "".join(f"<p>{p}</p>\n" for p in (greeting, *paragraphs, signature))
    return body


def _send(content: dict, *, purpose: str, next: str | None) -> dict:
    return {
        "type": "send",
        "channel": "email",
        "purpose": purpose,
        "content": {"subject": content["subject"], "html": content["html"]},
        "next": next,
    }


def _layout(rows: list[list[str]]) -> dict:
    """The editor's positions: one row per line, side by side within a row."""
    return {
        key: {"x": 60 + 300 * column, "y": 60 + 140 * row}
        for row, keys in enumerate(rows)
        for column, key in enumerate(keys)
    }


# --- the programmes ---------------------------------------------------------------------


def _onboarding_month(workspace: Workspace, words: _Words, config: Any, actor_name: str) -> dict:
    key_event = config.key_event
    c = {"company": words.company, "company_html": words.company_html}
    welcome = {
        "subject": gettext("Welcome to %(company)s") % c,
        "html": _letter(
            words,
            gettext("Thank you for signing up with %(company)s. We are glad you are here.")
            % {"company": words.company_html},
            gettext(
                "The quickest way to feel at home is to try the one thing our customers "
                "love most. It takes two minutes, and we will be here if you get stuck."
            ),
            gettext("Any question at all? Reply to this email: a person reads every answer."),
        ),
    }
    tutorial = {
        "subject": gettext("Getting started with %(company)s in three steps") % c,
        "html": _letter(
            words,
            gettext("Most people who get the most out of %(company)s start the same way:")
            % {"company": words.company_html}
            + "</p>\n<ol>"
            + "".join(
                f"<li>{step}</li>"
                for step in (
                    gettext("Sign in and look around for a minute."),
                    gettext("Try the feature our happiest customers use first."),
                    gettext("Tell us what you want to do, and we will show you how."),
                )
            )
            + "</ol>\n<p>"
            + gettext("Reply to this email and we will help you with the first step."),
        ),
    }
    check_in = {
        "subject": gettext("How is your first week going?"),
        "html": _letter(
            words,
            gettext("You have been with us for a week. Is everything working as you hoped?"),
            gettext(
                "If something is in your way, reply and tell us: we read every answer, and "
                "we will help."
            ),
        ),
    }
    review = {
        "subject": gettext("Your first month with %(company)s") % c,
        "html": _letter(
            words,
            gettext("A month ago you joined %(company)s. Thank you for being with us.")
            % {"company": words.company_html},
            gettext(
                "What went well, and what could be better? Reply in one line: it helps us "
                "more than you would think."
            ),
        ),
    }
    steps = {
        "welcome": _send(welcome, purpose="marketing", next="wait_key_feature"),
        "wait_key_feature": {
            "type": "wait_event",
            "event": key_event,
            "where": [],
            "timeout_seconds": 3 * DAY,
            "next": "to_day_7",
            "timeout_next": "tutorial",
        },
        "tutorial": _send(tutorial, purpose="marketing", next="to_day_7"),
        "to_day_7": {"type": "wait", "seconds": 4 * DAY, "next": "day_7_morning"},
        "day_7_morning": {"type": "wait_until", "time": "09:00", "next": "check_in"},
        "check_in": _send(check_in, purpose="marketing", next="to_day_30"),
        "to_day_30": {"type": "wait", "seconds": 23 * DAY, "next": "day_30_morning"},
        "day_30_morning": {"type": "wait_until", "time": "09:00", "next": "review"},
        "review": _send(review, purpose="marketing", next=None),
    }
    return {
        "key": "onboarding_month",
        "name": gettext("Onboarding month"),
        "description": gettext(
            "The month after sign-up, when a new customer learns to use what they bought "
            "or leaves: a welcome; a tutorial if the key feature (%(event)s) is not used "
            "within 3 days; a check-in on day 7 and a review on day 30. Goal: the key "
            "feature used within 30 days, measured against a 10%% holdout."
        )
        % {"event": key_event},
        "graph": {
            "name": gettext("Onboarding month"),
            "description": gettext(
                "Welcome, a tutorial if the key feature is not used in 3 days, a check-in "
                "on day 7, a review on day 30."
            ),
            "trigger": {"type": "event", "event": SIGN_UP, "where": []},
            "goal": {"event": key_event, "where": [], "within_days": 30},
            "holdout_percent": 10,
            "reentry": {"mode": "never"},
            "start": "welcome",
            "steps": steps,
            "layout": _layout(
                [
                    ["welcome"],
                    ["wait_key_feature"],
                    ["to_day_7", "tutorial"],
                    ["day_7_morning"],
                    ["check_in"],
                    ["to_day_30"],
                    ["day_30_morning"],
                    ["review"],
                ]
            ),
        },
    }


def _win_back(workspace: Workspace, words: _Words, config: Any, actor_name: str) -> dict:
    purchase = config.purchase_event
    personal = {
        "subject": gettext("A personal note from %(company)s") % {"company": words.company},
        "html": _letter(
            words,
            gettext(
                "We have not seen you for a while, and I wanted to ask you myself: is there "
                "anything we could do better?"
            ),
            gettext("Just reply to this email. I read the answers, and I will write back."),
            signature=gettext("%(sender)s, %(company)s")
            % {"sender": _literal(escape(actor_name)), "company": words.company_html}
            if actor_name
            else "",
        ),
    }
    offer = {
        "subject": gettext("Something to welcome you back"),
        "html": _letter(
            words,
            gettext(
                "We would love to see you again. Your next order is 15% off with the code "
                "WELCOMEBACK, any time in the next 14 days."
            ),
            gettext("If something was not right last time, reply and tell us."),
        ),
    }
    steps = {
        "valued": {
            "type": "branch",
            "rule": {"rfm": "cell", "op": "in", "value": CALL_CELLS},
            "yes": "call",
            "no": "personal_note",
        },
        "call": {
            "type": "create_task",
            "title": gettext("Call %(name)s: a valued customer whose churn risk is now high")
            % {"name": "{{ customer.first_name }} {{ customer.last_name }}"},
            "due_in_days": 2,
            "next": "no_answer_7_days",
        },
        "personal_note": _send(personal, purpose="marketing", next="no_answer_7_days"),
        "no_answer_7_days": {"type": "wait", "seconds": 7 * DAY, "next": "offer_morning"},
        "offer_morning": {"type": "wait_until", "time": "10:00", "next": "offer"},
        "offer": _send(offer, purpose="marketing", next="offer_time"),
        # Time for the offer to work, and for the goal to be watched over the same
        # 30 days as the holdout's.
        "offer_time": {"type": "wait", "seconds": 22 * DAY, "next": None},
    }
    # Either comes after the enrolment: the rule is read as the customer's events
    # arrive, over the last day.
    came_back = {
        "any": [
            {"event": purchase, "window": {"last_days": 1}},
            {"event": SIGN_IN, "window": {"last_days": 1}},
        ]
    }
    return {
        "key": "win_back",
        "name": gettext("Win-back"),
        "description": gettext(
            "When the churn risk becomes high: a call task for a valued customer (a top or "
            "a can't-lose RFM cell), a personal note from you for the others; whoever has "
            "neither ordered nor signed in 7 days later gets an offer (edit its code). "
            "Goal: an order or a sign-in within 30 days, measured against a 10% holdout."
        ),
        "graph": {
            "name": gettext("Win-back"),
            "description": gettext(
                "Churn risk high: a call or a personal note; no answer in 7 days, an offer."
            ),
            "trigger": {
                "type": "prediction",
                "model": "churn",
                "field": "risk",
                "op": "gte",
                "value": HIGH_CHURN_RISK,
            },
            "goal": {"rule": came_back, "where": [], "within_days": 30},
            "holdout_percent": 10,
            "reentry": {"mode": "after_days", "days": 90},
            "start": "valued",
            "steps": steps,
            "layout": _layout(
                [
                    ["valued"],
                    ["call", "personal_note"],
                    ["no_answer_7_days"],
                    ["offer_morning"],
                    ["offer"],
                    ["offer_time"],
                ]
            ),
        },
    }


def _after_ticket(workspace: Workspace, words: _Words, config: Any, actor_name: str) -> dict:
    survey = {
        "subject": gettext("How did we do?"),
        "html": _letter(
            words,
            gettext("Yesterday we resolved your request. How satisfied are you with our help?"),
            gettext(
                "Reply with one number, from 1 (not at all) to 5 (very satisfied). One "
                "number is enough; a sentence is welcome."
            ),
        ),
    }
    csat = {"property": "survey", "op": "eq", "value": "csat"}
    steps = {
        "next_day": {"type": "wait", "seconds": DAY, "next": "morning"},
        "morning": {"type": "wait_until", "time": "10:00", "next": "survey"},
        "survey": _send(survey, purpose="transactional", next="answer"),
        "answer": {
            "type": "wait_event",
            "event": SURVEY_ANSWERED,
            "where": [csat],
            "timeout_seconds": 7 * DAY,
            "next": "low_score",
            "timeout_next": None,
        },
        "low_score": {
            "type": "branch",
            "rule": {
                "event": SURVEY_ANSWERED,
                "window": {"last_days": 8},
                "where": [csat, {"property": "score", "op": "lte", "value": 2}],
            },
            "yes": "call",
            "no": None,
        },
        "call": {
            "type": "create_task",
            "title": gettext("Call %(name)s: unhappy with the help on their last ticket")
            % {"name": "{{ customer.first_name }} {{ customer.last_name }}"},
            "due_in_days": 1,
            "next": None,
        },
    }
    return {
        "key": "after_ticket",
        "name": gettext("After a support ticket"),
        "description": gettext(
            "The day after a ticket is resolved: a one-question satisfaction survey "
            "(CSAT). The answer comes back as a %(event)s event (survey csat, score 1 to "
            "5) from your survey tool; a score of 1 or 2 creates a task to call the "
            "customer."
        )
        % {"event": SURVEY_ANSWERED},
        "graph": {
            "name": gettext("After a support ticket"),
            "description": gettext(
                "Ticket resolved: a CSAT survey the next day; a low score, a call task."
            ),
            "trigger": {"type": "event", "event": TICKET_RESOLVED, "where": []},
            "goal": None,
            "holdout_percent": 0,
            "reentry": {"mode": "after_days", "days": 30},
            "start": "next_day",
            "steps": steps,
            "layout": _layout(
                [["next_day"], ["morning"], ["survey"], ["answer"], ["low_score"], ["call"]]
            ),
        },
    }


PROGRAMMES: dict[str, Callable[..., dict]] = {
    "onboarding_month": _onboarding_month,
    "win_back": _win_back,
    "after_ticket": _after_ticket,
}


def _actor_name(actor: Actor | None) -> str:
    if actor is None or actor.user is None:
        return ""
    return (actor.user.name or actor.user.email or "").strip()


def programme_templates(*, workspace: Workspace, actor: Actor | None = None) -> list[dict]:
    """The shipped programmes, each {key, name, description, graph}, in the active
    language. The graph is the journey as POST /api/v1/journeys takes it, its messages
    inline (`content`); a personal message is signed by `actor` when a person."""
    from rapport.tenancy.commerce import commerce_settings_get

    config = commerce_settings_get(workspace=workspace)
    words = _Words.of(workspace)
    name = _actor_name(actor)
    return [make(workspace, words, config, name) for make in PROGRAMMES.values()]


def programme_install(*, workspace: Workspace, key: str, actor: Actor):
    """The programme `key` as the workspace's own draft journey: each message a
    channel template named after the programme and the step, the journey sending it by
    `template_id`. Returns the journey (a draft: review, then start it)."""
    from rapport.channels.services import template_create
    from rapport.journeys.services import journey_create

    if key not in PROGRAMMES:
        raise InvalidInputError(
            gettext("no programme %(key)r: use one of %(choices)s")
            % {"key": key, "choices": ", ".join(PROGRAMMES)},
            field="key",
        )
    programme = next(
        p for p in programme_templates(workspace=workspace, actor=actor) if p["key"] == key
    )
    graph = copy.deepcopy(programme["graph"])
    with transaction.atomic():
        for step_key, step in graph["steps"].items():
            if step["type"] != "send" or "content" not in step:
                continue
            content = step.pop("content")
            template = template_create(
                workspace=workspace,
                name=_free_template_name(workspace, f"{graph['name']}: {step_key}"),
                channel=step["channel"],
                subject=content.get("subject", ""),
                html=content.get("html", ""),
                text=content.get("text", ""),
                actor=actor,
            )
            step["template_id"] = str(template.pk)
        return journey_create(workspace=workspace, graph=graph, actor=actor)


def _free_template_name(workspace: Workspace, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`... when the programme was installed before."""
    from rapport.channels.models import Template

    taken = set(
        Template.objects.filter(workspace=workspace, name__startswith=name).values_list(
            "name", flat=True
        )
    )
    if name not in taken:
        return name
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"
