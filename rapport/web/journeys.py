"""Journeys in the UI (rapport.journeys does the work): the list with each journey's
enrolled, converted and lift against the holdout; a new journey, blank or from a
shipped programme; the editor, where the journey is a graph of steps (Drawflow, in
static/web/journey-editor.js) saved as the graph JSON of docs (the journey schema)
through `journey_update`, with `journey_validate`'s errors shown beside the steps they
name; start, pause and stop; and per-step counts and the goal's conversion against the
holdout, with a 95% confidence interval.

Without JavaScript the page still works: the graph's JSON is a textarea of the form."""

import json
import re

from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from rapport.channels import selectors as channel_selectors
from rapport.channels.models import Channel, Purpose
from rapport.core.errors import InvalidInputError, RapportError
from rapport.journeys import selectors, services
from rapport.journeys.models import Journey
from rapport.segments import selectors as segment_selectors
from rapport.web.navigation import NavItem, nav_item_register
from rapport.web.pages import page_query, workspace_page

LIST_PAGE = 25
# A posted graph larger than this is refused before it is parsed.
GRAPH_MAX_BYTES = 1_000_000


def nav_register() -> None:
    nav_item_register(
        "act",
        NavItem(
            "journeys",
            gettext_lazy("Journeys"),
            "web:journey_list",
            "journeys.read",
            ("journey_*",),
        ),
        before="broadcasts",
    )


# --- Words for the editor (static/web/journey-editor.js), translated here ----------------

STEP_TYPES = {
    "send": gettext_lazy("Send a message"),
    "wait": gettext_lazy("Wait"),
    "wait_until": gettext_lazy("Wait until a time of day"),
    "wait_event": gettext_lazy("Wait for an event"),
    "branch": gettext_lazy("Branch on a rule"),
    "split": gettext_lazy("Random split"),
    "update_trait": gettext_lazy("Update a trait"),
    "segment_add": gettext_lazy("Add to a segment"),
    "segment_remove": gettext_lazy("Remove from a segment"),
    "create_task": gettext_lazy("Create a task"),
    "webhook": gettext_lazy("Call a webhook"),
    "exit": gettext_lazy("Exit"),
}

TRIGGER_TYPES = {
    "event": gettext_lazy("An event"),
    "segment_entered": gettext_lazy("Entering a segment"),
    "segment_left": gettext_lazy("Leaving a segment"),
    "lifecycle_changed": gettext_lazy("A lifecycle stage change"),
    "prediction": gettext_lazy("A prediction crossing a threshold"),
    "date_trait": gettext_lazy("A date trait (birthday, renewal)"),
    "schedule": gettext_lazy("A schedule"),
    "manual": gettext_lazy("Only by hand or the API"),
}

REENTRY_MODES = (
    ("never", gettext_lazy("Never: once per customer")),
    ("after_days", gettext_lazy("Again after some days")),
    ("always", gettext_lazy("Always")),
)


def _words() -> dict:
    """The editor's names of things, by their code: step types, triggers, fields, exits, counts."""
    return {
        "types": {k: str(v) for k, v in STEP_TYPES.items()},
        "triggers": {k: str(v) for k, v in TRIGGER_TYPES.items()},
        "trigger_fields": {
            "event": _("Event name"),
            "where": _("Property conditions (JSON)"),
            "segment_id": _("Segment"),
            "stage": _("Stage (key)"),
            "sub_stage": _("Sub-stage (key, optional)"),
            "model": _("Model"),
            "field": _("Score"),
            "op": _("Comparison"),
            "value": _("Threshold"),
            "trait": _("Date trait"),
            "offset_days": _("Days from the date (-14: 14 days before)"),
            "time": _("Time of day (the customer's zone)"),
            "yearly": _("Every year"),
            "cron": _("Schedule: minute, hour, day, month, weekday (the customer's zone)"),
        },
        "links": {
            "next": pgettext("journey", "next"),
            "timeout_next": pgettext("journey", "timed out"),
            "yes": pgettext("journey", "yes"),
            "no": pgettext("journey", "no"),
        },
        "counts": {
            "entered": _("Entered"),
            "waiting": _("Waiting"),
            "passed": _("Passed"),
            "exited": _("Exited"),
        },
    }


