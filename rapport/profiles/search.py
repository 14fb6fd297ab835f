"""Accounts in the global search (rapport/core/search.py): by any part of the name, by
their group id, or by their domain or website (`globex`, `globex.example`)."""

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.translation import gettext_lazy

from rapport.core.search import SearchHit, SearchProvider, SearchQuery
from rapport.profiles.models import Account
from rapport.tenancy.pii import mask_identifier

# Where a company's web address may be kept among its traits.
DOMAIN_TRAITS = ("domain", "website")


def accounts_find(principal, query: SearchQuery, limit: int) -> list[SearchHit]:
    accounts = Account.objects.filter(
        workspace=principal.workspace, merged_into__isnull=True
    ).annotate(_name=Lower("name"))
    folded = query.folded
    rows = []
    if principal.can_see_pii or mask_identifier("group_id", query.text) == query.text:
        # Its own query: an OR with it would keep PostgreSQL from combining the
        # trigram indexes of the other three.
        rows = list(accounts.filter(group_id=query.text)[:1])
    if query.substring_ok:
        matched = Q(_name__contains=folded)
        for trait in DOMAIN_TRAITS:
            accounts = accounts.annotate(**{f"_{trait}": Lower(KeyTextTransform(trait, "traits"))})
            matched |= Q(**{f"_{trait}__contains": folded})
    else:
        matched = Q(_name__startswith=folded)
    rows += (
        accounts.filter(matched)
        .exclude(pk__in=[a.pk for a in rows])
        .order_by("name", "id")[: limit - len(rows)]
    )
    hits = []
    for account in rows:
        traits = account.traits or {}
        web = next((str(traits[t]) for t in DOMAIN_TRAITS if traits.get(t)), "")
        detail = " · ".join(part for part in (str(traits.get("industry") or ""), web) if part)
        hits.append(
            SearchHit(
                kind="accounts",
                id=str(account.pk),
                label=account.name or account.group_id,
                detail=detail,
                url=reverse("web:account_detail", args=[account.pk]),
            )
        )
    return hits


PROVIDER = SearchProvider(
    key="accounts",
    label=gettext_lazy("Accounts"),
    permission="profiles.read",
    find=accounts_find,
)
