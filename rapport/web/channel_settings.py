"""The operational pages of messages: the local outbox (mail kept when no transport is
set, so a fresh install shows what it would have sent), the channel settings (sender,
transport, SMS provider, webhook signing secret, contact policy), the failed messages
with a retry, and the suppression list.

Secrets are write-only here as in the API: the transport URL shows redacted, SMS
credentials as the names of the keys stored, the webhook secret once when made. A
settings form refused by any field writes nothing."""

import zoneinfo
from urllib.parse import urlencode

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from rapport.channels import email as channel_email
from rapport.channels import selectors, services, sms
from rapport.channels.models import Channel, Message, Suppression
from rapport.channels.secrets import url_redacted
from rapport.core.errors import ConflictError, InvalidInputError, NotFoundError, RapportError
from rapport.profiles.models import Profile
from rapport.tenancy.pii import shown_text
from rapport.web.navigation import NavItem, nav_item_register
from rapport.web.pages import (
    error_text,
    letter_framed,
    letter_images_held,
    page_query,
    uuid_or_none,
    workspace_page,
)

OUTBOX_PAGE = 50
FAILED_PAGE = 50
SUPPRESSION_PAGE = 50
MAX_TICKED = 500
MAX_RETRY_ALL = 5000
# The channels whose marketing a cap may limit on the settings page.
CAP_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH)


def _render(request: HttpRequest, template: str, context: dict, status: int = 200):
    context["can_manage_channels"] = request.principal.has_perm("channels.manage")
    return render(request, template, context, status=status)


def _channel_filter(request: HttpRequest) -> str:
    channel = request.GET.get("channel", "") or request.POST.get("channel", "")
    if channel and channel not in Channel.values:
        raise InvalidInputError(gettext("not a channel"), field="channel")
    return channel


def _names(principal, profile_ids) -> dict:
    """The customers' names as this person may see them, by id."""
    from rapport.web.customers import customer_summary

    profiles = Profile.objects.filter(
        workspace=principal.workspace, pk__in=[pk for pk in profile_ids if pk]
    ).prefetch_related("identifiers")
    return {p.pk: customer_summary(principal, p)["name"] for p in profiles}


# --- The outbox ---------------------------------------------------------------------------


@workspace_page("messages.read")
def outbox_list(request: HttpRequest) -> HttpResponse:
    """Mail kept in the local outbox (no transport set), newest first."""
    principal = request.principal
    page = Paginator(selectors.outbox_list(workspace=principal.workspace), OUTBOX_PAGE).get_page(
        request.GET.get("page")
    )
    mails = list(page.object_list)
    message_ids = [m for m in (selectors.outbox_message_id(mail) for mail in mails) if m]
    messages = {
        m.pk: m for m in Message.objects.filter(workspace=principal.workspace, pk__in=message_ids)
    }
    names = _names(principal, [m.profile_id for m in messages.values()])
    rows = []
    for mail in mails:
        message = messages.get(selectors.outbox_message_id(mail))
        rows.append(
            {
                "mail": mail,
                "to": ", ".join(shown_text(principal, str(a)) or "" for a in mail.to),
                "message": message,
                "customer": names.get(message.profile_id) if message else None,
            }
        )
    context = {
        "rows": rows,
        "page": page,
        "query": page_query(request),
        "transport": _transport_in_use(principal.workspace),
    }
    return _render(request, "web/channels/outbox.html", context)


