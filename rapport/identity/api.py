"""The workspace's identity rules."""

import uuid
from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict

from rapport.core.pagination import LimitOffsetPagination, paginate
from rapport.identity import selectors, services, tasks
from rapport.ingest.api import MaskedPage
from rapport.tenancy.pii import mask_personal_data


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
            record = records.get(record_id)
            if record is not None and not principal.can_see_pii:
                record = {**record, "traits": mask_personal_data(record["traits"])}
            pair[side] = record
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
    return DuplicatePage(candidates, request.auth)


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


ROUTERS = [("v1/identity", router)]
