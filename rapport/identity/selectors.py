import uuid

from django.db.models import Q, QuerySet

from rapport.core.selectors import object_get
from rapport.identity.models import ProfileMerge
from rapport.profiles.models import Profile
from rapport.tenancy.models import Workspace


def merge_list(*, workspace: Workspace, profile: Profile | None = None) -> QuerySet[ProfileMerge]:
    merges = ProfileMerge.objects.filter(workspace=workspace)
    if profile is not None:
        merges = merges.filter(Q(survivor=profile) | Q(merged=profile))
    return merges.order_by("-created_at", "-id")


def merge_get(*, workspace: Workspace, merge_id: uuid.UUID) -> ProfileMerge:
    return object_get(merge_list(workspace=workspace), what="merge", pk=merge_id)
