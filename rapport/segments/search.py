"""Segments in the global search (rapport/core/search.py): by any part of the name."""

from django.urls import reverse
from django.utils.translation import gettext_lazy, ngettext

from rapport.core.search import SearchHit, SearchProvider, SearchQuery
from rapport.segments.models import Segment


def segments_find(principal, query: SearchQuery, limit: int) -> list[SearchHit]:
    segments = Segment.objects.filter(workspace=principal.workspace)
    if query.substring_ok:
        segments = segments.filter(name__icontains=query.text)
    else:
        segments = segments.filter(name__istartswith=query.text)
    return [
        SearchHit(
            kind="segments",
            id=str(segment.pk),
            label=segment.name,
            detail=ngettext("%(count)s member", "%(count)s members", segment.size)
            % {"count": segment.size},
            url=reverse("web:segment_detail", args=[segment.pk]),
        )
        for segment in segments.order_by("name")[:limit]
    ]


PROVIDER = SearchProvider(
    key="segments",
    label=gettext_lazy("Segments"),
    permission="segments.read",
    find=segments_find,
)
