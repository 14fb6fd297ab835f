"""SMS through the workspace's provider (Twilio or Vonage, rapport/channels/transports/).

The settings live with the workspace's other channel settings (`EmailSettings`): the
provider, its credentials (encrypted JSON), the sender and the default region. The
provider's delivery and inbound callbacks come back to /m/sms/<provider>/<token>/
(rapport/channels/views.py), the token being the workspace's own.
"""

from typing import Any

from rapport.channels.dispatch import Outgoing, SendError, SendResult, Session, transport_register
from rapport.channels.models import EmailSettings
from rapport.channels.secrets import SMS_CREDENTIALS, secret_get
from rapport.channels.transports import TransportError, get_transport
from rapport.channels.transports.sms import to_e164

PROVIDERS = ("twilio", "vonage")
# The credentials each provider accepts (others are refused when set).
CREDENTIAL_KEYS = {
    "twilio": {
        "account_sid",
        "auth_token",
        "api_key_sid",
        "api_key_secret",
        "messaging_service_sid",
        "base_url",
    },
    "vonage": {
        "api_key",
        "api_secret",
        "application_id",
        "private_key",
        "signature_secret",
        "base_url",
    },
}


def credentials_of(found: EmailSettings) -> dict[str, Any] | None:
    """The decrypted credentials; None when they cannot be read (SECRET_KEY changed)."""
    return secret_get(found, SMS_CREDENTIALS)


def callback_path(found: EmailSettings) -> str:
    return f"/m/sms/{found.sms_provider}/{found.sms_callback_token}/"


def sms_config(workspace_id: Any) -> tuple[str, dict[str, Any]]:
    """(provider, the transport's config) for a workspace, or SendError."""
    from rapport.channels.services import public_url

    found = EmailSettings.objects.filter(workspace_id=workspace_id).first()
    if found is None or not found.sms_provider:
        raise SendError("SMS is not set up: choose a provider in Settings", retryable=False)
    credentials = credentials_of(found)
    if credentials is None:
        raise SendError(
            "The SMS credentials cannot be read (SECRET_KEY changed): enter them again",
            retryable=False,
        )
    config = dict(credentials)
    if found.sms_sender:
        config["from"] = found.sms_sender
    if found.sms_default_region:
        config["default_region"] = found.sms_default_region
    callback = public_url(callback_path(found))
    config["status_callback" if found.sms_provider == "twilio" else "webhook_url"] = callback
    return found.sms_provider, config


def sms_send(*, outgoing: Outgoing, session: Session) -> SendResult:
    key = f"sms:{outgoing.workspace_id}"
    if key not in session.state:
        session.state[key] = sms_config(outgoing.workspace_id)
    provider, config = session.state[key]
    try:
        result = get_transport(provider).send(
            message_id=outgoing.message_id,
            to=outgoing.to,
            content={"text": outgoing.text},
            config=config,
        )
    except TransportError as exc:
        raise SendError(str(exc), retryable=exc.retryable) from exc
    return SendResult(provider_id=result.provider_message_id)


def phone_region(workspace_id: Any) -> str | None:
    """The region a national number of this workspace is read in ("GB"): the SMS
    settings' default region, else identity resolution's default phone region."""
    from rapport.identity.models import IdentityRules

    region = (
        EmailSettings.objects.filter(workspace_id=workspace_id)
        .values_list("sms_default_region", flat=True)
        .first()
    ) or (
        IdentityRules.objects.filter(workspace_id=workspace_id)
        .values_list("default_phone_region", flat=True)
        .first()
    )
    return region or None


def phone_normalised(value: Any, region: str | None = None) -> str | None:
    """A number as E.164, read in `region` when it has no country code; None when it is
    not a valid number."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return to_e164(value.strip(), region)
    except TransportError:
        return None


def phone_of(profile, region: str | None = None) -> str | None:
    """The customer's phone in E.164 (an identifier first, else the `phone` trait; a
    national number is read in `region`, by default the workspace's, `phone_region`)."""
    for identifier in profile.identifiers.all():
        if identifier.kind == "phone" and identifier.value:
            return identifier.value
    value = (profile.traits or {}).get("phone")
    found = phone_normalised(value)
    if found is None and isinstance(value, str) and value.strip():
        found = phone_normalised(value, region or phone_region(profile.workspace_id))
    return found


transport_register(channel="sms", send=sms_send, address=phone_of)
