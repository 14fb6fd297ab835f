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

import dataclasses
import hashlib
import logging
import secrets
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import css_inline
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, CharField, DateTimeField, F, Q, QuerySet, Value, When
from django.template import TemplateSyntaxError
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import get_language, gettext
from uuid_utils.compat import uuid7

from rapport.channels import dispatch, email, hooks, rules, tracking, webhook
from rapport.channels import events as channel_events
from rapport.channels.models import (
    Broadcast,
    Channel,
    ContactPolicy,
    EmailSettings,
    Message,
    OutboxMail,
    Purpose,
    Suppression,
    Template,
)
from rapport.channels.render import (
    compiled,
    profile_context,
    profile_contexts,
    render,
    template_check,
)
from rapport.channels.secrets import SMS_CREDENTIALS, TRANSPORT, WEBHOOK_SECRET, secret_put
from rapport.core.errors import ConflictError, InvalidInputError
from rapport.core.leases import task_run_key
from rapport.profiles.models import Profile
from rapport.profiles.services import consent_set
from rapport.segments.models import Segment, SegmentMembership
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor, audit_log_record

logger = logging.getLogger(__name__)

PLAN_BATCH = 5000
SEND_BATCH = 200
UNSUBSCRIBE_SALT = "rapport.channels.unsubscribe"


def max_attempts() -> int:
    return int(getattr(settings, "RAPPORT_MESSAGE_MAX_ATTEMPTS", 5))


def retry_delay(attempts: int) -> timedelta:
    """30 s, 2 min, 8 min, 32 min... after the 1st, 2nd, 3rd, 4th failed attempt."""
    base = float(getattr(settings, "RAPPORT_MESSAGE_RETRY_SECONDS", 30))
    return timedelta(seconds=base * 4 ** max(0, attempts - 1))


# --- Content ---------------------------------------------------------------------------


def _content_check(
    *,
    channel: str,
    subject: str,
    html: str,
    text: str,
    url: str = "",
    url_field: str = "content.url",
) -> None:
    if channel == Channel.WEBHOOK:
        webhook.webhook_url_check(url, field=url_field)
    elif (
        url
        and channel in (Channel.PUSH, Channel.IN_APP)
        and not url.startswith(("https://", "http://"))
    ):
        # The page the notification or the in-app message opens.
        raise InvalidInputError(gettext("an http(s) url"), field=url_field)
    if channel == Channel.EMAIL and not subject.strip():
        raise InvalidInputError(gettext("an email needs a subject"), field="subject")
    if channel != Channel.WEBHOOK and not html.strip() and not text.strip():
        raise InvalidInputError(gettext("write the message: html or text"), field="html")
    for field, source in (("subject", subject), ("html", html), ("text", text)):
        template_check(source, field=field)


def mjml_compile(source: str) -> str:
    """MJML made into responsive email HTML, its CSS inlined (media queries kept), the
    template's tags left as they were written; InvalidInputError on field "html"."""
    from mjml import mjml2html

    if not source.lstrip().startswith("<mjml"):
        raise InvalidInputError(gettext("MJML starts with <mjml>"), field="html")
    try:
        # No web fonts: nothing is fetched from elsewhere when the mail is opened.
        compiled = mjml2html(source, fonts={})
    except (ValueError, RuntimeError) as exc:
        raise InvalidInputError(
            gettext("MJML error: %(error)s") % {"error": exc}, field="html"
        ) from exc
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True).inline(compiled)


def _template_body(format: str, body: str) -> tuple[str, str]:
    """(source, html) to store for a body written in `format`."""
    if format == Template.Format.MJML:
        template_check(body, field="html")
        return body, mjml_compile(body)
    if format != Template.Format.HTML:
        raise InvalidInputError(gettext("html or mjml"), field="format")
    return "", body


def template_create(
    *,
    workspace: Workspace,
    name: str,
    channel: str,
    subject: str = "",
    html: str = "",
    text: str = "",
    format: str = Template.Format.HTML,
    actor: Actor,
) -> Template:
    """`html` is the body as written: HTML, or MJML when `format` is "mjml" (kept as
    the source, its compiled HTML stored beside it)."""
    name = name.strip()
    if not name:
        raise InvalidInputError(gettext("give the template a name"), field="name")
    if channel not in Channel.values:
        raise InvalidInputError(
            gettext("unknown channel %(channel)r") % {"channel": channel}, field="channel"
        )
    source, html = _template_body(format, html)
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
            format=format,
            source=source,
            html=html,
            text=text,
            created_by=actor.label[:200],
        )
        audit_log_record(
            workspace=workspace, actor=actor, action="template.create", target=template
        )
    return template


def template_update(*, template: Template, actor: Actor, **changes: Any) -> Template:
    """Changes of name, subject, html (the body as written), text and format."""
    format = changes.pop("format", template.format)
    if "html" in changes or format != template.format:
        written = template.source if template.format == Template.Format.MJML else template.html
        changes["source"], changes["html"] = _template_body(format, changes.get("html", written))
        changes["format"] = format
    if "name" in changes:
        changes["name"] = str(changes["name"]).strip()
        if not changes["name"]:
            raise InvalidInputError(gettext("give the template a name"), field="name")
        if (
            Template.objects.filter(workspace=template.workspace, name=changes["name"])
            .exclude(pk=template.pk)
            .exists()
        ):
            raise ConflictError(
                gettext("A template named %(name)r exists already") % {"name": changes["name"]},
                code="name_taken",
            )
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


def content_test_send(
    *,
    workspace: Workspace,
    channel: str,
    content: dict[str, str],
    profile: Profile | None,
    to: str,
    actor: Actor,
) -> str:
    """A proof of a message to `to` (an email address): rendered as `profile` would
    get it (no one: every value empty, so the fallbacks show), its subject marked
    "[Test]", sent through the workspace's own mail transport. It is not a customer's
    message: no Message row, no tracking, nothing counted; the audit log records it.
    The provider's id."""
    if channel != Channel.EMAIL:
        raise InvalidInputError(gettext("test sends are for email messages"), field="channel")
    to = (to or "").strip()
    try:
        validate_email(to)
    except ValidationError:
        raise InvalidInputError(gettext("an email address"), field="to") from None
    context = profile_context(profile) if profile is not None else {}
    # The links work in the proof only as far as showing where they go.
    context["unsubscribe_url"] = context["preferences_url"] = public_url("/m/unsubscribe/test")
    try:
        rendered = render(
            subject=content.get("subject", ""),
            html=content.get("html", ""),
            text=content.get("text", ""),
            context=context,
        )
    except TemplateSyntaxError as exc:
        raise InvalidInputError(
            gettext("template error: %(error)s") % {"error": exc}, field="html"
        ) from exc
    transport = dispatch.transport_for(Channel.EMAIL)
    outgoing = dispatch.Outgoing(
        message_id=f"test-{uuid.uuid4()}",
        workspace_id=workspace.pk,
        channel=Channel.EMAIL,
        purpose=Purpose.TRANSACTIONAL,
        to=to,
        subject=f"{gettext('[Test]')} {rendered.subject}",
        html=rendered.html,
        text=rendered.text,
        headers={"X-Rapport-Test": "1"},
        profile_id=str(profile.pk) if profile is not None else None,
    )
    try:
        with dispatch.Session() as session:
            result = transport.send(outgoing=outgoing, session=session)
    except dispatch.SendError as exc:
        raise ConflictError(
            gettext("The test was not sent: %(error)s") % {"error": exc}, code="test_send_failed"
        ) from exc
    audit_log_record(
        workspace=workspace,
        actor=actor,
        action="message.test_send",
        details={"to": to, "profile_id": str(profile.pk) if profile is not None else None},
    )
    return result.provider_id


