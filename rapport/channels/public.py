"""The endpoints a customer's site or app calls, authenticated like the Tracking API
by a source's write key (HTTP Basic user name, or `writeKey` in the query string or
the JSON body) and held to the source's allowed origins (rapport/ingest/cors.py):

- `GET /v1/push/public-key`: the VAPID public key to subscribe browsers with;
- `POST /v1/push/subscriptions` {user_id | anonymous_id, subscription: {endpoint,
  keys: {p256dh, auth}}}: the browser's subscription, for that customer (201); the
  same endpoint posted again moves to the customer now named. An unknown customer is
  404 `unknown_customer`: identify them first (analytics.identify / page), then
  subscribe; a browser is not tied to a customer Rapport has not heard of;
- `DELETE /v1/push/subscriptions` {endpoint}: the browser unsubscribed (204);
- `GET /v1/in-app/messages?user_id=…|anonymous_id=…`: the customer's pending in-app
  messages (an unknown customer has none);
- `POST /v1/in-app/messages/{id}/events` {user_id | anonymous_id, type: shown |
  clicked | dismissed}: what the customer did (204); a message of another customer
  or workspace is 404.

And, for the push service worker (no write key: the message's signed token is the
proof), `POST /m/push/<token>` {event: shown | clicked | dismissed}.
"""

import base64
import binascii
import uuid
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from rapport.channels import inapp, push
from rapport.channels.models import Message, PushSubscription
from rapport.core.errors import error_body
from rapport.ingest.cors import cors_grant, origin_permitted, origin_refused, preflight
from rapport.ingest.tracking import write_key_from_basic_auth
from rapport.tenancy.selectors import (
    WriteKeyGrant,
    origins_allowed_by_any_source,
    write_key_resolve,
)

