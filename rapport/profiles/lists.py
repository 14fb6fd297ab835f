"""What a list of customers or accounts may show, sort by and filter on: the one
catalogue that the pages, the saved views and the API validate against.

A column is a key: a built-in one (`email`, `stage`, `churn`...) or `trait:<name>`
for any trait. Other apps add theirs (sales: `owner`) with `list_column_register`
from their AppConfig.ready, so that a column appears the day its data exists and
never as a dead one before. Values are read by the UI's presenter
(rapport/web/lists.py), which may ask every app; this module holds only names.

Sorting: `indexed` columns sort the whole list through an index; `bounded` columns
(traits, scores) sort only a filtered set of at most `SORT_LIMIT` rows, since ordering a
million profiles by a value inside JSON, or by a score in another table, reads every
one of them.
"""

import re
from dataclasses import dataclass

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from rapport.core.errors import InvalidInputError

LISTS = ("customers", "accounts")
# A count stops here ("more than 10,000"); the same bound lets a bounded column sort.
# Accounts are thousands, not millions: counted and sorted further.
COUNT_CAP = {"customers": 10_000, "accounts": 100_000}
MAX_COLUMNS = 12
MAX_TRAIT_FILTERS = 5
TRAIT_KEY = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_.$\- ]{0,99}$")
TRAIT_PREFIX = "trait:"


@dataclass(frozen=True)
class ListColumn:
    key: str
    label: str
    # "indexed", "bounded" or "" (not sortable)
    sort: str = ""


_COLUMNS: dict[str, dict[str, ListColumn]] = {name: {} for name in LISTS}


def list_column_register(*, list_name: str, key: str, label, sort: str = "") -> None:
    if list_name not in LISTS:
        raise ValueError(f"no list {list_name!r}")
    if sort not in ("", "indexed", "bounded"):
        raise ValueError(f"sort {sort!r}")
    _COLUMNS[list_name][key] = ListColumn(key=key, label=label, sort=sort)


for _key, _label, _sort in (
    ("email", _("Email"), ""),
    ("user_id", _("User id"), ""),
    ("stage", _("Lifecycle stage"), "bounded"),
    ("churn", _("Churn risk"), "bounded"),
    ("clv", _("Lifetime value"), "bounded"),
    ("last_seen", _("Last seen"), "indexed"),
    ("first_seen", _("First seen"), "bounded"),
    ("account", _("Account"), ""),
    ("consent", _("Consent"), ""),
):
    list_column_register(list_name="customers", key=_key, label=_label, sort=_sort)
for _key, _label, _sort in (
    ("domain", _("Domain"), ""),
    ("parent", _("Parent company"), ""),
    ("members", _("People"), ""),
    ("last_seen", _("Last seen"), "bounded"),
    ("first_seen", _("First seen"), "bounded"),
):
    list_column_register(list_name="accounts", key=_key, label=_label, sort=_sort)

# The list's own first column (the name, a link) is always there and sorts too.
NAME_SORT = {"customers": "bounded", "accounts": "indexed"}
DEFAULT_COLUMNS = {
    "customers": ["email", "stage", "churn", "last_seen"],
    "accounts": ["domain", "parent", "last_seen"],
}
DEFAULT_SORT = {"customers": "-last_seen", "accounts": "name"}
# Filters a list takes (query parameter -> how many values); a saved view keeps these.
FILTERS = {
    "customers": {
        "q": 1,
        "consent": 1,
        "segment": 1,
        "stage": 1,
        "rfm": 1,
        "churn": 1,
        "account": 1,
        "trait": MAX_TRAIT_FILTERS,
    },
    "accounts": {"q": 1},
}


def list_columns(list_name: str) -> list[ListColumn]:
    return list(_COLUMNS[list_name].values())


def column_get(list_name: str, key: str) -> ListColumn | None:
    """The column for a key, `trait:<name>` included; None for an unknown one."""
    if key.startswith(TRAIT_PREFIX):
        name = key[len(TRAIT_PREFIX) :]
        if not TRAIT_KEY.match(name):
            return None
        return ListColumn(key=key, label=name, sort="bounded")
    return _COLUMNS[list_name].get(key)


def sort_kind(list_name: str, sort: str) -> str:
    """How a valid sort key sorts: "indexed" or "bounded"."""
    key = sort.removeprefix("-")
    if key == "name":
        return NAME_SORT[list_name]
    return column_get(list_name, key).sort


def columns_clean(list_name: str, columns, *, field: str = "columns") -> list[str]:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInputError(gettext("must be a list of column names"), field=field)
    if len(columns) > MAX_COLUMNS:
        raise InvalidInputError(
            gettext("at most %(max_columns)s columns") % {"max_columns": MAX_COLUMNS}, field=field
        )
    cleaned: list[str] = []
    for key in columns:
        if column_get(list_name, key) is None:
            raise InvalidInputError(
                gettext("%(key)r is not a column of this list") % {"key": key[:100]}, field=field
            )
        if key not in cleaned:
            cleaned.append(key)
    return cleaned


def sort_clean(list_name: str, sort, *, field: str = "sort") -> str:
    """`key` (ascending) or `-key` (descending), over a sortable column or the name."""
    if not sort:
        return DEFAULT_SORT[list_name]
    if not isinstance(sort, str) or len(sort) > 120:
        raise InvalidInputError(gettext("not a column to sort by"), field=field)
    key = sort.removeprefix("-")
    column = column_get(list_name, key) if key != "name" else None
    if key != "name" and (column is None or not column.sort):
        raise InvalidInputError(
            gettext("%(key)r is not a column this list sorts by") % {"key": key[:100]}, field=field
        )
    return sort


def filters_clean(list_name: str, filters, *, field: str = "filters") -> dict:
    """Known filter names with text values (several only for `trait`, each
    `name:value`); what each value means is checked when the list is read. An error
    names `<field>.<filter>` (or the filter alone, for a page's query, `field=""`)."""
    if not isinstance(filters, dict):
        raise InvalidInputError(
            gettext("must be an object of filter names and values"), field=field
        )
    known = FILTERS[list_name]
    cleaned: dict = {}
    for name, value in filters.items():
        if name not in known:
            raise InvalidInputError(
                gettext("%(name)r is not a filter of this list") % {"name": str(name)[:100]},
                field=field,
            )
        where = f"{field}.{name}" if field else name
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) and len(v) <= 300 for v in values):
            raise InvalidInputError(
                gettext("values are text of at most 300 characters"), field=where
            )
        values = [v for v in values if v.strip()]
        if len(values) > known[name]:
            raise InvalidInputError(
                gettext("at most %(known)s values") % {"known": known[name]}, field=where
            )
        if name == "trait":
            for v in values:
                key = v.partition(":")[0].strip()
                if ":" not in v or not TRAIT_KEY.match(key):
                    raise InvalidInputError(
                        gettext("trait filters are written name:value"), field=where
                    )
        if values:
            cleaned[name] = values if known[name] > 1 else values[0]
    return cleaned
