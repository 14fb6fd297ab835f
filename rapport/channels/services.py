"""Writes of the channels app: templates, broadcasts, messages and their sending.

Exactly once: a message is a row before it is anything else (UNIQUE per broadcast and
recipient, or per idempotency key). `message_send` claims it in a transaction of its
own (queued -> sending, recording the task that claimed it) after the rules allow it,
then calls the provider with the message's id as Message-ID / idempotency key, then
records the outcome with an UPDATE conditional on its own claim. A worker that dies
between the claim and the outcome leaves the row `sending`: only the same task, taken
over by another worker (rapport/core/leases.py), resumes it, with the same id, so the
provider can recognise the repeat; every other task leaves it alone.
"""

import hashlib
import json
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from rapport.channels import dispatch, email, rules, tracking
from rapport.channels.models import (
    Broadcast,
    Channel,
    ContactPolicy,
    EmailSettings,
    Message,
    Purpose,
    Suppression,
    Template,
)
from rapport.channels.render import profile_context, render, template_check
from rapport.channels.secrets import secret_encrypt, url_redacted
from rapport.core.errors import ConflictError, InvalidInputError
from rapport.core.leases import task_run_key
from rapport.profiles.models import Profile
from rapport.profiles.services import consent_set
from rapport.segments.models import Segment, SegmentMembership
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor, audit_log_record

logger = logging.getLogger(__name__)

PLAN_BATCH = 1000
SEND_BATCH = 200
UNSUBSCRIBE_SALT = "rapport.channels.unsubscribe"


def max_attempts() -> int:
    return int(getattr(settings, "RAPPORT_MESSAGE_MAX_ATTEMPTS", 5))


def retry_delay(attempts: int) -> timedelta:
    """30 s, 2 min, 8 min, 32 min... after the 1st, 2nd, 3rd, 4th failed attempt."""
    base = float(getattr(settings, "RAPPORT_MESSAGE_RETRY_SECONDS", 30))
    return timedelta(seconds=base * 4 ** max(0, attempts - 1))


# --- Content ---------------------------------------------------------------------------


def _content_check(*, channel: str, subject: str, html: str, text: str, url: str = "") -> None:
    if channel == Channel.WEBHOOK:
        if not url.startswith(("https://", "http://")):
            raise InvalidInputError(
                gettext("a webhook message needs an http(s) url"), field="content.url"
            )
    elif channel == Channel.EMAIL and not subject.strip():
        raise InvalidInputError(gettext("an email needs a subject"), field="subject")
    if channel != Channel.WEBHOOK and not html.strip() and not text.strip():
        raise InvalidInputError(gettext("write the message: html or text"), field="html")
    for field, source in (("subject", subject), ("html", html), ("text", text)):
        template_check(source, field=field)


def template_create(
    *,
    workspace: Workspace,
    name: str,
    channel: str,
    subject: str = "",
    html: str = "",
    text: str = "",
    actor: Actor,
) -> Template:
    _content_check(channel=channel, subject=subject, html=html, text=text)
    if Template.objects.filter(workspace=workspace, name=name).exists():
        raise ConflictError(
            gettext("A template named %(name)r exists already") % {"name": name},
            code="name_taken",
        )
    with transaction.atomic():
        template = Template.objects.create(
            workspace=workspace,
            name=name,
            channel=channel,
            subject=subject,
            html=html,
            text=text,
            created_by=actor.label[:200],
        )
        audit_log_record(
            workspace=workspace, actor=actor, action="template.create", target=template
        )
    return template


def template_update(*, template: Template, actor: Actor, **changes: Any) -> Template:
    merged = {k: changes.get(k, getattr(template, k)) for k in ("subject", "html", "text")}
    _content_check(channel=template.channel, **merged)
    with transaction.atomic():
        for key, value in changes.items():
            setattr(template, key, value)
        template.save()
        audit_log_record(
            workspace=template.workspace, actor=actor, action="template.update", target=template
        )
    return template


# --- Settings -------------------------------------------------------------------------


