"""Messages, broadcasts and templates over the API.

`POST /messages` sends one message (a receipt, a password reset) and answers 201 with
it, or 200 with the message the same `idempotency_key` made before (nothing is sent
twice). Broadcasts are created as drafts, then sent now or at a time; their results
are counted in `stats`."""

import math
import uuid
from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Router, Schema, Status
from pydantic import AwareDatetime, ConfigDict, StrictInt, field_validator, model_validator

from rapport.channels import selectors, services
from rapport.channels.models import Broadcast
from rapport.core.errors import InvalidInputError, NotFoundError
from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.identity.models import Identifier
from rapport.profiles import selectors as profile_selectors
from rapport.profiles.models import Profile
from rapport.segments import selectors as segment_selectors

ChannelName = Literal["email", "sms", "push", "webhook"]
PurposeName = Literal["marketing", "transactional"]


CONTENT_LIMITS = {"subject": 500, "html": 500_000, "text": 100_000, "url": 2000}


class MessageIn(Schema):
    model_config = ConfigDict(extra="forbid")

    profile_id: uuid.UUID | None = None
    user_id: str | None = Field(None, min_length=1, max_length=255)
    channel: ChannelName = "email"
    purpose: PurposeName = "transactional"
    template_id: uuid.UUID | None = None
    content: dict[str, Any] | None = Field(
        None,
        description='The message itself, without a template: {"subject", "html", "text"}; '
        'a webhook names its receiver: {"url", "text"}',
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="The same key answers the same message, and sends nothing more",
    )

    @field_validator("content", mode="before")
    @classmethod
    def _content_shape(cls, value):
        if value is None:
            return value
        if not isinstance(value, dict):
            raise ValueError(gettext('an object: {"subject", "html", "text"}'))
        for key, part in value.items():
            if key not in CONTENT_LIMITS:
                raise ValueError(
                    gettext("unknown part %(key)r: give subject, html, text or url") % {"key": key}
                )
            if not isinstance(part, str) or len(part) > CONTENT_LIMITS[key]:
                raise ValueError(
                    gettext("%(key)s must be text of at most %(limit)s characters")
                    % {"key": key, "limit": CONTENT_LIMITS[key]}
                )
        return value

    @model_validator(mode="after")
    def _one_of_each(self):
        if (self.profile_id is None) == (self.user_id is None):
            raise ValueError(gettext("give profile_id or user_id (one of them)"))
        if (self.template_id is None) == (self.content is None):
            raise ValueError(gettext("give template_id or content (one of them)"))
        return self


class MessageOut(Schema):
    id: uuid.UUID
    profile_id: uuid.UUID | None
    broadcast_id: uuid.UUID | None
    channel: str
    purpose: str
    template_id: uuid.UUID | None
    status: str
    skip_reason: str
    attempts: int
    error: str
    provider_id: str
    subject: str = Field(description="As sent (personalised); empty until sent")
    idempotency_key: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None


class TemplateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: ChannelName = "email"
    subject: str = Field("", max_length=500)
    html: str = Field("", max_length=500_000)
    text: str = Field("", max_length=100_000)


class TemplateOut(Schema):
    id: uuid.UUID
    name: str
    channel: str
    subject: str
    html: str
    text: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class BroadcastIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: ChannelName = "email"
    purpose: PurposeName = "marketing"
    segment_id: uuid.UUID
    template_id: uuid.UUID | None = None
    subject: str = Field("", max_length=500)
    body: str = Field("", max_length=500_000, description="The HTML body")
    text: str = Field("", max_length=100_000, description="Plain text (made from body if empty)")


class BroadcastSendIn(Schema):
    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime | None = Field(
        None, description="When to send, with its time zone (default: now)"
    )
    holdout: float = Field(0.0, ge=0, le=0.5, description="Share kept as a control group")

    @field_validator("at", mode="before")
    @classmethod
    def _at_is_text(cls, value):
        # Not a number of seconds: a time a person can read back.
        if value is not None and not isinstance(value, str):
            raise ValueError(gettext("an ISO 8601 time such as 2026-05-01T09:00:00Z"))
        return value


class BroadcastStats(Schema):
    targeted: int
    sent: int
    delivered: int
    skipped: dict[str, int]
    failed: int
    opened: int
    clicked: int
    unsubscribed: int
    bounced: int
    queued: int


