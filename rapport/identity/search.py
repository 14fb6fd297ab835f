"""Customers in the global search (rapport/core/search.py): found by any identifier
(user id, anonymous id, email, phone, external ids) as typed or normalised, by any
part of their name, by part of an email, and by a phone number as people type it.

It lives with identity, not profiles, because it reads identifiers, which identity
owns (profiles never imports identity).

How each match stays fast on a million customers (PostgreSQL; migrations
identity 0006 and profiles 0008 add the indexes):
- an identifier equal to the text: the unique (workspace, value, kind) index;
- a name containing the text: a pg_trgm GIN index on lower(traits->>'name'); the
  start of a word first (`Ito` finds "Haruto Ito" before "Hitomi"), any part next;
  text shorter than three characters only as the start of the name (the b-tree);
- part of an email, part of a phone number: pg_trgm GIN indexes on the identifiers
  of those two kinds;
- a phone number in national form (`07700 901534`) is normalised with the workspace's
  default region when it has one; without one, its digits after the trunk prefix
  (`7700901534`) are looked for inside the stored E.164 numbers.

Masking: a person without `pii.read` finds customers by their name (as they would
see it, so a name that holds an email is searched in its masked form) and by the
identifiers they would see unmasked (user, anonymous and external ids that are no
email or phone). Emails and phones are not searched for them at all, so a hit never
confirms a hidden value.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rapport.core.search import SearchHit, SearchProvider, SearchQuery
from rapport.identity.models import Identifier, IdentityRules
from rapport.identity.normalize import EMAIL, PHONE, normalize_email, normalize_phone
from rapport.profiles.models import Profile
from rapport.tenancy.pii import mask_identifier, mask_string, shown_identifier

# The labels of identifier kinds shown beside a hit ("Email: ada@...").
KIND_LABELS = {
    "user_id": gettext_lazy("User ID"),
    "anonymous_id": gettext_lazy("Anonymous ID"),
    "email": gettext_lazy("Email"),
    "phone": gettext_lazy("Phone"),
}


def _default_region(workspace) -> str | None:
    region = (
        IdentityRules.objects.filter(workspace=workspace)
        .values_list("default_phone_region", flat=True)
        .first()
    )
    return region or None


def _phone_core(digits: str) -> str:
    """The digits of a number as typed, without what differs between the national and
    international forms: an international `00`, or a national trunk `0`
    (`07700 901534` -> `7700901534`, found inside `+447700901534`)."""
    if digits.startswith("00"):
        return digits[2:]
    return digits.lstrip("0") if digits.startswith("0") else digits


def _exact_values(query: SearchQuery, region: str | None, pii: bool) -> set[str]:
    values = {query.text, query.folded}
    if pii:
        values |= {
            v
            for v in (
                normalize_email(query.text),
                normalize_phone(query.text, default_region=region),
                normalize_phone(query.text),
            )
            if v
        }
    return values


def customers_find(principal, query: SearchQuery, limit: int) -> list[SearchHit]:
    workspace = principal.workspace
    pii = principal.can_see_pii
    # profile id -> (identifier kind or "name", the value that matched), best first.
    found: dict[uuid.UUID, tuple[str, str]] = {}

    def add(rows) -> None:
        for profile_id, kind, value in rows:
            if len(found) >= limit:
                return
            if not pii and shown_identifier(principal, kind, value) != value:
                continue
            found.setdefault(profile_id, (kind, value))

    identifiers = Identifier.objects.filter(workspace=workspace)
    region = _default_region(workspace) if pii and query.looks_like_phone else None
    exact = identifiers.filter(value__in=_exact_values(query, region, pii))
    if not pii:
        exact = exact.exclude(kind__in=(EMAIL, PHONE))
    add(exact.values_list("profile_id", "kind", "value")[:limit])

    # A phone number or an address is no part of anyone's name.
    by_name = not query.looks_like_phone and "@" not in query.text
    for profile_id, name in _names(workspace, query, limit * 2) if by_name else []:
        if len(found) >= limit:
            break
        if not pii and query.folded not in mask_string(name).casefold():
            continue
        found.setdefault(profile_id, ("name", name))

    if pii and len(found) < limit:
        if query.looks_like_phone and len(_phone_core(query.digits)) >= 4:
            phones = identifiers.filter(kind=PHONE, value__contains=_phone_core(query.digits))
            add(phones.values_list("profile_id", "kind", "value")[: limit - len(found)])
        elif query.substring_ok and " " not in query.folded:
            emails = identifiers.filter(kind=EMAIL, value__contains=query.folded)
            add(emails.values_list("profile_id", "kind", "value")[: limit - len(found)])

    if not found:
        return []
    profiles = {
        p.pk: p
        for p in Profile.objects.filter(
            workspace=workspace, merged_into__isnull=True, pk__in=list(found)
        ).only("id", "traits")
    }
    hits = []
    for profile_id, (kind, value) in found.items():
        profile = profiles.get(profile_id)
        if profile is None:
            continue
        hits.append(_hit(principal, profile, kind, value))
    return hits


def _names(workspace, query: SearchQuery, limit: int) -> list[tuple[uuid.UUID, str]]:
    """Profiles whose name has a word starting with the text, then (three characters
    or more) whose name contains it anywhere."""
    named = Profile.objects.filter(workspace=workspace, merged_into__isnull=True).annotate(
        _name=Lower(KeyTextTransform("name", "traits"))
    )
    folded = query.folded
    if not query.substring_ok:
        # The b-tree on (workspace, lower(name)): an index range, in name order.
        rows = named.filter(_name__gte=folded, _name__lt=folded + "\U0010ffff").order_by("_name")
        return [
            (pk, traits.get("name", "")) for pk, traits in rows.values_list("pk", "traits")[:limit]
        ]
    word_start = named.filter(Q(_name__startswith=folded) | Q(_name__contains=" " + folded))
    with _trigram_index_only():
        rows = list(word_start.values_list("pk", "traits")[:limit])
        if len(rows) < limit:
            seen = {pk for pk, _traits in rows}
            anywhere = named.filter(_name__contains=folded).values_list("pk", "traits")
            rows += [row for row in anywhere[: limit * 2] if row[0] not in seen][
                : limit - len(rows)
            ]
    return [(pk, str((traits or {}).get("name", ""))) for pk, traits in rows]


@contextmanager
def _trigram_index_only() -> Iterator[None]:
    """On PostgreSQL, name matches come from the trigram index (a bitmap scan), never
    from a walk of the table or of the name b-tree. The planner guesses that 0.5-1.3%
    of names match any pattern, so under a LIMIT it expects a walk to stop early; for
    text no name holds (a user id, a domain, a typo) the walk reads every profile:
    0.8 s (table) or 6 s (b-tree) at 1,000,000 profiles, against 0.1-25 ms through
    the trigram index (bench_search, 2026-12-04)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        yield


def _hit(principal, profile: Profile, kind: str, value: str) -> SearchHit:
    traits = profile.traits or {}
    name = str(traits.get("name") or "").strip()
    email = str(traits.get("email") or "").strip()
    pii = principal.can_see_pii
    if name:
        label = name if pii else mask_string(name)
    elif email:
        label = email if pii else mask_identifier(EMAIL, email)
    else:
        label = _("Customer %(id)s") % {"id": str(profile.pk)[:8]}
    if kind == "name":
        detail = (email if pii else mask_identifier(EMAIL, email)) if email else ""
    else:
        kind_label = KIND_LABELS.get(kind, kind)
        detail = f"{kind_label}: {shown_identifier(principal, kind, value)}"
    company = str(traits.get("company") or "").strip()
    if company:
        detail = f"{detail} · {company}" if detail else company
    return SearchHit(
        kind="customers",
        id=str(profile.pk),
        label=label,
        detail=detail,
        url=reverse("web:customer_detail", args=[profile.pk]),
    )


PROVIDER = SearchProvider(
    key="customers",
    label=gettext_lazy("Customers"),
    permission="profiles.read",
    find=customers_find,
)