def _texts() -> dict:
    """The editor's words, each a sentence or a label."""
    return {
        "trigger": _("Trigger"),
        "trigger_type": _("Enrols on"),
        "trigger_help": _("Connect the trigger's exit to the journey's first step."),
        "pick_step": _("Choose a step on the graph to edit it."),
        "exits": _("Exits"),
        "key": _("Step key"),
        "key_help": _("Letters, digits, - and _; errors and counts name the step by it."),
        "bad_key": _("Use letters, digits, - and _ only (at most 60)."),
        "key_taken": _("Another step has this key."),
        "remove_step": _("Remove this step"),
        "bad_json": _("Not valid JSON."),
        "days": _("days"),
        "hours": _("hours"),
        "minutes": _("minutes"),
        "days_short": pgettext("journey", "d"),
        "hours_short": pgettext("journey", "h"),
        "minutes_short": pgettext("journey", "min"),
        "wait_for": _("Wait for"),
        "time_of_day": _("Time of day"),
        "time_help": _(
            "The next time it is this hour in the customer's own time zone (a trait), "
            "else the workspace's."
        ),
        "until": pgettext("journey", "until"),
        "timeout": pgettext("journey", "timeout"),
        "event": _("Event name"),
        "where": _("Property conditions (JSON)"),
        "where_help": _("A list of property conditions, as in a segment rule's event. Empty:"),
        "timeout_after": _("Give up after"),
        "wait_event_help": _(
            "The first exit is taken when the event comes, the second when the time is up."
        ),
        "rule": _("Rule (JSON, the segment rule language)"),
        "rule_help": _("For example:"),
        "branch_help": _("The first exit is taken when the rule holds, the second when not."),
        "trait": _("Trait"),
        "value": _("Value (JSON)"),
        "value_help": _("Text in quotes; for example:"),
        "segment": _("Segment"),
        "static_only": _("Only static segments can be changed by a journey."),
        "title": _("Title"),
        "due_in_days": _("Due in days"),
        "url": _("URL"),
        "exit_help": _("The customer's journey ends here."),
        "channel": _("Channel"),
        "purpose": _("Consent purpose"),
        "content": _("Content"),
        "use_template": _("A template"),
        "write_content": _("Written here"),
        "decided": _("Chosen by the decision engine"),
        "decide_help": _(
            "Each customer gets the content of the next best action the decision engine "
            "gives them on this channel; a customer given nothing goes on without a message."
        ),
        "template": _("Template"),
        "written": _("written here"),
        "subject": _("Subject"),
        "html": _("HTML"),
        "text": _("Text"),
        "shares_total": _("Total"),
        "shares_100": _("the shares must add up to 100"),
        "path_label": _("Path name"),
        "share": _("Share"),
        "add_path": _("Add a path"),
        "remove_path": _("Remove path"),
        "goal": _("Goal"),
        "no_goal": _("No goal"),
        "goal_event": _("An event"),
        "goal_rule": _("A rule"),
        "within_days": _("Within days of entering"),
    }


# --- Errors ------------------------------------------------------------------------------

_STEP_PATH = re.compile(r"""^steps(?:\.|\[['"]?)([^.\[\]'"]+)""")


def _step_of(path: str, keys) -> str | None:
    """The step a path names: `steps.<key>...` for one of the graph's keys (which may
    hold dots), the longest that fits; else what the path's shape says."""
    for key in sorted(keys or (), key=len, reverse=True):
        head = f"steps.{key}"
        if path == head or path.startswith((head + ".", head + "[")):
            return key
    match = _STEP_PATH.match(path)
    return match.group(1) if match else None


def errors_shown(errors, keys=()) -> list[dict]:
    """journey_validate's [{path, message}] (or an InvalidInputError's field), each
    with the step it names (None for the trigger, the goal, the start...) and the panel."""
    shown = []
    for error in errors:
        path = str(error.get("path") or error.get("field") or "")
        step = _step_of(path, keys)
        head = re.split(r"[.\[]", path, maxsplit=1)[0]
        shown.append(
            {
                "path": path,
                "message": str(error.get("message") or ""),
                "step": step,
                "panel": head if head in ("trigger", "goal", "name", "reentry") else None,
                "holdout": head == "holdout_percent",
            }
        )
    return shown


def _panel_errors(errors: list[dict]) -> dict:
    found: dict[str, str] = {}
    for error in errors:
        if error["panel"] and error["panel"] not in found:
            found[error["panel"]] = error["message"]
    return found


# --- Engine wrappers (rapport.journeys) ---------------------------------------------------


