"""Messages in the UI, for marketers: broadcasts (list, a new one, one broadcast with its
preview as a chosen customer, test send, send now or later, cancel, results per hour
and conversions against the holdout) and templates (list and an editor whose preview
follows the typing). The writes are rapport.channels.services'; this module reads the
forms and shows each error beside its field.

A message's HTML is shown only inside `<iframe sandbox srcdoc>`: a template's script
never runs in our page, and its links and forms lead nowhere."""

from datetime import datetime

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from rapport.channels import selectors, services
from rapport.channels.models import Broadcast, Channel, Purpose, Template
from rapport.core.errors import InvalidInputError, NotFoundError, RapportError
from rapport.profiles import selectors as profile_selectors
from rapport.profiles.models import Profile
from rapport.segments import selectors as segment_selectors
from rapport.segments.models import SegmentMembership
from rapport.web.analytics import chart
from rapport.web.customers import customer_summary
from rapport.web.navigation import NavItem, nav_item_register
from rapport.web.pages import (
    letter_framed,
    letter_images_held,
    page_query,
    uuid_or_none,
    workspace_page,
)

LIST_PAGE = 25
# Customers offered in the preview's picker (the segment's first members).
PICKER_SUGGESTIONS = 10
SKIP_REASONS = {
    "holdout": gettext_lazy("kept as the control group"),
    "no_consent": gettext_lazy("no consent"),
    "no_address": gettext_lazy("no address"),
    "suppressed": gettext_lazy("address suppressed"),
    "erased": gettext_lazy("customer erased"),
    "cancelled": gettext_lazy("cancelled"),
    "contact_policy": gettext_lazy("contact policy"),
}


def nav_register() -> None:
    """The side bar's "Act" group: broadcasts and templates (the channel settings,
    outbox and failed messages are added to the same group by their pages)."""
    nav_item_register(
        "act",
        NavItem(
            "broadcasts",
            gettext_lazy("Broadcasts"),
            "web:broadcast_list",
            "messages.read",
            ("broadcast_*",),
        ),
    )
    nav_item_register(
        "act",
        NavItem(
            "templates",
            gettext_lazy("Templates"),
            "web:template_list",
            "messages.read",
            ("template_*",),
        ),
    )


def _field_errors(error: RapportError) -> tuple[dict[str, str], str]:
    """({field: message}, a message about no field) for an error of the services."""
    field = getattr(error, "field", None)
    if field:
        # content.url, template_id, segment_id: the form's names.
        return {field.removesuffix("_id").removeprefix("content."): error.message}, ""
    return {}, error.message