def email_settings_set(
    *,
    workspace: Workspace,
    actor: Actor,
    from_email: str | None = None,
    from_name: str | None = None,
    reply_to: str | None = None,
    transport_url: str | None = None,
) -> EmailSettings:
    """The workspace's sender; `transport_url` "" goes back to the install's transport.
    The URL is checked, stored encrypted, and only its redacted form is ever shown."""
    found = EmailSettings.objects.filter(workspace=workspace).first() or EmailSettings(
        workspace=workspace
    )
    if from_email is not None:
        found.from_email = from_email
    if from_name is not None:
        found.from_name = from_name
    if reply_to is not None:
        found.reply_to = reply_to
    if transport_url is not None:
        if transport_url:
            try:
                email.url_check(transport_url)
            except email.TransportUrlError as exc:
                raise InvalidInputError(str(exc), field="transport_url") from exc
        found.transport_encrypted = secret_encrypt(transport_url)
        found.transport_label = url_redacted(transport_url) if transport_url else ""
    with transaction.atomic():
        found.save()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="email_settings.set",
            details={
                "transport": found.transport_label,
                "transport_changed": transport_url is not None,
            },
        )
    return found


def contact_policy_set(
    *,
    workspace: Workspace,
    actor: Actor,
    caps: dict | None = None,
    quiet_start: int | None = None,
    quiet_end: int | None = None,
    timezone_name: str | None = None,
) -> ContactPolicy:
    policy = rules.policy_of(workspace.pk)
    if caps is not None:
        for channel, cap in caps.items():
            if channel not in Channel.values:
                raise InvalidInputError(
                    gettext("unknown channel %(channel)r") % {"channel": channel}, field="caps"
                )
            if (
                not isinstance(cap, dict)
                or not isinstance(cap.get("max"), int)
                or cap["max"] < 0
                or not isinstance(cap.get("days", 7), int | float)
                or cap.get("days", 7) <= 0
            ):
                raise InvalidInputError(
                    gettext('each cap is {"max": n, "days": d} with n >= 0 and d > 0'),
                    field=f"caps.{channel}",
                )
        policy.caps = caps
    for field, value in (("quiet_start", quiet_start), ("quiet_end", quiet_end)):
        if value is not None:
            if not 0 <= value <= 23:
                raise InvalidInputError(gettext("an hour from 0 to 23"), field=field)
            setattr(policy, field, value)
    if timezone_name is not None:
        rules_zone = rules._zone(timezone_name, "")
        if str(rules_zone) != timezone_name:
            raise InvalidInputError(
                gettext("an IANA time zone such as Europe/Paris"), field="timezone"
            )
        policy.timezone = timezone_name
    with transaction.atomic():
        policy.save()
        audit_log_record(workspace=workspace, actor=actor, action="contact_policy.set")
    return policy


def suppression_add(
    *, workspace_id: Any, channel: str, address: str, reason: str, detail: str = ""
) -> None:
    Suppression.objects.bulk_create(
        [
            Suppression(
                workspace_id=workspace_id,
                channel=channel,
                address=address.strip().lower(),
                reason=reason,
                detail=detail[:2000],
            )
        ],
        ignore_conflicts=True,
    )


# --- Single messages ------------------------------------------------------------------


def message_create(
    *,
    workspace: Workspace,
    profile: Profile,
    channel: str,
    purpose: str,
    template: Template | None = None,
    content: dict | None = None,
    idempotency_key: str | None = None,
    actor: Actor,
) -> tuple[Message, bool]:
    """A message to one customer, queued for sending; (message, created). The same
    idempotency key answers the message made the first time, and sends nothing more."""
    if idempotency_key:
        found = Message.objects.filter(workspace=workspace, idempotency_key=idempotency_key).first()
        if found is not None:
            return found, False
    if template is not None:
        if template.channel != channel:
            raise InvalidInputError(
                gettext("the template is for %(template_channel)s, not %(channel)s")
                % {"template_channel": template.channel, "channel": channel},
                field="template_id",
            )
        content = {}
    else:
        content = {k: str((content or {}).get(k) or "") for k in ("subject", "html", "text", "url")}
        _content_check(channel=channel, **content)
        if not content["url"]:
            del content["url"]
    from rapport.channels import tasks

    try:
        with transaction.atomic():
            message = Message.objects.create(
                workspace=workspace,
                profile=profile,
                channel=channel,
                purpose=purpose,
                template=template,
                content=content,
                idempotency_key=idempotency_key or None,
            )
            tasks.message_send.enqueue(message_id=str(message.pk))
    except IntegrityError:
        # The same key from a concurrent request, committed first.
        found = Message.objects.filter(workspace=workspace, idempotency_key=idempotency_key).first()
        if found is None:
            raise
        return found, False
    return message, True