# A letter's own styles apply inside the frame (which inherits this page's policy);
# its scripts never run (sandbox, script-src 'self'), no image from elsewhere loads and
# its links lead nowhere (frame-src 'none'), so reading it here counts no open or click.
@workspace_page("messages.read")
@letter_framed
def outbox_detail(request: HttpRequest, mail_id) -> HttpResponse:
    """One kept mail: its headers, its HTML in a sandboxed frame (no script of the
    message runs, nothing it links loads), and its text part."""
    principal = request.principal
    mail = selectors.outbox_get(workspace=principal.workspace, mail_id=mail_id)
    message_id = selectors.outbox_message_id(mail)
    message = (
        Message.objects.filter(workspace=principal.workspace, pk=message_id).first()
        if message_id
        else None
    )
    headers = [
        ("From", shown_text(principal, mail.from_email)),
        ("To", ", ".join(shown_text(principal, str(a)) or "" for a in mail.to)),
        ("Subject", mail.subject),
        *((name, shown_text(principal, str(value))) for name, value in mail.headers.items()),
    ]
    context = {
        "mail": mail,
        "headers": headers,
        "text": shown_text(principal, mail.text),
        # The HTML is the customer's letter: for roles that see personal data.
        "html": letter_images_held(mail.html) if principal.can_see_pii else "",
        "html_hidden": bool(mail.html) and not principal.can_see_pii,
        "message": message,
        "customer": _names(principal, [message.profile_id]).get(message.profile_id)
        if message and message.profile_id
        else None,
    }
    return _render(request, "web/channels/outbox_detail.html", context)


def _transport_in_use(workspace) -> dict:
    """Which transport the workspace's mail takes: its own, the install's, or the
    local outbox (labels without passwords)."""
    own = selectors.email_settings_get(workspace=workspace)
    if own.transport_label:
        return {"kind": "own", "label": own.transport_label}
    install = getattr(django_settings, "RAPPORT_EMAIL_URL", "")
    if install and not install.startswith("outbox:"):
        return {"kind": "install", "label": url_redacted(install)}
    return {"kind": "outbox", "label": ""}


# --- Channel settings ---------------------------------------------------------------------


def _error(errors: dict, field: str, message) -> None:
    errors.setdefault(field, str(message))


def _form_checked(post, found) -> tuple[dict, dict]:
    """The settings form as the services' arguments, and the errors by field (every
    field checked, so that the page names each one at fault)."""
    errors: dict[str, str] = {}
    values: dict = {}
    for field, limit in (("from_email", 254), ("reply_to", 254)):
        value = post.get(field, "").strip()
        if value:
            try:
                validate_email(value)
            except ValidationError:
                _error(errors, field, gettext("an email address"))
        if len(value) > limit:
            _error(errors, field, gettext("at most %(n)s characters") % {"n": limit})
        values[field] = value
    values["from_name"] = post.get("from_name", "").strip()
    if len(values["from_name"]) > 200:
        _error(errors, "from_name", gettext("at most %(n)s characters") % {"n": 200})
    # The transport: a new URL replaces the stored one; empty keeps it; the box goes
    # back to the install's.
    transport = post.get("transport_url", "").strip()
    if post.get("transport_reset") == "1":
        values["transport_url"] = ""
    elif transport:
        try:
            channel_email.url_check(transport)
        except channel_email.TransportUrlError as exc:
            _error(errors, "transport_url", exc)
        if len(transport) > 2000:
            _error(errors, "transport_url", gettext("at most %(n)s characters") % {"n": 2000})
        values["transport_url"] = transport
    else:
        values["transport_url"] = None
    # SMS: the credentials typed replace those stored, the others kept (same provider).
    provider = post.get("sms_provider", "").strip()
    if provider and provider not in sms.PROVIDERS:
        _error(errors, "sms_provider", gettext("twilio or vonage"))
        provider = ""
    typed = {
        key: post.get(f"sms_{provider}_{key}", "").strip()
        for key in sorted(sms.CREDENTIAL_KEYS.get(provider, ()))
    }
    typed = {key: value for key, value in typed.items() if value}
    credentials = None
    if typed:
        kept = (sms.credentials_of(found) or {}) if provider == found.sms_provider else {}
        credentials = {**kept, **typed}
    values["sms"] = {
        "provider": provider,
        "credentials": credentials,
        "sender": post.get("sms_sender", "").strip(),
        "default_region": post.get("sms_default_region", "").strip().upper(),
    }
    if len(values["sms"]["sender"]) > 32:
        _error(errors, "sms_sender", gettext("at most %(n)s characters") % {"n": 32})
    region = values["sms"]["default_region"]
    if region and (len(region) != 2 or not region.isalpha()):
        _error(errors, "sms_default_region", gettext("a two-letter country code such as US"))
    # The contact policy.
    caps = {}
    for channel in CAP_CHANNELS:
        most = post.get(f"cap_{channel}_max", "").strip()
        days = post.get(f"cap_{channel}_days", "").strip()
        if not most and not days:
            continue
        field = f"cap_{channel}"
        if not most.isdigit() or int(most) > 10_000:
            _error(errors, field, gettext("the most messages: a whole number from 0 to 10000"))
            continue
        if not days.isdigit() or not 1 <= int(days) <= 366:
            _error(errors, field, gettext("the days: a whole number from 1 to 366"))
            continue
        caps[channel] = {"max": int(most), "days": int(days)}
    values["caps"] = caps
    for field in ("quiet_start", "quiet_end"):
        hour = post.get(field, "0").strip() or "0"
        if not hour.isdigit() or not 0 <= int(hour) <= 23:
            _error(errors, field, gettext("an hour from 0 to 23"))
        else:
            values[field] = int(hour)
    zone = post.get("timezone", "").strip()
    if not zone:
        _error(errors, "timezone", gettext("the time zone is missing"))
    elif zone not in zoneinfo.available_timezones() and zone != "UTC":
        _error(
            errors, "timezone", gettext("“%(zone)s” is not a time zone name") % {"zone": zone[:64]}
        )
    values["timezone"] = zone
    return values, errors