def content_of(source: Template | Broadcast) -> dict[str, str]:
    """What a template or a broadcast says (a broadcast's template's, when it has one)."""
    if isinstance(source, Broadcast) and source.template_id is not None:
        source = source.template
    return {"subject": source.subject, "html": source.html, "text": source.text}


# --- Settings -------------------------------------------------------------------------


def _channel_settings_save(
    workspace: Workspace,
    actor: Actor,
    action: str,
    apply: Callable[[EmailSettings], dict[str, Any] | None],
) -> EmailSettings:
    """The workspace's settings row (made when it has none), changed by `apply`, then
    saved and audited as `action` in one transaction. `apply` checks its input first,
    raising before anything is written, and returns the audit entry's details."""
    found = EmailSettings.objects.filter(workspace=workspace).first() or EmailSettings(
        workspace=workspace
    )
    details = apply(found)
    with transaction.atomic():
        found.save()
        audit_log_record(workspace=workspace, actor=actor, action=action, details=details)
    return found


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
    if transport_url:
        try:
            email.url_check(transport_url)
        except email.TransportUrlError as exc:
            raise InvalidInputError(str(exc), field="transport_url") from exc

    def apply(found: EmailSettings) -> dict[str, Any]:
        sender = {"from_email": from_email, "from_name": from_name, "reply_to": reply_to}
        for name, value in sender.items():
            if value is not None:
                setattr(found, name, value)
        if transport_url is not None:
            secret_put(found, TRANSPORT, transport_url)
        return {"transport": found.transport_label, "transport_changed": transport_url is not None}

    return _channel_settings_save(workspace, actor, "email_settings.set", apply)


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
    *,
    workspace_id: Any,
    channel: str,
    address: str,
    reason: str,
    detail: str = "",
    actor: Actor | None = None,
) -> Suppression | None:
    """An address never written to again on its channel. From a provider's event (no
    actor): recorded once, silently. By a person (an actor, reason `manual`): the
    address is checked (an email, or a phone number made E.164), one suppressed
    already is a conflict, the addition is in the audit log, and the row returned."""
    if actor is None:
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
        return None
    if channel not in Channel.values:
        raise InvalidInputError(
            gettext("unknown channel %(channel)r") % {"channel": channel}, field="channel"
        )
    if reason not in Suppression.Reason.values:
        raise InvalidInputError(gettext("bounce, complaint or manual"), field="reason")
    clean = suppression_address_clean(workspace_id=workspace_id, channel=channel, address=address)
    found = Suppression.objects.filter(workspace_id=workspace_id, channel=channel, address=clean)
    if found.exists():
        raise ConflictError(
            gettext("%(address)s is suppressed already") % {"address": clean},
            code="suppression_exists",
        )
    try:
        with transaction.atomic():
            row = Suppression.objects.create(
                workspace_id=workspace_id,
                channel=channel,
                address=clean,
                reason=reason,
                detail=detail[:2000],
            )
            audit_log_record(
                workspace=row.workspace,
                actor=actor,
                action="suppression.add",
                target=row,
                details={"channel": channel, "reason": reason},
            )
    except IntegrityError:
        # The same address from a concurrent request, committed first.
        raise ConflictError(
            gettext("%(address)s is suppressed already") % {"address": clean},
            code="suppression_exists",
        ) from None
    return row


def suppression_address_clean(*, workspace_id: Any, channel: str, address: str) -> str:
    """An address as the suppression list keeps it: a lower-cased email, a phone
    number in E.164 (read with the workspace's SMS region when it has no country
    code), other channels' addresses as given."""
    from rapport.channels.transports import TransportError
    from rapport.channels.transports.sms import to_e164
    from rapport.tenancy.pii import looks_like_email

    value = (address or "").strip()
    if not value:
        raise InvalidInputError(gettext("the address is missing"), field="address")
    if len(value) > 320:
        raise InvalidInputError(gettext("at most 320 characters"), field="address")
    if channel == Channel.EMAIL:
        if not looks_like_email(value):
            raise InvalidInputError(gettext("an email address"), field="address")
        return value.lower()
    if channel == Channel.SMS:
        region = (
            EmailSettings.objects.filter(workspace_id=workspace_id)
            .values_list("sms_default_region", flat=True)
            .first()
        )
        try:
            return to_e164(value, region or None)
        except TransportError:
            raise InvalidInputError(
                gettext("a phone number, such as +447700900123"), field="address"
            ) from None
    return value.lower()


def suppression_remove(*, suppression: Suppression, actor: Actor) -> None:
    """The address may be written to again (a person's decision, in the audit log)."""
    with transaction.atomic():
        audit_log_record(
            workspace=suppression.workspace,
            actor=actor,
            action="suppression.remove",
            target=suppression,
            details={"channel": suppression.channel, "reason": suppression.reason},
        )
        suppression.delete()


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


