"""Next best action in the UI (rapport.decisions does the work): the catalogue of
actions (list, a new one, the editor, delete), the levers (the workspace's decision
settings: control group, channel and placement weights, response window, half-life),
an action's report (decisions, impressions, acceptance, value, uplift over the control
group with its 95 % interval, the learning curve), and the person page's simulator:
what this customer would get now on a channel, and why.

Writes go through rapport.decisions.services, reads through its selectors and
reports; this module reads the forms and shows each error beside its field."""

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from rapport.channels import selectors as channel_selectors
from rapport.core.errors import InvalidInputError, NotFoundError, RapportError
from rapport.decisions import reports, selectors, services
from rapport.decisions.models import Action, Channel, DecisionSettings, OutcomeKind
from rapport.profiles import selectors as profile_selectors
from rapport.web.analytics import chart
from rapport.web.navigation import NavItem, nav_item_register
from rapport.web.pages import page_query, uuid_or_none, workspace_page
from rapport.web.segments import _builder_context

READ = "decisions.read"
WRITE = "decisions.write"
LIST_PAGE = 50
# The learning curve's days.
CURVE_DAYS = 30
# The content fields a form offers per channel (an action's content may hold more:
# they are kept as they are).
CONTENT_FIELDS = ("title", "body", "link_url", "image_url")
# Rows for new placement weights on the levers page.
BLANK_PLACEMENT_ROWS = 3


def nav_register() -> None:
    nav_item_register(
        "act",
        NavItem(
            "decisions",
            gettext_lazy("Decisions"),
            "web:decision_action_list",
            READ,
            ("decision_*",),
        ),
        before="broadcasts",
    )


# --- Reading forms -----------------------------------------------------------------------


def _number(raw: str, *, field: str, kind=float, optional: bool = False):
    """A number typed in a form ("1,5" as "1.5"); None when empty and optional."""
    text = (raw or "").strip().replace(",", ".")
    if not text:
        if optional:
            return None
        raise InvalidInputError(_("give a number"), field=field)
    try:
        value = kind(text)
    except (ValueError, InvalidOperation):
        raise InvalidInputError(
            _("a whole number") if kind is int else _("give a number"), field=field
        ) from None
    if kind is float and value != value:  # NaN
        raise InvalidInputError(_("give a number"), field=field)
    return value


def _moment(raw: str, *, field: str) -> datetime | None:
    """A date and time typed in the page's time zone; None when empty."""
    text = (raw or "").strip()
    if not text:
        return None
    parsed = parse_datetime(text)
    if parsed is None:
        raise InvalidInputError(_("give a date and time"), field=field)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    return parsed


def _local(moment: datetime | None) -> str:
    """A moment as a datetime-local input shows it."""
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _rule(raw: str) -> dict:
    """The eligibility rule posted as JSON; an empty rule (or an empty group, which
    the builder writes for "everyone") is {}."""
    text = (raw or "").strip()
    if not text:
        return {}
    if len(text) > 200_000:
        raise InvalidInputError(_("the rule is too long"), field="eligibility")
    try:
        rule = json.loads(text)
    except ValueError:
        raise InvalidInputError(_("Not valid JSON."), field="eligibility") from None
    if not isinstance(rule, dict):
        raise InvalidInputError(_("Not valid JSON."), field="eligibility")
    if set(rule) <= {"all", "any"} and not any(rule.values()):
        return {}
    return rule


def _field_errors(error: RapportError) -> tuple[dict[str, str], str]:
    """({form field: message}, a message about no field) for an error of the services:
    `template_id` is the form's `template`, `content.web.title` its own field,
    `eligibility.all[0]...` the rule's."""
    field = str(getattr(error, "field", None) or "")
    if not field:
        return {}, error.message
    head = field.split(".", 1)[0].split("[", 1)[0].removesuffix("_id")
    if head in ("content", "channel_levers", "channel_weights") and "." in field:
        return {field: error.message, head: error.message}, ""
    return {head: error.message}, ""


# --- The catalogue -----------------------------------------------------------------------


def _action_get(request: HttpRequest, key: str) -> Action:
    return selectors.action_get(workspace=request.principal.workspace, key=key)


def _channel_labels() -> dict[str, str]:
    return {value: str(label) for value, label in Channel.choices}


