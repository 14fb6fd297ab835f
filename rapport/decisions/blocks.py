"""A block of an email decided when it is opened, not when it is sent (the seeds' "at
the moment of opening"): `{% next_best_action placement="email_footer" %}` in an email
template renders an image in a link, both signed Rapport URLs naming the message and
the placement:

- `GET /m/nba/<token>.png`: the first load decides (origin `email_open`, channel
  `email`, the placement), records the action's `impression`, and keeps the decision
  for the message and placement (`BlockDecision`, UNIQUE), so that reloading the
  image, or opening the mail again, shows the same action and decides nothing more.
  The image is the action's `image_url` (a redirect), else a banner drawn here with
  its title (nothing fetched); nothing given: a transparent pixel.
- `GET /m/nba/<token>/click`: records `clicked` (and the impression, for a reader
  whose images were blocked: decided then) and redirects to the action's own
  `link_url`, and nowhere else: the token names a message and a placement, never a
  URL, so it cannot be made into an open redirect.

The token is signed as the channels' tracking tokens are (SECRET_KEY, its own salt);
a token changed by one character is refused (404).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.html import format_html

SALT = "rapport.decisions.nba"
PREFIX = "/m/nba/"


def _signer() -> signing.Signer:
    from rapport.channels.tracking import signer

    return signer(SALT)


def block_token(message_id: Any, placement: str) -> str:
    return _signer().sign_object({"m": str(message_id), "p": placement})


def block_token_read(token: str) -> tuple[uuid.UUID, str] | None:
    try:
        value = _signer().unsign_object(token)
        return uuid.UUID(str(value["m"])), str(value.get("p") or "")[:100]
    except (signing.BadSignature, ValueError, TypeError, KeyError):
        return None


def block_urls(*, message_id: Any, placement: str, base: str) -> tuple[str, str]:
    """(image URL, click URL)."""
    token = quote(block_token(message_id, placement), safe=":")
    return f"{base}{PREFIX}{token}.png", f"{base}{PREFIX}{token}/click"


def block_render(*, message_id: Any, placement: str, alt: str, base: str, html: bool) -> str:
    """The tag's output (the channels' `hooks.block_renderers["next_best_action"]`): an
    image in a link in HTML; the click URL alone in a plain-text part."""
    image, click = block_urls(message_id=message_id, placement=placement, base=base)
    if not html:
        return click
    return format_html(
        '<a href="{}" style="display:block"><img src="{}" alt="{}" width="600" '
        'style="max-width:100%;height:auto;border:0"></a>',
        click,
        image,
        alt,
    )


def block_decide(*, message_id: uuid.UUID, placement: str, now: datetime | None = None):
    """The message's block decision for the placement: the one kept, or made now (the
    impression recorded with it). None for a message that is not there, or whose
    customer is gone."""
    from rapport.channels.models import Message
    from rapport.decisions.engine import decision_make
    from rapport.decisions.models import BlockDecision
    from rapport.decisions.outcomes import outcome_record
    from rapport.profiles.models import Profile
    from rapport.tenancy.models import Workspace

    now = now or timezone.now()
    kept = (
        BlockDecision.objects.filter(message_id=message_id, placement=placement)
        .select_related("action")
        .first()
    )
    if kept is not None:
        return kept
    with transaction.atomic():
        # The message's row locked: two loads at once (a mail client and its preview
        # pane) wait for each other, and the second finds the first's decision.
        message = (
            Message.objects.select_for_update()
            .filter(pk=message_id, channel="email")
            .only("id", "workspace_id", "profile_id")
            .first()
        )
        if message is None or message.profile_id is None:
            return None
        kept = (
            BlockDecision.objects.filter(message_id=message_id, placement=placement)
            .select_related("action")
            .first()
        )
        if kept is not None:
            return kept
        profile = Profile.objects.filter(pk=message.profile_id).first()
        if profile is not None and profile.merged_into_id is not None:
            profile = Profile.objects.filter(pk=profile.merged_into_id).first()
        if profile is None:
            return None
        workspace = Workspace(pk=message.workspace_id)
        result = decision_make(
            workspace=workspace,
            profile=profile,
            channel="email",
            placement=placement,
            limit=1,
            context={"message_id": str(message_id)},
            origin="email_open",
            now=now,
            in_message=True,
        )
        if result.decision_id is None:
            return None  # the customer was erased meanwhile: no decision, nothing shown
        action = result.actions[0].action if result.actions else None
        try:
            with transaction.atomic():
                kept = BlockDecision.objects.create(
                    workspace_id=message.workspace_id,
                    message_id=message_id,
                    placement=placement,
                    decision_id=result.decision_id,
                    action=action,
                    created_at=now,
                )
        except IntegrityError:
            # Another database's transaction won without our lock (none here): theirs.
            return BlockDecision.objects.select_related("action").get(
                message_id=message_id, placement=placement
            )
        if action is not None:
            outcome_record(
                workspace=workspace,
                decision_id=result.decision_id,
                action_key=action.key,
                outcome="impression",
                at=now,
            )
    return kept


def block_clicked(block: Any, *, now: datetime | None = None) -> str | None:
    """Record the click on the block's action; the action's link, or None."""
    from rapport.decisions.outcomes import outcomes_record_quietly

    action = block.action
    if action is None:
        return None
    outcomes_record_quietly(
        workspace_id=block.workspace_id,
        decision_id=block.decision_id,
        action_key=action.key,
        outcomes=("impression", "clicked"),
        at=now or timezone.now(),
        about=f"block {block.pk}",
    )
    content = (action.content or {}).get("email") or {}
    link = str(content.get("link_url") or content.get("url") or "")
    return link if link.startswith(("https://", "http://")) else None


def block_image(block: Any) -> str | None:
    """The action's image URL, when it has one of http(s)."""
    if block is None or block.action is None:
        return None
    content = (block.action.content or {}).get("email") or {}
    image = str(content.get("image_url") or "")
    return image if image.startswith(("https://", "http://")) else None
