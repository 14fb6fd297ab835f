"""The workspace's identity rules, duplicate review, and what identity does to a
person: merge, unmerge, export and erase (under /profiles, beside the profile they act
on; profiles itself imports nothing of identity)."""

import uuid
from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict

from rapport.core.errors import MethodNotAllowedError
from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.identity import selectors, services, tasks
from rapport.profiles import selectors as profile_selectors
from rapport.profiles.api import MergeIn, MergeOut
from rapport.tenancy.pii import MaskedPage, masked_record


class RulesOut(Schema):
    priorities: dict[str, int]
    limits: dict[str, int]
    external_kinds: list[str]
    blocked_values: list[str]
    default_phone_region: str
    duplicate_min_probability: float
    duplicate_auto_merge_probability: float | None
    duplicate_fields: dict[str, str]


class RulesPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    priorities: dict[str, int] | None = Field(None, description="kind -> order (1 merges first)")
    limits: dict[str, int] | None = Field(None, description="kind -> values one profile may hold")
    external_kinds: list[str] | None = Field(None, max_length=50)
    blocked_values: list[str] | None = Field(None, max_length=1000)
    default_phone_region: str | None = Field(None, max_length=2)
    duplicate_min_probability: float | None = Field(
        None, strict=True, description="Keep pairs at least this probable for review (0.5 to 1)"
    )
    duplicate_auto_merge_probability: float | None = Field(
        None,
        strict=True,
        description="Merge profile pairs at least this probable (0.9 to 1); null: never",
    )
    duplicate_fields: dict[str, str] | None = Field(
        None, max_length=50, description="Extra traits to compare: trait -> kind"
    )


router = Router(tags=["identity"])


@router.get("/rules", response=RulesOut)
def identity_rules_get(request: HttpRequest):
    request.auth.require("identity.read")
    return services.identity_rules_get(workspace_id=request.auth.workspace.pk)


@router.patch("/rules", response=RulesOut)
def identity_rules_update(request: HttpRequest, payload: RulesPatch):
    request.auth.require("identity.manage")
    return services.identity_rules_update(
        workspace=request.auth.workspace,
        actor=request.auth.actor,
        **payload.dict(exclude_unset=True),
    )


class DuplicateRecordOut(Schema):
    id: uuid.UUID
    key: str | None = Field(description="The profile's user id, or the account's group id")
    name: str
    traits: dict


class DuplicateOut(Schema):
    id: uuid.UUID
    kind: str
    probability: float
    agreeing_fields: list[str]
    status: str
    a: DuplicateRecordOut | None
    b: DuplicateRecordOut | None
    reviewed_by: str
    reviewed_at: datetime | None
    review_reason: str
    created_at: datetime


class DuplicateFilter(Schema):
    kind: Literal["profile", "account"] | None = None
    status: Literal["open", "merged", "dismissed"] | None = "open"


class DuplicateScanIn(Schema):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["profile", "account"] = "profile"


class DuplicateMergeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    survivor: Literal["a", "b"] = Field("a", description="Which of the two stays")


class DuplicateDismissIn(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=2000)


def _duplicates_out(candidates, principal) -> list[dict]:
    records = selectors.duplicate_records(candidates)
    out = []
    for candidate in candidates:
        pair = {}
        for side, record_id in (("a", candidate.record_a), ("b", candidate.record_b)):
            pair[side] = masked_record(principal, records.get(record_id), "duplicate_record")
        out.append(
            {
                "id": candidate.pk,
                "kind": candidate.kind,
                "probability": candidate.probability,
                "agreeing_fields": candidate.agreeing_fields,
                "status": candidate.status,
                "reviewed_by": candidate.reviewed_by,
                "reviewed_at": candidate.reviewed_at,
                "review_reason": candidate.review_reason,
                "created_at": candidate.created_at,
                **pair,
            }
        )
    return out


class DuplicatePage(MaskedPage):
    """Pagination over candidates that fetches both records of the page shown only."""

    def __getitem__(self, key):
        return _duplicates_out(list(self.queryset[key]), self.principal)


@router.get("/duplicates", response=list[DuplicateOut], summary="Probable duplicates to review")
@paginate(LimitOffsetPagination)
def duplicate_list(request: HttpRequest, filters: Query[DuplicateFilter]):
    request.auth.require("profiles.read")
    candidates = selectors.duplicate_candidate_list(
        workspace=request.auth.workspace, kind=filters.kind, status=filters.status
    )
    return DuplicatePage(candidates, request.auth, kind="duplicate_record")


