"""Customers: find them by any identifier or trait, see one with its identities and
where each trait came from, and its timeline. Merging, unmerging, exporting and erasing
a person are identity's (rapport/identity/api.py, under the same /profiles paths)."""

import builtins
import uuid
from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema, Status
from pydantic import AwareDatetime, ConfigDict

from rapport.core.errors import InvalidInputError
from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.ingest.api import EventOut
from rapport.ingest.models import EventType
from rapport.profiles import lists, selectors
from rapport.profiles import services as profile_services
from rapport.profiles.models import ConsentChannel, ConsentPurpose, ConsentStatus
from rapport.tenancy.pii import (
    MaskedPage,
    masked_record,
    shown_identifier,
    shown_trait_changes,
)


class IdentityOut(Schema):
    kind: str
    value: str
    created_at: datetime


class ProfileSummaryOut(Schema):
    id: uuid.UUID
    traits: dict
    first_seen_at: datetime | None
    last_seen_at: datetime | None


class ProfileOut(ProfileSummaryOut):
    trait_sources: dict
    identities: list[IdentityOut]
    merged_into: uuid.UUID | None = Field(None, alias="merged_into_id")
    created_at: datetime


class ProfileFilter(Schema):
    q: str | None = Field(
        None,
        max_length=255,
        description="Any identifier: user id, email, phone, anonymous or external id",
    )
    trait: str | None = Field(None, max_length=300, pattern="^[^:]+:", description="name:value")


class TimelineFilter(Schema):
    kind: str | None = Field(
        None,
        max_length=100,
        description="Comma-separated: event, trait_change, merge, unmerge, consent",
    )
    channel: str | None = Field(
        None, max_length=50, description="website, mobile, server, import, http; email, sms..."
    )
    type: EventType | None = None
    event: str | None = Field(None, max_length=255)
    cursor: str | None = Field(None, max_length=300)
    limit: int = Field(50, ge=1, le=200)


def _profile_out(profile, principal) -> dict:
    identities = [
        {"kind": i.kind, "value": i.value, "created_at": i.created_at}
        for i in sorted(profile.identifiers.all(), key=lambda i: (i.kind, i.value))
    ]
    data = {
        "id": profile.pk,
        "traits": profile.traits,
        "trait_sources": profile.trait_sources,
        "identities": identities,
        "merged_into_id": profile.merged_into_id,
        "first_seen_at": profile.first_seen_at,
        "last_seen_at": profile.last_seen_at,
        "created_at": profile.created_at,
    }
    data = masked_record(principal, data, "profile")
    for identity in identities:
        identity["value"] = shown_identifier(principal, identity["kind"], identity["value"])
    return data


class MergeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    other: uuid.UUID = Field(description="The profile (or account) to merge into this one")
    reason: str = Field(min_length=1, max_length=2000)


class MergeOut(Schema):
    id: uuid.UUID
    survivor: uuid.UUID = Field(alias="survivor_id")
    merged: uuid.UUID = Field(alias="merged_id")
    identifiers: list[list[str]]
    automatic: bool
    reason: str
    actor: str = Field(alias="actor_label")
    message_id: str
    created_at: datetime
    unmerged_at: datetime | None


router = Router(tags=["profiles"])


@router.get("", response=list[ProfileSummaryOut], summary="Find customers")
@paginate(LimitOffsetPagination)
def profile_list(request: HttpRequest, filters: Query[ProfileFilter]):
    request.auth.require("profiles.read")
    profiles = selectors.profile_search(
        workspace=request.auth.workspace, q=filters.q, trait=filters.trait
    )
    return MaskedPage(profiles, request.auth, kind="profile")


@router.get("/{profile_id}", response=ProfileOut)
def profile_get(request: HttpRequest, profile_id: uuid.UUID):
    request.auth.require("profiles.read")
    profile = selectors.profile_get(workspace=request.auth.workspace, profile_id=profile_id)
    return _profile_out(profile, request.auth)


class TraitsIn(Schema):
    model_config = ConfigDict(extra="forbid")

    traits: dict[str, Any] = Field(
        description=(
            "Fields to set, by name; null removes a field (a JSON merge patch). At most "
            "50 fields; names without dots, up to 100 characters; texts up to 2,000 "
            "characters. Identifiers are not changed: editing `email` never merges "
            "customers."
        ),
        examples=[{"plan": "pro", "company": "Northwind", "nickname": None}],
    )


