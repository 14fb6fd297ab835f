import pytest
from django.utils import timezone

from rapport.journeys import services
from rapport.profiles.models import Profile
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create

ACTOR = Actor.system("tests")


@pytest.fixture
def shop(db, settings):
    # The tests run the runner themselves; no task is needed to wake it.
    settings.RAPPORT_JOURNEYS_ENQUEUE = False
    return tenant_create("Shop", sample_data=False)


def customers(tenant, n: int, **traits) -> list[Profile]:
    now = timezone.now()
    rows = [
        Profile(
            workspace=tenant.workspace, traits=dict(traits), first_seen_at=now, last_seen_at=now
        )
        for _ in range(n)
    ]
    Profile.objects.bulk_create(rows, batch_size=5000)
    return rows


def email(subject="Hello", html="<p>Hi</p>"):
    return {"subject": subject, "html": html}


def journey(tenant, steps: dict, *, start=None, start_it=True, **extra):
    graph = {
        "name": extra.pop("name", "Onboarding"),
        "trigger": extra.pop("trigger", {"type": "manual"}),
        "start": start or next(iter(steps)),
        "steps": steps,
        **extra,
    }
    made = services.journey_create(workspace=tenant.workspace, graph=graph, actor=ACTOR)
    if start_it:
        made = services.journey_start(journey=made, actor=ACTOR)
    return made


def advance(tenant, now=None, limit=5000) -> dict:
    total: dict = {}
    while True:
        counts = services.enrolments_advance(workspace_id=tenant.workspace.pk, limit=limit, now=now)
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
        if counts["claimed"] < limit:
            return total