# The services name fields as the API does; the form's own names.
SERVICE_FIELDS = {
    "sms.provider": "sms_provider",
    "sms.default_region": "sms_default_region",
    "caps": "caps",
    "timezone": "timezone",
}


def _form_field(service_field: str) -> str:
    if service_field.startswith("sms.credentials"):
        return "sms_credentials"
    if service_field.startswith("caps."):
        return "cap_" + service_field.removeprefix("caps.")
    return SERVICE_FIELDS.get(service_field, service_field)


def _settings_save(principal, values: dict) -> None:
    """Everything, or nothing: one refusal rolls the other changes back."""
    workspace, actor = principal.workspace, principal.actor
    with transaction.atomic():
        services.email_settings_set(
            workspace=workspace,
            actor=actor,
            from_email=values["from_email"],
            from_name=values["from_name"],
            reply_to=values["reply_to"],
            transport_url=values["transport_url"],
        )
        services.sms_settings_set(workspace=workspace, actor=actor, **values["sms"])
        services.contact_policy_set(
            workspace=workspace,
            actor=actor,
            caps=values["caps"],
            quiet_start=values["quiet_start"],
            quiet_end=values["quiet_end"],
            timezone_name=values["timezone"],
        )


def _settings_page(
    request: HttpRequest,
    *,
    errors: dict | None = None,
    saved: bool = False,
    secret: str | None = None,
    status: int = 200,
) -> HttpResponse:
    workspace = request.principal.workspace
    found = selectors.email_settings_get(workspace=workspace)
    policy = selectors.contact_policy_get(workspace=workspace)
    form = request.POST if errors else None
    stored_keys = sorted((sms.credentials_of(found) or {}).keys())
    caps = [
        {
            "channel": value,
            "label": label,
            "max": form.get(f"cap_{value}_max", "")
            if form
            else policy.caps.get(value, {}).get("max", ""),
            "days": form.get(f"cap_{value}_days", "")
            if form
            else _whole(policy.caps.get(value, {}).get("days", "")),
            "error": (errors or {}).get(f"cap_{value}"),
        }
        for value, label in Channel.choices
        if value in CAP_CHANNELS
    ]
    current = {
        "from_email": found.from_email,
        "from_name": found.from_name,
        "reply_to": found.reply_to,
        "sms_provider": found.sms_provider,
        "sms_sender": found.sms_sender,
        "sms_default_region": found.sms_default_region,
        "quiet_start": str(policy.quiet_start),
        "quiet_end": str(policy.quiet_end),
        "timezone": policy.timezone,
    }
    if form:
        current.update({key: form.get(key, "") for key in current})
    context = {
        "current": current,
        "errors": errors or {},
        "saved": saved,
        "secret": secret,
        "transport": _transport_in_use(workspace),
        "providers": [
            {
                "value": provider,
                "label": {"twilio": "Twilio", "vonage": "Vonage"}[provider],
                "keys": sorted(sms.CREDENTIAL_KEYS[provider]),
            }
            for provider in sms.PROVIDERS
        ],
        "stored_keys": stored_keys,
        "credentials_unreadable": bool(found.sms_credentials_encrypted)
        and sms.credentials_of(found) is None,
        "callback_url": services.public_url(sms.callback_path(found))
        if found.sms_provider and found.sms_callback_token
        else "",
        "webhook_secret_set": bool(found.webhook_secret_encrypted),
        "caps": caps,
        "hours": range(24),
    }
    return _render(request, "web/channels/settings.html", context, status=status)