class BroadcastOut(Schema):
    id: uuid.UUID
    name: str
    channel: str
    purpose: str
    segment_id: uuid.UUID | None
    template_id: uuid.UUID | None
    subject: str
    status: str
    holdout: float
    send_at: datetime | None
    planned_at: datetime | None
    finished_at: datetime | None
    created_by: str
    created_at: datetime
    stats: BroadcastStats


router = Router(tags=["messages"])


def _profile_of(request: HttpRequest, payload: MessageIn) -> Profile:
    workspace = request.auth.workspace
    if payload.profile_id is not None:
        profile = profile_selectors.profile_get(workspace=workspace, profile_id=payload.profile_id)
    else:
        holder = (
            Identifier.objects.filter(workspace=workspace, kind="user_id", value=payload.user_id)
            .values_list("profile_id", flat=True)
            .first()
        )
        if holder is None:
            raise NotFoundError(
                gettext("No customer with user_id %(user_id)r in this workspace")
                % {"user_id": payload.user_id}
            )
        profile = profile_selectors.profile_get(workspace=workspace, profile_id=holder)
    while profile.merged_into_id is not None:
        profile = profile_selectors.profile_get(
            workspace=workspace, profile_id=profile.merged_into_id
        )
    return profile


@router.post(
    "/messages",
    response={200: MessageOut, 201: MessageOut},
    summary="Send one message to a customer",
)
def message_create(request: HttpRequest, payload: MessageIn):
    request.auth.require("messages.send")
    workspace = request.auth.workspace
    profile = _profile_of(request, payload)
    template = (
        selectors.template_get(workspace=workspace, template_id=payload.template_id)
        if payload.template_id
        else None
    )
    message, created = services.message_create(
        workspace=workspace,
        profile=profile,
        channel=payload.channel,
        purpose=payload.purpose,
        template=template,
        content=payload.content,
        idempotency_key=payload.idempotency_key,
        actor=request.auth.actor,
    )
    return Status(201 if created else 200, message)


MessageStatusName = Literal[
    "queued", "sending", "sent", "delivered", "skipped", "failed", "bounced"
]


@router.get("/messages", response=list[MessageOut], summary="Messages, newest first")
@paginate(LimitOffsetPagination)
def message_list(
    request: HttpRequest,
    channel: ChannelName | None = None,
    status: MessageStatusName | None = None,
):
    """`?channel=webhook&status=failed` is the webhooks' dead-letter list."""
    request.auth.require("messages.read")
    return selectors.message_list(workspace=request.auth.workspace, channel=channel, status=status)


@router.post(
    "/messages/{message_id}/retry", response=MessageOut, summary="Send a failed message again"
)
def message_retry(request: HttpRequest, message_id: uuid.UUID):
    request.auth.require("messages.send")
    message = selectors.message_get(workspace=request.auth.workspace, message_id=message_id)
    return services.message_retry(message=message, actor=request.auth.actor)


@router.get("/messages/{message_id}", response=MessageOut, summary="A message and its status")
def message_get(request: HttpRequest, message_id: uuid.UUID):
    request.auth.require("messages.read")
    return selectors.message_get(workspace=request.auth.workspace, message_id=message_id)


@router.get("/templates", response=list[TemplateOut], summary="Message templates")
@paginate(LimitOffsetPagination)
def template_list(request: HttpRequest):
    request.auth.require("messages.read")
    return selectors.template_list(workspace=request.auth.workspace)


@router.post("/templates", response={201: TemplateOut}, summary="Write a template")
def template_create(request: HttpRequest, payload: TemplateIn):
    request.auth.require("templates.write")
    template = services.template_create(
        workspace=request.auth.workspace, actor=request.auth.actor, **payload.dict()
    )
    return Status(201, template)


@router.get("/templates/{template_id}", response=TemplateOut, summary="A template")
def template_get(request: HttpRequest, template_id: uuid.UUID):
    request.auth.require("messages.read")
    return selectors.template_get(workspace=request.auth.workspace, template_id=template_id)


