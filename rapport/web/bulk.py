"""Bulk actions on a selection of a list: the ticked rows, or every row the filters
match. One registry, so that the apps still to come add theirs ("assign owner",
"enrol in a journey") with `bulk_action_register` and the list offers them.

Every action is a POST in two steps: the first shows what will happen to how many
customers (and asks what the action needs: which segment), the second (`confirm=yes`)
does it. Nothing here is a GET: a crawler following links changes and discloses
nothing.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.core.exceptions import TooManyFieldsSent
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rapport.core.errors import InvalidInputError, NotFoundError
from rapport.core.safe_csv import csv_lines, csv_streaming_response
from rapport.profiles import lists
from rapport.profiles import selectors as profile_selectors
from rapport.profiles.models import Account, AccountMember, Profile
from rapport.segments import selectors as segment_selectors
from rapport.segments import services as segment_services
from rapport.tenancy.services import audit_log_record
from rapport.web.pages import uuid_or_none, workspace_page

# Ticked rows come from pages of at most 200; "every match" goes up to this many.
MAX_TICKED = 500
MAX_SELECTION = 100_000
EXPORT_BATCH = 500


# The lists that take bulk actions: customers, accounts, and one segment's members.
CUSTOMERS, ACCOUNTS, SEGMENT_MEMBERS = "customers", "accounts", "segment_members"
# The arrangement (columns, filters) each list's rows come with.
STATE_LIST = {CUSTOMERS: "customers", ACCOUNTS: "accounts", SEGMENT_MEMBERS: "customers"}


@dataclass(frozen=True)
class Selection:
    """The customers (or accounts) an action applies to: their ids, in list order, and
    the arrangement of the list they were chosen from (its columns go into an export);
    for a segment's members, the segment."""

    ids: list
    everything: bool
    state: object
    list_name: str = CUSTOMERS
    segment: object = None


@dataclass(frozen=True)
class BulkAction:
    key: str
    label: str
    permission: str
    lists: tuple[str, ...]
    # The confirmation's extra fields (a template), and what confirming does.
    fields_template: str
    run: Callable[[HttpRequest, Selection], HttpResponse]
    # Offered only where this holds (given the listed segment, or None).
    offered: Callable[[object], bool] | None = None


_ACTIONS: dict[str, BulkAction] = {}


def bulk_action_register(action: BulkAction) -> None:
    _ACTIONS[action.key] = action


def _offered(action: BulkAction, segment) -> bool:
    return action.offered is None or action.offered(segment)


def actions_for(principal, list_name: str, segment=None) -> list[BulkAction]:
    return [
        a
        for a in _ACTIONS.values()
        if list_name in a.lists and principal.has_perm(a.permission) and _offered(a, segment)
    ]


def _ticked(request: HttpRequest, what: str) -> list:
    accounts = what == "accounts"
    texts = request.POST.getlist("ids")
    if len(texts) > MAX_TICKED:
        message = (
            gettext("at most %(max_ticked)s ticked accounts")
            if accounts
            else gettext("at most %(max_ticked)s ticked customers")
        )
        raise InvalidInputError(message % {"max_ticked": f"{MAX_TICKED:,}"}, field="ids")
    wanted = []
    for text in texts:
        pk = uuid_or_none(text)
        if pk is None:
            message = (
                gettext("%(text)r is not an account id")
                if accounts
                else gettext("%(text)r is not a customer id")
            )
            raise InvalidInputError(message % {"text": text[:60]}, field="ids")
        if pk not in wanted:
            wanted.append(pk)
    if not wanted:
        if accounts:
            raise InvalidInputError(_("tick at least one account"), field="ids")
        raise InvalidInputError(_("tick at least one customer"), field="ids")
    return wanted


def _capped(ids: list, what: str) -> list:
    if len(ids) > MAX_SELECTION:
        message = (
            gettext("more than %(max_selection)s accounts match: narrow the filters")
            if what == "accounts"
            else gettext("more than %(max_selection)s customers match: narrow the filters")
        )
        raise InvalidInputError(message % {"max_selection": f"{MAX_SELECTION:,}"}, field="all")
    return ids