def _int(value: str, *, field: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(_("a whole number"), field=field) from None


# --- The customer a preview is written for ----------------------------------------------


def _picked_customer(request: HttpRequest, data, *, segment_id=None) -> tuple[Profile | None, str]:
    """The customer chosen in the picker: by id, or by an identifier typed (an email, a
    user id); else the segment's first member. (profile or None, an error to show)."""
    workspace = request.principal.workspace
    typed = (data.get("as") or "").strip()[:320]
    if typed:
        found = (
            profile_selectors.profile_search(workspace=workspace, q=typed)
            .prefetch_related("identifiers")
            .first()
        )
        if found is None:
            return None, _("No customer has this email or user id.")
        return found, ""
    profile_id = uuid_or_none(data.get("profile"))
    if profile_id is not None:
        found = (
            profile_selectors.profile_list(workspace=workspace)
            .filter(pk=profile_id)
            .prefetch_related("identifiers")
            .first()
        )
        return found, "" if found is not None else _("This customer is not in the workspace.")
    if segment_id is not None:
        first = (
            SegmentMembership.objects.filter(segment_id=segment_id, left_at__isnull=True)
            .order_by("profile_id")
            .values_list("profile_id", flat=True)
            .first()
        )
        if first is not None:
            return (
                Profile.objects.filter(pk=first, workspace=workspace)
                .prefetch_related("identifiers")
                .first(),
                "",
            )
    return None, ""


def _suggestions(request: HttpRequest, segment_id) -> list[dict]:
    if segment_id is None:
        return []
    ids = list(
        SegmentMembership.objects.filter(segment_id=segment_id, left_at__isnull=True)
        .order_by("profile_id")
        .values_list("profile_id", flat=True)[:PICKER_SUGGESTIONS]
    )
    profiles = Profile.objects.filter(
        pk__in=ids, workspace=request.principal.workspace
    ).prefetch_related("identifiers")
    return [customer_summary(request.principal, p) for p in profiles]


def _preview_context(request, content: dict, profile: Profile | None, error: str = "") -> dict:
    preview = selectors.content_preview(content=content, profile=profile)
    preview["html"] = letter_images_held(preview["html"])
    return {
        "preview": preview,
        "as_customer": customer_summary(request.principal, profile) if profile else None,
        "picker_error": error,
    }


# --- Broadcasts --------------------------------------------------------------------------


def _stats_rows(stats: dict) -> list[tuple[str, int]]:
    return [
        (_("Targeted"), stats["targeted"]),
        (_("Sent"), stats["sent"]),
        (_("Delivered"), stats["delivered"]),
        (_("Waiting to send"), stats["queued"]),
        (_("Skipped"), sum(stats["skipped"].values())),
        (_("Failed"), stats["failed"]),
        (_("Opened"), stats["opened"]),
        (_("Clicked"), stats["clicked"]),
        (_("Unsubscribed"), stats["unsubscribed"]),
        (_("Bounced"), stats["bounced"]),
    ]


@workspace_page("messages.read")
def broadcast_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    status = request.GET.get("status", "")
    channel = request.GET.get("channel", "")
    found = selectors.broadcast_list(workspace=workspace).select_related("segment", "template")
    if status in Broadcast.Status.values:
        found = found.filter(status=status)
    if channel in Channel.values:
        found = found.filter(channel=channel)
    page = Paginator(found, LIST_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "broadcast": b,
            "stats": selectors.broadcast_stats(workspace=workspace, broadcast_id=b.pk),
        }
        for b in page.object_list
    ]
    context = {
        "rows": rows,
        "page": page,
        "query": page_query(request),
        "status": status,
        "channel": channel,
        "statuses": Broadcast.Status.choices,
        "channels": Channel.choices,
        "can_write": principal.has_perm("templates.write"),
    }
    return render(request, "web/messages/broadcast_list.html", context)


BROADCAST_FIELDS = (
    "name",
    "channel",
    "purpose",
    "segment",
    "template",
    "subject",
    "html",
    "text",
    "conversion_event",
    "conversion_days",
)


def _broadcast_form_context(request: HttpRequest, values: dict) -> dict:
    workspace = request.principal.workspace
    return {
        "values": values,
        "segments": segment_selectors.segment_list(workspace=workspace)[:500],
        "templates": selectors.template_list(workspace=workspace)[:500],
        "channels": Channel.choices,
        "purposes": Purpose.choices,
        "errors": {},
    }


@workspace_page("templates.write")
@require_http_methods(["GET", "POST"])
def broadcast_new(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    values = {
        "name": "",
        "channel": Channel.EMAIL,
        "purpose": Purpose.MARKETING,
        "segment": request.GET.get("segment", ""),
        "template": request.GET.get("template", ""),
        "subject": "",
        "html": "",
        "text": "",
        "conversion_event": "Order Completed",
        "conversion_days": "7",
    }
    if request.method != "POST":
        return render(
            request, "web/messages/broadcast_new.html", _broadcast_form_context(request, values)
        )
    values = {name: request.POST.get(name, "") for name in BROADCAST_FIELDS}
    context = _broadcast_form_context(request, values)
    try:
        segment_id = uuid_or_none(values["segment"])
        if segment_id is None:
            raise InvalidInputError(_("choose a segment"), field="segment_id")
        try:
            segment = segment_selectors.segment_get(workspace=workspace, segment_id=segment_id)
        except NotFoundError:
            raise InvalidInputError(_("choose a segment"), field="segment_id") from None
        template = None
        if values["template"]:
            try:
                template = selectors.template_get(
                    workspace=workspace, template_id=uuid_or_none(values["template"])
                )
            except NotFoundError:
                raise InvalidInputError(
                    _("not a template of this workspace"), field="template_id"
                ) from None
        broadcast = services.broadcast_create(
            workspace=workspace,
            name=values["name"],
            channel=values["channel"],
            purpose=values["purpose"],
            segment=segment,
            template=template,
            subject=values["subject"],
            html=values["html"],
            text=values["text"],
            conversion_event=values["conversion_event"],
            conversion_days=_int(values["conversion_days"], field="conversion_days", default=7),
            actor=principal.actor,
        )
    except RapportError as error:
        context["errors"], context["error"] = _field_errors(error)
        return render(request, "web/messages/broadcast_new.html", context, status=error.status)
    return redirect("web:broadcast_detail", broadcast_id=broadcast.pk)


def _timeline_chart(broadcast: Broadcast) -> dict | None:
    points = selectors.broadcast_timeline(broadcast)
    if not points:
        return None
    hours = [date_format(timezone.localtime(p["hour"]), "SHORT_DATETIME_FORMAT") for p in points]
    series = [
        ("sent", _("Sent")),
        ("opened", _("Opened")),
        ("clicked", _("Clicked")),
    ]
    option = {
        "grid": {"left": 48, "right": 16, "top": 36, "bottom": 40},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "data": [label for _, label in series]},
        "xAxis": {"type": "category", "data": hours, "boundaryGap": False},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {
                "type": "line",
                "name": label,
                "data": [p[key] for p in points],
                "showSymbol": len(points) < 48,
            }
            for key, label in series
        ],
    }
    return chart("broadcast-timeline", option, fmt="count")


