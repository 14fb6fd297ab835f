"""Messages as events of the customer (rapport/channels/events.py): one event per
send, open, click, bounce; counted by the engagement KPI; matched by segment rules;
STOP replies from numbers stored in national format."""

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from rapport.analytics import selectors as analytics
from rapport.channels import events, services, tracking
from rapport.channels.models import EmailSettings, Message
from rapport.ingest.models import Event
from rapport.ingest.services import events_dispatch
from rapport.profiles.selectors import consent_current
from rapport.segments.models import SegmentMembership
from rapport.segments.services import segment_create
from tests.channels.conftest import ACTOR, single


def _customer(tenant, user_id, days_ago=60, **traits):
    """A customer whose own last activity is long ago (nothing of theirs is active now)."""
    from rapport.profiles.models import Profile

    traits.setdefault("consent", {"email": {"marketing": "granted"}})
    at = (timezone.now() - timedelta(days=days_ago)).isoformat()
    tenant.send({"type": "identify", "userId": user_id, "traits": traits, "timestamp": at})
    return Profile.objects.get(workspace=tenant.workspace, identifiers__value=user_id)


def _pipeline(tenant):
    """The pipeline's consumers over the messages' events, as a worker would run them."""
    ids = list(
        Event.objects.filter(workspace=tenant.workspace, type="track").values_list(
            "message_id", flat=True
        )
    )
    events_dispatch(workspace_id=tenant.workspace.pk, message_ids=ids)


def _names(profile):
    return sorted(
        Event.objects.filter(profile=profile, type="track").values_list("event", flat=True)
    )


def test_an_open_counts_in_engagement_and_matches_a_segment_rule(shop, smtp):
    jane = _customer(shop, "u1", email="jane@example.com")
    bob = _customer(shop, "u2", email="bob@example.com")
    segment = segment_create(
        workspace=shop.workspace,
        name="Opened lately",
        rule={"all": [{"event": "Email Opened", "window": {"last_days": 30}}]},
        actor=ACTOR,
        refresh="now",
    )
    assert not SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).exists()
    to_jane, to_bob = single(shop, jane), single(shop, bob)
    from rapport.ingest.models import PipelineBatch

    batches = PipelineBatch.objects.count()
    services.messages_send(message_ids=[to_jane.pk, to_bob.pk])
    # A batch of sends is one write of its events (one pipeline batch).
    assert PipelineBatch.objects.count() == batches + 1
    assert _names(jane) == _names(bob) == ["Email Sent"]

    opened = f"/m/o/{tracking.open_token(str(to_jane.pk))}"
    assert Client().get(opened).status_code == 200
    assert Client().get(opened).status_code == 200  # a second open is the same event
    assert _names(jane) == ["Email Opened", "Email Sent"]
    event = Event.objects.get(profile=jane, event="Email Opened")
    assert event.properties == {
        "message_id": str(to_jane.pk),
        "broadcast_id": None,
        "channel": "email",
        "purpose": "marketing",
        "subject": "Hello there",
    }
    _pipeline(shop)

    # The segment rule "did Email Opened in the last 30 days" now holds Jane alone.
    members = set(
        SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).values_list(
            "profile_id", flat=True
        )
    )
    assert members == {jane.pk}

    # Engagement counts her open; a message sent is nobody's activity.
    today = timezone.localdate()
    report = analytics.kpis_report(
        workspace=shop.workspace, first=today - timedelta(days=6), last=today
    )
    assert report["figures"]["active_customers"] == 0
    assert report["parts"]["engaged"] == 1
    assert report["figures"]["engagement_rate"] == 0.5


def test_each_event_is_recorded_once_and_bulk(shop, smtp):
    jane = _customer(shop, "u1", email="jane@example.com")
    message = single(shop, jane)
    services.message_send(message_id=message.pk)
    message.refresh_from_db()
    # The send path's batches record "sent" again: nothing more.
    assert events.message_events_record([message, message.pk], "sent") == 1
    first = events.message_event_record(message, "delivered")
    assert events.message_event_record(message, "delivered") == first
    events.message_event_record(message, "clicked", {"url": "https://a.example/1"})
    events.message_event_record(message, "clicked", {"url": "https://a.example/1"})
    events.message_event_record(message, "clicked", {"url": "https://a.example/2"})
    assert _names(jane) == [
        "Email Delivered",
        "Email Link Clicked",
        "Email Link Clicked",
        "Email Sent",
    ]
    sent = Event.objects.get(profile=jane, event="Email Sent")
    assert sent.timestamp == message.sent_at
    # A channel without events, an unknown action: nothing.
    assert events.message_event_record(message, "no such action") is None


def test_bounce_and_complaint_events(shop, smtp):
    jane = _customer(shop, "u1", email="jane@example.com")
    message = single(shop, jane)
    services.message_send(message_id=message.pk)
    meta = {"rapport_message_id": str(message.pk)}
    services.delivery_event_record(
        event_type="deferred", metadata=meta, recipient="jane@example.com", description="4.2.2"
    )
    services.delivery_event_record(
        event_type="bounced", metadata=meta, recipient="jane@example.com", description="5.1.1"
    )
    services.delivery_event_record(event_type="complained", metadata=meta)
    bounces = Event.objects.filter(profile=jane, event="Email Bounced")
    assert sorted(b.properties["bounce_type"] for b in bounces) == ["permanent", "transient"]
    assert "Email Marked as Spam" in _names(jane) and "Unsubscribed" in _names(jane)


