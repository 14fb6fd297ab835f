"""The side bar: groups of pages by what people do, declared once.

A page appears in the side bar by being an item of a group here. Apps that arrive
later (messages, journeys, decisions, loyalty; deals, tasks, inbox) add their pages
with `nav_item_register("act", NavItem(...))` from their AppConfig.ready, so that the
side bar never links to a page that does not exist: a group with no item the person
may open is not shown at all.

Each item names the permission its page needs (the same code the view's
`workspace_page(permission)` checks), so the side bar hides what the role cannot open.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str | Promise
    url_name: str
    # The permission the page needs; None for pages every member may open.
    permission: str | None = None
    # URL names (a trailing "*" for a prefix) under which this item is the current one.
    current_for: tuple[str, ...] = ()

    def is_current(self, url_name: str | None) -> bool:
        if not url_name:
            return False
        for name in (self.url_name.rpartition(":")[2], *self.current_for):
            if (name.endswith("*") and url_name.startswith(name[:-1])) or name == url_name:
                return True
        return False


@dataclass
class NavGroup:
    key: str
    label: str | Promise | None
    items: list[NavItem] = field(default_factory=list)


NAV_GROUPS: list[NavGroup] = [
    NavGroup(
        "start",
        None,
        [NavItem("home", _("Home"), "web:home")],
    ),
    NavGroup(
        "customers",
        _("Customers & accounts"),
        [
            NavItem(
                "customers",
                _("Customers"),
                "web:customer_list",
                "profiles.read",
                ("customer_*",),
            ),
            NavItem("accounts", _("Accounts"), "web:account_list", "profiles.read", ("account_*",)),
        ],
    ),
    NavGroup(
        "understand",
        _("Understand"),
        [
            NavItem("segments", _("Segments"), "web:segment_list", "segments.read", ("segment_*",)),
            NavItem("lifecycle", _("Lifecycle"), "web:lifecycle", "segments.read", ("lifecycle*",)),
            NavItem("rfm", _("RFM"), "web:rfm", "segments.read", ("rfm*",)),
            NavItem("predictions", _("Predictions"), "web:models", "models.read", ("model*",)),
            NavItem(
                "analytics", _("Analytics"), "web:analytics", "analytics.read", ("analytics*",)
            ),
        ],
    ),
    # Messages, journeys, decisions and loyalty register here when they land.
    NavGroup("act", _("Act")),
    # Deals, tasks and the inbox register here when they land.
    NavGroup("work", _("Work")),
    NavGroup(
        "data",
        _("Data"),
        [
            NavItem(
                "sources",
                _("Sources"),
                "web:source_list",
                "sources.read",
                ("source_*", "write_key_*"),
            ),
            NavItem("debugger", _("Debugger"), "web:debugger", "events.read"),
            NavItem("quarantine", _("Quarantine"), "web:quarantine_list", "events.quarantine.read"),
            NavItem("imports", _("Imports"), "web:import_list", "imports.manage", ("import_*",)),
            NavItem(
                "pipeline",
                pgettext_lazy("events", "Pipeline"),
                "web:pipeline",
                "pipeline.read",
                ("pipeline*",),
            ),
            NavItem(
                "duplicates",
                _("Duplicates"),
                "web:duplicate_list",
                "profiles.read",
                ("duplicate_*",),
            ),
        ],
    ),
    NavGroup(
        "settings",
        None,
        [
            NavItem(
                "settings",
                _("Settings"),
                "web:identity_rules",
                current_for=("identity_rules", "member_*", "api_token_*", "invitation_*"),
            )
        ],
    ),
]


def nav_item_register(group: str, item: NavItem, *, before: str | None = None) -> None:
    """Add a page to a group of the side bar (once: a second call with the same key
    replaces the first), at its end or before the item keyed `before`."""
    target = next((g for g in NAV_GROUPS if g.key == group), None)
    if target is None:
        raise KeyError(f"no navigation group {group!r}")
    target.items = [existing for existing in target.items if existing.key != item.key]
    index = next((i for i, e in enumerate(target.items) if e.key == before), len(target.items))
    target.items.insert(index, item)


@dataclass(frozen=True)
class ShownItem:
    key: str
    label: str
    url: str
    current: bool


@dataclass(frozen=True)
class ShownGroup:
    key: str
    label: str | None
    items: list[ShownItem]


def navigation_for(
    principal, url_name: str | None, groups: Iterable[NavGroup] | None = None
) -> list[ShownGroup]:
    """The groups and items this person may open, the current page marked; groups
    left empty are dropped."""
    shown = []
    for group in NAV_GROUPS if groups is None else groups:
        items = [
            ShownItem(
                key=item.key,
                label=str(item.label),
                url=reverse(item.url_name),
                current=item.is_current(url_name),
            )
            for item in group.items
            if item.permission is None or principal.has_perm(item.permission)
        ]
        if items:
            shown.append(
                ShownGroup(
                    key=group.key,
                    label=str(group.label) if group.label else None,
                    items=items,
                )
            )
    return shown