def _journey_get(request: HttpRequest, journey_id) -> Journey:
    return selectors.journey_get(workspace=request.principal.workspace, journey_id=journey_id)


def _graph_of(journey: Journey) -> dict:
    return selectors.journey_graph(workspace=journey.workspace, journey=journey)


def step_counts(journey: Journey) -> dict[str, dict[str, int]]:
    return selectors.journey_step_counts(workspace=journey.workspace, journey=journey)


def _conversion(journey: Journey) -> dict:
    """The journey's conversion against its holdout (rapport.journeys.selectors), in
    percents for the page."""
    found = selectors.journey_conversion(workspace=journey.workspace, journey=journey)

    def pct(value):
        return None if value is None else value * 100

    return {
        "enrolled": found["enrolled"],
        "converted": found["enrolled_converted"],
        "holdout": found["holdout"],
        "holdout_converted": found["holdout_converted"],
        "rate_pct": pct(found["enrolled_rate"]),
        "holdout_rate_pct": pct(found["holdout_rate"]),
        "lift_pct": pct(found["lift"]),
        "low_pct": pct(found["lift_low"]),
        "high_pct": pct(found["lift_high"]),
        "significant": found["significant"],
    }


def _validation(journey: Journey, graph: dict) -> list[dict]:
    validate = getattr(services, "journey_validate", None)
    if validate is None:
        from rapport.journeys.graph import journey_validate as validate
    return errors_shown(validate(workspace=journey.workspace, graph=graph))


def programmes(request: HttpRequest) -> list[dict]:
    """The shipped programme templates ({key, name, description, graph}), if any."""
    try:
        from rapport.journeys.programmes import programme_templates
    except ImportError:
        return []
    principal = request.principal
    return list(programme_templates(workspace=principal.workspace, actor=principal.actor))


def _programme_install(request: HttpRequest, key: str, name: str) -> Journey:
    """The programme as the workspace's draft journey (its letters made templates),
    named as typed when a name was typed."""
    from rapport.journeys.programmes import programme_install

    principal = request.principal
    with transaction.atomic():
        journey = programme_install(workspace=principal.workspace, key=key, actor=principal.actor)
        if name and name != journey.name:
            graph = _graph_of(journey)
            graph["name"] = name
            journey = services.journey_update(journey=journey, graph=graph, actor=principal.actor)
    return journey


# --- The list ----------------------------------------------------------------------------


@workspace_page("journeys.read")
def journey_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    status = request.GET.get("status", "")
    found = selectors.journey_list(
        workspace=principal.workspace,
        status=status if status in Journey.Status.values else None,
    )
    page = Paginator(found, LIST_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "journey": journey,
            "trigger": TRIGGER_TYPES.get(journey.trigger_type, journey.trigger_type),
            "conversion": _conversion(journey),
        }
        for journey in page.object_list
    ]
    context = {
        "rows": rows,
        "page": page,
        "query": page_query(request),
        "status": status,
        "statuses": Journey.Status.choices,
        "can_write": principal.has_perm("journeys.write"),
    }
    return render(request, "web/journeys/list.html", context)


# --- A new journey -----------------------------------------------------------------------


def blank_graph(name: str) -> dict:
    return {
        "name": name,
        "description": "",
        "trigger": {"type": "manual"},
        "goal": None,
        "holdout_percent": 0,
        "reentry": {"mode": "never"},
        "start": "exit",
        "steps": {"exit": {"type": "exit"}},
        "layout": {"exit": {"x": 320, "y": 60}},
    }


