"""Personal data planted everywhere it can hide in a workspace (a user id that is an
email or a phone, phones under keys of any name, account traits, what a merge moved and
why), for the sweeps that check no surface shows it to a role without pii.read."""

from rapport.identity.models import DuplicateCandidate
from rapport.identity.services import profile_merge
from rapport.profiles.models import Account, Profile
from rapport.profiles.services import account_merge
from rapport.tenancy.services import Actor

# Each written as it is sent and as it is stored (a phone identifier is E.164), so
# that a leak is found whichever form a surface shows.
SECRETS = (
    "jane.doe@example.com",
    "7946 0958",
    "442079460958",
    "lena.leak@example.org",
    "lena.private@example.org",
    "lena.backup@example.org",
    "lena.receipt@example.org",
    "lena.reason@example.org",
    "7700 900123",
    "07700 900456",
    "415 555 0199",
    "020 7946 0777",
    "6 12 34 56 78",
    "447700900888",
    "447700900999",
    "447700900555",
    "billing@acme-leak.example",
    "7946 0111",
    "020 7946 0222",
    "7700 900321",
    "u3.other@example.org",
)


def leaks_plant(tenant) -> None:
    """On the tenant's sample data: customers whose personal data sits in every odd
    place, merged into the profile the API sweeps use, and an account with an email
    and phones among its traits."""
    name = tenant.workspace.name
    actor = Actor.system("tests")
    tenant.send(
        {
            "type": "identify",
            "userId": "lena.leak@example.org",
            "traits": {
                "email": "lena.private@example.org",
                "telephone": "+44 7700 900123",
                "contact_phone": "07700 900456",
                "plan": "pro",
                "notes": "call me on +1 415 555 0199",
                "work": {"Mobile Number": "020 7946 0777"},
                "backup": "lena.backup@example.org",
            },
            "context": {"traits": {"altPhone": "+33 6 12 34 56 78"}},
        },
        {
            "type": "track",
            "userId": "lena.leak@example.org",
            "event": "Order Completed",
            "properties": {"receipt_to": "lena.receipt@example.org", "sms": "+447700900888"},
        },
        {"type": "identify", "userId": "+447700900999", "traits": {"name": "Phone User"}},
        {
            "type": "identify",
            "userId": "+447700900555",
            "traits": {"name": "Duplicate Dan", "plan": "pro"},
        },
        {
            "type": "group",
            "userId": "lena.leak@example.org",
            "groupId": f"{name}-acme",
            "traits": {
                "email": "billing@acme-leak.example",
                "phone": "+44 20 7946 0111",
                "contact_phone": "020 7946 0222",
            },
        },
        {"type": "group", "userId": "+447700900999", "groupId": f"{name}-initech"},
        # The profile the API sweeps merge in (`other_profile_id`).
        {"type": "identify", "userId": f"{name}-u3", "traits": {"email": "u3.other@example.org"}},
    )
    profiles = Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True)
    survivor = profiles.get(identifiers__value=f"{name}-u1")
    for user_id in ("lena.leak@example.org", "+447700900999"):
        profile_merge(
            survivor=survivor,
            merged=profiles.get(identifiers__value=user_id),
            reason="the same person: lena.reason@example.org, +44 7700 900321",
            actor=actor,
        )
    dan = profiles.get(identifiers__value="+447700900555")
    other = profiles.get(identifiers__value=f"{name}-c1")
    DuplicateCandidate.objects.create(
        workspace=tenant.workspace,
        kind="profile",
        record_a=min(dan.pk, other.pk),
        record_b=max(dan.pk, other.pk),
        probability=0.91,
        agreeing_fields=["name"],
    )
    accounts = Account.objects.filter(workspace=tenant.workspace)
    account_merge(
        survivor=accounts.get(group_id=f"{name}-acme"),
        merged=accounts.get(group_id=f"{name}-initech"),
        reason="billing@acme-leak.example said so on +44 7700 900321",
        actor=actor,
    )


def leaks_in(body: str) -> list[str]:
    return [secret for secret in SECRETS if secret in body]
