"""Management API for the workspace itself: who am I, members, API tokens, sources and
their write keys, and the audit log."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, File, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import AwareDatetime, ConfigDict

from rapport.core.errors import InvalidInputError
from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.core.types import IsoDatetime
from rapport.tenancy import commerce, selectors, services
from rapport.tenancy.links import public_base_url
from rapport.tenancy.models import Source
from rapport.tenancy.origins import MAX_PATTERNS as MAX_ORIGIN_PATTERNS
from rapport.tenancy.permissions import Role

# --- Schemas --------------------------------------------------------------------------


class InputSchema(Schema):
    # A misspelt field is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class WorkspaceOut(Schema):
    id: uuid.UUID
    name: str
    created_at: datetime


class WorkspaceIn(InputSchema):
    name: str = Field(min_length=1, max_length=100)


class UserRef(Schema):
    id: uuid.UUID
    email: str
    name: str


class TokenRef(Schema):
    id: uuid.UUID
    name: str


class MeOut(Schema):
    workspace: WorkspaceOut
    role: Role
    permissions: list[str]
    user: UserRef | None
    token: TokenRef | None


class MemberOut(Schema):
    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime

    @staticmethod
    def resolve_email(obj) -> str:
        return obj.user.email

    @staticmethod
    def resolve_name(obj) -> str:
        return obj.user.name


class InvitationIn(InputSchema):
    email: str = Field(max_length=254, description="Where the invitation is mailed")
    role: Role


class InvitationOut(Schema):
    id: uuid.UUID
    email: str
    role: Role
    # A Literal, not the model's TextChoices: OpenAPI would name that enum "Status" and
    # clash with another app's.
    status: Literal["pending", "accepted", "revoked", "expired"]
    invited_by: str = Field(alias="invited_by_label")
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class InvitationFilter(Schema):
    include_closed: bool = Field(False, description="Also accepted, revoked and expired ones")


class MemberPatch(InputSchema):
    role: Role


class TokenOut(Schema):
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIn(InputSchema):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    expires_at: AwareDatetime | None = None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The token itself. Shown this once; store it safely.")


class TokenFilter(Schema):
    include_revoked: bool = False


class WriteKeyOut(Schema):
    id: uuid.UUID
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class WriteKeyCreatedOut(WriteKeyOut):
    write_key: str = Field(description="The write key itself. Shown this once.")


ORIGINS_HELP = (
    "The web pages whose browsers may send this source's events (CORS): exact origins "
    '("https://shop.example.com"), subdomain wildcards ("https://*.example.com"), or "*" '
    "for any origin. An empty list refuses every browser (servers and mobile apps, which "
    "send no Origin, are not affected)."
)


class SourceOut(Schema):
    id: uuid.UUID
    name: str
    kind: Source.Kind
    created_at: datetime
    disabled_at: datetime | None
    allowed_origins: list[str] = Field(description=ORIGINS_HELP)
    write_keys: list[WriteKeyOut]

    @staticmethod
    def resolve_write_keys(obj) -> list:
        return list(obj.write_keys.all())


class SourceCreatedOut(SourceOut):
    write_key: str = Field(description="The first write key. Shown this once.")


class SourceIn(InputSchema):
    name: str = Field(min_length=1, max_length=100)
    kind: Source.Kind = Source.Kind.HTTP
    allowed_origins: list[str] | None = Field(
        None, max_length=MAX_ORIGIN_PATTERNS, description=ORIGINS_HELP + ' Default ["*"].'
    )


class SourcePatch(InputSchema):
    name: str | None = Field(None, min_length=1, max_length=100)
    allowed_origins: list[str] | None = Field(
        None, max_length=MAX_ORIGIN_PATTERNS, description=ORIGINS_HELP
    )


class AuditEntryOut(Schema):
    id: uuid.UUID
    created_at: datetime
    actor: str = Field(alias="actor_label")
    action: str
    target_type: str
    target_id: str
    details: dict
    ip_address: str | None


class CommerceOut(Schema):
    purchase_event: str = Field(description="The event that is a purchase")
    value_properties: list[str] = Field(
        description="Properties tried in order: the first that holds a number is the value"
    )
    reporting_currency: str = Field(
        description="ISO 4217. Purchases without properties.currency are in it; others "
        "are converted with the exchange rates, or left out and reported"
    )
    key_event: str = Field(
        description="The event that says a new customer used the key feature (activation), "
        "read by the onboarding sub-stages and the Onboarding month programme"
    )


class CommercePatch(InputSchema):
    purchase_event: str | None = Field(None, min_length=1, max_length=255)
    value_properties: list[str] | None = Field(None, min_length=1, max_length=10)
    reporting_currency: str | None = Field(None, min_length=3, max_length=3)
    key_event: str | None = Field(None, min_length=1, max_length=255)


class UnconvertedOut(Schema):
    currency: str
    count: int = Field(description="Purchases in this currency left out")
    amount: str = Field(description="Their value, in this currency (a decimal as text)")


class ExchangeRateOut(Schema):
    id: uuid.UUID
    currency: str
    reporting_currency: str
    rate: Decimal = Field(description="1 `currency` in `reporting_currency`")
    valid_from: date
    created_at: datetime


class ExchangeRateIn(InputSchema):
    # Checked by the service, which names the row: `rates[3].rate`.
    currency: str = Field(max_length=3, description="ISO 4217, not the reporting currency")
    rate: str | float = Field(
        description="1 `currency` in the reporting currency; positive (a decimal, best as text)"
    )
    valid_from: str = Field(
        max_length=10, description="From this day (UTC, 2026-01-31) until the currency's next rate"
    )


class ExchangeRatesIn(InputSchema):
    rates: list[ExchangeRateIn] = Field(min_length=1, max_length=commerce.MAX_RATES_PER_UPLOAD)


class ExchangeRatesWrittenOut(Schema):
    written: int


class AuditFilter(Schema):
    action: str | None = Field(None, max_length=100, description="e.g. token.create or token")
    actor: str | None = Field(None, max_length=200)
    since: IsoDatetime | None = None
    until: IsoDatetime | None = None


# --- Endpoints ------------------------------------------------------------------------

me_router = Router(tags=["access"])
workspace_router = Router(tags=["workspace"])
members_router = Router(tags=["members"])
invitations_router = Router(tags=["members"])
tokens_router = Router(tags=["tokens"])
sources_router = Router(tags=["sources"])
audit_router = Router(tags=["audit log"])
commerce_router = Router(tags=["workspace"])
rates_router = Router(tags=["workspace"])


@me_router.get("", response=MeOut, summary="Who the caller is, in which workspace, with what")
def me_get(request: HttpRequest):
    principal = request.auth
    principal.require("workspace.read")
    return {
        "workspace": principal.workspace,
        "role": principal.role,
        "permissions": principal.permissions,
        "user": principal.user,
        "token": principal.token,
    }


@workspace_router.get("", response=WorkspaceOut)
def workspace_get(request: HttpRequest):
    request.auth.require("workspace.read")
    return request.auth.workspace


@workspace_router.patch("", response=WorkspaceOut)
def workspace_update(request: HttpRequest, payload: WorkspaceIn):
    request.auth.require("workspace.manage")
    return services.workspace_update(
        workspace=request.auth.workspace, name=payload.name, actor=request.auth.actor
    )


@members_router.get("", response=list[MemberOut])
@paginate(LimitOffsetPagination)
def member_list(request: HttpRequest):
    request.auth.require("workspace.read")
    return selectors.member_list(workspace=request.auth.workspace)


@members_router.get("/{member_id}", response=MemberOut)
def member_get(request: HttpRequest, member_id: uuid.UUID):
    request.auth.require("workspace.read")
    return selectors.member_get(workspace=request.auth.workspace, member_id=member_id)


@members_router.patch("/{member_id}", response=MemberOut)
def member_change_role(request: HttpRequest, member_id: uuid.UUID, payload: MemberPatch):
    request.auth.require("members.manage")
    membership = selectors.member_get(workspace=request.auth.workspace, member_id=member_id)
    return services.member_change_role(
        membership=membership, role=payload.role, actor=request.auth.actor
    )


@members_router.delete("/{member_id}", response={204: None})
def member_remove(request: HttpRequest, member_id: uuid.UUID):
    request.auth.require("members.manage")
    membership = selectors.member_get(workspace=request.auth.workspace, member_id=member_id)
    services.member_remove(membership=membership, actor=request.auth.actor)
    return Status(204, None)


@invitations_router.get("", response=list[InvitationOut])
@paginate(LimitOffsetPagination)
def invitation_list(request: HttpRequest, filters: Query[InvitationFilter]):
    request.auth.require("members.manage")
    return selectors.invitation_list(
        workspace=request.auth.workspace, include_closed=filters.include_closed
    )


@invitations_router.post(
    "",
    response={201: InvitationOut},
    summary="Invite a person by email",
    description=(
        "Mails a link that works once, until `expires_at`; the person becomes a member "
        "when they accept it (signing in with that address, or creating their login). "
        "The answer is the same whether or not the address has a login. Inviting an "
        "address again replaces its open invitation. 503 when the mail cannot be sent "
        "(nothing is kept)."
    ),
)
def invitation_create(request: HttpRequest, payload: InvitationIn):
    request.auth.require("members.manage")
    invitation = services.invitation_create(
        workspace=request.auth.workspace,
        email=payload.email,
        role=payload.role,
        actor=request.auth.actor,
        base_url=public_base_url(request),
    )
    return Status(201, invitation)


@invitations_router.get("/{invitation_id}", response=InvitationOut)
def invitation_get(request: HttpRequest, invitation_id: uuid.UUID):
    request.auth.require("members.manage")
    return selectors.invitation_get(workspace=request.auth.workspace, invitation_id=invitation_id)


@invitations_router.delete(
    "/{invitation_id}", response={204: None}, summary="Withdraw an invitation"
)
def invitation_revoke(request: HttpRequest, invitation_id: uuid.UUID):
    request.auth.require("members.manage")
    invitation = selectors.invitation_get(
        workspace=request.auth.workspace, invitation_id=invitation_id
    )
    services.invitation_revoke(invitation=invitation, actor=request.auth.actor)
    return Status(204, None)


@tokens_router.get("", response=list[TokenOut])
@paginate(LimitOffsetPagination)
def api_token_list(request: HttpRequest, filters: Query[TokenFilter]):
    request.auth.require("tokens.manage")
    return selectors.api_token_list(
        workspace=request.auth.workspace, include_revoked=filters.include_revoked
    )


@tokens_router.post("", response={201: TokenCreatedOut})
def api_token_create(request: HttpRequest, payload: TokenIn):
    request.auth.require("tokens.manage")
    token, raw = services.api_token_create(
        workspace=request.auth.workspace,
        name=payload.name,
        role=payload.role,
        expires_at=payload.expires_at,
        actor=request.auth.actor,
    )
    token.token = raw
    return Status(201, token)


@tokens_router.get("/{token_id}", response=TokenOut)
def api_token_get(request: HttpRequest, token_id: uuid.UUID):
    request.auth.require("tokens.manage")
    return selectors.api_token_get(workspace=request.auth.workspace, token_id=token_id)


@tokens_router.delete("/{token_id}", response={204: None})
def api_token_revoke(request: HttpRequest, token_id: uuid.UUID):
    request.auth.require("tokens.manage")
    token = selectors.api_token_get(workspace=request.auth.workspace, token_id=token_id)
    services.api_token_revoke(token=token, actor=request.auth.actor)
    return Status(204, None)


@sources_router.get("", response=list[SourceOut])
@paginate(LimitOffsetPagination)
def source_list(request: HttpRequest):
    request.auth.require("sources.read")
    return selectors.source_list(workspace=request.auth.workspace)


@sources_router.post("", response={201: SourceCreatedOut})
def source_create(request: HttpRequest, payload: SourceIn):
    request.auth.require("sources.manage")
    source, raw = services.source_create(
        workspace=request.auth.workspace,
        name=payload.name,
        kind=payload.kind,
        allowed_origins=payload.allowed_origins,
        actor=request.auth.actor,
    )
    source = selectors.source_get(workspace=request.auth.workspace, source_id=source.pk)
    source.write_key = raw
    return Status(201, source)


@sources_router.get("/{source_id}", response=SourceOut)
def source_get(request: HttpRequest, source_id: uuid.UUID):
    request.auth.require("sources.read")
    return selectors.source_get(workspace=request.auth.workspace, source_id=source_id)


@sources_router.patch("/{source_id}", response=SourceOut)
def source_update(request: HttpRequest, source_id: uuid.UUID, payload: SourcePatch):
    request.auth.require("sources.manage")
    source = selectors.source_get(workspace=request.auth.workspace, source_id=source_id)
    services.source_update(
        source=source,
        name=payload.name,
        allowed_origins=payload.allowed_origins,
        actor=request.auth.actor,
    )
    return selectors.source_get(workspace=request.auth.workspace, source_id=source_id)


@sources_router.post("/{source_id}/disable", response=SourceOut)
def source_disable(request: HttpRequest, source_id: uuid.UUID):
    request.auth.require("sources.manage")
    source = selectors.source_get(workspace=request.auth.workspace, source_id=source_id)
    services.source_disable(source=source, actor=request.auth.actor)
    return selectors.source_get(workspace=request.auth.workspace, source_id=source_id)


@sources_router.post("/{source_id}/write-keys", response={201: WriteKeyCreatedOut})
def write_key_create(request: HttpRequest, source_id: uuid.UUID):
    request.auth.require("sources.manage")
    source = selectors.source_get(workspace=request.auth.workspace, source_id=source_id)
    key, raw = services.write_key_create(source=source, actor=request.auth.actor)
    key.write_key = raw
    return Status(201, key)


@sources_router.delete(
    "/{source_id}/write-keys/{key_id}",
    response={204: None},
    summary="Revoke a write key",
    description=(
        "Refused at once by every server process that shares the data directory "
        "(RAPPORT_DATA_DIR); server processes on other machines refuse it within 5 seconds."
    ),
)
def write_key_revoke(request: HttpRequest, source_id: uuid.UUID, key_id: uuid.UUID):
    request.auth.require("sources.manage")
    key = selectors.write_key_get(
        workspace=request.auth.workspace, source_id=source_id, key_id=key_id
    )
    services.write_key_revoke(write_key=key, actor=request.auth.actor)
    return Status(204, None)


@audit_router.get("", response=list[AuditEntryOut])
@paginate(LimitOffsetPagination)
def audit_log_list(request: HttpRequest, filters: Query[AuditFilter]):
    request.auth.require("audit.read")
    return selectors.audit_log_list(
        workspace=request.auth.workspace,
        action=filters.action,
        actor=filters.actor,
        since=filters.since,
        until=filters.until,
    )


@commerce_router.get("", response=CommerceOut, summary="What a purchase is; the reporting currency")
def commerce_settings_get(request: HttpRequest):
    request.auth.require("workspace.read")
    return commerce.commerce_settings_get(workspace=request.auth.workspace)


@commerce_router.patch(
    "",
    response=CommerceOut,
    summary="Name the purchase event, its value properties, the reporting currency, the key event",
    description="KPIs, RFM and CLV read these at their next computation.",
)
def commerce_settings_update(request: HttpRequest, payload: CommercePatch):
    request.auth.require("workspace.manage")
    return commerce.commerce_settings_update(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        purchase_event=payload.purchase_event,
        value_properties=payload.value_properties,
        reporting_currency=payload.reporting_currency,
        key_event=payload.key_event,
    )


@rates_router.get("", response=list[ExchangeRateOut], summary="Exchange rates")
@paginate(LimitOffsetPagination)
def exchange_rate_list(request: HttpRequest):
    request.auth.require("workspace.read")
    return commerce.exchange_rate_list(workspace=request.auth.workspace)


RATES_HELP = (
    "A rate given again for the same currency and day replaces it. All or nothing: a "
    "422 names the first bad row and field (`rates[3].rate`, or `line 4.rate` in a CSV) "
    "and nothing is written."
)


@rates_router.post(
    "",
    response={201: ExchangeRatesWrittenOut},
    summary="Add exchange rates to the reporting currency",
    description=RATES_HELP,
)
def exchange_rates_upload(request: HttpRequest, payload: ExchangeRatesIn):
    request.auth.require("workspace.manage")
    written = commerce.exchange_rates_upload(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        rows=[r.model_dump() for r in payload.rates],
    )
    return Status(201, {"written": len(written)})


@rates_router.post(
    "/csv",
    response={201: ExchangeRatesWrittenOut},
    summary="Add exchange rates from a CSV file (currency,rate,valid_from)",
    description="A UTF-8 CSV whose first line names the columns. " + RATES_HELP,
)
def exchange_rates_upload_csv(request: HttpRequest, file: File[UploadedFile]):
    request.auth.require("workspace.manage")
    if file.size > commerce.MAX_CSV_BYTES:
        raise InvalidInputError(gettext("the file is larger than 2 MB"), field="file")
    try:
        text = file.read().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(gettext("the CSV is not UTF-8"), field="file") from None
    written = commerce.exchange_rates_upload(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        rows=commerce.exchange_rates_csv_parse(text),
    )
    return Status(201, {"written": len(written)})


@rates_router.delete("/{rate_id}", response={204: None}, summary="Delete an exchange rate")
def exchange_rate_delete(request: HttpRequest, rate_id: uuid.UUID):
    request.auth.require("workspace.manage")
    commerce.exchange_rate_delete(
        workspace=request.auth.workspace, rate_id=rate_id, actor=request.auth.actor
    )
    return Status(204, None)


ROUTERS = [
    ("v1/workspace/commerce", commerce_router),
    ("v1/exchange-rates", rates_router),
    ("v1/me", me_router),
    ("v1/workspace", workspace_router),
    ("v1/members", members_router),
    ("v1/invitations", invitations_router),
    ("v1/tokens", tokens_router),
    ("v1/sources", sources_router),
    ("v1/audit-log", audit_router),
]