def selection_read(request: HttpRequest, list_name: str = CUSTOMERS, segment=None) -> Selection:
    """The ticked ids (each one of this workspace's live customers, accounts, or the
    segment's current members, else a 404), or every row the posted filters match
    (`all=1`), up to MAX_SELECTION."""
    from rapport.web.customers import customers_filtered
    from rapport.web.lists import state_from_query

    principal = request.principal
    workspace = principal.workspace
    state = state_from_query(STATE_LIST[list_name], QueryDict(request.POST.get("state", "")))
    everything = request.POST.get("all") == "1"
    if list_name == ACCOUNTS:
        # Live accounts of this workspace only: one merged away is not listed.
        accounts = profile_selectors.account_list(workspace=workspace)
        if everything:
            q = (state.filters.get("q") or "").strip()
            matching = profile_selectors.account_list(workspace=workspace, q=q or None)
            ids = list(
                matching.order_by(Lower("name"), "id").values_list("pk", flat=True)[
                    : MAX_SELECTION + 1
                ]
            )
            return Selection(_capped(ids, "accounts"), True, state, list_name)
        wanted = _ticked(request, "accounts")
        if accounts.filter(pk__in=wanted).count() != len(wanted):
            raise NotFoundError(gettext("Some of these accounts are not in this workspace"))
        return Selection(wanted, False, state, list_name)
    if list_name == SEGMENT_MEMBERS:
        members = segment_selectors.segment_members(workspace=workspace, segment=segment)
        if everything:
            ids = list(members.values_list("pk", flat=True)[: MAX_SELECTION + 1])
            return Selection(_capped(ids, "customers"), True, state, list_name, segment)
        wanted = _ticked(request, "customers")
        if members.filter(pk__in=wanted).count() != len(wanted):
            raise NotFoundError(gettext("Some of these customers are not members of this segment"))
        return Selection(wanted, False, state, list_name, segment)
    live = Profile.objects.filter(workspace=workspace, merged_into__isnull=True)
    if everything:
        profiles, _found = customers_filtered(principal, state)
        ids = list(
            profiles.order_by("-last_seen_at", "-id").values_list("pk", flat=True)[
                : MAX_SELECTION + 1
            ]
        )
        return Selection(_capped(ids, "customers"), True, state, list_name)
    wanted = _ticked(request, "customers")
    found = set(live.filter(pk__in=wanted).values_list("pk", flat=True))
    if len(found) != len(wanted):
        raise NotFoundError(gettext("Some of these customers are not in this workspace"))
    return Selection(wanted, False, state, list_name)


def _back(list_name: str, segment, state_text: str) -> str:
    if list_name == SEGMENT_MEMBERS:
        return reverse("web:segment_detail", args=[segment.pk]) + "?" + state_text
    if list_name == ACCOUNTS:
        return reverse("web:account_list") + "?" + state_text
    return reverse("web:customer_list") + "?" + state_text


def _refused(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/error.html",
        {"message": _("Your role does not allow this page.")},
        status=403,
    )


@workspace_page("profiles.read")
@require_POST
def bulk_action(request: HttpRequest, list_name: str, segment_id=None) -> HttpResponse:
    principal = request.principal
    try:
        request.POST  # noqa: B018 - parsed here, so that too many fields name the field
    except TooManyFieldsSent:
        raise InvalidInputError(
            gettext("at most %(max_ticked)s ticked rows: select all matching instead")
            % {"max_ticked": f"{MAX_TICKED:,}"},
            field="ids",
        ) from None
    segment = None
    if list_name == SEGMENT_MEMBERS:
        if not principal.has_perm("segments.read"):
            return _refused(request)
        segment = segment_selectors.segment_get(
            workspace=principal.workspace, segment_id=segment_id
        )
    action = _ACTIONS.get(request.POST.get("action", ""))
    if action is None or list_name not in action.lists or not _offered(action, segment):
        raise InvalidInputError(_("not an action on this list"), field="action")
    if not principal.has_perm(action.permission):
        return _refused(request)
    selection = selection_read(request, list_name, segment)
    if request.POST.get("confirm") == "yes":
        return action.run(request, selection)
    static = segment_selectors.segment_list(workspace=principal.workspace).filter(kind="static")
    if segment is not None:
        static = static.exclude(pk=segment.pk)
    state_text = request.POST.get("state", "")
    context = {
        "action": action,
        "selection": selection,
        "count": len(selection.ids),
        "state_text": state_text,
        "back_url": _back(list_name, segment, state_text),
        "static_segments": list(static[:200]),
        "list_name": list_name,
        "segment": segment,
        "people": _people_of_accounts(principal.workspace, selection.ids)
        if list_name == ACCOUNTS and action.key == "segment_add"
        else None,
    }
    return render(request, "web/customers/bulk_confirm.html", context)


def _people_of_accounts(workspace, account_ids: list) -> list:
    """The live customers of these accounts (whom "add to a segment" adds)."""
    ids: list = []
    for start in range(0, len(account_ids), EXPORT_BATCH):
        ids.extend(
            AccountMember.objects.filter(
                workspace=workspace,
                account_id__in=account_ids[start : start + EXPORT_BATCH],
                profile__merged_into__isnull=True,
            )
            .values_list("profile_id", flat=True)
            .distinct()
        )
    return list(dict.fromkeys(ids))


