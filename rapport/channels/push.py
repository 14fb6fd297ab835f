"""Web push messages: the customer's browsers subscribed through a site
(`PushSubscription`, posted to `POST /v1/push/subscriptions`, rapport/channels/public.py)
get each push message, encrypted and signed with the workspace's VAPID key
(rapport/channels/transports/webpush.py).

VAPID keys: the install's (`RAPPORT_VAPID_PRIVATE_KEY`, one key pair for every
workspace) when set, else the workspace's own, made on first use and kept encrypted
with the other channel settings; the public key is what a site subscribes browsers
with (`GET /v1/push/public-key`). The subject (who a push service may contact) is
`RAPPORT_VAPID_SUBJECT`, else "mailto:" and the workspace's sender address, else the
public URL when it is https.

A message goes to every live subscription of the customer. 404 or 410 from the push
service: the subscription is gone (`gone_at`) and not written to again. The message is
sent when at least one browser took it; failed when none did (retried when a push
service was unreachable or busy). The service worker reports shown / clicked /
dismissed to `/m/push/<token>` (the message's signed id).
"""

from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from rapport.channels.dispatch import Outgoing, SendError, SendResult, Session, transport_register
from rapport.channels.models import EmailSettings, Message, PushSubscription
from rapport.channels.secrets import secret_decrypt, secret_encrypt
from rapport.channels.transports import DeliveryStatus, TransportError, get_transport, webpush
from rapport.profiles.selectors import profile_family_ids

REPORT_SALT = "rapport.channels.push.report"


def _install_key() -> str:
    return str(getattr(settings, "RAPPORT_VAPID_PRIVATE_KEY", "") or "")


def vapid_private_key(workspace_id: Any) -> str:
    """The private key the workspace's pushes are signed with (made on first use)."""
    if _install_key():
        return _install_key()
    with transaction.atomic():
        found = EmailSettings.objects.select_for_update().filter(workspace_id=workspace_id).first()
        if found is None:
            EmailSettings.objects.get_or_create(workspace_id=workspace_id)
            found = EmailSettings.objects.select_for_update().get(workspace_id=workspace_id)
        if found.push_vapid_private_encrypted:
            key = secret_decrypt(found.push_vapid_private_encrypted)
            if key:
                return key
            # Unreadable (SECRET_KEY changed): a new pair; browsers must subscribe again.
        keys = webpush.vapid_keys_generate()
        found.push_vapid_private_encrypted = secret_encrypt(keys.private_key)
        found.push_vapid_public_key = keys.public_key
        found.save(
            update_fields=["push_vapid_private_encrypted", "push_vapid_public_key", "updated_at"]
        )
        return keys.private_key


def vapid_public_key(workspace_id: Any) -> str:
    """The `applicationServerKey` a site subscribes browsers with (base64url)."""
    if _install_key():
        return webpush.vapid_public_key(_install_key())
    found = EmailSettings.objects.filter(workspace_id=workspace_id).first()
    if (
        found is not None
        and found.push_vapid_public_key
        and secret_decrypt(found.push_vapid_private_encrypted)
    ):
        return found.push_vapid_public_key
    return webpush.vapid_public_key(vapid_private_key(workspace_id))


def vapid_subject(workspace_id: Any) -> str:
    subject = str(getattr(settings, "RAPPORT_VAPID_SUBJECT", "") or "")
    if subject:
        return subject
    found = EmailSettings.objects.filter(workspace_id=workspace_id).first()
    if found is not None and found.from_email:
        return f"mailto:{found.from_email}"
    base = str(getattr(settings, "RAPPORT_PUBLIC_URL", "") or "")
    return base if base.startswith("https://") else ""


def report_token(message_id: Any) -> str:
    return signing.Signer(salt=REPORT_SALT).sign(str(message_id))


def report_message_id(token: str) -> str | None:
    try:
        return signing.Signer(salt=REPORT_SALT).unsign(token)
    except signing.BadSignature:
        return None


def push_config(workspace_id: Any) -> dict[str, Any]:
    subject = vapid_subject(workspace_id)
    if not subject:
        raise SendError(
            "Web push needs a contact for the push services: set the sender address "
            "in Settings, or RAPPORT_VAPID_SUBJECT",
            retryable=False,
        )
    return {
        "vapid_private_key": vapid_private_key(workspace_id),
        "vapid_subject": subject,
        "allow_private_addresses": bool(
            getattr(settings, "RAPPORT_PUSH_ALLOW_PRIVATE_ADDRESSES", False)
        ),
    }


def live_subscriptions(profile_id: Any):
    """The customer's browsers still subscribed (theirs and those of profiles merged
    into theirs), oldest first."""
    return PushSubscription.objects.filter(
        profile_id__in=profile_family_ids(profile_id=profile_id), gone_at__isnull=True
    ).order_by("created_at", "id")


def message_link(message_id: Any) -> str:
    """The page a push or in-app message opens: the message's `url` (a single message's
    content, or its broadcast's)."""
    row = Message.objects.filter(pk=message_id).values_list("content", "broadcast__url").first()
    if row is None:
        return ""
    content, broadcast_url = row
    return str((content or {}).get("url") or broadcast_url or "")


def push_send(*, outgoing: Outgoing, session: Session) -> SendResult:
    from rapport.channels.services import public_url

    key = f"push:{outgoing.workspace_id}"
    if key not in session.state:
        session.state[key] = push_config(outgoing.workspace_id)
    config = dict(session.state[key])
    config["report_url"] = public_url(f"/m/push/{report_token(outgoing.message_id)}")
    content: dict[str, Any] = {
        "title": outgoing.subject,
        "body": outgoing.text,
    }
    url = message_link(outgoing.message_id)
    if url:
        content["url"] = url
    transport = get_transport("webpush")
    sent: list[str] = []
    errors: list[TransportError] = []
    for subscription in live_subscriptions(outgoing.profile_id):
        try:
            result = transport.send(
                message_id=outgoing.message_id,
                to={
                    "endpoint": subscription.endpoint,
                    "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                },
                content=content,
                config=config,
            )
        except TransportError as exc:
            if exc.status == DeliveryStatus.EXPIRED:
                PushSubscription.objects.filter(pk=subscription.pk).update(
                    gone_at=timezone.now(), updated_at=timezone.now()
                )
            errors.append(exc)
            continue
        PushSubscription.objects.filter(pk=subscription.pk).update(
            last_success_at=timezone.now(), updated_at=timezone.now()
        )
        sent.append(result.provider_message_id)
    if sent:
        return SendResult(provider_id=sent[0])
    if not errors:
        raise SendError("the customer has no live push subscription", retryable=False)
    retryable = any(e.retryable for e in errors)
    raise SendError("; ".join(str(e) for e in errors)[:2000], retryable=retryable)


def push_address(profile) -> str | None:
    """The customer's id when a browser of theirs is subscribed (else no address)."""
    if profile is None or not live_subscriptions(profile.pk).exists():
        return None
    return str(profile.pk)


transport_register(channel="push", send=push_send, address=push_address)