@router.post(
    "/duplicates/scan",
    response={202: dict},
    summary="Look for duplicates again (in the background)",
)
def duplicate_scan(request: HttpRequest, payload: DuplicateScanIn):
    request.auth.require("profiles.merge")
    result = tasks.duplicates_refresh.enqueue(
        workspace_id=str(request.auth.workspace.pk),
        kind=payload.kind,
        actor_label=request.auth.actor.label,
    )
    return Status(202, {"task_id": str(result.id), "kind": payload.kind})


@router.post("/duplicates/{candidate_id}/merge", response=DuplicateOut, summary="Merge the pair")
def duplicate_merge(request: HttpRequest, candidate_id: uuid.UUID, payload: DuplicateMergeIn):
    request.auth.require("profiles.merge")
    candidate = selectors.duplicate_candidate_get(
        workspace=request.auth.workspace, candidate_id=candidate_id
    )
    candidate = services.duplicate_candidate_merge(
        candidate=candidate,
        reason=payload.reason,
        survivor=payload.survivor,
        actor=request.auth.actor,
    )
    return _duplicates_out([candidate], request.auth)[0]


@router.post(
    "/duplicates/{candidate_id}/dismiss", response=DuplicateOut, summary="Not the same customer"
)
def duplicate_dismiss(request: HttpRequest, candidate_id: uuid.UUID, payload: DuplicateDismissIn):
    request.auth.require("profiles.merge")
    candidate = selectors.duplicate_candidate_get(
        workspace=request.auth.workspace, candidate_id=candidate_id
    )
    candidate = services.duplicate_candidate_dismiss(
        candidate=candidate, reason=payload.reason, actor=request.auth.actor
    )
    return _duplicates_out([candidate], request.auth)[0]


# Same paths as the profiles router's; Ninja serves both under /api/v1/profiles.
profiles_router = Router(tags=["profiles"])


@profiles_router.post("/merges/{merge_id}/unmerge", response=MergeOut, summary="Undo a merge")
def profile_unmerge(request: HttpRequest, merge_id: uuid.UUID):
    request.auth.require("profiles.merge")
    merge = selectors.merge_get(workspace=request.auth.workspace, merge_id=merge_id)
    merge = services.profile_unmerge(merge=merge, actor=request.auth.actor)
    return masked_record(request.auth, merge, "merge")


@profiles_router.post(
    "/{profile_id}/merge", response=MergeOut, summary="Merge another profile into this one"
)
def profile_merge(request: HttpRequest, profile_id: uuid.UUID, payload: MergeIn):
    request.auth.require("profiles.merge")
    workspace = request.auth.workspace
    survivor = profile_selectors.profile_get(workspace=workspace, profile_id=profile_id)
    merged = profile_selectors.profile_get(workspace=workspace, profile_id=payload.other)
    merge = services.profile_merge(
        survivor=survivor, merged=merged, reason=payload.reason, actor=request.auth.actor
    )
    return masked_record(request.auth, merge, "merge")


@profiles_router.get(
    "/{profile_id}/merges", response=list[MergeOut], summary="Merges this profile took part in"
)
@paginate(LimitOffsetPagination)
def profile_merge_list(request: HttpRequest, profile_id: uuid.UUID):
    request.auth.require("profiles.read")
    profile = profile_selectors.profile_get(workspace=request.auth.workspace, profile_id=profile_id)
    merges = selectors.merge_list(workspace=request.auth.workspace, profile=profile)
    return MaskedPage(merges, request.auth, kind="merge")


@profiles_router.post(
    "/{profile_id}/export",
    summary="Everything held about this person (JSON)",
    description="A POST (it discloses personal data, so it is never a GET), audited.",
)
def profile_export(request: HttpRequest, profile_id: uuid.UUID):
    request.auth.require("pii.export")
    profile = profile_selectors.profile_get(workspace=request.auth.workspace, profile_id=profile_id)
    return services.profile_export(profile=profile, actor=request.auth.actor)


@profiles_router.get("/{profile_id}/export", include_in_schema=False)
def profile_export_get(request: HttpRequest, profile_id: uuid.UUID):
    """The old GET: answers 405 and discloses nothing."""
    raise MethodNotAllowedError(
        gettext("An export is a POST: send POST /api/v1/profiles/{id}/export")
    )


class ErasedOut(Schema):
    profiles: int
    identifiers: int
    events: int


@profiles_router.post("/{profile_id}/erase", response=ErasedOut, summary="Erase this person")
def profile_erase(request: HttpRequest, profile_id: uuid.UUID):
    request.auth.require("profiles.erase")
    profile = profile_selectors.profile_get(workspace=request.auth.workspace, profile_id=profile_id)
    return services.profile_erase(profile=profile, actor=request.auth.actor)


ROUTERS = [("v1/identity", router), ("v1/profiles", profiles_router)]
