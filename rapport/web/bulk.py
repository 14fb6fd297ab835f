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
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rapport.core.errors import InvalidInputError, NotFoundError
from rapport.core.safe_csv import csv_lines, csv_streaming_response
from rapport.profiles import lists
from rapport.profiles.models import Profile
from rapport.segments import selectors as segment_selectors
from rapport.segments import services as segment_services
from rapport.tenancy.services import audit_log_record
from rapport.web.pages import uuid_or_none, workspace_page

# Ticked rows come from pages of at most 200; "every match" goes up to this many.
MAX_TICKED = 500
MAX_SELECTION = 100_000
EXPORT_BATCH = 500


@dataclass(frozen=True)
class Selection:
    """The customers an action applies to: their ids, in list order, and the
    arrangement of the list they were chosen from (its columns go into an export)."""

    ids: list
    everything: bool
    state: object


@dataclass(frozen=True)
class BulkAction:
    key: str
    label: str
    permission: str
    lists: tuple[str, ...]
    # The confirmation's extra fields (a template), and what confirming does.
    fields_template: str
    run: Callable[[HttpRequest, Selection], HttpResponse]


_ACTIONS: dict[str, BulkAction] = {}


def bulk_action_register(action: BulkAction) -> None:
    _ACTIONS[action.key] = action


def actions_for(principal, list_name: str) -> list[BulkAction]:
    return [
        a for a in _ACTIONS.values() if list_name in a.lists and principal.has_perm(a.permission)
    ]


def selection_read(request: HttpRequest) -> Selection:
    """The ticked ids (each one of this workspace's live customers, else a 404), or
    every customer the posted filters match (`all=1`), up to MAX_SELECTION."""
    from rapport.web.customers import customers_filtered
    from rapport.web.lists import state_from_query

    principal = request.principal
    state = state_from_query("customers", QueryDict(request.POST.get("state", "")))
    live = Profile.objects.filter(workspace=principal.workspace, merged_into__isnull=True)
    if request.POST.get("all") == "1":
        profiles, _found = customers_filtered(principal, state)
        ids = list(
            profiles.order_by("-last_seen_at", "-id").values_list("pk", flat=True)[
                : MAX_SELECTION + 1
            ]
        )
        if len(ids) > MAX_SELECTION:
            raise InvalidInputError(
                gettext("more than %(max_selection)s customers match: narrow the filters")
                % {"max_selection": f"{MAX_SELECTION:,}"},
                field="all",
            )
        return Selection(ids=ids, everything=True, state=state)
    texts = request.POST.getlist("ids")
    if len(texts) > MAX_TICKED:
        raise InvalidInputError(
            gettext("at most %(max_ticked)s ticked customers") % {"max_ticked": f"{MAX_TICKED:,}"},
            field="ids",
        )
    wanted = []
    for text in texts:
        pk = uuid_or_none(text)
        if pk is None:
            raise InvalidInputError(
                gettext("%(text)r is not a customer id") % {"text": text[:60]}, field="ids"
            )
        if pk not in wanted:
            wanted.append(pk)
    if not wanted:
        raise InvalidInputError(_("tick at least one customer"), field="ids")
    found = set(live.filter(pk__in=wanted).values_list("pk", flat=True))
    if len(found) != len(wanted):
        raise NotFoundError(gettext("Some of these customers are not in this workspace"))
    return Selection(ids=wanted, everything=False, state=state)


@workspace_page("profiles.read")
@require_POST
def bulk_action(request: HttpRequest, list_name: str) -> HttpResponse:
    principal = request.principal
    try:
        request.POST  # noqa: B018 - parsed here, so that too many fields name the field
    except TooManyFieldsSent:
        raise InvalidInputError(
            gettext("at most %(max_ticked)s ticked customers: select all matching instead")
            % {"max_ticked": f"{MAX_TICKED:,}"},
            field="ids",
        ) from None
    action = _ACTIONS.get(request.POST.get("action", ""))
    if action is None or list_name not in action.lists:
        raise InvalidInputError(_("not an action on this list"), field="action")
    if not principal.has_perm(action.permission):
        return render(
            request,
            "web/error.html",
            {"message": _("Your role does not allow this page.")},
            status=403,
        )
    selection = selection_read(request)
    if request.POST.get("confirm") == "yes":
        return action.run(request, selection)
    context = {
        "action": action,
        "selection": selection,
        "count": len(selection.ids),
        "state_text": request.POST.get("state", ""),
        "back": request.POST.get("state", ""),
        "static_segments": list(
            segment_selectors.segment_list(workspace=principal.workspace).filter(kind="static")[
                :200
            ]
        ),
        "list_name": list_name,
    }
    return render(request, "web/customers/bulk_confirm.html", context)


def _add_to_segment(request: HttpRequest, selection: Selection) -> HttpResponse:
    principal = request.principal
    segment_id = uuid_or_none(request.POST.get("segment"))
    if segment_id is None:
        raise InvalidInputError(_("choose a static segment"), field="segment")
    segment = segment_selectors.segment_get(workspace=principal.workspace, segment_id=segment_id)
    result = segment_services.segment_members_add(
        segment=segment, values=[str(pk) for pk in selection.ids], actor=principal.actor
    )
    return render(request, "web/segments/added.html", {"segment": segment, "result": result})


def _export(request: HttpRequest, selection: Selection) -> HttpResponse:
    """The selection as CSV with the list's columns, masked as the list shows them to
    this person, recorded in the audit log before the first line leaves."""
    from rapport.web.lists import customer_cells

    principal = request.principal
    columns = selection.state.columns
    audit_log_record(
        workspace=principal.workspace,
        actor=principal.actor,
        action="customers.export",
        details={
            "customers": len(selection.ids),
            "columns": columns,
            "filters": selection.state.filters if selection.everything else {},
            "masked": not principal.can_see_pii,
        },
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
                    *(
                        c["value"].isoformat() if hasattr(c["value"], "isoformat") else c["value"]
                        for c in row["cells"]
                    ),
                ]

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return csv_streaming_response(csv_lines(rows()), f"customers-{stamp}.csv")


bulk_action_register(
    BulkAction(
        key="segment_add",
        label=gettext_lazy("Add to a static segment"),
        permission="segments.manage",
        lists=("customers",),
        fields_template="web/customers/_bulk_segment.html",
        run=_add_to_segment,
    )
)
bulk_action_register(
    BulkAction(
        key="export",
        label=gettext_lazy("Export as CSV"),
        permission="pii.export",
        lists=("customers",),
        fields_template="",
        run=_export,
    )
)