# --- Sending --------------------------------------------------------------------------


def unsubscribe_token(message_id: Any) -> str:
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(uuid.UUID(str(message_id)).hex)


def unsubscribe_message_id(token: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def public_url(path: str) -> str:
    base = getattr(settings, "RAPPORT_PUBLIC_URL", "") or "http://localhost:8000"
    return f"{base.rstrip('/')}{path}"


def _content_of(message: Message) -> dict[str, str]:
    if message.broadcast_id is not None:
        source = message.broadcast.template or message.broadcast
    else:
        source = message.template
    if source is not None:
        return {"subject": source.subject, "html": source.html, "text": source.text}
    return {k: message.content.get(k, "") for k in ("subject", "html", "text")}


def _outgoing(message: Message, profile: Profile, address: str) -> dispatch.Outgoing:
    context = profile_context(profile)
    headers: dict[str, str] = {}
    if message.purpose == Purpose.MARKETING:
        token = unsubscribe_token(message.pk)
        unsubscribe = public_url(f"/m/unsubscribe/{token}")
        context["unsubscribe_url"] = unsubscribe
        context["preferences_url"] = unsubscribe
        if message.channel == Channel.EMAIL:
            # RFC 8058: one POST to this URL unsubscribes, without a page in between.
            headers["List-Unsubscribe"] = f"<{unsubscribe}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    rendered = render(**_content_of(message), context=context)
    html = rendered.html
    if html and message.channel == Channel.EMAIL:
        html = tracking.html_tracked(
            html,
            message_id=str(message.pk),
            base=public_url(""),
            keep={context.get("unsubscribe_url", "")},
        )
    return dispatch.Outgoing(
        message_id=str(message.pk),
        workspace_id=message.workspace_id,
        channel=message.channel,
        purpose=message.purpose,
        to=address,
        subject=rendered.subject,
        html=html,
        text=rendered.text,
        headers=headers,
        profile_id=str(profile.pk),
        data=context,
    )


def _outcome(message: Message, run_key: str, **fields: Any) -> bool:
    """Record the result of this claim (and nothing if the claim is no longer ours)."""
    fields["updated_at"] = timezone.now()
    return bool(
        Message.objects.filter(
            pk=message.pk, status=Message.Status.SENDING, claimed_by=run_key
        ).update(**fields)
    )


def message_send(*, message_id: Any, session: dispatch.Session | None = None) -> str:
    """Check the rules and send one message; its status afterwards."""
    from rapport.channels import tasks

    run_key = task_run_key()
    now = timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("broadcast", "broadcast__template", "template")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return "gone"
        resumed = (
            message.status == Message.Status.SENDING and run_key and message.claimed_by == run_key
        )
        if message.status != Message.Status.QUEUED and not resumed:
            return message.status
        if not resumed and message.next_attempt_at and message.next_attempt_at > now:
            return "waiting"
        profile = (
            Profile.objects.filter(pk=message.profile_id).prefetch_related("identifiers").first()
            if message.profile_id
            else None
        )
        if profile is not None and profile.merged_into_id is not None:
            # Merged since planning: the survivor is the customer.
            profile = (
                Profile.objects.filter(pk=profile.merged_into_id)
                .prefetch_related("identifiers")
                .first()
            )
        transport = dispatch.transport_for(message.channel)
        if transport is None:
            message.status = Message.Status.FAILED
            message.error = f"no transport for the {message.channel} channel"
            message.save(update_fields=["status", "error", "updated_at"])
            return message.status
        address = transport.address(profile) if profile is not None else None
        if message.channel == Channel.WEBHOOK and address:
            # A webhook goes to the url the message names.
            address = str((message.content or {}).get("url") or "") or None
        if message.broadcast_id and message.broadcast.status == Broadcast.Status.CANCELLED:
            verdict = rules.Verdict(skip=rules.SkipReason.CANCELLED)
        else:
            verdict = rules.send_verdict(message=message, profile=profile, address=address, now=now)
        if verdict.skip:
            message.status = Message.Status.SKIPPED
            message.skip_reason = verdict.skip
            message.save(update_fields=["status", "skip_reason", "updated_at"])
            return message.status
        if verdict.wait_until is not None:
            message.next_attempt_at = verdict.wait_until
            message.save(update_fields=["next_attempt_at", "updated_at"])
            tasks.message_send.using(run_after=verdict.wait_until).enqueue(
                message_id=str(message.pk)
            )
            return "waiting"
        if not resumed:
            message.attempts += 1
        message.status = Message.Status.SENDING
        message.claimed_by = run_key
        message.claimed_at = now
        message.save(update_fields=["status", "attempts", "claimed_by", "claimed_at", "updated_at"])

    own_session = session is None
    session = session or dispatch.Session()
    try:
        outgoing = _outgoing(message, profile, address)
        result = transport.send(outgoing=outgoing, session=session)
    except dispatch.SendError as exc:
        if exc.retryable and message.attempts < max_attempts():
            when = timezone.now() + retry_delay(message.attempts)
            if _outcome(
                message,
                run_key,
                status=Message.Status.QUEUED,
                next_attempt_at=when,
                error=str(exc)[:2000],
            ):
                tasks.message_send.using(run_after=when).enqueue(message_id=str(message.pk))
            return Message.Status.QUEUED
        _outcome(message, run_key, status=Message.Status.FAILED, error=str(exc)[:2000])
        return Message.Status.FAILED
    except Exception as exc:
        # A template that fails at render time, a transport's bug: recorded, not lost.
        logger.exception("message %s could not be sent", message.pk)
        _outcome(
            message,
            run_key,
            status=Message.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        return Message.Status.FAILED
    finally:
        if own_session:
            session.close()
    _outcome(
        message,
        run_key,
        status=Message.Status.SENT,
        sent_at=timezone.now(),
        provider_id=result.provider_id[:255],
        subject=outgoing.subject[:500],
        error="",
    )
    return Message.Status.SENT


def messages_send(*, message_ids: list) -> dict[str, int]:
    """A batch over shared connections; then the broadcasts it belongs to are
    closed if nothing of theirs is left to send."""
    counts: dict[str, int] = {}
    with dispatch.Session() as session:
        for message_id in message_ids:
            status = message_send(message_id=message_id, session=session)
            counts[status] = counts.get(status, 0) + 1
    for broadcast_id in set(
        Message.objects.filter(pk__in=message_ids, broadcast__isnull=False).values_list(
            "broadcast_id", flat=True
        )
    ):
        broadcast_finish_check(broadcast_id=broadcast_id)
    return counts


# --- Broadcasts -----------------------------------------------------------------------


def broadcast_create(
    *,
    workspace: Workspace,
    name: str,
    channel: str,
    purpose: str,
    segment: Segment,
    template: Template | None = None,
    subject: str = "",
    html: str = "",
    text: str = "",
    actor: Actor,
) -> Broadcast:
    if template is not None:
        if template.channel != channel:
            raise InvalidInputError(
                gettext("the template is for %(template_channel)s, not %(channel)s")
                % {"template_channel": template.channel, "channel": channel},
                field="template_id",
            )
    else:
        _content_check(channel=channel, subject=subject, html=html, text=text)
    with transaction.atomic():
        broadcast = Broadcast.objects.create(
            workspace=workspace,
            name=name,
            channel=channel,
            purpose=purpose,
            segment=segment,
            template=template,
            subject=subject,
            html=html,
            text=text,
            created_by=actor.label[:200],
        )
        audit_log_record(
            workspace=workspace, actor=actor, action="broadcast.create", target=broadcast
        )
    return broadcast


def broadcast_send(
    *, broadcast: Broadcast, actor: Actor, at: datetime | None = None, holdout: float = 0.0
) -> Broadcast:
    """Send now, or at `at`; `holdout` (0 to 0.5) of the members are kept as a control
    group: recorded as skipped (`holdout`), never sent."""
    from rapport.channels import tasks

    if not 0 <= holdout <= 0.5:
        raise InvalidInputError(gettext("a share from 0 to 0.5"), field="holdout")
    if at is not None and at.tzinfo is None:
        raise InvalidInputError(gettext("give a time zone (e.g. 2026-05-01T09:00:00Z)"), field="at")
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status != Broadcast.Status.DRAFT:
            raise ConflictError(
                gettext("This broadcast is %(status)s; only a draft can be sent")
                % {"status": locked.status},
                code="broadcast_not_draft",
            )
        if locked.segment_id is None:
            raise InvalidInputError(
                gettext("the broadcast's segment was deleted"), field="segment_id"
            )
        locked.status = Broadcast.Status.SCHEDULED
        locked.holdout = holdout
        locked.send_at = at or timezone.now()
        locked.save(update_fields=["status", "holdout", "send_at", "updated_at"])
        task = tasks.broadcast_plan if at is None else tasks.broadcast_plan.using(run_after=at)
        task.enqueue(broadcast_id=str(locked.pk))
        audit_log_record(
            workspace=locked.workspace,
            actor=actor,
            action="broadcast.send",
            target=locked,
            details={"at": locked.send_at.isoformat(), "holdout": holdout},
        )
    return locked


def broadcast_cancel(*, broadcast: Broadcast, actor: Actor) -> Broadcast:
    """Messages not yet sent are skipped (`cancelled`) when their turn comes."""
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status in (Broadcast.Status.SENT, Broadcast.Status.CANCELLED):
            raise ConflictError(
                gettext("This broadcast is %(status)s already") % {"status": locked.status},
                code="broadcast_done",
            )
        locked.status = Broadcast.Status.CANCELLED
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "finished_at", "updated_at"])
        Message.objects.filter(broadcast=locked, status=Message.Status.QUEUED).update(
            status=Message.Status.SKIPPED, skip_reason=rules.SkipReason.CANCELLED
        )
        audit_log_record(
            workspace=locked.workspace, actor=actor, action="broadcast.cancel", target=locked
        )
    return locked