def _send_at(request: HttpRequest) -> datetime | None:
    """The schedule's time, written in the page's time zone; None: now."""
    if request.POST.get("when", "now") != "later":
        return None
    raw = request.POST.get("at", "").strip()
    parsed = parse_datetime(raw) if raw else None
    if parsed is None:
        raise InvalidInputError(_("give a date and time"), field="at")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    if parsed <= timezone.now():
        raise InvalidInputError(_("a time in the future"), field="at")
    return parsed


def _holdout(request: HttpRequest) -> float:
    raw = request.POST.get("holdout", "").strip().rstrip("%") or "0"
    try:
        share = float(raw.replace(",", ".")) / 100
    except ValueError:
        raise InvalidInputError(_("a percentage from 0 to 50"), field="holdout") from None
    if not 0 <= share <= 0.5:
        raise InvalidInputError(_("a percentage from 0 to 50"), field="holdout")
    return share


def _with_percents(conversions: dict | None) -> dict | None:
    if conversions is None:
        return None
    for key in ("sent_rate", "holdout_rate", "lift"):
        value = conversions[key]
        conversions[key.replace("_rate", "") + "_pct"] = None if value is None else value * 100
    return conversions


def _broadcast_page(
    request: HttpRequest, broadcast: Broadcast, *, status: int = 200, **extra
) -> HttpResponse:
    principal = request.principal
    workspace = principal.workspace
    source = request.POST if request.method == "POST" else request.GET
    profile, picker_error = _picked_customer(request, source, segment_id=broadcast.segment_id)
    stats = selectors.broadcast_stats(workspace=workspace, broadcast_id=broadcast.pk)
    timeline = _timeline_chart(broadcast)
    context = {
        "broadcast": broadcast,
        "stats": stats,
        "stats_rows": _stats_rows(stats),
        "skipped": [
            (SKIP_REASONS.get(reason, reason), n) for reason, n in sorted(stats["skipped"].items())
        ],
        "conversions": _with_percents(selectors.broadcast_conversions(broadcast)),
        "holdout_pct": round(broadcast.holdout * 100, 1),
        "charts": [timeline] if timeline else [],
        "suggestions": _suggestions(request, broadcast.segment_id),
        "can_send": principal.has_perm("messages.send"),
        "is_draft": broadcast.status == Broadcast.Status.DRAFT,
        "can_cancel": broadcast.status
        in (Broadcast.Status.DRAFT, Broadcast.Status.SCHEDULED, Broadcast.Status.SENDING),
        "me": request.user.email,
        "errors": {},
        "typed": (source.get("as") or "").strip()[:320],
        **_preview_context(request, services.content_of(broadcast), profile, picker_error),
        **extra,
    }
    return render(request, "web/messages/broadcast_detail.html", context, status=status)