def test_timeline_lists_a_failed_message_once(shop, settings):
    settings.RAPPORT_EMAIL_URL = "smtp://127.0.0.1:9"  # nothing listens: refused
    settings.RAPPORT_MESSAGE_MAX_ATTEMPTS = 1
    from rapport.profiles.selectors import profile_timeline
    from rapport.profiles.timeline_sentences import entry_sentence

    jane = _customer(shop, "u1", email="jane@example.com")
    message = single(shop, jane)
    services.message_send(message_id=message.pk)
    message.refresh_from_db()
    if message.status != Message.Status.FAILED:  # queued for a retry
        Message.objects.filter(pk=message.pk).update(status=Message.Status.FAILED)
    page = profile_timeline(workspace=shop.workspace, profile_id=jane.pk)
    said = [str(entry_sentence(e)) for e in page.items if "message" in e.data]
    assert len(said) == 1 and said[0].startswith("Could not send email")
    assert "Email Sent" not in _names(jane)


# --- STOP in national format ----------------------------------------------------------


def _sms_customer(tenant, user_id, phone):
    from rapport.profiles.models import Profile

    traits = {"phone": phone, "consent": {"sms": {"marketing": "granted"}}}
    tenant.send({"type": "identify", "userId": user_id, "traits": traits})
    return Profile.objects.get(workspace=tenant.workspace, identifiers__value=user_id)


def _sms_consent(profile):
    rows = consent_current(workspace=profile.workspace, profile_id=profile.pk)
    return next(r["status"] for r in rows if r["channel"] == "sms" and r["purpose"] == "marketing")


def test_stop_matches_a_number_stored_in_national_format(shop):
    EmailSettings.objects.create(workspace=shop.workspace, sms_default_region="GB")
    national = _sms_customer(shop, "u1", "020 7946 0000")
    spaced = _sms_customer(shop, "u2", "+44 (0)20 7946-0000")
    other = _sms_customer(shop, "u3", "020 7946 0001")
    sent = Message.objects.create(
        workspace=shop.workspace,
        profile=national,
        channel="sms",
        purpose="marketing",
        status=Message.Status.SENT,
        sent_at=timezone.now(),
    )

    assert (
        services.sms_opt_out(
            workspace_id=shop.workspace.pk, number="+442079460000", text="STOP", reply_id="SM1"
        )
        == 2
    )
    assert _sms_consent(national) == "denied"
    assert _sms_consent(spaced) == "denied"
    assert _sms_consent(other) == "granted"
    # Her reply and her unsubscription are events of hers, on the SMS she was sent.
    assert _names(national) == ["SMS Replied", "Unsubscribed"]
    replied = Event.objects.get(profile=national, event="SMS Replied")
    assert replied.properties["message_id"] == str(sent.pk)
    assert replied.properties["text"] == "STOP"
    # Vonage's number without its plus sign is the same number.
    assert services.sms_opt_out(workspace_id=shop.workspace.pk, number="442079460001") == 1
    assert _sms_consent(other) == "denied"


def test_stop_reads_national_numbers_in_the_identity_region(shop):
    from rapport.identity.services import identity_rules_get

    rules = identity_rules_get(workspace_id=shop.workspace.pk)
    rules.default_phone_region = "RU"
    rules.save()
    ivan = _sms_customer(shop, "u1", "8 916 123-45-67")
    assert services.sms_opt_out(workspace_id=shop.workspace.pk, number="+79161234567") == 1
    assert _sms_consent(ivan) == "denied"


# --- Erasure ----------------------------------------------------------------------------


def test_erasure_clears_what_messages_said_and_keeps_the_counts(shop, settings):
    from rapport.channels.models import Broadcast, OutboxMail
    from rapport.channels.selectors import broadcast_stats
    from rapport.identity.services import profile_erase

    settings.RAPPORT_EMAIL_URL = ""  # the local outbox
    jane = _customer(shop, "u1", email="jane@example.com", first_name="Jane")
    bob = _customer(shop, "u2", email="bob@example.com")
    broadcast = Broadcast.objects.create(
        workspace=shop.workspace, name="March", subject="Hi {{ customer.first_name }}", html="x"
    )
    to_jane = Message.objects.create(
        workspace=shop.workspace,
        profile=jane,
        broadcast=broadcast,
        channel="email",
        purpose="marketing",
    )
    to_bob = Message.objects.create(
        workspace=shop.workspace,
        profile=bob,
        broadcast=broadcast,
        channel="email",
        purpose="marketing",
    )
    services.messages_send(message_ids=[to_jane.pk, to_bob.pk])
    # A provider id that carries her address (some providers' ids do), an error naming it.
    Message.objects.filter(pk=to_jane.pk).update(
        provider_id="<jane@example.com/123>", error="550 jane@example.com: no such user"
    )
    single_to_jane = single(shop, jane, subject="Your order", key="order-1")
    services.message_send(message_id=single_to_jane.pk)
    assert OutboxMail.objects.filter(workspace=shop.workspace).count() == 3
    before = broadcast_stats(workspace=shop.workspace, broadcast_id=broadcast.pk)

    profile_erase(profile=jane, actor=ACTOR)

    for message in (to_jane, single_to_jane):
        message.refresh_from_db()
        assert message.profile_id is None
        assert message.subject == "" and message.content == {} and message.error == ""
        assert "jane" not in message.provider_id
        assert message.status == Message.Status.SENT  # the counts stay
    assert single_to_jane.provider_id  # a provider id without her address stays
    [left] = OutboxMail.objects.filter(workspace=shop.workspace)
    assert left.to == ["bob@example.com"]
    to_bob.refresh_from_db()
    assert to_bob.subject == "Hi" and to_bob.provider_id
    assert Message.objects.filter(broadcast=broadcast).count() == 2
    assert broadcast_stats(workspace=shop.workspace, broadcast_id=broadcast.pk) == before
    assert not Event.objects.filter(properties__message_id=str(to_jane.pk)).exists()
