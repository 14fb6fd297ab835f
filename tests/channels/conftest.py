import pytest

from rapport.channels import services
from rapport.profiles.models import Profile
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create

ACTOR = Actor.system("tests")


@pytest.fixture
def shop(db):
    """A workspace without the API sweep's sample data."""
    return tenant_create("Shop", sample_data=False)


@pytest.fixture
def smtp(settings, mailbox):
    settings.RAPPORT_EMAIL_URL = f"smtp://{mailbox.host}:{mailbox.port}"
    settings.RAPPORT_PUBLIC_URL = "https://crm.example.com"
    return mailbox


def customer(tenant, user_id: str, *, marketing: bool | None = True, **traits) -> Profile:
    if marketing is not None:
        traits["consent"] = {"email": {"marketing": "granted" if marketing else "denied"}}
    tenant.send({"type": "identify", "userId": user_id, "traits": traits})
    return Profile.objects.get(workspace=tenant.workspace, identifiers__value=user_id)


def single(tenant, profile, *, purpose="marketing", key=None, **content):
    content.setdefault("subject", "Hello {{ customer.first_name|default:'there' }}")
    content.setdefault("html", "<p>Hi {{ customer.first_name|default:'there' }}</p>")
    message, _ = services.message_create(
        workspace=tenant.workspace,
        profile=profile,
        channel="email",
        purpose=purpose,
        content=content,
        idempotency_key=key,
        actor=ACTOR,
    )
    return message


# The local HTTP receiver (acting as Twilio, Vonage or a webhook's receiver).
from tests.channels.transports.conftest import receiver  # noqa: E402, F401