@workspace_page(READ)
def action_list(request: HttpRequest) -> HttpResponse:
    from django.core.paginator import Paginator

    principal = request.principal
    workspace = principal.workspace
    q = request.GET.get("q", "").strip()[:200]
    channel = request.GET.get("channel", "")
    enabled = {"yes": True, "no": False}.get(request.GET.get("enabled", ""))
    found = selectors.action_list(
        workspace=workspace,
        q=q,
        channel=channel if channel in Channel.values else None,
        enabled=enabled,
    )
    page = Paginator(found, LIST_PAGE).get_page(request.GET.get("page"))
    actions = list(page.object_list)
    summaries = reports.action_summaries(workspace=workspace, actions=actions)
    labels = _channel_labels()
    rows = [
        {
            "action": action,
            "channels": [labels.get(c, c) for c in action.channels or []],
            "summary": summaries.get(action.pk, {}),
            "rate_pct": _pct(summaries.get(action.pk, {}).get("rate")),
        }
        for action in actions
    ]
    context = {
        "rows": rows,
        "page": page,
        "query": page_query(request),
        "q": q,
        "channel": channel,
        "enabled": request.GET.get("enabled", ""),
        "channels": Channel.choices,
        "can_write": principal.has_perm(WRITE),
    }
    return render(request, "web/decisions/list.html", context)


def _values_of(action: Action | None) -> dict[str, Any]:
    """The form's values for an action (or a new one)."""
    if action is None:
        return {
            "key": "",
            "name": "",
            "description": "",
            "kind": Action.Kind.OFFER,
            "channels": [],
            "placements": "",
            "content": {},
            "template": "",
            "value": "1",
            "currency": "",
            "starts_at": "",
            "ends_at": "",
            "budget": "",
            "daily_capacity": "",
            "eligibility": "",
            "lever": "1",
            "channel_levers": {},
            "prior_propensity": "0.05",
            "enabled": True,
        }
    return {
        "key": action.key,
        "name": action.name,
        "description": action.description,
        "kind": action.kind,
        "channels": list(action.channels or []),
        "placements": ", ".join(action.placements or []),
        "content": {
            channel: {k: str(v) for k, v in fields.items() if k in CONTENT_FIELDS}
            for channel, fields in (action.content or {}).items()
            if isinstance(fields, dict)
        },
        "template": str(action.template_id or ""),
        "value": _plain(action.value),
        "currency": action.currency,
        "starts_at": _local(action.starts_at),
        "ends_at": _local(action.ends_at),
        "budget": "" if action.budget is None else str(action.budget),
        "daily_capacity": "" if action.daily_capacity is None else str(action.daily_capacity),
        "eligibility": json.dumps(action.eligibility, indent=2) if action.eligibility else "",
        "lever": _plain(action.lever),
        "channel_levers": {c: _plain(v) for c, v in (action.channel_levers or {}).items()},
        "prior_propensity": _plain(action.prior_propensity),
        "enabled": action.enabled,
    }