def _held_out(broadcast_id: Any, profile_id: Any, share: float) -> bool:
    """The same customers every time for one broadcast (a re-plan agrees)."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{broadcast_id}:{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def broadcast_plan(*, broadcast_id: Any) -> dict[str, int]:
    """A message per current member of the segment, in batches, each batch handed to a
    sending task. Safe to run again: rows exist once (UNIQUE broadcast, profile) and a
    message is claimed once, whoever is asked to send it."""
    from rapport.channels import tasks

    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    if broadcast is None or broadcast.status not in (
        Broadcast.Status.SCHEDULED,
        Broadcast.Status.SENDING,
    ):
        return {"planned": 0}
    Broadcast.objects.filter(pk=broadcast.pk, status=Broadcast.Status.SCHEDULED).update(
        status=Broadcast.Status.SENDING, updated_at=timezone.now()
    )
    members = SegmentMembership.objects.filter(
        segment_id=broadcast.segment_id, left_at__isnull=True
    ).values_list("profile_id", flat=True)
    planned = batches = 0
    after = None
    while True:
        page = members.order_by("profile_id")
        if after is not None:
            page = page.filter(profile_id__gt=after)
        profile_ids = list(page[:PLAN_BATCH])
        if not profile_ids:
            break
        after = profile_ids[-1]
        with transaction.atomic():
            Message.objects.bulk_create(
                [
                    Message(
                        workspace_id=broadcast.workspace_id,
                        profile_id=profile_id,
                        broadcast_id=broadcast.pk,
                        channel=broadcast.channel,
                        purpose=broadcast.purpose,
                        template_id=broadcast.template_id,
                        **(
                            {
                                "status": Message.Status.SKIPPED,
                                "skip_reason": rules.SkipReason.HOLDOUT,
                            }
                            if _held_out(broadcast.pk, profile_id, broadcast.holdout)
                            else {}
                        ),
                    )
                    for profile_id in profile_ids
                ],
                ignore_conflicts=True,
            )
            queued = [
                str(pk)
                for pk in Message.objects.filter(
                    broadcast_id=broadcast.pk,
                    profile_id__in=profile_ids,
                    status=Message.Status.QUEUED,
                ).values_list("pk", flat=True)
            ]
            for start in range(0, len(queued), SEND_BATCH):
                tasks.messages_send.enqueue(message_ids=queued[start : start + SEND_BATCH])
                batches += 1
        planned += len(profile_ids)
    Broadcast.objects.filter(pk=broadcast.pk).update(planned_at=timezone.now())
    broadcast_finish_check(broadcast_id=broadcast.pk)
    return {"planned": planned, "batches": batches}


def broadcast_finish_check(*, broadcast_id: Any) -> None:
    """Sent, once planned and nothing is left queued or being sent."""
    if Message.objects.filter(
        broadcast_id=broadcast_id,
        status__in=[Message.Status.QUEUED, Message.Status.SENDING],
    ).exists():
        return
    Broadcast.objects.filter(
        pk=broadcast_id, status=Broadcast.Status.SENDING, planned_at__isnull=False
    ).update(status=Broadcast.Status.SENT, finished_at=timezone.now(), updated_at=timezone.now())


# --- The customer's answers -------------------------------------------------------------


def message_unsubscribe(*, message: Message, purposes: dict[str, bool] | None = None) -> list[str]:
    """The customer's choice from a message's link: by default (RFC 8058's one-click
    POST) marketing on the message's channel is withdrawn at once; from the
    preference page, each purpose as they set it. The purposes changed."""
    profile = Profile.objects.filter(pk=message.profile_id).first() if message.profile_id else None
    if profile is None:
        return []
    if profile.merged_into_id is not None:
        profile = Profile.objects.filter(pk=profile.merged_into_id).first()
    channel = rules.CONSENT_CHANNEL.get(message.channel) or "email"
    wanted = purposes if purposes is not None else {Purpose.MARKETING: False}
    actor = Actor.system("customer (message link)")
    changed = []
    with transaction.atomic():
        for purpose, granted in wanted.items():
            if purpose not in Purpose.values:
                continue
            consent_set(
                profile=profile,
                channel=channel,
                purpose=purpose,
                status="granted" if granted else "denied",
                actor=actor,
            )
            changed.append(purpose)
        if wanted.get(Purpose.MARKETING) is False:
            Message.objects.filter(pk=message.pk, unsubscribed_at__isnull=True).update(
                unsubscribed_at=timezone.now()
            )
    return changed


# --- Delivery events from providers ----------------------------------------------------


def _message_for_event(*, provider_id: str, metadata: dict) -> Message | None:
    own = (metadata or {}).get("rapport_message_id")
    if own:
        try:
            found = Message.objects.filter(pk=uuid.UUID(str(own))).first()
        except ValueError:
            found = None
        if found is not None:
            return found
    if not provider_id:
        return None
    candidates = {provider_id, f"<{provider_id.strip('<>')}>"}
    return Message.objects.filter(provider_id__in=candidates).first()


def delivery_event_record(
    *,
    event_type: str,
    provider_id: str = "",
    metadata: dict | None = None,
    recipient: str = "",
    description: str = "",
    at: datetime | None = None,
) -> Message | None:
    """A provider's news about a message (anymail's normalised event types):
    delivered, opened, clicked, bounced/rejected (the address is suppressed),
    complained (suppressed, and marketing consent withdrawn), unsubscribed. The
    message it concerns, or None when it is not one of ours."""
    message = _message_for_event(provider_id=provider_id, metadata=metadata or {})
    if message is None:
        return None
    at = at or timezone.now()
    updates: dict[str, Any] = {}
    if event_type == "delivered":
        updates["delivered_at"] = at
        if message.status == Message.Status.SENT:
            updates["status"] = Message.Status.DELIVERED
    elif event_type == "opened" and message.opened_at is None:
        updates["opened_at"] = at
    elif event_type == "clicked":
        if message.clicked_at is None:
            updates["clicked_at"] = at
        if message.opened_at is None:
            updates["opened_at"] = at
    elif event_type in ("bounced", "rejected", "complained"):
        if event_type != "complained":
            updates.update(status=Message.Status.BOUNCED, bounced_at=at)
        if recipient:
            suppression_add(
                workspace_id=message.workspace_id,
                channel=message.channel,
                address=recipient,
                reason=(
                    Suppression.Reason.COMPLAINT
                    if event_type == "complained"
                    else Suppression.Reason.BOUNCE
                ),
                detail=description,
            )
        if event_type == "complained":
            message_unsubscribe(message=message)
    elif event_type == "unsubscribed":
        message_unsubscribe(message=message)
    elif event_type == "failed" and message.status in (
        Message.Status.SENT,
        Message.Status.DELIVERED,
    ):
        # The provider gave up after accepting it (an SMS undelivered).
        updates.update(status=Message.Status.FAILED, error=description[:2000])
    if updates:
        updates["updated_at"] = timezone.now()
        Message.objects.filter(pk=message.pk).update(**updates)
        message.refresh_from_db()
    return message


# --- SMS and webhook settings, retries, STOP replies -------------------------------------


def sms_settings_set(
    *,
    workspace: Workspace,
    actor: Actor,
    provider: str | None = None,
    credentials: dict | None = None,
    sender: str | None = None,
    default_region: str | None = None,
) -> EmailSettings:
    """The workspace's SMS provider. `credentials` replace the stored ones (encrypted,
    never shown again); provider "" turns SMS off."""
    from rapport.channels import sms

    found = EmailSettings.objects.filter(workspace=workspace).first() or EmailSettings(
        workspace=workspace
    )
    if provider is not None:
        if provider and provider not in sms.PROVIDERS:
            raise InvalidInputError(gettext("twilio or vonage"), field="sms.provider")
        if provider != found.sms_provider:
            found.sms_provider = provider
            if credentials is None:
                found.sms_credentials_encrypted = ""
    if credentials is not None:
        allowed = sms.CREDENTIAL_KEYS.get(found.sms_provider, set())
        for key, value in credentials.items():
            if key not in allowed or not isinstance(value, str):
                raise InvalidInputError(
                    gettext("unknown credential %(key)r for this provider") % {"key": key},
                    field=f"sms.credentials.{key}",
                )
        found.sms_credentials_encrypted = (
            secret_encrypt(json.dumps(credentials)) if credentials else ""
        )
    if sender is not None:
        found.sms_sender = sender.strip()
    if default_region is not None:
        region = default_region.strip().upper()
        if region and (len(region) != 2 or not region.isalpha()):
            raise InvalidInputError(
                gettext("a two-letter country code such as US"), field="sms.default_region"
            )
        found.sms_default_region = region
    if found.sms_provider and not found.sms_callback_token:
        found.sms_callback_token = secrets.token_urlsafe(24)
    with transaction.atomic():
        found.save()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="sms_settings.set",
            details={
                "provider": found.sms_provider,
                "credentials_changed": credentials is not None,
            },
        )
    return found


def webhook_secret_create(*, workspace: Workspace, actor: Actor) -> str:
    """A new signing secret for the workspace's webhooks, returned this once."""
    from rapport.channels.transports.webhooks import secret_generate

    secret = secret_generate()
    found = EmailSettings.objects.filter(workspace=workspace).first() or EmailSettings(
        workspace=workspace
    )
    found.webhook_secret_encrypted = secret_encrypt(secret)
    with transaction.atomic():
        found.save()
        audit_log_record(workspace=workspace, actor=actor, action="webhook_secret.create")
    return secret


