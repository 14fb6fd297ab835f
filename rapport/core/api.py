"""`GET /api/v1/search`: the global search (rapport/core/search.py) as JSON."""

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from rapport.core.search import LIMIT_DEFAULT, LIMIT_MAX, QUERY_MAX_LENGTH, search_run


class SearchFilter(Schema):
    q: str = Field(
        "",
        max_length=QUERY_MAX_LENGTH,
        description=(
            "What to look for: any identifier of a customer (user id, anonymous id, "
            "email, phone as typed, external id), part of a name or of an email, an "
            "account's name or domain, a segment's name. Blank or missing: no hits."
        ),
    )
    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX, description="Hits per kind at most")


class SearchHitOut(Schema):
    kind: str
    id: str
    label: str
    detail: str
    url: str


class SearchSectionOut(Schema):
    kind: str
    label: str
    hits: list[SearchHitOut]


class SearchOut(Schema):
    query: str
    sections: list[SearchSectionOut]


router = Router(tags=["search"])


@router.get(
    "",
    response=SearchOut,
    summary="Search customers, accounts and segments",
    description=(
        "Hits grouped by kind, best first, each kind only for a role allowed to read "
        "it. Without the `pii.read` permission, emails and phone numbers are shown "
        "masked and are not searched at all: a customer is found only by what the role "
        "sees (the name, ids that are no email or phone)."
    ),
)
def search(request: HttpRequest, filters: Query[SearchFilter]):
    sections = search_run(request.auth, filters.q, limit=filters.limit)
    return {
        "query": filters.q.strip(),
        "sections": [
            {"kind": s.key, "label": s.label, "hits": [h.__dict__ for h in s.hits]}
            for s in sections
        ],
    }


ROUTERS = [("v1/search", router)]