def _whole(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


@workspace_page("channels.manage")
@require_http_methods(["GET", "POST"])
def channel_settings(request: HttpRequest) -> HttpResponse:
    """The sender, the mail transport, the SMS provider, the webhook signing secret and
    the contact policy of the workspace."""
    if request.method == "GET":
        return _settings_page(request, saved=request.GET.get("saved") == "1")
    found = selectors.email_settings_get(workspace=request.principal.workspace)
    values, errors = _form_checked(request.POST, found)
    if not errors:
        try:
            _settings_save(request.principal, values)
        except InvalidInputError as error:
            errors = {_form_field(error.field): error.message}
        except RapportError as error:
            errors = {"form": error_text(error)}
    if errors:
        return _settings_page(request, errors=errors, status=422)
    return redirect(reverse("web:channel_settings") + "?saved=1")


@workspace_page("channels.manage")
@require_POST
def webhook_secret_create(request: HttpRequest) -> HttpResponse:
    """A new signing secret for webhooks, shown on this answer only."""
    principal = request.principal
    secret = services.webhook_secret_create(workspace=principal.workspace, actor=principal.actor)
    response = _settings_page(request, secret=secret)
    response["Cache-Control"] = "no-store"
    return response


# --- Failed messages ---------------------------------------------------------------------


@workspace_page("messages.read")
def failed_messages(request: HttpRequest) -> HttpResponse:
    """The dead-letter list: messages that failed for good, with their last error."""
    principal = request.principal
    channel = _channel_filter(request)
    found = selectors.message_list(
        workspace=principal.workspace, channel=channel or None, status=Message.Status.FAILED
    ).order_by("-updated_at", "-id")
    page = Paginator(found, FAILED_PAGE).get_page(request.GET.get("page"))
    messages = list(page.object_list)
    names = _names(principal, [m.profile_id for m in messages])
    rows = [
        {
            "message": m,
            "customer": names.get(m.profile_id),
            "error": shown_text(principal, m.error),
        }
        for m in messages
    ]
    retried = request.GET.get("retried", "")
    skipped = request.GET.get("skipped", "")
    context = {
        "rows": rows,
        "page": page,
        "query": page_query(request),
        "channel": channel,
        "channels": Channel.choices,
        "can_retry": principal.has_perm("messages.send"),
        "retried": int(retried) if retried.isdigit() else None,
        "skipped": int(skipped) if skipped.isdigit() else 0,
    }
    return _render(request, "web/channels/failed.html", context)


def _back_to_failed(channel: str, **counts) -> str:
    query = {"channel": channel} if channel else {}
    query.update({k: v for k, v in counts.items()})
    return reverse("web:failed_messages") + "?" + urlencode(query)


@workspace_page("messages.send")
@require_POST
def message_retry(request: HttpRequest, message_id) -> HttpResponse:
    """One failed message sent again (same id)."""
    principal = request.principal
    message = selectors.message_get(workspace=principal.workspace, message_id=message_id)
    services.message_retry(message=message, actor=principal.actor)
    return redirect(_back_to_failed(_channel_filter(request), retried=1))


def _ticked(request: HttpRequest) -> list:
    texts = request.POST.getlist("ids")
    if len(texts) > MAX_TICKED:
        raise InvalidInputError(
            gettext("at most %(n)s ticked messages") % {"n": MAX_TICKED}, field="ids"
        )
    wanted = []
    for text in texts:
        pk = uuid_or_none(text)
        if pk is None:
            raise InvalidInputError(
                gettext("%(text)r is not a message id") % {"text": text[:60]}, field="ids"
            )
        if pk not in wanted:
            wanted.append(pk)
    if not wanted:
        raise InvalidInputError(gettext("tick at least one message"), field="ids")
    return wanted


@workspace_page("messages.send")
@require_POST
def failed_retry(request: HttpRequest) -> HttpResponse:
    """The ticked failed messages, or every one of the channel shown (`all=1`), sent
    again: a confirmation first, then (`confirm=yes`) one retry each. A message no
    longer failed (retried meanwhile) is left alone and counted."""
    principal = request.principal
    channel = _channel_filter(request)
    failed = selectors.message_list(
        workspace=principal.workspace, channel=channel or None, status=Message.Status.FAILED
    )
    everything = request.POST.get("all") == "1"
    if everything:
        ids = list(failed.values_list("pk", flat=True)[: MAX_RETRY_ALL + 1])
        if len(ids) > MAX_RETRY_ALL:
            raise InvalidInputError(
                gettext("more than %(n)s failed messages: retry one channel at a time")
                % {"n": MAX_RETRY_ALL},
                field="all",
            )
        if not ids:
            raise InvalidInputError(gettext("no failed message to retry"), field="all")
    else:
        ids = _ticked(request)
        ours = Message.objects.filter(workspace=principal.workspace, pk__in=ids)
        if ours.count() != len(ids):
            raise NotFoundError(gettext("Some of these messages are not in this workspace"))
    if request.POST.get("confirm") != "yes":
        context = {
            "ids": [] if everything else ids,
            "everything": everything,
            "count": len(ids),
            "channel": channel,
            "back_url": _back_to_failed(channel),
        }
        return _render(request, "web/channels/failed_confirm.html", context)
    retried = skipped = 0
    for message in Message.objects.filter(workspace=principal.workspace, pk__in=ids):
        try:
            services.message_retry(message=message, actor=principal.actor)
            retried += 1
        except ConflictError:
            skipped += 1
    return redirect(_back_to_failed(channel, retried=retried, skipped=skipped))


# --- Suppressions ------------------------------------------------------------------------


def _suppressions_page(
    request: HttpRequest, *, errors: dict | None = None, status: int = 200
) -> HttpResponse:
    principal = request.principal
    channel = _channel_filter(request) if request.method == "GET" else ""
    q = request.GET.get("q", "").strip()
    if len(q) > 320:
        raise InvalidInputError(gettext("at most 320 characters"), field="q")
    found = selectors.suppression_list(
        workspace=principal.workspace, channel=channel or None, q=q or None
    )
    page = Paginator(found, SUPPRESSION_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "row": s,
            "address": shown_text(principal, s.address),
            "detail": shown_text(principal, s.detail),
        }
        for s in page.object_list
    ]
    context = {
        "rows": rows,
        "page": page,
        "query": page_query(request),
        "q": q,
        "channel": channel,
        "channels": Channel.choices,
        "add_channels": [c for c in Channel.choices if c[0] in (Channel.EMAIL, Channel.SMS)],
        "can_manage": principal.has_perm("channels.manage"),
        "errors": errors or {},
        "form": request.POST if errors else {},
        "done": request.GET.get("done", ""),
    }
    return _render(request, "web/channels/suppressions.html", context, status=status)