def messages_create_many(
    *,
    workspace: Workspace,
    channel: str,
    purpose: str,
    items: list[dict],
    template: Template | None = None,
    content: dict | None = None,
) -> dict[str, Message]:
    """One message to each of many customers (a journey step's batch), queued for
    sending on the broadcasts' path: `messages_send` tasks of SEND_BATCH messages.
    `items`: {"profile_id", "idempotency_key", optional "content" or "template" of its
    own, optional "decision_id" and "decision_action" (a decided action's content:
    its opens and clicks are that action's outcomes)}. Returns
    {idempotency key: message}; a key used before answers the message it made, and
    sends nothing more (UNIQUE workspace, idempotency key). In the caller's transaction."""
    if not items:
        return {}
    checked: dict[str, dict] = {}

    def content_for(own: dict | None, template: Template | None) -> dict:
        if template is not None:
            return {}
        raw = own if own is not None else content
        parts = {k: str((raw or {}).get(k) or "") for k in ("subject", "html", "text", "url")}
        key = repr(sorted(parts.items()))
        if key not in checked:
            _content_check(channel=channel, **parts)
            if not parts["url"]:
                del parts["url"]
            checked[key] = parts
        return checked[key]

    for used in {template, *(item.get("template") for item in items)} - {None}:
        if used.channel != channel:
            raise InvalidInputError(
                gettext("the template is for %(template_channel)s, not %(channel)s")
                % {"template_channel": used.channel, "channel": channel},
                field="template_id",
            )
    keys = [item["idempotency_key"] for item in items]
    found = Message.objects.filter(workspace=workspace, idempotency_key__in=keys)
    before = set(found.values_list("idempotency_key", flat=True))
    rows = [
        Message(
            workspace=workspace,
            profile_id=item["profile_id"],
            channel=channel,
            purpose=purpose,
            template=item.get("template") or template,
            content=content_for(item.get("content"), item.get("template") or template),
            idempotency_key=item["idempotency_key"],
            decision_id=item.get("decision_id"),
            decision_action=item.get("decision_action") or "",
        )
        for item in items
        if item["idempotency_key"] not in before
    ]
    from rapport.channels import tasks

    with transaction.atomic():
        # A concurrent writer of the same key, committed first, wins: skipped here.
        Message.objects.bulk_create(rows, ignore_conflicts=True)
        made = list(
            Message.objects.filter(pk__in=[r.pk for r in rows])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for start in range(0, len(made), SEND_BATCH):
            tasks.messages_send.enqueue(
                message_ids=[str(pk) for pk in made[start : start + SEND_BATCH]]
            )
    return {m.idempotency_key: m for m in found}


# --- Sending --------------------------------------------------------------------------


def unsubscribe_token(message_id: Any) -> str:
    return tracking.signer(UNSUBSCRIBE_SALT).sign(uuid.UUID(str(message_id)).hex)


def unsubscribe_message_id(token: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(tracking.signer(UNSUBSCRIBE_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def public_url(path: str) -> str:
    base = getattr(settings, "RAPPORT_PUBLIC_URL", "") or "http://localhost:8000"
    return f"{base.rstrip('/')}{path}"


def _content_of(message: Message) -> dict[str, str]:
    """What the message says: the decided action's (its template or the content written
    on the message), its broadcast's, its template's, or its own content."""
    if message.decision_action:
        source = message.template if message.template_id is not None else None
    else:
        source = message.broadcast if message.broadcast_id is not None else message.template
    if source is not None:
        return content_of(source)
    return {k: message.content.get(k, "") for k in ("subject", "html", "text")}


@lru_cache(maxsize=16)
def _footer_words(language: str) -> tuple[str, str]:
    """The footer's sentence and link text in this language (each batch, not each
    message, asks the catalogue)."""
    return (
        gettext("Don't want these emails? Unsubscribe or choose what you receive:"),
        gettext("your email preferences"),
    )


def _unsubscribe_footer(html: str, text: str, url: str) -> tuple[str, str]:
    """Marketing mail always shows a way out: when the template does not place the
    unsubscribe link itself, a line with it closes the message (as HubSpot and
    Mautic add theirs)."""
    sentence, link_text = _footer_words(get_language() or "")
    if html and url not in html:
        footer = format_html(
            '<p style="font-size:12px;color:#666;margin-top:24px">{} <a href="{}">{}</a></p>',
            sentence,
            url,
            link_text,
        )
        closing = html.lower().rfind("</body>")
        html = html[:closing] + footer + html[closing:] if closing >= 0 else html + footer
    if text and url not in text:
        text = f"{text.rstrip()}\n\n--\n{sentence}\n{url}\n"
    return html, text


def _outgoing(
    message: Message, profile: Profile, address: str, *, context: dict | None = None
) -> dispatch.Outgoing:
    """The message rendered for the customer (`context`: theirs, read with the batch's)."""
    context = dict(context) if context is not None else profile_context(profile)
    # For the tags that make links of their own ({% next_best_action %}); a name with a
    # leading underscore, which a template's {{ variable }} cannot reach.
    context["_message_id"] = str(message.pk)
    context["_public_url"] = public_url("")
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
    # Compiled once for every message of the batch (and the process) with this content.
    rendered = compiled(**_content_of(message)).render(context)
    html, text = rendered.html, rendered.text
    if message.purpose == Purpose.MARKETING and message.channel == Channel.EMAIL:
        html, text = _unsubscribe_footer(html, text, context["unsubscribe_url"])
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
        text=text,
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


def _claimable(queryset, run_key: str, now: datetime):
    """Messages this task may claim: queued and due, or left `sending` by this same
    task (taken over after its worker died: resumed, under the same id)."""
    due = Q(status=Message.Status.QUEUED) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    if run_key:
        due |= Q(status=Message.Status.SENDING, claimed_by=run_key)
    return queryset.filter(due)


def _claim(ids: list, run_key: str, now: datetime) -> dict:
    """Claim these messages for this task in the current transaction: {id: attempts}
    for those claimed (others were taken, or are no longer due). A fresh claim counts
    an attempt; a resumed one does not."""
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        table = Message._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table}
                   SET status = 'sending', claimed_by = %s, claimed_at = %s, updated_at = %s,
                       attempts = CASE WHEN status = 'queued' THEN attempts + 1
                                       ELSE attempts END
                 WHERE id = ANY(%s::uuid[])
                   AND ((status = 'queued'
                         AND (next_attempt_at IS NULL OR next_attempt_at <= %s))
                        OR (status = 'sending' AND claimed_by = %s AND %s <> ''))
             RETURNING id, attempts
                """,  # noqa: S608 - the table name is the model's own
                [run_key, now, now, list(ids), now, run_key, run_key],
            )
            return dict(cursor.fetchall())
    # Elsewhere (SQLite: a transaction holds the write lock from its start) a locked
    # read, then the update of exactly what was read.
    found = list(
        _claimable(Message.objects.filter(pk__in=ids), run_key, now)
        .select_for_update()
        .values_list("pk", "status", "attempts")
    )
    fresh = [pk for pk, status, _ in found if status == Message.Status.QUEUED]
    Message.objects.filter(pk__in=[pk for pk, _, _ in found]).update(
        status=Message.Status.SENDING, claimed_by=run_key, claimed_at=now, updated_at=now
    )
    if fresh:
        Message.objects.filter(pk__in=fresh).update(attempts=F("attempts") + 1)
    return {
        pk: attempts + (1 if status == Message.Status.QUEUED else 0)
        for pk, status, attempts in found
    }


def _send_later(ids: list, at: datetime) -> None:
    from rapport.channels import tasks

    ids = [str(pk) for pk in ids]
    if len(ids) == 1:
        tasks.message_send.using(run_after=at).enqueue(message_id=ids[0])
    else:
        tasks.messages_send.using(run_after=at).enqueue(message_ids=ids)


# Consecutive retryable failures after which the rest of a batch is not tried (the
# server is down): it waits for the same retry as the last one.
GIVE_UP_AFTER = 3


def record_every() -> int:
    """Sent messages recorded per UPDATE. 1 (the default): each send is recorded as soon
    as the provider took it, so a worker killed mid-batch repeats at most the one send
    it was making (same id). More: fewer writes, and up to that many repeats."""
    return max(1, int(getattr(settings, "RAPPORT_MESSAGE_RECORD_EVERY", 1)))


_RECORD_SENT_SQL = f"""
    UPDATE {Message._meta.db_table}
       SET status = 'sent', sent_at = %s, provider_id = %s, subject = %s,
           error = '', updated_at = %s
     WHERE id = %s AND status = 'sending' AND claimed_by = %s
       AND set_config('synchronous_commit', 'off', true) IS NOT NULL
"""  # noqa: S608 - the table name is the model's own


_record_cursors: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _record_cursor():
    """A cursor of the driver's own on the database connection, kept with it: Django's
    cursors bind parameters on the client, so they cannot use a prepared statement,
    which is parsed and planned once per connection (half the statement's time at the
    server)."""
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    cursor = _record_cursors.get(raw)
    if cursor is None or cursor.closed:
        cursor = _record_cursors[raw] = psycopg.Cursor(raw)
    return cursor


def _record_sent(done: list[Message], run_key: str) -> None:
    """Messages sent (their `sent_at`, `provider_id` and `subject` set in memory):
    recorded if the claims are still ours."""
    if not done:
        return
    now = timezone.now()
    claimed = Message.objects.filter(status=Message.Status.SENDING, claimed_by=run_key)
    if len(done) == 1 and connection.vendor == "postgresql" and not connection.in_atomic_block:
        # One statement, its own transaction, committed without waiting for the WAL
        # to reach the disk (synchronous_commit off for it alone: the fsync, ~1-10 ms,
        # was most of a send's cost). A worker killed after it loses nothing (the
        # server has it); only a crash of the database server itself may lose the
        # last fraction of a second of records, and those sends are then made again
        # by the same task under the same id, as after a kill in flight.
        [message] = done
        _record_cursor().execute(
            _RECORD_SENT_SQL,
            [message.sent_at, message.provider_id, message.subject, now, message.pk, run_key],
            prepare=True,
        )
        return
    if len(done) == 1:
        [message] = done
        claimed.filter(pk=message.pk).update(
            status=Message.Status.SENT,
            sent_at=message.sent_at,
            provider_id=message.provider_id,
            subject=message.subject,
            error="",
            updated_at=now,
        )
        return

    def each(field: str, output_field):
        return Case(
            *[When(pk=m.pk, then=Value(getattr(m, field))) for m in done],
            output_field=output_field,
        )

    claimed.filter(pk__any=[m.pk for m in done]).update(
        status=Message.Status.SENT,
        sent_at=each("sent_at", DateTimeField()),
        provider_id=each("provider_id", CharField()),
        subject=each("subject", CharField()),
        error="",
        updated_at=now,
    )


# What the send path reads of a customer: not the traits' sources, not the dates.
_PROFILE_FIELDS = ("id", "workspace_id", "traits", "merged_into_id")


def _profiles_read(ids: set) -> dict:
    """{id: profile}, what the send path needs of each (`_PROFILE_FIELDS`), with no
    identifiers yet: `_identifiers_attach` gives them to those who need them."""
    profiles = {p.pk: p for p in Profile.objects.filter(pk__any=list(ids)).only(*_PROFILE_FIELDS)}
    _identifiers_attach(profiles.values(), read=False)
    return profiles


def _identifiers_attach(profiles, *, read: bool = True) -> None:
    """`profile.identifiers.all()` answered from memory for these profiles: what
    prefetch_related("identifiers") does, in one query, without the queryset it clones
    and filters for each profile (most of its cost at 200). `read=False`: none (most
    addresses are traits; the identifiers are read only for those that are not)."""
    from rapport.identity.models import Identifier

    profiles = list(profiles)
    held: dict = {}
    if read and profiles:
        for identifier in Identifier.objects.filter(profile_id__any=[p.pk for p in profiles]).only(
            "id", "profile_id", "kind", "value"
        ):
            held.setdefault(identifier.profile_id, []).append(identifier)
    cache_name = Profile.identifiers.rel.cache_name  # "identifiers"
    # One empty answer shared by those without any (read only, never changed).
    none = QuerySet(model=Identifier)
    none._result_cache, none._prefetch_done = [], True
    for profile in profiles:
        own = held.get(profile.pk)
        if own is None:
            found = none
        else:
            found = QuerySet(model=Identifier)
            found._result_cache, found._prefetch_done = own, True
        profile._prefetched_objects_cache = {cache_name: found}


# What the send path reads of a message (the dates it only writes are left out).
_MESSAGE_FIELDS = (
    "id",
    "workspace_id",
    "profile_id",
    "broadcast_id",
    "template_id",
    "channel",
    "purpose",
    "content",
    "decision_id",
    "decision_action",
    "status",
    "attempts",
    "claimed_by",
    "next_attempt_at",
)


@dataclasses.dataclass
class _Batch:
    """A batch read and decided, nothing written yet (`_batch_read`)."""

    statuses: dict  # {id: status} of those not due (and, later, of every one)
    broadcasts: set  # the broadcasts the batch belongs to
    no_transport: list = dataclasses.field(default_factory=list)
    skips: dict = dataclasses.field(default_factory=dict)  # {reason: [id]}
    waits: dict = dataclasses.field(default_factory=dict)  # {until: [id]}
    sends: list = dataclasses.field(
        default_factory=list
    )  # [(message, profile, address, transport)]


def _batch_read(message_ids: list, *, run_key: str, now: datetime) -> _Batch:
    """A few set-based reads for the whole batch (the messages, their customers,
    consent, suppressions, caps) and each message's verdict, decided in Python."""
    ids = list(dict.fromkeys(uuid.UUID(str(pk)) for pk in message_ids))
    messages = list(Message.objects.filter(pk__any=ids).only(*_MESSAGE_FIELDS).order_by("pk"))
    batch = _Batch(
        statuses=dict.fromkeys(ids, "gone"),
        broadcasts={m.broadcast_id for m in messages if m.broadcast_id},
    )
    statuses = batch.statuses
    due = []
    for message in messages:
        resumed = (
            message.status == Message.Status.SENDING and run_key and message.claimed_by == run_key
        )
        if message.status != Message.Status.QUEUED and not resumed:
            statuses[message.pk] = message.status
        elif not resumed and message.next_attempt_at and message.next_attempt_at > now:
            statuses[message.pk] = "waiting"
        else:
            due.append(message)
    if not due:
        return batch

    broadcasts = {
        b.pk: b
        for b in Broadcast.objects.filter(
            pk__in={m.broadcast_id for m in due if m.broadcast_id}
        ).select_related("template")
    }
    template_ids = {
        m.template_id for m in due if m.template_id and (not m.broadcast_id or m.decision_action)
    }
    templates = (
        {t.pk: t for t in Template.objects.filter(pk__in=template_ids)} if template_ids else {}
    )
    profiles = _profiles_read({m.profile_id for m in due if m.profile_id})
    survivors_wanted = {p.merged_into_id for p in profiles.values() if p.merged_into_id}
    survivors = _profiles_read(survivors_wanted) if survivors_wanted else {}

    items = []  # (message, profile, address, transport)
    no_transport = []
    for message in due:
        if message.broadcast_id:
            message.broadcast = broadcasts[message.broadcast_id]
        if message.template_id and (not message.broadcast_id or message.decision_action):
            message.template = templates.get(message.template_id)
        profile = profiles.get(message.profile_id) if message.profile_id else None
        if profile is not None and profile.merged_into_id is not None:
            # Merged since planning: the survivor is the customer.
            profile = survivors.get(profile.merged_into_id)
        transport = dispatch.transport_for(message.channel)
        if transport is None:
            no_transport.append(message)
            continue
        address = transport.address(profile) if profile is not None else None
        items.append([message, profile, address, transport])
    # No address among the traits: perhaps among the identifiers (read for these alone).
    lacking = [item for item in items if item[1] is not None and item[2] is None]
    if lacking:
        _identifiers_attach({item[1].pk: item[1] for item in lacking}.values())
        for item in lacking:
            item[2] = item[3].address(item[1])
    for item in items:
        if item[0].channel == Channel.WEBHOOK and item[2]:
            # A webhook goes to the url the message (or its broadcast) names.
            item[2] = webhook.webhook_url_of(item[0]) or None
    items = [tuple(item) for item in items]

    batch.no_transport = no_transport
    facts = rules.facts_read([(m, p, a) for m, p, a, _ in items], now=now)
    skips, waits, sends = batch.skips, batch.waits, batch.sends
    for message, profile, address, transport in items:
        if message.broadcast_id and message.broadcast.status == Broadcast.Status.CANCELLED:
            verdict = rules.Verdict(skip=rules.SkipReason.CANCELLED)
        else:
            verdict = rules.verdict(message=message, profile=profile, address=address, facts=facts)
        if verdict.skip:
            skips.setdefault(verdict.skip, []).append(message.pk)
        elif verdict.wait_until is not None:
            waits.setdefault(verdict.wait_until, []).append(message.pk)
        else:
            sends.append((message, profile, address, transport))
    return batch


def _decided(sends: list, statuses: dict, *, run_key: str, now: datetime) -> list:
    """The recipients of broadcasts whose content the decisions app chooses
    (`Broadcast.decide`) given theirs, the batch at once, just before it is sent (so
    that nobody the rules skip costs a decision, and a decision is as fresh as the
    send); a retried message keeps the action decided the first time. Those given
    nothing, when the broadcast has no content of its own, are skipped (`no_action`)."""
    wanted = [
        (message, profile)
        for message, profile, _, _ in sends
        if message.broadcast_id
        and message.broadcast.decide
        and not message.decision_id
        and profile is not None
    ]
    decider = hooks.content_deciders.get("broadcast")
    if not wanted or decider is None:
        return sends
    skipped = decider(sends=wanted, now=now)
    if skipped:
        claimed = Message.objects.filter(status=Message.Status.SENDING, claimed_by=run_key)
        by_reason: dict[str, list] = {}
        for pk, reason in skipped.items():
            by_reason.setdefault(reason, []).append(pk)
        for reason, pks in by_reason.items():
            claimed.filter(pk__in=pks).update(
                status=Message.Status.SKIPPED, skip_reason=reason, updated_at=timezone.now()
            )
            statuses.update(dict.fromkeys(pks, Message.Status.SKIPPED))
    return [s for s in sends if s[0].pk not in skipped]


def _batch_send(
    message_ids: list, session: dispatch.Session | None = None, touched: set | None = None
) -> dict:
    """Check the rules for a batch and send what they allow: {message id: status}.

    The batch read and decided (`_batch_read`), then in one transaction the claim of
    what is sent and the skips and waits; each send is recorded conditional on the
    claim (every `record_every()` sends)."""
    run_key = task_run_key()
    now = timezone.now()
    batch = _batch_read(message_ids, run_key=run_key, now=now)
    if touched is not None:
        touched.update(batch.broadcasts)
    statuses, no_transport = batch.statuses, batch.no_transport
    skips, waits, sends = batch.skips, batch.waits, batch.sends
    if not (no_transport or skips or waits or sends):
        return statuses
    with transaction.atomic():
        claimable = _claimable(Message.objects.all(), run_key, now)
        if no_transport:
            for message in no_transport:
                claimable.filter(pk=message.pk).update(
                    status=Message.Status.FAILED,
                    error=f"no transport for the {message.channel} channel",
                    updated_at=now,
                )
                statuses[message.pk] = Message.Status.FAILED
        for reason, skipped in skips.items():
            claimable.filter(pk__in=skipped).update(
                status=Message.Status.SKIPPED, skip_reason=reason, updated_at=now
            )
            statuses.update(dict.fromkeys(skipped, Message.Status.SKIPPED))
        for until, waiting in waits.items():
            # Deferred, not skipped: queued again (a resumed claim given up) for then.
            claimable.filter(pk__in=waiting).update(
                status=Message.Status.QUEUED, next_attempt_at=until, claimed_by="", updated_at=now
            )
            _send_later(waiting, until)
            statuses.update(dict.fromkeys(waiting, "waiting"))
        attempts = _claim([m.pk for m, _, _, _ in sends], run_key, now)
    sends = [s for s in sends if s[0].pk in attempts]
    for message, _, _, _ in sends:
        message.attempts = attempts[message.pk]
    sends = _decided(sends, statuses, run_key=run_key, now=now)
    if not sends:
        return statuses

    contexts = profile_contexts({p.pk: p for _, p, _, _ in sends}.values())
    own_session = session is None
    session = session or dispatch.Session()
    every = record_every()
    done: list = []  # sent, not yet recorded
    sent: list[Message] = []
    retries: dict[datetime, list] = {}  # {when: [(id, error, attempted)]}
    failed: list = []  # [(id, error)]
    in_a_row = 0
    last_when, last_error = now, ""
    try:
        for index, (message, profile, address, transport) in enumerate(sends):
            if in_a_row >= GIVE_UP_AFTER:
                # Not tried: the same wait as the last failure, the attempt not counted.
                for rest, _, _, _ in sends[index:]:
                    retries.setdefault(last_when, []).append((rest.pk, last_error, False))
                break
            try:
                outgoing = _outgoing(message, profile, address, context=contexts[profile.pk])
                result = transport.send(outgoing=outgoing, session=session)
            except dispatch.SendError as exc:
                error = str(exc)[:2000]
                if exc.retryable and message.attempts < max_attempts():
                    last_when = timezone.now() + retry_delay(message.attempts)
                    last_error = error
                    retries.setdefault(last_when, []).append((message.pk, error, True))
                    in_a_row += 1
                else:
                    failed.append((message.pk, error))
                continue
            except Exception as exc:
                # A template that fails at render time, a transport's bug: recorded, not lost.
                logger.exception("message %s could not be sent", message.pk)
                failed.append((message.pk, f"{type(exc).__name__}: {exc}"[:2000]))
                continue
            in_a_row = 0
            message.sent_at = timezone.now()
            message.provider_id = result.provider_id[:255]
            message.subject = outgoing.subject[:500]
            done.append(message)
            statuses[message.pk] = Message.Status.SENT
            sent.append(message)
            if len(done) >= every:
                _record_sent(done, run_key)
                done = []
    finally:
        if own_session:
            session.close()
        # Recorded even when the loop broke off: a send made is never forgotten.
        _record_sent(done, run_key)
        # On the customer's timeline and in the KPIs: one insert for the batch.
        channel_events.message_events_record(sent, "sent")
    claimed = Message.objects.filter(status=Message.Status.SENDING, claimed_by=run_key)
    with transaction.atomic():
        # One UPDATE per distinct error (a server down fails the batch the same way).
        by_error: dict[str, list] = {}
        for pk, error in failed:
            by_error.setdefault(error, []).append(pk)
        for error, pks in by_error.items():
            claimed.filter(pk__in=pks).update(
                status=Message.Status.FAILED, error=error, updated_at=timezone.now()
            )
            statuses.update(dict.fromkeys(pks, Message.Status.FAILED))
        for when, retried in retries.items():
            groups: dict[tuple, list] = {}
            for pk, error, attempted in retried:
                groups.setdefault((error, attempted), []).append(pk)
            for (error, attempted), pks in groups.items():
                claimed.filter(pk__in=pks).update(
                    status=Message.Status.QUEUED,
                    next_attempt_at=when,
                    claimed_by="",
                    error=error,
                    attempts=F("attempts") - (0 if attempted else 1),
                    updated_at=timezone.now(),
                )
                statuses.update(dict.fromkeys(pks, Message.Status.QUEUED))
            _send_later([pk for pk, _, _ in retried], when)
    return statuses


def message_send(*, message_id: Any, session: dispatch.Session | None = None) -> str:
    """Check the rules and send one message (a batch of one); its status afterwards."""
    statuses = _batch_send([message_id], session=session)
    return str(next(iter(statuses.values())))


def messages_send(*, message_ids: list) -> dict[str, int]:
    """A batch over shared connections; then the broadcasts it belongs to are
    closed if nothing of theirs is left to send."""
    counts: dict[str, int] = {}
    broadcasts: set = set()
    with dispatch.Session() as session:
        statuses = _batch_send(message_ids, session=session, touched=broadcasts)
    for status in statuses.values():
        counts[str(status)] = counts.get(str(status), 0) + 1
    for broadcast_id in broadcasts:
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
    url: str = "",
    conversion_event: str = "Order Completed",
    conversion_days: int = 7,
    decide: bool = False,
    decide_placement: str = "",
    actor: Actor,
) -> Broadcast:
    """A draft. `url`: a webhook broadcast's receiver (required, every recipient's
    signed call goes there); for push and in-app, the page the message opens.
    `decide`: each recipient's content is the action the decisions app gives them (on
    the broadcast's channel and `decide_placement`) when their message is sent; the
    broadcast's own content or template, optional then, goes to those given nothing."""
    if url and channel not in (Channel.WEBHOOK, Channel.PUSH, Channel.IN_APP):
        raise InvalidInputError(
            gettext("only webhook, push and in-app broadcasts have a url"), field="url"
        )
    if channel == Channel.WEBHOOK or url:
        _content_check(channel=channel, subject="", html="", text="x", url=url, url_field="url")
    name = name.strip()
    if not name:
        raise InvalidInputError(gettext("give the broadcast a name"), field="name")
    if channel not in Channel.values:
        raise InvalidInputError(
            gettext("unknown channel %(channel)r") % {"channel": channel}, field="channel"
        )
    if purpose not in Purpose.values:
        raise InvalidInputError(gettext("marketing or transactional"), field="purpose")
    if segment is None:
        raise InvalidInputError(gettext("choose a segment"), field="segment_id")
    conversion_event = (conversion_event or "").strip()
    if len(conversion_event) > 255:
        raise InvalidInputError(gettext("at most 255 characters"), field="conversion_event")
    if not isinstance(conversion_days, int) or not 1 <= conversion_days <= 90:
        raise InvalidInputError(gettext("a number of days from 1 to 90"), field="conversion_days")
    if template is not None:
        if template.channel != channel:
            raise InvalidInputError(
                gettext("the template is for %(template_channel)s, not %(channel)s")
                % {"template_channel": template.channel, "channel": channel},
                field="template_id",
            )
    elif not decide or subject or html or text:
        _content_check(
            channel=channel, subject=subject, html=html, text=text, url=url, url_field="url"
        )
    decide_placement = (decide_placement or "").strip()
    if len(decide_placement) > 100:
        raise InvalidInputError(gettext("at most 100 characters"), field="decide_placement")
    if decide_placement and not decide:
        raise InvalidInputError(
            gettext("a placement is for content decided by the engine"), field="decide_placement"
        )
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
            url=url,
            conversion_event=conversion_event,
            conversion_days=conversion_days,
            decide=bool(decide),
            decide_placement=decide_placement,
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


def _plan_page(broadcast: Broadcast, profile_ids: list) -> list:
    """Messages for one page of members (once: UNIQUE broadcast, profile), holdout
    decided as _held_out decides it; the ids of the page's messages still queued (new,
    or left from an earlier run)."""
    held = [_held_out(broadcast.pk, pk, broadcast.holdout) for pk in profile_ids]
    if connection.vendor == "postgresql":
        # One statement from arrays: no model instance or parameter per column and row.
        now = timezone.now()
        table = Message._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH made AS (
                  INSERT INTO {table} (id, workspace_id, profile_id, broadcast_id, channel,
                         purpose, template_id, content, subject, status, skip_reason,
                         attempts, error, provider_id, claimed_by, decision_action,
                         created_at, updated_at)
                  SELECT u.id, %s, u.profile_id, %s, %s, %s, %s, '{{}}'::jsonb, '',
                         CASE WHEN u.held THEN 'skipped' ELSE 'queued' END,
                         CASE WHEN u.held THEN 'holdout' ELSE '' END,
                         0, '', '', '', '', %s, %s
                    FROM unnest(%s::uuid[], %s::uuid[], %s::boolean[]) AS u(id, profile_id, held)
                  ON CONFLICT (broadcast_id, profile_id) WHERE broadcast_id IS NOT NULL
                  DO NOTHING
                  RETURNING id, profile_id, status
                )
                SELECT id FROM made WHERE status = 'queued'
                UNION ALL
                SELECT id FROM {table}
                 WHERE broadcast_id = %s AND profile_id = ANY(%s::uuid[]) AND status = 'queued'
                """,  # noqa: S608 - the table name is the model's own
                [
                    broadcast.workspace_id,
                    broadcast.pk,
                    broadcast.channel,
                    broadcast.purpose,
                    broadcast.template_id,
                    now,
                    now,
                    [uuid7() for _ in profile_ids],
                    profile_ids,
                    held,
                    broadcast.pk,
                    profile_ids,
                ],
            )
            # The second SELECT sees the rows as they were before this statement: those
            # of an earlier run only.
            return [str(row[0]) for row in cursor.fetchall()]
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
                    {"status": Message.Status.SKIPPED, "skip_reason": rules.SkipReason.HOLDOUT}
                    if out
                    else {}
                ),
            )
            for profile_id, out in zip(profile_ids, held, strict=True)
        ],
        ignore_conflicts=True,
    )
    return [
        str(pk)
        for pk in Message.objects.filter(
            broadcast_id=broadcast.pk, profile_id__in=profile_ids, status=Message.Status.QUEUED
        ).values_list("pk", flat=True)
    ]


def broadcast_plan(*, broadcast_id: Any) -> dict[str, int]:
    """A message per current member of the segment, a page of members at a time (memory
    flat: no list of every recipient), each page's queued messages handed to sending
    tasks of SEND_BATCH. Safe to run again: rows exist once (UNIQUE broadcast, profile)
    and a message is claimed once, whoever is asked to send it."""
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
    # Keyset pages over the segment's (segment, profile) WHERE left_at IS NULL index.
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
            queued = _plan_page(broadcast, profile_ids)
            for start in range(0, len(queued), SEND_BATCH):
                tasks.messages_send.enqueue(message_ids=queued[start : start + SEND_BATCH])
                batches += 1
        planned += len(profile_ids)
    Broadcast.objects.filter(pk=broadcast.pk).update(planned_at=timezone.now())
    broadcast_finish_check(broadcast_id=broadcast.pk)
    return {"planned": planned, "batches": batches}


def broadcast_finish_check(*, broadcast_id: Any) -> None:
    """Sent, once planned and nothing is left queued or being sent. Asked after every
    batch: two indexed lookups (the broadcast by id; one message of it still queued or
    sending, on channels_msg_bc_status), never a scan of the broadcast's messages."""
    if not Broadcast.objects.filter(
        pk=broadcast_id, status=Broadcast.Status.SENDING, planned_at__isnull=False
    ).exists():
        return
    if Message.objects.filter(
        broadcast_id=broadcast_id,
        status__in=[Message.Status.QUEUED, Message.Status.SENDING],
    ).exists():
        return
    Broadcast.objects.filter(
        pk=broadcast_id, status=Broadcast.Status.SENDING, planned_at__isnull=False
    ).update(status=Broadcast.Status.SENT, finished_at=timezone.now(), updated_at=timezone.now())


# --- The customer's answers -------------------------------------------------------------


def message_unsubscribe(
    *, message: Message, purposes: dict[str, bool] | None = None, extra: dict | None = None
) -> list[str]:
    """The customer's choice from a message's link: by default (RFC 8058's one-click
    POST) marketing on the message's channel is withdrawn at once; from the
    preference page, each purpose as they set it. The purposes changed. Withdrawing
    marketing is recorded as the customer's "Unsubscribed" event (with `extra` among
    its properties)."""
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
            channel_events.message_event_record(message, "unsubscribed", properties=extra)
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
    url: str = "",
    answered: bool = True,
) -> Message | None:
    """A provider's news about a message (anymail's normalised event types):
    delivered, opened, clicked (`url`: the link), bounced/rejected (the address is
    suppressed), deferred (a transient failure, such as a 4.x.x bounce: recorded, not
    suppressed), complained (suppressed, and marketing consent withdrawn),
    unsubscribed. Each is also an event of the customer (rapport/channels/events.py).
    The message it concerns, or None when it is not one of ours. Opens, clicks and
    deliveries are told to `hooks.answer_listeners` (the decided action's outcomes),
    unless `answered` is False (a click that records its own outcome)."""
    message = _message_for_event(provider_id=provider_id, metadata=metadata or {})
    if message is None:
        return None
    at = at or timezone.now()
    updates: dict[str, Any] = {}
    # (action, properties, key) of the customer's events.
    recorded: list[tuple[str, dict, str]] = []
    if event_type == "delivered":
        updates["delivered_at"] = at
        if message.status == Message.Status.SENT:
            updates["status"] = Message.Status.DELIVERED
        recorded.append(("delivered", {}, ""))
    elif event_type == "opened":
        if message.opened_at is None:
            updates["opened_at"] = at
        recorded.append(("opened", {}, ""))
    elif event_type == "clicked":
        if message.clicked_at is None:
            updates["clicked_at"] = at
        if message.opened_at is None:
            updates["opened_at"] = at
        # A click is also an open (the image may have been blocked).
        recorded += [("opened", {}, ""), ("clicked", {"url": url}, url)]
    elif event_type == "deferred":
        updates["error"] = description[:2000]
        recorded.append(
            ("bounced", {"bounce_type": "transient", "reason": description[:500]}, "transient")
        )
    elif event_type in ("bounced", "rejected", "complained"):
        if event_type != "complained":
            updates.update(status=Message.Status.BOUNCED, bounced_at=at)
            if description:
                updates["error"] = description[:2000]
            recorded.append(
                ("bounced", {"bounce_type": "permanent", "reason": description[:500]}, "")
            )
        else:
            recorded.append(("complained", {}, ""))
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
    for action, properties, key in recorded:
        channel_events.message_event_record(message, action, properties, at, key=key)
    if answered and event_type in ("opened", "clicked", "delivered"):
        hooks.message_answered(message, event_type, at)
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

    if provider and provider not in sms.PROVIDERS:
        raise InvalidInputError(gettext("twilio or vonage"), field="sms.provider")
    region = default_region.strip().upper() if default_region is not None else None
    if region and (len(region) != 2 or not region.isalpha()):
        raise InvalidInputError(
            gettext("a two-letter country code such as US"), field="sms.default_region"
        )

    def apply(found: EmailSettings) -> dict[str, Any]:
        if provider is not None and provider != found.sms_provider:
            found.sms_provider = provider
            if credentials is None:
                secret_put(found, SMS_CREDENTIALS, None)
        if credentials is not None:
            allowed = sms.CREDENTIAL_KEYS.get(found.sms_provider, set())
            for key, value in credentials.items():
                if key not in allowed or not isinstance(value, str):
                    raise InvalidInputError(
                        gettext("unknown credential %(key)r for this provider") % {"key": key},
                        field=f"sms.credentials.{key}",
                    )
            secret_put(found, SMS_CREDENTIALS, credentials)
        if sender is not None:
            found.sms_sender = sender.strip()
        if region is not None:
            found.sms_default_region = region
        if found.sms_provider and not found.sms_callback_token:
            found.sms_callback_token = secrets.token_urlsafe(24)
        return {"provider": found.sms_provider, "credentials_changed": credentials is not None}

    return _channel_settings_save(workspace, actor, "sms_settings.set", apply)


def webhook_secret_create(*, workspace: Workspace, actor: Actor) -> str:
    """A new signing secret for the workspace's webhooks, returned this once."""
    from rapport.channels.transports.webhooks import secret_generate

    secret = secret_generate()
    _channel_settings_save(
        workspace,
        actor,
        "webhook_secret.create",
        lambda found: secret_put(found, WEBHOOK_SECRET, secret),
    )
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


def _phone_holders(*, workspace_id: Any, number: str) -> tuple[str, list[Profile]]:
    """The number as E.164 and the live customers holding it: as an identifier, or as
    their `phone` trait written either way, "+44 20 7946 0000" or "020 7946 0000" (read
    in the workspace's region, `sms.phone_region`)."""
    from django.db.models import TextField, Value
    from django.db.models.fields.json import KeyTextTransform
    from django.db.models.functions import Replace

    from rapport.channels.sms import phone_normalised, phone_of, phone_region
    from rapport.channels.transports.sms import e164_or_raw
    from rapport.identity.models import Identifier

    number = e164_or_raw(number)
    region = phone_region(workspace_id)
    holders = set(
        Identifier.objects.filter(
            workspace_id=workspace_id, kind="phone", value=number
        ).values_list("profile_id", flat=True)
    )
    # The trait as stored, without its punctuation, ends with the national number.
    national = ""
    if number.startswith("+"):
        import phonenumbers

        try:
            national = str(phonenumbers.parse(number, None).national_number)
        except phonenumbers.NumberParseException:
            national = ""
    digits: Any = KeyTextTransform("phone", "traits")
    for mark in (" ", "-", "(", ")", ".", "/", "\u00a0"):
        digits = Replace(digits, Value(mark), Value(""), output_field=TextField())
    wanted = Q(traits__phone=number)
    if len(national) >= 6:
        wanted |= Q(phone_digits__endswith=national)
    holders |= set(
        Profile.objects.filter(workspace_id=workspace_id)
        .annotate(phone_digits=digits)
        .filter(wanted)
        .values_list("pk", flat=True)
    )
    found = []
    for profile in Profile.objects.filter(pk__in=holders).prefetch_related("identifiers"):
        if profile.merged_into_id is not None:
            continue
        own = {phone_of(profile, region)}
        own.add(phone_normalised((profile.traits or {}).get("phone"), region))
        if number in own:
            found.append(profile)
    return number, found


def _latest_sms(profile: Profile) -> Message | None:
    return (
        Message.objects.filter(
            workspace_id=profile.workspace_id, profile_id=profile.pk, channel=Channel.SMS
        )
        .exclude(sent_at__isnull=True)
        .order_by("-sent_at")
        .first()
    )


def sms_opt_out(*, workspace_id: Any, number: str, text: str = "", reply_id: str = "") -> int:
    """A STOP reply: SMS marketing withdrawn for each customer holding the number
    (E.164 or stored in national format), recorded as the customer's own statement, and
    as their "SMS Replied" and "Unsubscribed" events on the last SMS they were sent. How
    many customers."""
    number, profiles = _phone_holders(workspace_id=workspace_id, number=number)
    actor = Actor.system(f"customer (SMS reply {text.strip()[:20]!r} from {number})")
    count = 0
    with transaction.atomic():
        for profile in profiles:
            consent_set(
                profile=profile,
                channel="sms",
                purpose=Purpose.MARKETING,
                status="denied",
                actor=actor,
            )
            count += 1
    for profile in profiles:
        latest = _latest_sms(profile)
        if latest is not None:
            channel_events.message_event_record(
                latest, "replied", {"text": text[:500]}, key=reply_id or timezone.now().isoformat()
            )
            channel_events.message_event_record(latest, "unsubscribed", {"reply": text[:500]})
    return count


def sms_reply_record(*, workspace_id: Any, number: str, text: str = "", reply_id: str = "") -> int:
    """An ordinary reply to an SMS: the "SMS Replied" event of each customer holding the
    number, on the last SMS they were sent (none if they were never sent one). How many
    customers."""
    number, profiles = _phone_holders(workspace_id=workspace_id, number=number)
    count = 0
    for profile in profiles:
        latest = _latest_sms(profile)
        if latest is not None and channel_events.message_event_record(
            latest, "replied", {"text": text[:500]}, key=reply_id or timezone.now().isoformat()
        ):
            count += 1
    return count


# --- Erasure ------------------------------------------------------------------------------


def messages_erase(*, workspace_id: Any, profile_ids: list, identifiers: list) -> dict[str, int]:
    """A person erased (rapport/identity/services.py `profile_erase`): their messages
    keep their rows (the broadcasts' counts stay) but lose what they said and what
    names the person: subject, content, error text, and a provider id that carries their
    address; the local outbox's mail to them is deleted. Their events go with the rest of
    their events. How many messages and outbox mails."""
    from email.utils import parseaddr

    from rapport.channels.sms import phone_normalised

    addresses = {
        str(value).strip().lower()
        for kind, value in identifiers
        if kind in ("email", "phone") and value
    }
    for traits in Profile.objects.filter(pk__in=profile_ids).values_list("traits", flat=True):
        traits = traits if isinstance(traits, dict) else {}
        for key in ("email", "phone"):
            value = traits.get(key)
            if isinstance(value, str) and value.strip():
                addresses.add(value.strip().lower())
                if key == "phone" and (number := phone_normalised(value)):
                    addresses.add(number)
    messages = Message.objects.filter(workspace_id=workspace_id, profile_id__in=profile_ids)
    provider_ids = {p for p in messages.values_list("provider_id", flat=True) if p}
    carrying = [
        pk
        for pk, provider_id in messages.exclude(provider_id="").values_list("pk", "provider_id")
        if any(address in provider_id.lower() for address in addresses)
    ]
    if carrying:
        Message.objects.filter(pk__in=carrying).update(provider_id="")
    count = messages.update(subject="", content={}, error="", updated_at=timezone.now())
    outbox = OutboxMail.objects.filter(workspace_id=workspace_id)
    to_them = Q(message_id__in=provider_ids) if provider_ids else Q(pk__in=[])
    for address in addresses:
        if "@" in address:
            to_them |= Q(to__icontains=address)
    # icontains over the JSON text narrows; each recipient is checked exactly.
    doomed = [
        pk
        for pk, message_id, to in outbox.filter(to_them).values_list("pk", "message_id", "to")
        if message_id in provider_ids
        or any(parseaddr(str(recipient))[1].lower() in addresses for recipient in to or [])
    ]
    deleted, _ = OutboxMail.objects.filter(pk__in=doomed).delete()
    return {"messages": count, "outbox": deleted}