@letter_framed
@workspace_page("messages.read")
def broadcast_detail(request: HttpRequest, broadcast_id) -> HttpResponse:
    broadcast = selectors.broadcast_get(
        workspace=request.principal.workspace, broadcast_id=broadcast_id
    )
    return _broadcast_page(request, broadcast)


@letter_framed
@workspace_page("messages.send")
@require_POST
def broadcast_send(request: HttpRequest, broadcast_id) -> HttpResponse:
    principal = request.principal
    broadcast = selectors.broadcast_get(workspace=principal.workspace, broadcast_id=broadcast_id)
    try:
        services.broadcast_send(
            broadcast=broadcast,
            actor=principal.actor,
            at=_send_at(request),
            holdout=_holdout(request),
        )
    except RapportError as error:
        errors, message = _field_errors(error)
        return _broadcast_page(
            request, broadcast, status=error.status, errors=errors, send_error=message
        )
    return redirect("web:broadcast_detail", broadcast_id=broadcast.pk)


@letter_framed
@workspace_page("messages.send")
@require_POST
def broadcast_cancel(request: HttpRequest, broadcast_id) -> HttpResponse:
    principal = request.principal
    broadcast = selectors.broadcast_get(workspace=principal.workspace, broadcast_id=broadcast_id)
    services.broadcast_cancel(broadcast=broadcast, actor=principal.actor)
    return redirect("web:broadcast_detail", broadcast_id=broadcast.pk)


def _test_send(request: HttpRequest, *, channel: str, content: dict, segment_id=None) -> dict:
    """Send the proof; the page's notice or the errors beside the fields."""
    principal = request.principal
    profile, picker_error = _picked_customer(request, request.POST, segment_id=segment_id)
    if picker_error:
        return {"errors": {"as": picker_error}}
    to = request.POST.get("to", "").strip() or request.user.email
    try:
        services.content_test_send(
            workspace=principal.workspace,
            channel=channel,
            content=content,
            profile=profile,
            to=to,
            actor=principal.actor,
        )
    except RapportError as error:
        errors, message = _field_errors(error)
        return {"errors": errors, "test_error": message}
    return {"test_sent_to": to}


@letter_framed
@workspace_page("messages.send")
@require_POST
def broadcast_test_send(request: HttpRequest, broadcast_id) -> HttpResponse:
    broadcast = selectors.broadcast_get(
        workspace=request.principal.workspace, broadcast_id=broadcast_id
    )
    outcome = _test_send(
        request,
        channel=broadcast.channel,
        content=services.content_of(broadcast),
        segment_id=broadcast.segment_id,
    )
    status = 422 if outcome.get("errors") or outcome.get("test_error") else 200
    return _broadcast_page(request, broadcast, status=status, **outcome)


# --- Templates ---------------------------------------------------------------------------