@workspace_page("messages.read")
@require_http_methods(["GET", "POST"])
def suppression_list(request: HttpRequest) -> HttpResponse:
    """Addresses never written to again (bounces, complaints, added by hand); a search
    by address; adding one by hand."""
    if request.method == "GET":
        return _suppressions_page(request)
    principal = request.principal
    if not principal.has_perm("channels.manage"):
        return _suppressions_page(
            request,
            errors={"form": gettext("Your role may read this list, not change it.")},
            status=403,
        )
    channel = request.POST.get("channel", "")
    if channel not in (Channel.EMAIL, Channel.SMS):
        return _suppressions_page(request, errors={"channel": gettext("email or sms")}, status=422)
    detail = request.POST.get("detail", "").strip()
    if len(detail) > 2000:
        return _suppressions_page(
            request,
            errors={"detail": gettext("at most %(n)s characters") % {"n": 2000}},
            status=422,
        )
    try:
        services.suppression_add(
            workspace_id=principal.workspace.pk,
            channel=channel,
            address=request.POST.get("address", ""),
            reason=Suppression.Reason.MANUAL,
            detail=detail,
            actor=principal.actor,
        )
    except InvalidInputError as error:
        return _suppressions_page(request, errors={error.field: error.message}, status=422)
    except ConflictError as error:
        return _suppressions_page(request, errors={"address": error.message}, status=409)
    return redirect(reverse("web:suppression_list") + "?done=added")