MAX_BODY_BYTES = 16 * 1024
EVENT_KINDS = tuple(inapp.EVENT_NAMES)


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status, self.code, self.message, self.field = status, code, message, field

    def response(self) -> HttpResponse:
        details = [{"field": self.field, "message": self.message}] if self.field else None
        response = _json(error_body(self.code, self.message, details), self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Basic realm="rapport"'
        return response


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def _payload(request: HttpRequest) -> dict:
    if request.method in ("GET", "HEAD"):
        return {}
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if (declared.isdigit() and int(declared) > MAX_BODY_BYTES) or len(
        request.body
    ) > MAX_BODY_BYTES:
        raise Refused(
            413,
            "payload_too_large",
            gettext("The body is larger than %(kb)s KB") % {"kb": MAX_BODY_BYTES // 1024},
        )
    if not request.body:
        return {}
    try:
        payload = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise Refused(400, "invalid_json", gettext("The body is not valid JSON")) from None
    if not isinstance(payload, dict):
        raise Refused(400, "bad_request", gettext("The body must be a JSON object"))
    return payload


def _grant(request: HttpRequest, payload: dict) -> WriteKeyGrant:
    key = write_key_from_basic_auth(request)
    if key is None:
        body_key = payload.get("writeKey")
        key = body_key if isinstance(body_key, str) and body_key else None
    key = key or request.GET.get("writeKey") or None
    grant = write_key_resolve(raw=key) if key else None
    if grant is None:
        raise Refused(
            401,
            "unauthorized",
            gettext("Missing, unknown or revoked write key: send it as the HTTP Basic user name"),
        )
    request.tracking_origins = grant.allowed_origins
    return grant


def _origins(request: HttpRequest):
    known = getattr(request, "tracking_origins", None)
    if known is not None:
        return known
    key = request.GET.get("writeKey") or write_key_from_basic_auth(request)
    grant = write_key_resolve(raw=key) if key else None
    return grant.allowed_origins if grant is not None else origins_allowed_by_any_source()


def _text(payload: dict, name: str, *, limit: int = 255) -> str:
    value = payload.get(name)
    if value is None or value == "":
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > limit:
        raise Refused(
            422,
            "validation_error",
            gettext("%(name)s must be text of at most %(limit)s characters")
            % {"name": name, "limit": limit},
            field=name,
        )
    return str(value)


def _who(payload: dict) -> tuple[str, str]:
    user_id, anonymous_id = _text(payload, "user_id"), _text(payload, "anonymous_id")
    if not user_id and not anonymous_id:
        raise Refused(
            422,
            "validation_error",
            gettext("give user_id or anonymous_id: who the customer is"),
            field="user_id",
        )
    return user_id, anonymous_id


def _public_view(methods: str, handler):
    allowed = [m.strip() for m in methods.split(",")]

    @csrf_exempt
    @require_http_methods([*allowed, "OPTIONS"])
    def view(request: HttpRequest, **kwargs) -> HttpResponse:
        if request.method == "OPTIONS":
            return preflight(request, _origins(request), f"{methods}, OPTIONS")
        try:
            payload = _payload(request)
            grant = _grant(request, payload)
            if not origin_permitted(request, grant.allowed_origins):
                return origin_refused(request.headers["Origin"])
            response = handler(request, grant, payload, **kwargs)
        except Refused as refused:
            response = refused.response()
        return cors_grant(request, response, _origins(request))

    view.__name__ = handler.__name__
    return view


# --- Web push --------------------------------------------------------------------------


def _key_bytes(value: Any, field: str, size: int, limit: int) -> str:
    message = gettext("%(field)s must be the browser's key, base64url") % {"field": field}
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Refused(422, "validation_error", message, field=field)
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise Refused(422, "validation_error", message, field=field) from None
    if len(raw) != size or (size == 65 and raw[0] != 4):
        raise Refused(422, "validation_error", message, field=field)
    return value


def _endpoint(value: Any, field: str = "subscription.endpoint") -> str:
    schemes = ("https://",)
    if getattr(settings, "RAPPORT_PUSH_ALLOW_PRIVATE_ADDRESSES", False):
        schemes = ("https://", "http://")
    if not isinstance(value, str) or len(value) > 2000 or not value.startswith(schemes):
        raise Refused(
            422,
            "validation_error",
            gettext("the push service's https URL the browser gave"),
            field=field,
        )
    return value


def _push_public_key(request, grant: WriteKeyGrant, payload: dict) -> HttpResponse:
    return _json({"public_key": push.vapid_public_key(grant.workspace_id)})


def _push_subscriptions(request, grant: WriteKeyGrant, payload: dict) -> HttpResponse:
    if request.method == "DELETE":
        subscription = payload.get("subscription")
        endpoint = payload.get("endpoint") or (
            subscription.get("endpoint") if isinstance(subscription, dict) else None
        )
        endpoint = _endpoint(endpoint, "endpoint")
        PushSubscription.objects.filter(workspace_id=grant.workspace_id, endpoint=endpoint).delete()
        return HttpResponse(status=204)
    user_id, anonymous_id = _who(payload)
    subscription = payload.get("subscription")
    if not isinstance(subscription, dict):
        raise Refused(
            422,
            "validation_error",
            gettext("the browser's subscription: {endpoint, keys: {p256dh, auth}}"),
            field="subscription",
        )
    endpoint = _endpoint(subscription.get("endpoint"))
    keys = subscription.get("keys") if isinstance(subscription.get("keys"), dict) else {}
    p256dh = _key_bytes(keys.get("p256dh"), "subscription.keys.p256dh", 65, 200)
    auth = _key_bytes(keys.get("auth"), "subscription.keys.auth", 16, 100)
    profile = inapp.customer_find(
        workspace_id=grant.workspace_id, user_id=user_id, anonymous_id=anonymous_id
    )
    if profile is None:
        raise Refused(
            404,
            "unknown_customer",
            gettext(
                "No customer with this user_id or anonymous_id yet: identify them first, "
                "then subscribe"
            ),
        )
    user_agent = request.headers.get("User-Agent", "")[:500]
    with transaction.atomic():
        found = (
            PushSubscription.objects.select_for_update()
            .filter(workspace_id=grant.workspace_id, endpoint=endpoint)
            .first()
        )
        if found is None:
            found = PushSubscription(workspace_id=grant.workspace_id, endpoint=endpoint)
        found.profile = profile
        found.p256dh, found.auth, found.user_agent = p256dh, auth, user_agent
        found.gone_at = None
        created = found._state.adding
        found.save()
    return _json(
        {"id": str(found.pk), "profile_id": str(profile.pk), "created": created},
        201 if created else 200,
    )


push_public_key = _public_view("GET", _push_public_key)
push_subscriptions = _public_view("POST, DELETE", _push_subscriptions)


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def push_report(request: HttpRequest, token: str) -> HttpResponse:
    """The service worker's report: the token names the message, any origin may send."""
    if request.method == "OPTIONS":
        return preflight(request, ("*",), "POST, OPTIONS")
    try:
        payload = _payload(request)
        message_id = push.report_message_id(token)
        message = (
            Message.objects.filter(pk=message_id, channel="push").first() if message_id else None
        )
        if message is None:
            raise Refused(404, "not_found", gettext("No such message"))
        kind = payload.get("event")
        if kind not in EVENT_KINDS:
            raise Refused(
                422, "validation_error", gettext("shown, clicked or dismissed"), field="event"
            )
        now = timezone.now()
        updates: dict[str, Any] = {}
        if message.opened_at is None and kind in ("shown", "clicked"):
            updates["opened_at"] = now
        if message.clicked_at is None and kind == "clicked":
            updates["clicked_at"] = now
        if message.dismissed_at is None and kind == "dismissed":
            updates["dismissed_at"] = now
        if updates:
            Message.objects.filter(pk=message.pk).update(updated_at=now, **updates)
        response = HttpResponse(status=204)
    except Refused as refused:
        response = refused.response()
    return cors_grant(request, response, ("*",))


# --- In-app messages -------------------------------------------------------------------


def _inapp_messages(request, grant: WriteKeyGrant, payload: dict) -> HttpResponse:
    user_id, anonymous_id = _who(request.GET.dict())
    profile = inapp.customer_find(
        workspace_id=grant.workspace_id, user_id=user_id, anonymous_id=anonymous_id
    )
    messages = (
        inapp.pending_messages(workspace_id=grant.workspace_id, profile=profile) if profile else []
    )
    items = []
    for message in messages:
        rendered = inapp.rendered_of(message)
        items.append(
            {
                "id": str(message.pk),
                "broadcast_id": str(message.broadcast_id) if message.broadcast_id else None,
                "purpose": message.purpose,
                "title": rendered["subject"],
                "html": rendered["html"],
                "text": rendered["text"],
                "url": push.message_link(message.pk) or None,
                "created_at": (message.sent_at or message.created_at).isoformat(),
            }
        )
    response = _json({"messages": items})
    response["Cache-Control"] = "no-store"
    return response


def _inapp_message_events(request, grant: WriteKeyGrant, payload: dict, message_id: uuid.UUID):
    user_id, anonymous_id = _who(payload)
    kind = payload.get("type")
    if kind not in EVENT_KINDS:
        raise Refused(422, "validation_error", gettext("shown, clicked or dismissed"), field="type")
    profile = inapp.customer_find(
        workspace_id=grant.workspace_id, user_id=user_id, anonymous_id=anonymous_id
    )
    message = (
        inapp.customer_message(
            workspace_id=grant.workspace_id, profile=profile, message_id=message_id
        )
        if profile is not None
        else None
    )
    if message is None:
        raise Refused(404, "not_found", gettext("No such message for this customer"))
    inapp.message_event_record(
        message=message,
        kind=kind,
        source_id=grant.source_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
    )
    return HttpResponse(status=204)


inapp_messages = _public_view("GET", _inapp_messages)
inapp_message_events = _public_view("POST", _inapp_message_events)