def message_retry(*, message: Message, actor: Actor) -> Message:
    """A failed message sent again (the dead-letter list's retry), same id."""
    from rapport.channels import tasks

    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, status=Message.Status.FAILED).update(
            status=Message.Status.QUEUED,
            attempts=0,
            next_attempt_at=None,
            claimed_by="",
            updated_at=timezone.now(),
        )
        if not changed:
            raise ConflictError(
                gettext("Only a failed message can be retried"), code="message_not_failed"
            )
        tasks.message_send.enqueue(message_id=str(message.pk))
        audit_log_record(
            workspace=message.workspace, actor=actor, action="message.retry", target=message
        )
    message.refresh_from_db()
    return message


def sms_opt_out(*, workspace_id: Any, number: str, text: str = "") -> int:
    """A STOP reply: SMS marketing withdrawn for each customer holding the number,
    recorded as the customer's own statement. How many customers."""
    from rapport.channels.sms import phone_of
    from rapport.identity.models import Identifier

    holders = set(
        Identifier.objects.filter(
            workspace_id=workspace_id, kind="phone", value=number
        ).values_list("profile_id", flat=True)
    )
    holders |= set(
        Profile.objects.filter(workspace_id=workspace_id, traits__phone=number).values_list(
            "pk", flat=True
        )
    )
    actor = Actor.system(f"customer (SMS reply {text.strip()[:20]!r} from {number})")
    count = 0
    with transaction.atomic():
        for profile in Profile.objects.filter(pk__in=holders).prefetch_related("identifiers"):
            if profile.merged_into_id is not None or phone_of(profile) != number:
                continue
            consent_set(
                profile=profile,
                channel="sms",
                purpose=Purpose.MARKETING,
                status="denied",
                actor=actor,
            )
            count += 1
    return count