def _add_to_segment(request: HttpRequest, selection: Selection) -> HttpResponse:
    principal = request.principal
    segment_id = uuid_or_none(request.POST.get("segment"))
    if segment_id is None:
        raise InvalidInputError(_("choose a static segment"), field="segment")
    segment = segment_selectors.segment_get(workspace=principal.workspace, segment_id=segment_id)
    ids = selection.ids
    if selection.list_name == ACCOUNTS:
        ids = _people_of_accounts(principal.workspace, selection.ids)
        if not ids:
            raise InvalidInputError(_("the selected accounts have no people"), field="ids")
    result = segment_services.segment_members_add(
        segment=segment, values=[str(pk) for pk in ids], actor=principal.actor
    )
    return render(request, "web/segments/added.html", {"segment": segment, "result": result})


def _remove_from_segment(request: HttpRequest, selection: Selection) -> HttpResponse:
    principal = request.principal
    segment = selection.segment
    result = segment_services.segment_members_remove(
        segment=segment, profile_ids=selection.ids, actor=principal.actor
    )
    return render(request, "web/segments/removed.html", {"segment": segment, "result": result})


def _export(request: HttpRequest, selection: Selection) -> HttpResponse:
    """The selection as CSV with the list's columns, masked as the list shows them to
    this person, recorded in the audit log before the first line leaves."""
    if selection.list_name == ACCOUNTS:
        return _export_accounts(request, selection)
    from rapport.web.lists import customer_cells

    principal = request.principal
    columns = selection.state.columns
    details = {
        "customers": len(selection.ids),
        "columns": columns,
        "filters": selection.state.filters if selection.everything else {},
        "masked": not principal.can_see_pii,
    }
    if selection.segment is not None:
        details["segment"] = str(selection.segment.pk)
    audit_log_record(
        workspace=principal.workspace,
        actor=principal.actor,
        action="customers.export",
        details=details,
    )
    headers = [
        "id",
        str(_("Name")),
        *(str(lists.column_get("customers", c).label) for c in columns),
    ]

    def rows() -> Iterator[list]:
        yield headers
        for start in range(0, len(selection.ids), EXPORT_BATCH):
            chunk = selection.ids[start : start + EXPORT_BATCH]
            order = {pk: n for n, pk in enumerate(chunk)}
            profiles = sorted(
                Profile.objects.filter(
                    workspace=principal.workspace, pk__in=chunk
                ).prefetch_related("identifiers"),
                key=lambda p: order[p.pk],
            )
            for row in customer_cells(principal, profiles, columns):
                yield [
                    str(row["summary"]["id"]),
                    row["summary"]["name"],
                    *(_cell_text(c["value"]) for c in row["cells"]),
                ]

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return csv_streaming_response(csv_lines(rows()), f"customers-{stamp}.csv")


def _cell_text(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _export_accounts(request: HttpRequest, selection: Selection) -> HttpResponse:
    """The selected accounts with the list's columns (traits masked as the list shows
    them), audited before the first line."""
    from rapport.web.accounts import account_cells

    principal = request.principal
    columns = selection.state.columns
    audit_log_record(
        workspace=principal.workspace,
        actor=principal.actor,
        action="accounts.export",
        details={
            "accounts": len(selection.ids),
            "columns": columns,
            "filters": selection.state.filters if selection.everything else {},
            "masked": not principal.can_see_pii,
        },
    )
    headers = [
        "id",
        str(_("Name")),
        str(_("Group id")),
        *(str(lists.column_get("accounts", c).label) for c in columns),
    ]

    def rows() -> Iterator[list]:
        yield headers
        for start in range(0, len(selection.ids), EXPORT_BATCH):
            chunk = selection.ids[start : start + EXPORT_BATCH]
            order = {pk: n for n, pk in enumerate(chunk)}
            accounts = sorted(
                Account.objects.filter(workspace=principal.workspace, pk__in=chunk).select_related(
                    "parent"
                ),
                key=lambda a: order[a.pk],
            )
            for row in account_cells(principal, accounts, columns):
                account = row["account"]
                yield [
                    str(account.pk),
                    account.name,
                    account.group_id,
                    *(_cell_text(c["value"]) for c in row["cells"]),
                ]

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return csv_streaming_response(csv_lines(rows()), f"accounts-{stamp}.csv")


bulk_action_register(
    BulkAction(
        key="segment_add",
        label=gettext_lazy("Add to a static segment"),
        permission="segments.manage",
        lists=(CUSTOMERS, ACCOUNTS, SEGMENT_MEMBERS),
        fields_template="web/customers/_bulk_segment.html",
        run=_add_to_segment,
    )
)
bulk_action_register(
    BulkAction(
        key="export",
        label=gettext_lazy("Export as CSV"),
        permission="pii.export",
        lists=(CUSTOMERS, ACCOUNTS, SEGMENT_MEMBERS),
        fields_template="",
        run=_export,
    )
)
bulk_action_register(
    BulkAction(
        key="segment_remove",
        label=gettext_lazy("Remove from this segment"),
        permission="segments.manage",
        lists=(SEGMENT_MEMBERS,),
        fields_template="",
        run=_remove_from_segment,
        offered=lambda segment: segment is not None and segment.kind == "static",
    )
)