@workspace_page("journeys.write")
@require_http_methods(["GET", "POST"])
def journey_new(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    shipped = programmes(request)
    values = {"name": "", "programme": request.GET.get("programme", "")}
    context = {"programmes": shipped, "values": values, "errors": {}}
    if request.method != "POST":
        return render(request, "web/journeys/new.html", context)
    values["name"] = request.POST.get("name", "").strip()
    values["programme"] = request.POST.get("programme", "")
    by_key = {p["key"]: p for p in shipped}
    try:
        if values["programme"] and values["programme"] not in by_key:
            raise InvalidInputError(_("choose a programme from the list"), field="programme")
        if values["programme"]:
            journey = _programme_install(request, values["programme"], values["name"])
        else:
            if not values["name"]:
                raise InvalidInputError(_("give the journey a name"), field="name")
            journey = services.journey_create(
                workspace=principal.workspace,
                graph=blank_graph(values["name"]),
                actor=principal.actor,
            )
    except RapportError as error:
        field = getattr(error, "field", None) or ""
        context["errors"] = {
            ("programme" if field == "programme" else "name"): error.message,
        }
        return render(request, "web/journeys/new.html", context, status=error.status)
    return redirect(reverse("web:journey_detail", args=[journey.pk]))


# --- The editor and the journey's page ---------------------------------------------------


def _editor_options(request: HttpRequest, journey: Journey, graph: dict, errors, counts) -> dict:
    workspace = request.principal.workspace
    return {
        "graph": graph,
        # A draft has run nowhere: its steps show no counts.
        "counts": counts if journey.status != Journey.Status.DRAFT else {},
        "errors": errors,
        "panel_errors": _panel_errors(errors),
        "readonly": not request.principal.has_perm("journeys.write"),
        "templates": [
            {"id": str(t.pk), "name": t.name, "channel": t.channel}
            for t in channel_selectors.template_list(workspace=workspace)[:500]
        ],
        "segments": [
            {"id": str(s.pk), "name": s.name, "kind": s.kind}
            for s in segment_selectors.segment_list(workspace=workspace)[:500]
        ],
        "channels": [[value, str(label)] for value, label in Channel.choices],
        "purposes": [[value, str(label)] for value, label in Purpose.choices],
        "texts": _texts(),
        "words": _words(),
    }


def _journey_page(
    request: HttpRequest,
    journey: Journey,
    *,
    graph: dict | None = None,
    graph_text: str | None = None,
    errors: list[dict] | None = None,
    status: int = 200,
    **extra,
) -> HttpResponse:
    principal = request.principal
    graph = _graph_of(journey) if graph is None else graph
    steps = graph.get("steps") if isinstance(graph.get("steps"), dict) else {}
    # Each error beside the step it names, by this graph's keys.
    errors = [{**e, "step": _step_of(e["path"], steps)} for e in errors or []]
    counts = step_counts(journey)
    reentry = graph.get("reentry") if isinstance(graph.get("reentry"), dict) else {}
    context = {
        "journey": journey,
        "graph": graph,
        "graph_text": graph_text
        if graph_text is not None
        else json.dumps(graph, indent=2, ensure_ascii=False),
        "errors": errors,
        "general_errors": [e for e in errors if not e["step"]],
        "options": _editor_options(request, journey, graph, errors, counts),
        "step_types": list(STEP_TYPES.items()),
        "reentry_modes": REENTRY_MODES,
        "reentry_mode": reentry.get("mode", "never"),
        "reentry_days": reentry.get("days", ""),
        "holdout_error": next((e["message"] for e in errors if e["holdout"]), ""),
        "conversion": _conversion(journey),
        "goal": graph.get("goal") or None,
        "can_write": principal.has_perm("journeys.write"),
        "can_start": journey.status in (Journey.Status.DRAFT, Journey.Status.PAUSED),
        "can_pause": journey.status == Journey.Status.ACTIVE,
        "can_stop": journey.status in (Journey.Status.ACTIVE, Journey.Status.PAUSED),
        "rows": [
            {"key": key, "type": STEP_TYPES.get(step.get("type"), step.get("type")), **counts[key]}
            for key, step in steps.items()
            if isinstance(step, dict) and key in counts
        ],
        **extra,
    }
    return render(request, "web/journeys/detail.html", context, status=status)


def _posted_graph(request: HttpRequest) -> tuple[dict, str]:
    text = request.POST.get("graph", "")
    if len(text.encode()) > GRAPH_MAX_BYTES:
        raise InvalidInputError(_("the journey is too large"), field="graph")
    try:
        graph = json.loads(text)
    except ValueError:
        raise InvalidInputError(_("not valid JSON"), field="graph") from None
    if not isinstance(graph, dict):
        raise InvalidInputError(_("a JSON object"), field="graph")
    # The form's own fields (name, description, holdout, re-entry) win over the JSON's.
    post = request.POST
    for name in ("name", "description"):
        if name in post:
            graph[name] = post[name].strip()
    if "holdout_percent" in post:
        graph["holdout_percent"] = _whole(post["holdout_percent"], field="holdout_percent")
    if "reentry_mode" in post:
        reentry = {"mode": post["reentry_mode"]}
        if post["reentry_mode"] == "after_days":
            reentry["days"] = _whole(post.get("reentry_days", ""), field="reentry.days")
        graph["reentry"] = reentry
    return graph, text


def _whole(value: str, *, field: str) -> int:
    try:
        return int(value.strip() or "0")
    except ValueError:
        raise InvalidInputError(_("a whole number"), field=field) from None


def _error_list(error: RapportError) -> list[dict]:
    """An error of the services as the list the page shows: the validator's errors
    when it gives them (details), else the one message at its field."""
    details = getattr(error, "details", None)
    if isinstance(details, dict):
        details = details.get("errors")
    if isinstance(details, list) and details and all(isinstance(d, dict) for d in details):
        return errors_shown(details)
    return errors_shown([{"path": getattr(error, "field", "") or "", "message": error.message}])


@workspace_page("journeys.read")
@require_http_methods(["GET", "POST"])
def journey_detail(request: HttpRequest, journey_id) -> HttpResponse:
    """The journey's page and editor (GET); POST saves the graph (journeys.write)."""
    principal = request.principal
    journey = _journey_get(request, journey_id)
    if request.method != "POST":
        return _journey_page(request, journey, saved=bool(request.GET.get("saved")))
    if not principal.has_perm("journeys.write"):
        return render(
            request,
            "web/error.html",
            {"message": _("Your role does not allow this page.")},
            status=403,
        )
    text = request.POST.get("graph", "")
    try:
        graph, text = _posted_graph(request)
        services.journey_update(journey=journey, graph=graph, actor=principal.actor)
    except RapportError as error:
        journey.refresh_from_db()
        posted = graph if "graph" in locals() else _graph_of(journey)
        return _journey_page(
            request,
            journey,
            graph=posted,
            graph_text=text[:GRAPH_MAX_BYTES],
            errors=_error_list(error),
            status=error.status,
        )
    return redirect(reverse("web:journey_detail", args=[journey.pk]) + "?saved=1")


@workspace_page("journeys.read")
@require_POST
def journey_validate(request: HttpRequest, journey_id) -> HttpResponse:
    """What stops the journey from starting, beside its steps: the graph posted from
    the editor (checked, not saved), else the saved one. Nothing is written."""
    journey = _journey_get(request, journey_id)
    posted = "graph" in request.POST
    text = request.POST.get("graph")
    try:
        graph, text = _posted_graph(request) if posted else (_graph_of(journey), None)
        errors = _validation(journey, graph)
    except RapportError as error:
        graph, errors = _graph_of(journey), _error_list(error)
    return _journey_page(
        request,
        journey,
        graph=graph,
        graph_text=text[:GRAPH_MAX_BYTES] if text is not None else None,
        errors=errors,
        validated=True,
        unsaved=posted,
        status=422 if errors else 200,
    )


def _transition(request: HttpRequest, journey_id, service) -> HttpResponse:
    principal = request.principal
    journey = _journey_get(request, journey_id)
    try:
        service(journey=journey, actor=principal.actor)
    except RapportError as error:
        journey.refresh_from_db()
        return _journey_page(request, journey, errors=_error_list(error), status=error.status)
    return redirect("web:journey_detail", journey_id=journey.pk)


@workspace_page("journeys.write")
@require_POST
def journey_start(request: HttpRequest, journey_id) -> HttpResponse:
    return _transition(request, journey_id, services.journey_start)


@workspace_page("journeys.write")
@require_POST
def journey_pause(request: HttpRequest, journey_id) -> HttpResponse:
    return _transition(request, journey_id, services.journey_pause)


@workspace_page("journeys.write")
@require_POST
def journey_stop(request: HttpRequest, journey_id) -> HttpResponse:
    return _transition(request, journey_id, services.journey_stop)


# --- The person page's section -----------------------------------------------------------

ENROLMENT_STATES = {
    "active": pgettext_lazy("enrolment", "In progress"),
    "completed": pgettext_lazy("enrolment", "Completed"),
    "converted": pgettext_lazy("enrolment", "Converted"),
    "exited": pgettext_lazy("enrolment", "Exited"),
    "held_out": pgettext_lazy("enrolment", "In the holdout"),
}


def person_journeys(principal, profile) -> list[dict]:
    """The journeys this person is or was in, and at which step (for the person page)."""
    if not principal.has_perm("journeys.read"):
        return []
    return [
        {**e, "state_label": ENROLMENT_STATES.get(e["state"], e["state"])}
        for e in selectors.profile_enrolments(
            workspace=principal.workspace, profile_id=profile.pk, limit=20
        )
    ]