@workspace_page("messages.read")
def template_list(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    channel = request.GET.get("channel", "")
    found = selectors.template_list(workspace=principal.workspace)
    if channel in Channel.values:
        found = found.filter(channel=channel)
    page = Paginator(found, LIST_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "query": page_query(request),
        "channel": channel,
        "channels": Channel.choices,
        "can_write": principal.has_perm("templates.write"),
    }
    return render(request, "web/messages/template_list.html", context)


TEMPLATE_FIELDS = ("name", "channel", "format", "subject", "html", "text")

STARTER_MJML = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Hi {{ customer.first_name|default:"there" }},</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def _template_page(
    request: HttpRequest, template: Template | None, values: dict, *, status: int = 200, **extra
) -> HttpResponse:
    principal = request.principal
    source = request.POST if request.method == "POST" else request.GET
    profile, picker_error = _picked_customer(request, source)
    content = _content_of_form(values)
    context = {
        "template": template,
        "values": values,
        "channels": Channel.choices,
        "formats": Template.Format.choices,
        "errors": {},
        "can_write": principal.has_perm("templates.write"),
        "can_send": principal.has_perm("messages.send"),
        "me": request.user.email,
        "typed": (source.get("as") or "").strip()[:320],
        "starter_mjml": STARTER_MJML,
        **_preview_context(request, content, profile, picker_error),
        **extra,
    }
    return render(request, "web/messages/template_edit.html", context, status=status)


def _content_of_form(values: dict) -> dict:
    """What the form's fields say, its MJML compiled (an error shown in the preview)."""
    html = values.get("html", "")
    if values.get("format") == Template.Format.MJML and html.strip():
        try:
            html = services.mjml_compile(html)
        except InvalidInputError:
            html = ""
    return {"subject": values.get("subject", ""), "html": html, "text": values.get("text", "")}


def _template_values(template: Template | None) -> dict:
    if template is None:
        return {
            "name": "",
            "channel": Channel.EMAIL,
            "format": Template.Format.HTML,
            "subject": "",
            "html": "",
            "text": "",
        }
    return {
        "name": template.name,
        "channel": template.channel,
        "format": template.format,
        "subject": template.subject,
        "html": template.source if template.format == Template.Format.MJML else template.html,
        "text": template.text,
    }


@letter_framed
@workspace_page("templates.write")
@require_http_methods(["GET", "POST"])
def template_new(request: HttpRequest) -> HttpResponse:
    principal = request.principal
    if request.method != "POST":
        return _template_page(request, None, _template_values(None))
    values = {name: request.POST.get(name, "") for name in TEMPLATE_FIELDS}
    try:
        template = services.template_create(
            workspace=principal.workspace,
            name=values["name"],
            channel=values["channel"],
            subject=values["subject"],
            html=values["html"],
            text=values["text"],
            format=values["format"] or Template.Format.HTML,
            actor=principal.actor,
        )
    except RapportError as error:
        errors, message = _field_errors(error)
        if getattr(error, "code", None) == "name_taken":
            errors, message = {"name": error.message}, ""
        return _template_page(
            request, None, values, status=error.status, errors=errors, error=message
        )
    return redirect(reverse("web:template_detail", args=[template.pk]) + "?saved=1")


@letter_framed
@workspace_page("messages.read")
@require_http_methods(["GET", "POST"])
def template_detail(request: HttpRequest, template_id) -> HttpResponse:
    """The editor (GET shows it, POST saves, with templates.write)."""
    principal = request.principal
    template = selectors.template_get(workspace=principal.workspace, template_id=template_id)
    if request.method != "POST":
        return _template_page(
            request, template, _template_values(template), saved=bool(request.GET.get("saved"))
        )
    if not principal.has_perm("templates.write"):
        return render(
            request,
            "web/error.html",
            {"message": _("Your role does not allow this page.")},
            status=403,
        )
    values = {name: request.POST.get(name, "") for name in TEMPLATE_FIELDS}
    values["channel"] = template.channel
    try:
        services.template_update(
            template=template,
            actor=principal.actor,
            name=values["name"],
            subject=values["subject"],
            html=values["html"],
            text=values["text"],
            format=values["format"] or Template.Format.HTML,
        )
    except RapportError as error:
        errors, message = _field_errors(error)
        if getattr(error, "code", None) == "name_taken":
            errors, message = {"name": error.message}, ""
        template.refresh_from_db()
        return _template_page(
            request, template, values, status=error.status, errors=errors, error=message
        )
    return redirect(reverse("web:template_detail", args=[template.pk]) + "?saved=1")


@workspace_page("messages.read")
@require_POST
def content_preview(request: HttpRequest) -> HttpResponse:
    """The editor's live preview (posted as the person types): the message as the
    chosen customer gets it, in a sandboxed frame."""
    values = {name: request.POST.get(name, "")[:500_000] for name in TEMPLATE_FIELDS}
    profile, picker_error = _picked_customer(request, request.POST)
    context = _preview_context(request, _content_of_form(values), profile, picker_error)
    if values.get("format") == Template.Format.MJML and values["html"].strip():
        try:
            services.mjml_compile(values["html"])
        except InvalidInputError as error:
            context["preview"]["error"] = error.message
    return render(request, "web/messages/_preview.html", context)


@letter_framed
@workspace_page("messages.send")
@require_POST
def template_test_send(request: HttpRequest, template_id) -> HttpResponse:
    template = selectors.template_get(
        workspace=request.principal.workspace, template_id=template_id
    )
    outcome = _test_send(request, channel=template.channel, content=services.content_of(template))
    status = 422 if outcome.get("errors") or outcome.get("test_error") else 200
    return _template_page(request, template, _template_values(template), status=status, **outcome)