def _plain(number) -> str:
    """A number as a form shows it: no exponent, no trailing zeros."""
    if number is None:
        return ""
    text = format(Decimal(str(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _posted_values(request: HttpRequest) -> dict[str, Any]:
    post = request.POST
    return {
        "key": post.get("key", "").strip(),
        "name": post.get("name", "").strip(),
        "description": post.get("description", "").strip(),
        "kind": post.get("kind", Action.Kind.OFFER),
        "channels": [c for c in post.getlist("channels") if c in Channel.values],
        "placements": post.get("placements", ""),
        "content": {
            channel: {
                name: post.get(f"content.{channel}.{name}", "").strip()
                for name in CONTENT_FIELDS
                if post.get(f"content.{channel}.{name}", "").strip()
            }
            for channel in Channel.values
        },
        "template": post.get("template", ""),
        "value": post.get("value", ""),
        "currency": post.get("currency", "").strip().upper(),
        "starts_at": post.get("starts_at", ""),
        "ends_at": post.get("ends_at", ""),
        "budget": post.get("budget", ""),
        "daily_capacity": post.get("daily_capacity", ""),
        "eligibility": post.get("eligibility", ""),
        "lever": post.get("lever", ""),
        "channel_levers": {
            channel: post.get(f"lever.{channel}", "").strip()
            for channel in Channel.values
            if post.get(f"lever.{channel}", "").strip()
        },
        "prior_propensity": post.get("prior_propensity", ""),
        "enabled": post.get("enabled") == "on",
    }


def _data_of(request: HttpRequest, values: dict, action: Action | None) -> dict[str, Any]:
    """What the services are given: the form's values parsed (an error names its
    field). Content the form does not show (other keys, other channels) is kept."""
    workspace = request.principal.workspace
    content: dict[str, dict] = {
        channel: dict(fields)
        for channel, fields in ((action.content or {}) if action else {}).items()
        if isinstance(fields, dict)
    }
    for channel in Channel.values:
        kept = {k: v for k, v in content.get(channel, {}).items() if k not in CONTENT_FIELDS}
        typed = values["content"].get(channel, {})
        if kept or typed:
            content[channel] = {**kept, **typed}
        else:
            content.pop(channel, None)
    template_id = None
    if values["template"]:
        template_id = uuid_or_none(values["template"])
        try:
            found = template_id is not None and channel_selectors.template_get(
                workspace=workspace, template_id=template_id
            )
        except NotFoundError:
            found = None
        if not found:
            raise InvalidInputError(_("not a template of this workspace"), field="template")
    levers = {}
    for channel, raw in values["channel_levers"].items():
        levers[channel] = _number(raw, field=f"channel_levers.{channel}")
    return {
        "key": values["key"],
        "name": values["name"],
        "description": values["description"],
        "kind": values["kind"],
        "channels": values["channels"],
        "placements": [p.strip() for p in values["placements"].split(",") if p.strip()],
        "content": content,
        "template_id": str(template_id) if template_id else None,
        "value": _number(values["value"], field="value", kind=Decimal),
        "currency": values["currency"],
        "starts_at": _moment(values["starts_at"], field="starts_at"),
        "ends_at": _moment(values["ends_at"], field="ends_at"),
        "budget": _number(values["budget"], field="budget", kind=int, optional=True),
        "daily_capacity": _number(
            values["daily_capacity"], field="daily_capacity", kind=int, optional=True
        ),
        "eligibility": _rule(values["eligibility"]),
        "lever": _number(values["lever"], field="lever"),
        "channel_levers": levers,
        "prior_propensity": _number(values["prior_propensity"], field="prior_propensity"),
        "enabled": values["enabled"],
    }


def _form_page(
    request: HttpRequest, action: Action | None, values: dict, *, status: int = 200, **extra
) -> HttpResponse:
    workspace = request.principal.workspace
    labels = _channel_labels()
    context = {
        "action": action,
        "values": values,
        "kinds": Action.Kind.choices,
        "channel_rows": [
            {
                "value": value,
                "label": labels[value],
                "checked": value in values["channels"],
                "content": values["content"].get(value, {}),
                "lever": values["channel_levers"].get(value, ""),
            }
            for value in Channel.values
        ],
        "templates": channel_selectors.template_list(workspace=workspace)[:500],
        "builder_options": _builder_context(request, None, values["eligibility"])[
            "builder_options"
        ],
        "errors": {},
        **extra,
    }
    return render(request, "web/decisions/edit.html", context, status=status)


def _save(request: HttpRequest, action: Action | None) -> HttpResponse:
    principal = request.principal
    values = _posted_values(request)
    try:
        data = _data_of(request, values, action)
        if action is None:
            saved = services.action_create(
                workspace=principal.workspace, actor=principal.actor, data=data
            )
        else:
            saved = services.action_update(action=action, actor=principal.actor, data=data)
    except RapportError as error:
        errors, message = _field_errors(error)
        return _form_page(
            request, action, values, status=error.status, errors=errors, error=message
        )
    return redirect(reverse("web:decision_action_detail", args=[saved.key]) + "?saved=1")


@workspace_page(WRITE)
@require_http_methods(["GET", "POST"])
def action_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _form_page(request, None, _values_of(None))
    return _save(request, None)


@workspace_page(WRITE)
@require_http_methods(["GET", "POST"])
def action_edit(request: HttpRequest, key: str) -> HttpResponse:
    action = _action_get(request, key)
    if request.method != "POST":
        return _form_page(request, action, _values_of(action))
    return _save(request, action)


@workspace_page(WRITE)
@require_http_methods(["GET", "POST"])
def action_delete(request: HttpRequest, key: str) -> HttpResponse:
    """A confirmation (GET), then the deletion (POST)."""
    principal = request.principal
    action = _action_get(request, key)
    if request.method != "POST":
        summary = reports.action_summaries(workspace=principal.workspace, actions=[action])
        return render(
            request,
            "web/decisions/delete.html",
            {"action": action, "summary": summary[action.pk]},
        )
    services.action_delete(action=action, actor=principal.actor)
    return redirect(reverse("web:decision_action_list") + "?deleted=1")


# --- An action's report ------------------------------------------------------------------


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def _curve_chart(curve: list[dict]) -> dict:
    days = [date_format(p["day"], "SHORT_DATE_FORMAT") for p in curve]
    series = [
        ("rate", _("Chosen by the model")),
        ("control_rate", _("Control group")),
    ]
    option = {
        "grid": {"left": 48, "right": 16, "top": 36, "bottom": 40},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "data": [label for _key, label in series]},
        "xAxis": {"type": "category", "data": days, "boundaryGap": False},
        "yAxis": {"type": "value", "min": 0},
        "series": [
            {
                "type": "line",
                "name": label,
                "data": [p[key] for p in curve],
                "connectNulls": True,
                "showSymbol": True,
            }
            for key, label in series
        ],
    }
    return chart("decision-learning-curve", option, fmt="percent")


@workspace_page(READ)
def action_detail(request: HttpRequest, key: str) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    action = _action_get(request, key)
    report = reports.action_report(workspace=workspace, action=action)
    curve = reports.action_learning_curve(workspace=workspace, action=action, days=CURVE_DAYS)
    decision_settings = selectors.decision_settings_get(workspace)
    labels = _channel_labels()
    for group in (report["model"], report["control"]):
        group["rate_pct"] = _pct(group["rate"])
    context = {
        "action": action,
        "report": report,
        "rate_pct": _pct(report["rate"]),
        "uplift_pct": _pct(report["uplift"]),
        "low_pct": _pct(report["uplift_low"]),
        "high_pct": _pct(report["uplift_high"]),
        "outcomes": [
            (label, report["outcomes"].get(value, 0)) for value, label in OutcomeKind.choices
        ],
        "control_nothing": decision_settings.control_mode == DecisionSettings.ControlMode.NOTHING,
        "channels": [labels.get(c, c) for c in action.channels or []],
        "channel_levers": [
            (labels.get(c, c), v) for c, v in sorted((action.channel_levers or {}).items())
        ],
        "charts": [_curve_chart(curve)],
        "curve_days": CURVE_DAYS,
        "can_write": principal.has_perm(WRITE),
        "saved": bool(request.GET.get("saved")),
    }
    return render(request, "web/decisions/detail.html", context)


# --- The levers --------------------------------------------------------------------------


def _settings_values(found: DecisionSettings) -> dict[str, Any]:
    placements = sorted((found.placement_weights or {}).items())
    return {
        "control_percent": str(found.control_percent),
        "control_mode": found.control_mode,
        "channel_weights": {c: _plain(v) for c, v in (found.channel_weights or {}).items()},
        "placements": [{"name": n, "weight": _plain(w)} for n, w in placements]
        + [{"name": "", "weight": ""}] * BLANK_PLACEMENT_ROWS,
        "response_window_hours": str(found.response_window_hours),
        "half_life_days": _plain(found.half_life_days),
    }


def _settings_posted(request: HttpRequest) -> dict[str, Any]:
    post = request.POST
    names, weights = post.getlist("placement_name"), post.getlist("placement_weight")
    rows = [
        {"name": n.strip(), "weight": w.strip()}
        for n, w in zip(names, weights, strict=False)
        if n.strip() or w.strip()
    ]
    return {
        "control_percent": post.get("control_percent", ""),
        "control_mode": post.get("control_mode", ""),
        "channel_weights": {
            c: post.get(f"weight.{c}", "").strip()
            for c in Channel.values
            if post.get(f"weight.{c}", "").strip()
        },
        "placements": rows + [{"name": "", "weight": ""}] * BLANK_PLACEMENT_ROWS,
        "response_window_hours": post.get("response_window_hours", ""),
        "half_life_days": post.get("half_life_days", ""),
    }


def _settings_data(values: dict) -> dict[str, Any]:
    placement_weights = {}
    for row in values["placements"]:
        if not row["name"] and not row["weight"]:
            continue
        if not row["name"]:
            raise InvalidInputError(_("name the placement"), field="placement_weights")
        placement_weights[row["name"]] = _number(row["weight"], field="placement_weights")
    return {
        "control_percent": _number(values["control_percent"], field="control_percent", kind=int),
        "control_mode": values["control_mode"],
        "channel_weights": {
            c: _number(raw, field=f"channel_weights.{c}")
            for c, raw in values["channel_weights"].items()
        },
        "placement_weights": placement_weights,
        "response_window_hours": _number(
            values["response_window_hours"], field="response_window_hours", kind=int
        ),
        "half_life_days": _number(values["half_life_days"], field="half_life_days"),
    }


@workspace_page(READ)
@require_http_methods(["GET", "POST"])
def decision_settings(request: HttpRequest) -> HttpResponse:
    """The levers (GET shows them, POST saves, with decisions.write)."""
    principal = request.principal
    workspace = principal.workspace
    can_write = principal.has_perm(WRITE)
    status, errors, message = 200, {}, ""
    if request.method == "POST":
        if not can_write:
            return render(
                request,
                "web/error.html",
                {"message": _("Your role does not allow this page.")},
                status=403,
            )
        values = _settings_posted(request)
        try:
            services.decision_settings_update(
                workspace=workspace, actor=principal.actor, data=_settings_data(values)
            )
        except RapportError as error:
            errors, message = _field_errors(error)
            status = error.status
        else:
            return redirect(reverse("web:decision_settings") + "?saved=1")
    else:
        values = _settings_values(selectors.decision_settings_get(workspace))
    labels = _channel_labels()
    context = {
        "values": values,
        "modes": DecisionSettings.ControlMode.choices,
        "channel_rows": [
            {"value": c, "label": labels[c], "weight": values["channel_weights"].get(c, "")}
            for c in Channel.values
        ],
        "errors": errors,
        "error": message,
        "can_write": can_write,
        "saved": bool(request.GET.get("saved")),
    }
    return render(request, "web/decisions/settings.html", context, status=status)


# --- The simulator on the person page ----------------------------------------------------


def simulator_context(request: HttpRequest, profile, data=None) -> dict[str, Any]:
    """The person page's "Next best action" panel: what this customer would get now on
    the chosen channel (and placement), every candidate with its numbers and reasons.
    Empty when the person may not read decisions."""
    principal = request.principal
    if not principal.has_perm(READ):
        return {"show_next_action": False}
    from rapport.decisions.engine import decision_simulate

    data = request.GET if data is None else data
    channel = data.get("nba_channel", "")
    if channel not in Channel.values:
        channel = Channel.WEB
    placement = (data.get("nba_placement") or "").strip()[:100]
    labels = _channel_labels()
    panel: dict[str, Any] = {
        "channel": channel,
        "placement": placement,
        "channels": Channel.choices,
        "placements": sorted(
            {
                p
                for a in selectors.action_list(workspace=principal.workspace)
                for p in (a.placements or [])
            }
        )[:200],
        "candidates": [],
        "control": False,
        "error": "",
    }
    try:
        simulation = decision_simulate(
            workspace=principal.workspace,
            profile=profile,
            channel=channel,
            placement=placement,
            context={},
        )
    except RapportError as error:
        panel["error"] = error.message
        return {"show_next_action": True, "nba": panel}
    candidates = sorted(
        simulation.candidates, key=lambda c: (not c.eligible, -(c.priority or 0), c.key)
    )
    chosen = next((c for c in candidates if c.eligible), None)
    panel["control"] = simulation.control
    # Why nobody gets anything here (no consent, suppressed, the contact policy...).
    panel["blocked"] = str(getattr(simulation, "blocked", "") or "")
    panel["candidates"] = [
        {
            "key": c.key,
            "name": getattr(c.action, "name", c.key),
            "eligible": c.eligible,
            "chosen": c is chosen and not simulation.control,
            "priority": c.priority,
            "propensity_pct": _pct(c.propensity),
            "value": c.value,
            "currency": getattr(c.action, "currency", ""),
            "lever": getattr(c.action, "lever", 1.0),
            "channel_lever": (getattr(c.action, "channel_levers", None) or {}).get(channel),
            "weight": _context_weight(getattr(c, "factors", None) or {}),
            "reasons": [str(r) for r in c.reasons],
        }
        for c in candidates
    ]
    panel["chosen"] = panel["candidates"][0] if chosen and not simulation.control else None
    panel["channel_label"] = labels.get(channel, channel)
    return {"show_next_action": True, "nba": panel}


def _context_weight(factors: dict) -> float | None:
    """The channel's weight times the placement's (the settings' context weights)."""
    if "channel_weight" not in factors:
        return None
    return factors["channel_weight"] * factors.get("placement_weight", 1.0)


@workspace_page("profiles.read")
def customer_next_action(request: HttpRequest, profile_id) -> HttpResponse:
    """The simulator's panel alone (the person page's form asks for it in place)."""
    profile = profile_selectors.profile_get(
        workspace=request.principal.workspace, profile_id=profile_id
    )
    context = simulator_context(request, profile)
    if not context["show_next_action"]:
        return render(
            request,
            "web/error.html",
            {"message": _("Your role does not allow this page.")},
            status=403,
        )
    return render(request, "web/decisions/_simulator.html", {**context, "profile": profile})
