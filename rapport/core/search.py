"""Global search: one box that finds customers, accounts, segments (and later deals and
tickets), each kind found by the app that owns it.

An app adds a kind by registering a `SearchProvider` from its AppConfig.ready (see
rapport/identity/search.py for customers, rapport/profiles/search.py for accounts,
rapport/segments/search.py for segments). A provider gets the parsed query, the
person asking (a `Principal`: its workspace, its permissions, whether it may see
personal data) and how many hits to return at most, and answers `SearchHit`s that it
has already masked for that person. The core parses the query once, skips providers
whose permission the person lacks, and keeps the providers' order.

Masking (rapport/tenancy/pii.py): a person without `pii.read` finds a record only by
what they can see of it. Providers do not match such a person's query against emails,
phone numbers or identifiers that would be shown masked, so a hit never confirms a
hidden value ("is jane@example.com a customer?" finds nothing).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext

from rapport.core.errors import InvalidInputError

QUERY_MAX_LENGTH = 200
LIMIT_MAX = 50
LIMIT_DEFAULT = 8
# Substring searches below this length would match half of a million names; shorter
# text is matched as the start of a word or value instead (an index range).
SUBSTRING_MIN_LENGTH = 3

_SPACES = re.compile(r"\s+")
_PHONE_TEXT = re.compile(r"^[+(]?[\d\s().\-/]+$")


@dataclass(frozen=True)
class SearchQuery:
    """What was typed, tidied once for every provider."""

    text: str  # stripped, runs of spaces made one
    folded: str  # lower-cased (casefold) for case-insensitive matching
    digits: str  # the digits in it, in order

    @property
    def looks_like_phone(self) -> bool:
        """Only a phone number's characters and enough digits to be one, as people
        type it: `07700 901534`, `+44 7700-901534`, `(020) 7946 0100`."""
        return bool(_PHONE_TEXT.match(self.text)) and len(self.digits) >= 6

    @property
    def substring_ok(self) -> bool:
        return len(self.folded) >= SUBSTRING_MIN_LENGTH


@dataclass(frozen=True)
class SearchHit:
    kind: str  # the provider's key: "customers", "accounts", "segments"...
    id: str
    label: str
    detail: str = ""
    url: str = ""


@dataclass(frozen=True)
class SearchProvider:
    key: str
    label: str | Promise
    # The permission needed to see this kind of record at all.
    permission: str
    # find(principal, query, limit) -> at most `limit` hits, best first, masked.
    find: Callable[[Any, SearchQuery, int], list[SearchHit]]


@dataclass
class SearchSection:
    key: str
    label: str
    hits: list[SearchHit] = field(default_factory=list)


_PROVIDERS: list[SearchProvider] = []


def search_provider_register(provider: SearchProvider, *, before: str | None = None) -> None:
    """Add a kind of record to the global search (a second registration of the same
    key replaces the first), at the end or before the provider keyed `before`."""
    _PROVIDERS[:] = [p for p in _PROVIDERS if p.key != provider.key]
    index = next((i for i, p in enumerate(_PROVIDERS) if p.key == before), len(_PROVIDERS))
    _PROVIDERS.insert(index, provider)


def search_providers() -> list[SearchProvider]:
    return list(_PROVIDERS)


def search_query_parse(q: str | None) -> SearchQuery | None:
    """The query, or None when there is nothing to look for. Too long a query, or one
    with a NUL character (which PostgreSQL's text cannot hold), is refused naming `q`."""
    if q is None:
        return None
    if "\x00" in q:
        raise InvalidInputError(gettext("may not contain a NUL character"), field="q")
    text = _SPACES.sub(" ", q).strip()
    if len(text) > QUERY_MAX_LENGTH:
        raise InvalidInputError(
            gettext("at most %(query_max_length)s characters")
            % {"query_max_length": QUERY_MAX_LENGTH},
            field="q",
        )
    if not text:
        return None
    return SearchQuery(
        text=text, folded=text.casefold(), digits="".join(ch for ch in text if ch.isdigit())
    )


def search_run(
    principal, q: str | None, *, limit: int = LIMIT_DEFAULT, kinds: set[str] | None = None
) -> list[SearchSection]:
    """Each kind the person may see, with at most `limit` hits each; kinds with no
    hit are left out."""
    if not 1 <= limit <= LIMIT_MAX:
        raise InvalidInputError(
            gettext("must be 1 to %(limit_max)s") % {"limit_max": LIMIT_MAX}, field="limit"
        )
    query = search_query_parse(q)
    if query is None:
        return []
    sections = []
    for provider in _PROVIDERS:
        if kinds is not None and provider.key not in kinds:
            continue
        if not principal.has_perm(provider.permission):
            continue
        hits = provider.find(principal, query, limit)[:limit]
        if hits:
            sections.append(SearchSection(key=provider.key, label=str(provider.label), hits=hits))
    return sections
