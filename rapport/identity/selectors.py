import uuid

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext

from rapport.core.errors import NotFoundError
from rapport.core.selectors import object_get
from rapport.identity.models import DuplicateCandidate, Identifier, ProfileMerge
from rapport.identity.normalize import normalize_email, normalize_phone
from rapport.profiles.models import Account, Profile
from rapport.profiles.selectors import TimelineEntry
from rapport.tenancy.models import Workspace


def merge_list(*, workspace: Workspace, profile: Profile | None = None) -> QuerySet[ProfileMerge]:
    merges = ProfileMerge.objects.filter(workspace=workspace)
    if profile is not None:
        merges = merges.filter(Q(survivor=profile) | Q(merged=profile))
    return merges.order_by("-created_at", "-id")


def merge_get(*, workspace: Workspace, merge_id: uuid.UUID) -> ProfileMerge:
    return object_get(
        merge_list(workspace=workspace),
        message=gettext("No merge with id %(pk)s in this workspace"),
        pk=merge_id,
    )


def duplicate_candidate_list(
    *, workspace: Workspace, kind: str | None = None, status: str | None = "open"
) -> QuerySet[DuplicateCandidate]:
    candidates = DuplicateCandidate.objects.filter(workspace=workspace)
    if kind:
        candidates = candidates.filter(kind=kind)
    if status:
        candidates = candidates.filter(status=status)
    return candidates.order_by("-probability", "id")


def duplicate_candidate_counts(*, workspace: Workspace) -> dict[str, int]:
    """Open pairs waiting for review, by kind (profile, account)."""
    return dict(
        DuplicateCandidate.objects.filter(
            workspace=workspace, status=DuplicateCandidate.Status.OPEN
        )
        .values("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )


def duplicate_candidate_get(*, workspace: Workspace, candidate_id: uuid.UUID) -> DuplicateCandidate:
    return object_get(
        DuplicateCandidate.objects.filter(workspace=workspace),
        message=gettext("No duplicate pair with id %(pk)s in this workspace"),
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


def identifier_profile_ids(workspace: Workspace, text: str) -> QuerySet:
    """The ids of the profiles holding an identifier equal to `text`, as typed or
    normalised as an email or a phone (the customer search's finder)."""
    candidates = {text, text.lower()}
    candidates |= {v for v in (normalize_email(text), normalize_phone(text)) if v}
    return Identifier.objects.filter(workspace=workspace, value__in=candidates).values_list(
        "profile_id", flat=True
    )


def merge_timeline_entries(
    workspace: Workspace, profile: Profile, wanted: set, channel: str | None
) -> list[TimelineEntry]:
    """The profile's merges and unmerges as timeline entries (they have no channel)."""
    if channel:
        return []
    entries = []
    for merge in ProfileMerge.objects.filter(
        Q(survivor=profile) | Q(merged=profile), workspace=workspace
    ):
        other = merge.merged_id if merge.survivor_id == profile.pk else merge.survivor_id
        moments = [("merge", merge.created_at)]
        if merge.unmerged_at:
            moments.append(("unmerge", merge.unmerged_at))
        for kind, at in moments:
            if kind in wanted:
                words = (
                    gettext("Merged with profile %(other)s")
                    if kind == "merge"
                    else gettext("Unmerged from profile %(other)s")
                )
                entries.append(
                    TimelineEntry(
                        kind=kind,
                        id=merge.pk,
                        at=at,
                        channel="",
                        title=words % {"other": other},
                        data={"merge": merge},
                    )
                )
    return entries


def customer_resolve(
    *,
    workspace: Workspace,
    profile_id: uuid.UUID | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> Profile:
    """The customer a request names by profile id, user id or anonymous id (one of
    them), as they are now: after a merge, the survivor. 404 when none holds it."""
    from rapport.profiles.selectors import profile_get

    if profile_id is not None:
        profile = profile_get(workspace=workspace, profile_id=profile_id)
    else:
        kind, value = (
            ("user_id", user_id) if user_id is not None else ("anonymous_id", anonymous_id)
        )
        holder = (
            Identifier.objects.filter(workspace=workspace, kind=kind, value=value)
            .values_list("profile_id", flat=True)
            .first()
        )
        if holder is None:
            raise NotFoundError(
                gettext("No customer with %(kind)s %(value)r in this workspace")
                % {"kind": kind, "value": value}
            )
        profile = profile_get(workspace=workspace, profile_id=holder)
    while profile.merged_into_id is not None:
        profile = profile_get(workspace=workspace, profile_id=profile.merged_into_id)
    return profile
