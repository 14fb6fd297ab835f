"""The pages a customer reaches from a message, with no account: unsubscribe (RFC 8058)
and the preference page. The signed token in the URL is the only credential: it names
one message, and through it one customer and channel."""

import base64
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from rapport.channels import rules, services, tracking
from rapport.channels.models import Message, Purpose
from rapport.profiles import selectors as profile_selectors
from rapport.profiles.models import Profile


def _message(token: str) -> Message | None:
    message_id = services.unsubscribe_message_id(token)
    if message_id is None:
        return None
    return Message.objects.filter(pk=message_id).select_related("workspace").first()


def _current(message: Message) -> dict[str, bool]:
    """Whether each purpose is on, as the send rules read it: marketing only with a
    grant, transactional unless the customer refused it (so saving the page untouched
    changes nothing)."""
    profile = Profile.objects.filter(pk=message.profile_id).first() if message.profile_id else None
    if profile is None:
        return {}
    channel = rules.CONSENT_CHANNEL.get(message.channel) or "email"
    statuses = {
        row["purpose"]: row["status"]
        for row in profile_selectors.consent_current(
            workspace=message.workspace, profile_id=profile.pk, profile=profile
        )
        if row["channel"] == channel
    }
    return {
        purpose: (
            statuses.get(purpose) == "granted"
            if purpose == Purpose.MARKETING
            else statuses.get(purpose) != "denied"
        )
        for purpose in Purpose.values
    }


# A mail client's one-click POST carries no CSRF token (RFC 8058); the signed token in
# the URL is what proves the request comes from the message.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    message = _message(token)
    if message is None:
        return render(request, "channels/unsubscribe.html", {"invalid": True}, status=404)
    done = False
    if request.method == "POST":
        if "purpose" in request.POST or "preferences" in request.POST:
            chosen = set(request.POST.getlist("purpose"))
            services.message_unsubscribe(
                message=message, purposes={p: p in chosen for p in Purpose.values}
            )
        else:
            # RFC 8058's body is "List-Unsubscribe=One-Click"; any other POST (the
            # page's own button) means the same.
            services.message_unsubscribe(message=message)
        done = True
    current = _current(message)
    purposes = [
        {"value": value, "label": label, "granted": current.get(value, False)}
        for value, label in Purpose.choices
    ]
    return render(
        request,
        "channels/unsubscribe.html",
        {"purposes": purposes, "done": done, "token": token, "channel": message.channel},
    )


@cache
def _tracking_views() -> dict:
    """anymail's tracking webhook view of each ESP, by its name ("postmark")."""
    from anymail.urls import urlpatterns

    suffix = "_tracking_webhook"
    return {
        pattern.name.removesuffix(suffix): pattern.callback
        for pattern in urlpatterns
        if pattern.name and pattern.name.endswith(suffix)
    }


@csrf_exempt
def esp_tracking(request: HttpRequest, esp: str) -> HttpResponse:
    """A provider's tracking webhook, handed to django-anymail's view for it (which
    checks the basic-auth secret and reads the provider's format). Refused while no
    secret is set: anyone could otherwise suppress any address."""
    if not (getattr(settings, "ANYMAIL", {}) or {}).get("WEBHOOK_SECRET"):
        return HttpResponse(status=404)
    view = _tracking_views().get(esp)
    if view is None:
        return HttpResponse(status=404)
    return view(request)


# The smallest transparent GIF.
_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@never_cache
@require_http_methods(["GET", "HEAD"])
def tracked_open(request: HttpRequest, token: str) -> HttpResponse:
    found = tracking.token_read(token)
    if found is not None:
        services.delivery_event_record(
            event_type="opened", metadata={"rapport_message_id": found["m"]}
        )
    return HttpResponse(_PIXEL, content_type="image/gif")


@never_cache
@require_http_methods(["GET", "HEAD"])
def tracked_click(request: HttpRequest, token: str) -> HttpResponse:
    found = tracking.token_read(token)
    if found is None or not str(found.get("u", "")).startswith(("http://", "https://")):
        raise Http404("This link is not valid")
    services.delivery_event_record(
        event_type="clicked", metadata={"rapport_message_id": found["m"]}, url=found["u"]
    )
    return HttpResponseRedirect(found["u"])


# SMS providers' callbacks: delivery reports and replies. No sign-in and no CSRF token
# (the provider posts them); the workspace is named by the secret token in the URL and
# every request must carry the provider's signature, checked with the workspace's
# credentials.
@csrf_exempt
@require_http_methods(["POST"])
def sms_callback(request: HttpRequest, provider: str, token: str) -> HttpResponse:
    from rapport.channels import sms
    from rapport.channels.models import EmailSettings
    from rapport.channels.transports import DeliveryReport, InboundKind, twilio, vonage

    found = (
        EmailSettings.objects.filter(sms_callback_token=token, sms_provider=provider).first()
        if token and provider in sms.PROVIDERS
        else None
    )
    if found is None:
        raise Http404
    credentials = sms.credentials_of(found) or {}
    try:
        if provider == "twilio":
            # Twilio signs the URL it called: the public one (RAPPORT_PUBLIC_URL, behind a
            # proxy), or the one this request names.
            urls = {
                services.public_url(request.get_full_path()),
                request.build_absolute_uri(),
            }
            signed = request.headers.get("X-Twilio-Signature", "")
            if not credentials.get("auth_token") or not any(
                twilio.signature_valid(url, request.POST, signed, credentials["auth_token"])
                for url in urls
            ):
                return HttpResponse(status=403)
            event = twilio.parse_callback(request.POST, url_query=request.GET)
        else:
            if not credentials.get("signature_secret") or not vonage.webhook_valid(
                request.headers.get("Authorization", ""),
                request.body,
                credentials["signature_secret"],
            ):
                return HttpResponse(status=403)
            event = vonage.parse_callback(request.body)
    except (ValueError, KeyError, TypeError):
        return HttpResponse(status=400)
    if isinstance(event, DeliveryReport):
        kind = {"delivered": "delivered", "failed": "failed", "undelivered": "failed"}.get(
            event.status
        )
        own = Message.objects.filter(workspace_id=found.workspace_id)
        if event.message_id:
            own = own.filter(pk=event.message_id)
        else:
            own = own.filter(provider_id=event.provider_message_id or "-")
        try:
            ours = own.exists()
        except (ValueError, ValidationError):
            ours = False
        if kind and ours:
            services.delivery_event_record(
                event_type=kind,
                provider_id=event.provider_message_id or "",
                metadata={"rapport_message_id": event.message_id} if event.message_id else {},
                description=" ".join(
                    str(part) for part in (event.error_code, event.error_message) if part
                ),
            )
    elif event.kind == InboundKind.OPT_OUT:
        services.sms_opt_out(
            workspace_id=found.workspace_id,
            number=event.from_number,
            text=event.text,
            reply_id=event.provider_message_id,
        )
    else:
        services.sms_reply_record(
            workspace_id=found.workspace_id,
            number=event.from_number,
            text=event.text,
            reply_id=event.provider_message_id,
        )
    if provider == "twilio":
        return HttpResponse(twilio.EMPTY_TWIML, content_type="text/xml")
    return HttpResponse(status=204)
