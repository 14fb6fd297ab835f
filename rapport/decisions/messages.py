"""Decisions in messages: the content of a journey's send step or of a broadcast chosen
per customer by the engine, and what the customer does with it learned from.

- **What a decided message says**: the action's content for the message's channel
  (`Action.content[channel]`): either written as a message (`subject`, `html`,
  `text`, `url`), or as an offer (`title`, `body`, `image_url`, `link_url`), made into
  a short message; else the action's template, when it is for that channel.
- **Answers**: a message carrying a decision (`Message.decision_id`,
  `decision_action`) records an open (an in-app message shown, an SMS delivered) as the
  action's `impression`, and a click as `impression` and `clicked` (idempotent: the
  same open twice records once), through the channels' `hooks.answer_listeners`.
- **Broadcasts**: the recipients of a broadcast with `decide` are decided in the send
  batch, just before their messages go (`broadcast_decide`, the channels'
  `hooks.content_deciders["broadcast"]`).

The block of an email decided when it is opened is in blocks.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.html import escape

# What a customer's answer to a message says about the action it carried.
ANSWERS = {
    "opened": ("impression",),
    "clicked": ("impression", "clicked"),
    # An SMS or a push is read when it arrives: its delivery is its impression.
    "delivered": ("impression",),
}
SEEN_ON_DELIVERY = frozenset({"sms", "push"})
NO_ACTION = "no_action"


def action_content(action: Any, channel: str) -> tuple[Any, dict | None]:
    """(template, None) or (None, content {subject, html, text, url}) of what the action
    says on `channel`; (None, None) when it says nothing there."""
    own = (action.content or {}).get(channel)
    if isinstance(own, dict) and own:
        if any(own.get(k) for k in ("subject", "html", "text")):
            parts = {k: str(own.get(k) or "") for k in ("subject", "html", "text", "url")}
            if not parts["url"] and own.get("link_url"):
                parts["url"] = str(own["link_url"])
            return None, parts
        title = str(own.get("title") or action.name)
        body = str(own.get("body") or "")
        image = str(own.get("image_url") or "")
        link = str(own.get("link_url") or "")
        if channel == "email":
            html = f"<h1>{escape(title)}</h1>"
            if image.startswith(("https://", "http://")):
                html += f'<p><img src="{escape(image)}" alt="{escape(title)}"></p>'
            if body:
                html += f"<p>{escape(body)}</p>"
            if link.startswith(("https://", "http://")):
                html += f'<p><a href="{escape(link)}">{escape(title)}</a></p>'
            return None, {"subject": title, "html": html, "text": "", "url": ""}
        if channel == "sms":
            text = " ".join(part for part in (f"{title}: {body}" if body else title, link) if part)
            return None, {"subject": "", "html": "", "text": text, "url": ""}
        # Push and in-app: the title is the notification's, the body its text.
        return None, {"subject": title, "html": "", "text": body or title, "url": link}
    template = action.template if action.template_id else None
    if template is not None and template.channel == channel:
        return template, None
    return None, None


def message_answered(*, message: Any, answer: str, at: datetime | None = None) -> None:
    """The outcomes of the decided action a message carries (a listener of the
    channels' `hooks.answer_listeners`)."""
    if not message.decision_id or not message.decision_action:
        return
    if answer == "delivered" and message.channel not in SEEN_ON_DELIVERY:
        return
    from rapport.decisions.outcomes import outcomes_record_quietly

    outcomes_record_quietly(
        workspace_id=message.workspace_id,
        decision_id=message.decision_id,
        action_key=message.decision_action,
        outcomes=ANSWERS.get(answer, ()),
        at=at,
        about=f"message {message.pk}",
    )


def decide_content(
    *, workspace: Any, profile: Any, channel: str, placement: str, origin: str, context: dict, now
) -> tuple[Any, Any, Any, dict | None]:
    """(result, candidate, template, content): the engine's decision for this customer
    and what the action it gave says on `channel`. `candidate` is None when it gave
    nothing (a control customer given nothing, nothing eligible), or when no action it
    gave says anything on the channel."""
    from rapport.decisions.engine import decision_make

    result = decision_make(
        workspace=workspace,
        profile=profile,
        channel=channel,
        placement=placement,
        limit=1,
        context=context,
        origin=origin,
        now=now,
    )
    for candidate in result.actions:
        template, content = action_content(candidate.action, channel)
        if template is not None or content is not None:
            return result, candidate, template, content
    return result, None, None, None


def broadcast_decide(*, sends: list, now: datetime) -> dict:
    """Each recipient's action for a broadcast with `decide` (the channels'
    `hooks.content_deciders["broadcast"]`): the messages are given its content (or its
    template) and the decision, saved in one update; {message id: "no_action"} for those
    given nothing whose broadcast has no content of its own (they get that content
    otherwise)."""
    from rapport.channels.models import Message
    from rapport.tenancy.models import Workspace

    skipped: dict = {}
    changed: list = []
    with transaction.atomic():
        for message, profile in sends:
            broadcast = message.broadcast
            result, candidate, template, content = decide_content(
                workspace=Workspace(pk=message.workspace_id),
                profile=profile,
                channel=message.channel,
                placement=broadcast.decide_placement,
                origin="broadcast",
                context={"broadcast_id": str(broadcast.pk)},
                now=now,
            )
            message.decision_id = result.decision_id
            if candidate is None:
                if not (broadcast.template_id or broadcast.html or broadcast.text):
                    skipped[message.pk] = NO_ACTION
                # The broadcast's own content; the decision stays on record (a control
                # customer given nothing is how uplift is measured), with no action.
                changed.append(message)
                continue
            message.decision_action = candidate.key
            message.template = template
            message.content = content or {}
            if content is not None and not content.get("url"):
                message.content.pop("url", None)
            changed.append(message)
        Message.objects.bulk_update(
            changed, ["decision_id", "decision_action", "template", "content"], batch_size=500
        )
    return skipped
