import uuid

from django.db.models import Q, QuerySet

from rapport.core.selectors import object_get
from rapport.identity.models import DuplicateCandidate, Identifier, ProfileMerge
from rapport.profiles.models import Account, Profile
from rapport.tenancy.models import Workspace


def merge_list(*, workspace: Workspace, profile: Profile | None = None) -> QuerySet[ProfileMerge]:
    merges = ProfileMerge.objects.filter(workspace=workspace)
    if profile is not None:
        merges = merges.filter(Q(survivor=profile) | Q(merged=profile))
    return merges.order_by("-created_at", "-id")


def merge_get(*, workspace: Workspace, merge_id: uuid.UUID) -> ProfileMerge:
    return object_get(merge_list(workspace=workspace), what="merge", pk=merge_id)


def duplicate_candidate_list(
    *, workspace: Workspace, kind: str | None = None, status: str | None = "open"
) -> QuerySet[DuplicateCandidate]:
    candidates = DuplicateCandidate.objects.filter(workspace=workspace)
    if kind:
        candidates = candidates.filter(kind=kind)
    if status:
        candidates = candidates.filter(status=status)
    return candidates.order_by("-probability", "id")


def duplicate_candidate_get(*, workspace: Workspace, candidate_id: uuid.UUID) -> DuplicateCandidate:
    return object_get(
        DuplicateCandidate.objects.filter(workspace=workspace),
        what="duplicate pair",
        pk=candidate_id,
    )


def duplicate_records(candidates: list[DuplicateCandidate]) -> dict[uuid.UUID, dict]:
    """The two records of each pair, in one query per kind: id, key (user id or group
    id), name and traits."""
    ids = {
        kind: {i for c in candidates if c.kind == kind for i in (c.record_a, c.record_b)}
        for kind in DuplicateCandidate.Kind.values
    }
    records: dict[uuid.UUID, dict] = {}
    for profile in Profile.objects.filter(pk__in=ids["profile"]):
        records[profile.pk] = {"id": profile.pk, "key": None, "name": "", "traits": profile.traits}
    for profile_id, value in Identifier.objects.filter(
        profile_id__in=ids["profile"], kind="user_id"
    ).values_list("profile_id", "value"):
        records[profile_id]["key"] = value
    for account in Account.objects.filter(pk__in=ids["account"]):
        records[account.pk] = {
            "id": account.pk,
            "key": account.group_id,
            "name": account.name,
            "traits": account.traits,
        }
    return records
