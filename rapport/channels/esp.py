"""Tracking webhooks from email providers, through django-anymail: each ESP's own
format arrives at /m/esp/<esp>/tracking/ (protected by RAPPORT_ANYMAIL_WEBHOOK_SECRET
as HTTP basic auth, "user:password"), is normalised by anymail, and lands here."""

from anymail.signals import tracking
from django.dispatch import receiver

from rapport.channels import services


@receiver(tracking, dispatch_uid="rapport.channels.esp.tracking")
def on_tracking(sender, event, esp_name, **kwargs) -> None:
    services.delivery_event_record(
        event_type=event.event_type,
        provider_id=event.message_id or "",
        metadata=event.metadata or {},
        recipient=event.recipient or "",
        description=event.description or event.mta_response or "",
        at=event.timestamp,
        url=event.click_url or "",
    )