@router.patch(
    "/{profile_id}/traits",
    response=ProfileOut,
    summary="Edit a customer's traits (recorded as a change by you)",
)
def profile_traits_edit(request: HttpRequest, profile_id: uuid.UUID, payload: TraitsIn):
    request.auth.require("profiles.write")
    workspace = request.auth.workspace
    profile = selectors.profile_get(workspace=workspace, profile_id=profile_id)
    profile_services.profile_traits_edit(
        workspace=workspace,
        profile=profile,
        changes=payload.traits,
        actor=request.auth.actor,
        can_see_pii=request.auth.can_see_pii,
    )
    profile = selectors.profile_get(workspace=workspace, profile_id=profile_id)
    return _profile_out(profile, request.auth)


class TraitEditOut(Schema):
    id: uuid.UUID
    changes: dict = Field(description='{name: {"from": old, "to": new}} or {..., "removed": true}')
    actor: str = Field(alias="actor_label")
    at: datetime


class TimelineEntryOut(Schema):
    kind: str = Field(description="event, trait_change, merge, unmerge or consent")
    id: uuid.UUID
    at: datetime
    channel: str = Field(description="Source kind for events; consent channel for consent")
    title: str
    event: EventOut | None = None
    merge: MergeOut | None = None
    consent: "ConsentChangeOut | None" = None
    trait_edit: TraitEditOut | None = None