@workspace_page("channels.manage")
@require_POST
def suppression_remove(request: HttpRequest, suppression_id) -> HttpResponse:
    principal = request.principal
    row = selectors.suppression_get(workspace=principal.workspace, suppression_id=suppression_id)
    services.suppression_remove(suppression=row, actor=principal.actor)
    return redirect(reverse("web:suppression_list") + "?done=removed")


urlpatterns = [
    path("messages/outbox/", outbox_list, name="outbox_list"),
    path("messages/outbox/<uuid:mail_id>/", outbox_detail, name="outbox_detail"),
    path("messages/failed/", failed_messages, name="failed_messages"),
    path("messages/failed/retry/", failed_retry, name="failed_retry"),
    path("messages/failed/<uuid:message_id>/retry/", message_retry, name="message_retry"),
    path("messages/suppressions/", suppression_list, name="suppression_list"),
    path(
        "messages/suppressions/<uuid:suppression_id>/remove/",
        suppression_remove,
        name="suppression_remove",
    ),
    path("settings/channels/", channel_settings, name="channel_settings"),
    path(
        "settings/channels/webhook-secret/",
        webhook_secret_create,
        name="webhook_secret_create",
    ),
]


def nav_register() -> None:
    """The pages in the side bar's "Act" group (called from the web app's ready)."""
    items = [
        NavItem(
            "failed_messages",
            _("Failed messages"),
            "web:failed_messages",
            "messages.read",
            ("failed_*", "message_retry"),
        ),
        NavItem(
            "suppressions",
            _("Suppressions"),
            "web:suppression_list",
            "messages.read",
            ("suppression_*",),
        ),
        NavItem("outbox", _("Outbox"), "web:outbox_list", "messages.read", ("outbox_*",)),
        NavItem(
            "channel_settings",
            _("Channel settings"),
            "web:channel_settings",
            "channels.manage",
            ("channel_settings", "webhook_secret_create"),
        ),
    ]
    for item in items:
        nav_item_register("act", item)