def _broadcast_out(broadcast: Broadcast) -> dict:
    out = {f: getattr(broadcast, f) for f in BroadcastOut.model_fields if f != "stats"}
    out["stats"] = selectors.broadcast_stats(
        workspace=broadcast.workspace, broadcast_id=broadcast.pk
    )
    return out


@router.get("/broadcasts", response=list[BroadcastOut], summary="Broadcasts, newest first")
@paginate(LimitOffsetPagination)
def broadcast_list(request: HttpRequest):
    request.auth.require("messages.read")
    return [_broadcast_out(b) for b in selectors.broadcast_list(workspace=request.auth.workspace)]


@router.post("/broadcasts", response={201: BroadcastOut}, summary="Write a broadcast (a draft)")
def broadcast_create(request: HttpRequest, payload: BroadcastIn):
    request.auth.require("templates.write")
    workspace = request.auth.workspace
    segment = segment_selectors.segment_get(workspace=workspace, segment_id=payload.segment_id)
    template = (
        selectors.template_get(workspace=workspace, template_id=payload.template_id)
        if payload.template_id
        else None
    )
    broadcast = services.broadcast_create(
        workspace=workspace,
        name=payload.name,
        channel=payload.channel,
        purpose=payload.purpose,
        segment=segment,
        template=template,
        subject=payload.subject,
        html=payload.body,
        text=payload.text,
        actor=request.auth.actor,
    )
    return Status(201, _broadcast_out(broadcast))


@router.get("/broadcasts/{broadcast_id}", response=BroadcastOut, summary="A broadcast and results")
def broadcast_get(request: HttpRequest, broadcast_id: uuid.UUID):
    request.auth.require("messages.read")
    return _broadcast_out(
        selectors.broadcast_get(workspace=request.auth.workspace, broadcast_id=broadcast_id)
    )


@router.post(
    "/broadcasts/{broadcast_id}/send",
    response=BroadcastOut,
    summary="Send a draft broadcast now or at a time",
)
def broadcast_send(request: HttpRequest, broadcast_id: uuid.UUID, payload: BroadcastSendIn):
    request.auth.require("messages.send")
    broadcast = selectors.broadcast_get(workspace=request.auth.workspace, broadcast_id=broadcast_id)
    return _broadcast_out(
        services.broadcast_send(
            broadcast=broadcast, actor=request.auth.actor, at=payload.at, holdout=payload.holdout
        )
    )


@router.post(
    "/broadcasts/{broadcast_id}/cancel",
    response=BroadcastOut,
    summary="Cancel a broadcast: what is not sent yet is not sent",
)
def broadcast_cancel(request: HttpRequest, broadcast_id: uuid.UUID):
    request.auth.require("messages.send")
    broadcast = selectors.broadcast_get(workspace=request.auth.workspace, broadcast_id=broadcast_id)
    return _broadcast_out(services.broadcast_cancel(broadcast=broadcast, actor=request.auth.actor))


class ChannelSettingsOut(Schema):
    from_email: str
    from_name: str
    reply_to: str
    transport: str = Field(
        description="The workspace's own mail transport, password and keys hidden "
        "(empty: the install's)"
    )
    caps: dict[str, dict[str, float]] = Field(
        description='Marketing per customer: {"email": {"max": 2, "days": 7}}'
    )
    quiet_start: int
    quiet_end: int
    timezone: str
    sms: "SmsSettingsOut"
    webhook_secret_set: bool = Field(description="Whether webhooks have a signing secret")
    webhook_secret: str | None = Field(
        None, description="The new signing secret (whsec_...), only in the answer that made it"
    )


class SmsSettingsOut(Schema):
    provider: str = Field(description='"twilio", "vonage" or "" (SMS off)')
    sender: str
    default_region: str
    credentials_set: bool = Field(description="The credentials are stored (never shown)")
    callback_url: str = Field(
        description="Where the provider sends delivery reports and replies (STOP)"
    )


class SmsSettingsPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["twilio", "vonage", ""] | None = None
    credentials: dict[str, str] | None = Field(
        None,
        description="twilio: account_sid, auth_token (or api_key_sid, api_key_secret), "
        "messaging_service_sid; vonage: api_key, api_secret (or application_id, "
        "private_key), signature_secret. Stored encrypted, never shown again.",
    )
    sender: str | None = Field(None, max_length=32)
    default_region: str | None = Field(None, max_length=2)


class ChannelSettingsPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    from_email: str | None = Field(None, max_length=254)
    from_name: str | None = Field(None, max_length=200)
    reply_to: str | None = Field(None, max_length=254)
    transport_url: str | None = Field(
        None,
        max_length=2000,
        description="smtp://user:pass@host:port, smtp+tls://, smtps://, anymail://<esp>?…; "
        '"" for the install\'s. Stored encrypted, never shown again.',
    )
    caps: dict[str, dict[str, float]] | None = None
    quiet_start: StrictInt | None = Field(None, ge=0, le=23)
    quiet_end: StrictInt | None = Field(None, ge=0, le=23)
    timezone: str | None = Field(None, min_length=1, max_length=64)
    sms: SmsSettingsPatch | None = None
    webhook_secret_create: bool = Field(
        False, description="Make a new webhook signing secret, shown once in the answer"
    )


ChannelSettingsOut.model_rebuild()


def _settings_out(workspace, *, webhook_secret: str | None = None) -> dict:
    from rapport.channels.sms import callback_path

    found = selectors.email_settings_get(workspace=workspace)
    policy = selectors.contact_policy_get(workspace=workspace)
    return {
        "from_email": found.from_email,
        "from_name": found.from_name,
        "reply_to": found.reply_to,
        "transport": found.transport_label,
        "caps": policy.caps,
        "quiet_start": policy.quiet_start,
        "quiet_end": policy.quiet_end,
        "timezone": policy.timezone,
        "sms": {
            "provider": found.sms_provider,
            "sender": found.sms_sender,
            "default_region": found.sms_default_region,
            "credentials_set": bool(found.sms_credentials_encrypted),
            "callback_url": services.public_url(callback_path(found)) if found.sms_provider else "",
        },
        "webhook_secret_set": bool(found.webhook_secret_encrypted),
        "webhook_secret": webhook_secret,
    }


@router.get(
    "/channels/settings", response=ChannelSettingsOut, summary="Sender, transport and policy"
)
def channel_settings_get(request: HttpRequest):
    request.auth.require("messages.read")
    return _settings_out(request.auth.workspace)


@router.patch(
    "/channels/settings",
    response=ChannelSettingsOut,
    summary="Change the sender, the mail transport or the contact policy",
)
def channel_settings_patch(request: HttpRequest, payload: ChannelSettingsPatch):
    request.auth.require("channels.manage")
    workspace, actor = request.auth.workspace, request.auth.actor
    for field in ("from_email", "reply_to"):
        value = getattr(payload, field)
        if value and "@" not in value:
            raise InvalidInputError(gettext("an email address"), field=field)
    caps = None
    if payload.caps is not None:
        caps = {}
        for channel, cap in payload.caps.items():
            if not all(math.isfinite(v) and 0 <= v <= 10_000 for v in cap.values()):
                raise InvalidInputError(gettext("numbers from 0 to 10000"), field=f"caps.{channel}")
            caps[channel] = {k: (int(v) if k == "max" else v) for k, v in cap.items()}
    # Both or neither: a policy refused leaves the sender as it was.
    with transaction.atomic():
        _settings_set(workspace, actor, payload, caps)
        if payload.sms is not None:
            services.sms_settings_set(
                workspace=workspace,
                actor=actor,
                provider=payload.sms.provider,
                credentials=payload.sms.credentials,
                sender=payload.sms.sender,
                default_region=payload.sms.default_region,
            )
        secret = (
            services.webhook_secret_create(workspace=workspace, actor=actor)
            if payload.webhook_secret_create
            else None
        )
    return _settings_out(workspace, webhook_secret=secret)


def _settings_set(workspace, actor, payload: ChannelSettingsPatch, caps) -> None:
    services.email_settings_set(
        workspace=workspace,
        actor=actor,
        from_email=payload.from_email,
        from_name=payload.from_name,
        reply_to=payload.reply_to,
        transport_url=payload.transport_url,
    )
    services.contact_policy_set(
        workspace=workspace,
        actor=actor,
        caps=caps,
        quiet_start=payload.quiet_start,
        quiet_end=payload.quiet_end,
        timezone_name=payload.timezone,
    )


ROUTERS = [("v1", router)]