class TimelinePageOut(Schema):
    items: list[TimelineEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next, older page")


def _timeline_out(page, principal) -> dict:
    items = []
    for entry in page.items:
        item = {
            "kind": entry.kind,
            "id": entry.id,
            "at": entry.at,
            "channel": entry.channel,
            "title": entry.title,
        }
        if "event" in entry.data:
            item["event"] = masked_record(principal, entry.data["event"], "event")
        if "merge" in entry.data:
            item["merge"] = masked_record(principal, entry.data["merge"], "merge")
        if "trait_edit" in entry.data:
            edit = entry.data["trait_edit"]
            item["trait_edit"] = {
                "id": edit.pk,
                "changes": shown_trait_changes(principal, edit.changes),
                "actor_label": edit.actor_label,
                "at": edit.at,
            }
        item.update(
            {k: v for k, v in entry.data.items() if k not in ("event", "merge", "trait_edit")}
        )
        items.append(item)
    return {"items": items, "next_cursor": page.next_cursor}


@router.get(
    "/{profile_id}/timeline",
    response=TimelinePageOut,
    summary="The customer's timeline, newest first (cursor-paged)",
)
def profile_timeline(request: HttpRequest, profile_id: uuid.UUID, filters: Query[TimelineFilter]):
    request.auth.require("profiles.read")
    page = selectors.profile_timeline(
        workspace=request.auth.workspace,
        profile_id=profile_id,
        kinds=[k.strip() for k in filters.kind.split(",") if k.strip()] if filters.kind else None,
        channel=filters.channel,
        type=filters.type,
        event=filters.event,
        cursor=filters.cursor,
        limit=filters.limit,
    )
    return _timeline_out(page, request.auth)


class ConsentOut(Schema):
    channel: ConsentChannel
    purpose: ConsentPurpose
    status: ConsentStatus
    at: datetime | None
    expires_at: datetime | None
    expired: bool
    source: str


class ConsentChangeOut(Schema):
    id: uuid.UUID
    channel: ConsentChannel
    purpose: ConsentPurpose
    status: ConsentStatus
    at: datetime
    expires_at: datetime | None
    source: str


class ConsentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    channel: ConsentChannel
    purpose: ConsentPurpose
    status: ConsentStatus
    expires_at: AwareDatetime | None = None


@router.get("/{profile_id}/consents", response=list[ConsentOut], summary="Consent now")
def consent_current(request: HttpRequest, profile_id: uuid.UUID):
    request.auth.require("profiles.read")
    return selectors.consent_current(workspace=request.auth.workspace, profile_id=profile_id)


@router.get("/{profile_id}/consents/history", response=list[ConsentChangeOut])
@paginate(LimitOffsetPagination)
def consent_history(request: HttpRequest, profile_id: uuid.UUID):
    request.auth.require("profiles.read")
    return selectors.consent_history(workspace=request.auth.workspace, profile_id=profile_id)


@router.post("/{profile_id}/consents", response={201: ConsentChangeOut}, summary="Record consent")
def consent_set(request: HttpRequest, profile_id: uuid.UUID, payload: ConsentIn):
    request.auth.require("profiles.consent.manage")
    profile = selectors.profile_get(workspace=request.auth.workspace, profile_id=profile_id)
    change = profile_services.consent_set(
        profile=profile,
        channel=payload.channel,
        purpose=payload.purpose,
        status=payload.status,
        expires_at=payload.expires_at,
        actor=request.auth.actor,
    )
    return Status(201, change)


class AccountRef(Schema):
    id: uuid.UUID
    group_id: str
    name: str


class AccountSummaryOut(AccountRef):
    traits: dict
    parent_id: uuid.UUID | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None


class AccountOut(AccountSummaryOut):
    trait_sources: dict
    merged_into: uuid.UUID | None = Field(None, alias="merged_into_id")
    parent: AccountRef | None
    children: list[AccountRef]
    members: int

    @staticmethod
    def resolve_children(obj) -> list:
        return list(obj.children.order_by("name", "group_id"))

    @staticmethod
    def resolve_members(obj) -> int:
        return obj.members.count()


class AccountFilter(Schema):
    q: str | None = Field(None, max_length=255, description="Part of the name, or the group id")


accounts_router = Router(tags=["accounts"])


class AccountMergeOut(Schema):
    id: uuid.UUID
    survivor: uuid.UUID = Field(alias="survivor_id")
    merged: uuid.UUID = Field(alias="merged_id")
    members: list[list]
    children: list[str]
    reason: str
    actor: str = Field(alias="actor_label")
    created_at: datetime
    unmerged_at: datetime | None


@accounts_router.get("/merges", response=list[AccountMergeOut], summary="Account merges")
@paginate(LimitOffsetPagination)
def account_merge_list(request: HttpRequest):
    request.auth.require("profiles.read")
    merges = selectors.account_merge_list(workspace=request.auth.workspace)
    return MaskedPage(merges, request.auth, kind="account_merge")


@accounts_router.post(
    "/merges/{account_merge_id}/unmerge", response=AccountMergeOut, summary="Undo an account merge"
)
def account_unmerge(request: HttpRequest, account_merge_id: uuid.UUID):
    request.auth.require("profiles.merge")
    merge = selectors.account_merge_get(workspace=request.auth.workspace, merge_id=account_merge_id)
    merge = profile_services.account_unmerge(merge=merge, actor=request.auth.actor)
    return masked_record(request.auth, merge, "account_merge")


@accounts_router.get("", response=list[AccountSummaryOut], summary="Companies")
@paginate(LimitOffsetPagination)
def account_list(request: HttpRequest, filters: Query[AccountFilter]):
    request.auth.require("profiles.read")
    accounts = selectors.account_list(workspace=request.auth.workspace, q=filters.q)
    return MaskedPage(accounts, request.auth, kind="account")


@accounts_router.get("/{account_id}", response=AccountOut)
def account_get(request: HttpRequest, account_id: uuid.UUID):
    request.auth.require("profiles.read")
    account = selectors.account_get(workspace=request.auth.workspace, account_id=account_id)
    return masked_record(request.auth, account, "account")


@accounts_router.get("/{account_id}/members", response=list[ProfileSummaryOut])
@paginate(LimitOffsetPagination)
def account_members(request: HttpRequest, account_id: uuid.UUID):
    request.auth.require("profiles.read")
    members = selectors.account_members(workspace=request.auth.workspace, account_id=account_id)
    return MaskedPage(members, request.auth, kind="profile")


@accounts_router.get("/{account_id}/timeline", response=list[EventOut])
@paginate(LimitOffsetPagination)
def account_timeline(request: HttpRequest, account_id: uuid.UUID):
    request.auth.require("profiles.read")
    events = selectors.account_timeline(workspace=request.auth.workspace, account_id=account_id)
    return MaskedPage(events, request.auth)


@accounts_router.post(
    "/{account_id}/merge",
    response=AccountMergeOut,
    summary="Merge another account (the same company) into this one",
)
def account_merge(request: HttpRequest, account_id: uuid.UUID, payload: MergeIn):
    request.auth.require("profiles.merge")
    workspace = request.auth.workspace
    survivor = selectors.account_get(workspace=workspace, account_id=account_id)
    merged = selectors.account_get(workspace=workspace, account_id=payload.other)
    merge = profile_services.account_merge(
        survivor=survivor, merged=merged, reason=payload.reason, actor=request.auth.actor
    )
    return masked_record(request.auth, merge, "account_merge")


class SavedViewIn(Schema):
    model_config = ConfigDict(extra="forbid")

    list: Literal["customers", "accounts"] = "customers"
    name: str = Field(min_length=1, max_length=100)
    shared: bool = Field(False, description="Seen by the whole workspace (needs views.share)")
    columns: builtins.list[str] | None = Field(
        None, description="Column keys; trait:<name> for a trait"
    )
    sort: str = Field("", max_length=120, description="A column key, - first for descending")
    filters: dict = Field(default_factory=dict, description="Filter name -> value(s)")


class SavedViewPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    shared: bool | None = None
    columns: builtins.list[str] | None = None
    sort: str | None = Field(None, max_length=120)
    filters: dict | None = None


class SavedViewOut(Schema):
    id: uuid.UUID
    list: str
    name: str
    shared: bool
    mine: bool
    columns: builtins.list[str]
    sort: str
    filters: dict
    created_by: str
    created_at: datetime
    updated_at: datetime


class SavedViewFilter(Schema):
    list: Literal["customers", "accounts"] | None = None


def _view_out(view, principal) -> dict:
    user = principal.user
    return {
        **{f: getattr(view, f) for f in ("id", "list", "name", "shared", "columns", "sort")},
        "filters": view.filters,
        "mine": user is not None and view.owner_id == user.pk,
        "created_by": view.created_by,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }


def _view_changeable(request: HttpRequest, view_id: uuid.UUID):
    principal = request.auth
    view = selectors.saved_view_get(
        workspace=principal.workspace, user=principal.user, view_id=view_id
    )
    if not selectors.saved_view_may_change(
        view, user=principal.user, can_share=principal.has_perm("views.share")
    ):
        principal.require("views.share")
    return view


views_router = Router(tags=["saved views"])


@views_router.get("", response=builtins.list[SavedViewOut], summary="Saved views of the lists")
def saved_view_list(request: HttpRequest, filters: Query[SavedViewFilter]):
    request.auth.require("profiles.read")
    if filters.list is not None and filters.list not in lists.LISTS:
        raise InvalidInputError(
            gettext("must be one of %(choices)s") % {"choices": ", ".join(lists.LISTS)},
            field="list",
        )
    views = selectors.saved_view_list(
        workspace=request.auth.workspace, user=request.auth.user, list_name=filters.list
    )
    return [_view_out(v, request.auth) for v in views[:500]]


@views_router.post("", response={201: SavedViewOut}, summary="Save a view")
def saved_view_create(request: HttpRequest, payload: SavedViewIn):
    principal = request.auth
    principal.require("profiles.read")
    if payload.shared:
        principal.require("views.share")
    view = profile_services.saved_view_create(
        workspace=principal.workspace,
        actor=principal.actor,
        list_name=payload.list,
        name=payload.name,
        shared=payload.shared,
        columns=payload.columns,
        sort=payload.sort,
        filters=payload.filters,
    )
    return Status(201, _view_out(view, principal))


@views_router.get("/{view_id}", response=SavedViewOut)
def saved_view_get(request: HttpRequest, view_id: uuid.UUID):
    request.auth.require("profiles.read")
    view = selectors.saved_view_get(
        workspace=request.auth.workspace, user=request.auth.user, view_id=view_id
    )
    return _view_out(view, request.auth)


@views_router.patch("/{view_id}", response=SavedViewOut, summary="Rename, share or rearrange")
def saved_view_update(request: HttpRequest, view_id: uuid.UUID, payload: SavedViewPatch):
    request.auth.require("profiles.read")
    view = _view_changeable(request, view_id)
    if payload.shared:
        request.auth.require("views.share")
    view = profile_services.saved_view_update(
        view=view, actor=request.auth.actor, **payload.model_dump(exclude_unset=True)
    )
    return _view_out(view, request.auth)


@views_router.delete("/{view_id}", response={204: None})
def saved_view_delete(request: HttpRequest, view_id: uuid.UUID):
    request.auth.require("profiles.read")
    view = _view_changeable(request, view_id)
    profile_services.saved_view_delete(view=view, actor=request.auth.actor)
    return Status(204, None)


ROUTERS = [
    ("v1/profiles", router),
    ("v1/accounts", accounts_router),
    ("v1/saved-views", views_router),
]
