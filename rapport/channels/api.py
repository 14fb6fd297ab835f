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
from rapport.core.errors import InvalidInputError
from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.identity.selectors import customer_resolve
from rapport.profiles.models import Profile
from rapport.segments import selectors as segment_selectors

ChannelName = Literal["email", "sms", "push", "webhook", "in_app"]
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
    html: str = Field(
        "", max_length=500_000, description="The body as written: HTML, or MJML (format mjml)"
    )
    text: str = Field("", max_length=100_000)
    format: Literal["html", "mjml"] = Field(
        "html", description="mjml: `html` is MJML, compiled to responsive HTML when saved"
    )


class TemplateOut(Schema):
    id: uuid.UUID
    name: str
    channel: str
    subject: str
    format: str
    source: str = Field(description="The MJML as written (format mjml), else empty")
    html: str = Field(description="The HTML sent (compiled from the MJML for format mjml)")
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
    url: str = Field(
        "",
        max_length=2000,
        description="webhook: the receiver each recipient's signed call goes to (required); "
        "push and in_app: the page the message opens",
    )
    conversion_event: str = Field(
        "Order Completed",
        max_length=255,
        description="The event that counts as a conversion (recipients against the holdout)",
    )
    conversion_days: int = Field(
        7, ge=1, le=90, strict=True, description="Days after the send in which a conversion counts"
    )
    decide: bool = Field(
        False,
        strict=True,
        description="Each recipient's content is the next best action the decision engine "
        "gives them when their message is sent; the broadcast's own content (optional then) "
        "goes to those given nothing",
    )
    decide_placement: str = Field(
        "", max_length=100, description="The placement the engine decides for (with decide)"
    )


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


class BroadcastConversions(Schema):
    event: str
    days: int
    sent: int = Field(description="Recipients the message reached")
    sent_converted: int
    sent_rate: float | None = Field(description="Share of recipients who converted")
    holdout: int = Field(description="Members kept as the control group")
    holdout_converted: int
    holdout_rate: float | None
    lift: float | None = Field(
        description="(sent_rate - holdout_rate) / holdout_rate: 0.25 is 25% more conversions"
    )


class BroadcastOut(Schema):
    id: uuid.UUID
    name: str
    channel: str
    purpose: str
    segment_id: uuid.UUID | None
    template_id: uuid.UUID | None
    subject: str
    url: str
    status: str
    holdout: float
    send_at: datetime | None
    planned_at: datetime | None
    finished_at: datetime | None
    conversion_event: str
    conversion_days: int
    decide: bool
    decide_placement: str
    created_by: str
    created_at: datetime
    stats: BroadcastStats
    conversions: BroadcastConversions | None = Field(
        description="Conversions of recipients against the holdout; null before the send"
    )


router = Router(tags=["messages"])


def _profile_of(request: HttpRequest, payload: MessageIn) -> Profile:
    """The customer named by profile id or user id (after a merge, the survivor)."""
    return customer_resolve(
        workspace=request.auth.workspace, profile_id=payload.profile_id, user_id=payload.user_id
    )


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
    out = {
        f: getattr(broadcast, f)
        for f in BroadcastOut.model_fields
        if f not in ("stats", "conversions")
    }
    out["stats"] = selectors.broadcast_stats(
        workspace=broadcast.workspace, broadcast_id=broadcast.pk
    )
    out["conversions"] = selectors.broadcast_conversions(broadcast)
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
        url=payload.url,
        conversion_event=payload.conversion_event,
        conversion_days=payload.conversion_days,
        decide=payload.decide,
        decide_placement=payload.decide_placement,
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
    from rapport.channels.secrets import SMS_CREDENTIALS, WEBHOOK_SECRET, secret_is_set
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
            "credentials_set": secret_is_set(found, SMS_CREDENTIALS),
            "callback_url": services.public_url(callback_path(found)) if found.sms_provider else "",
        },
        "webhook_secret_set": secret_is_set(found, WEBHOOK_SECRET),
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


# --- The suppression list -----------------------------------------------------------------


class SuppressionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "sms"] = "email"
    address: str = Field(
        min_length=1,
        max_length=320,
        description="An email, or a phone number (E.164, or national with the "
        "workspace's default SMS region)",
    )
    reason: Literal["manual"] = "manual"
    detail: str = Field("", max_length=2000, description="Why (for the people who read the list)")


class SuppressionOut(Schema):
    id: uuid.UUID
    channel: str
    address: str = Field(description="Masked for roles without pii.read")
    reason: str = Field(description='"bounce", "complaint" or "manual"')
    detail: str
    created_at: datetime


class _ShownSuppressions:
    """A page of suppressions as the caller may see them: addresses masked for roles
    without pii.read (counted and sliced as the queryset is)."""

    def __init__(self, queryset, principal):
        self.queryset, self.principal = queryset, principal

    def count(self) -> int:
        return self.queryset.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key):
        return [_suppression_out(row, self.principal) for row in self.queryset[key]]


def _suppression_out(row, principal) -> dict:
    from rapport.tenancy.pii import shown_text

    out = {f: getattr(row, f) for f in SuppressionOut.model_fields}
    out["address"] = shown_text(principal, row.address)
    out["detail"] = shown_text(principal, row.detail)
    return out


@router.get(
    "/suppressions",
    response=list[SuppressionOut],
    summary="Addresses never written to again, newest first",
)
@paginate(LimitOffsetPagination)
def suppression_list(
    request: HttpRequest,
    channel: ChannelName | None = None,
    q: str | None = None,
):
    """`?q=` finds the addresses that contain it."""
    request.auth.require("messages.read")
    if q is not None and len(q) > 320:
        raise InvalidInputError(gettext("at most 320 characters"), field="q")
    found = selectors.suppression_list(workspace=request.auth.workspace, channel=channel, q=q)
    return _ShownSuppressions(found, request.auth)


@router.post(
    "/suppressions",
    response={201: SuppressionOut},
    summary="Suppress an address by hand: nothing is sent to it again on its channel",
)
def suppression_create(request: HttpRequest, payload: SuppressionIn):
    request.auth.require("channels.manage")
    row = services.suppression_add(
        workspace_id=request.auth.workspace.pk,
        channel=payload.channel,
        address=payload.address,
        reason=payload.reason,
        detail=payload.detail,
        actor=request.auth.actor,
    )
    return Status(201, _suppression_out(row, request.auth))


@router.delete(
    "/suppressions/{suppression_id}",
    response={204: None},
    summary="Take an address off the suppression list",
)
def suppression_delete(request: HttpRequest, suppression_id: uuid.UUID):
    request.auth.require("channels.manage")
    row = selectors.suppression_get(workspace=request.auth.workspace, suppression_id=suppression_id)
    services.suppression_remove(suppression=row, actor=request.auth.actor)
    return Status(204, None)
