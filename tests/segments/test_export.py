"""Hashed audience exports carry only what each customer consented to (marketing by
email for the email, by SMS or phone for the phone), and say how many they left out:
in the answer's headers, the audit log and the segment's page."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from rapport.profiles.models import ConsentChange
from rapport.profiles.services import consent_set
from rapport.segments import services
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.services import Actor
from tests.segments.conftest import profile_of
from tests.web.clients import signed_in

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# user id: (email, phone, consents as (channel, status))
CUSTOMERS = {
    "email-ok": ("ok@example.com", None, [("email", "granted")]),
    "phone-by-sms": ("sms@example.com", "+44 7700 900101", [("sms", "granted")]),
    "phone-by-call": (None, "+44 7700 900102", [("phone", "granted")]),
    "denied": ("denied@example.com", "+44 7700 900103", [("email", "denied")]),
    "withdrawn": ("withdrawn@example.com", None, [("email", "granted"), ("email", "denied")]),
    "regranted": ("regranted@example.com", None, [("email", "denied"), ("email", "granted")]),
    "transactional-only": ("tx@example.com", None, [("email", "granted", "transactional")]),
    "expired": ("expired@example.com", None, []),
    "never-asked": ("never@example.com", "+44 7700 900104", []),
    "no-identifier": (None, None, [("email", "granted")]),
}


@pytest.fixture
def audience(shop):
    for user_id, (email, phone, _) in CUSTOMERS.items():
        traits = {k: v for k, v in {"email": email, "phone": phone}.items() if v}
        shop.send({"type": "identify", "userId": user_id, "traits": traits})
    for user_id, (_, _, consents) in CUSTOMERS.items():
        for channel, status, *purpose in consents:
            consent_set(
                profile=profile_of(shop, user_id),
                channel=channel,
                purpose=purpose[0] if purpose else "marketing",
                status=status,
                actor=ACTOR,
            )
    ConsentChange.objects.create(
        workspace=shop.workspace,
        profile=profile_of(shop, "expired"),
        origin_profile_id=profile_of(shop, "expired").pk,
        channel="email",
        purpose="marketing",
        status="granted",
        at=timezone.now() - timedelta(days=400),
        expires_at=timezone.now() - timedelta(days=35),
        source="api:tests",
    )
    segment = services.segment_create(
        workspace=shop.workspace, name="Everyone", kind="static", actor=ACTOR
    )
    services.segment_members_add(segment=segment, values=list(CUSTOMERS), actor=ACTOR)
    return segment


def test_only_consented_identifiers_are_exported(audience):
    export = services.segment_export(
        segment=audience, format="google", actor=ACTOR, can_see_pii=False
    )
    rows = {line.strip() for line in list(export)[1:]}
    assert rows == {
        f"{sha('ok@example.com')},",
        f",{sha('+447700900101')}",  # the email of this one had no consent
        f",{sha('+447700900102')}",
        f"{sha('regranted@example.com')},",
    }
    assert (export.members, export.exported) == (len(CUSTOMERS), 4)
    assert (export.no_consent, export.no_identifier) == (5, 1)


def test_meta_drops_the_plus_and_keeps_the_same_people(audience):
    text = "".join(
        services.segment_export(segment=audience, format="meta", actor=ACTOR, can_see_pii=False)
    )
    assert text.splitlines()[0] == "EMAIL,PHONE"
    assert sha("447700900102") in text and sha("denied@example.com") not in text
    assert len(text.splitlines()) == 1 + 4


def test_the_readable_export_is_not_a_consent_matter(audience):
    """A person with pii.export reads the list (to call them, not to target ads)."""
    text = "".join(
        services.segment_export(segment=audience, format="csv", actor=ACTOR, can_see_pii=True)
    )
    assert len(text.splitlines()) == 1 + len(CUSTOMERS)


def test_the_answer_and_the_audit_log_say_how_many_were_left_out(shop, audience):
    response = shop.api("marketer").post(f"/api/v1/segments/{audience.pk}/export?format=google")
    assert response.status_code == 200
    assert len(b"".join(response.streaming_content).decode().splitlines()) == 1 + 4
    assert response["X-Rapport-Exported"] == "4"
    assert response["X-Rapport-Left-Out-No-Consent"] == "5"
    assert response["X-Rapport-Left-Out-No-Identifier"] == "1"
    entry = AuditLogEntry.objects.filter(workspace=shop.workspace, action="segment.export").last()
    assert entry.details == {
        "format": "google",
        "size": audience.size,
        "exported": 4,
        "left_out_no_consent": 5,
        "left_out_no_identifier": 1,
    }


def test_the_page_says_it_before_the_download(shop, audience):
    client = signed_in(shop, "marketer")
    html = client.get(f"/segments/{audience.pk}/").content.decode()
    assert "4 in the file; 5 left out without consent; 1 with no email or phone" in html
    confirm = client.get(f"/segments/{audience.pk}/export/", {"format": "meta"})
    assert "4 in the file; 5 left out without consent" in confirm.content.decode()
    download = client.post(f"/segments/{audience.pk}/export/", {"format": "meta"})
    assert download["X-Rapport-Left-Out-No-Consent"] == "5"
    assert len(b"".join(download.streaming_content).decode().splitlines()) == 1 + 4
