import pytest
from django.utils import timezone

from rapport.profiles.models import Profile
from rapport.sales import services
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, member_add
from tests.conftest import tenant_create

ACTOR = Actor.system("tests")


@pytest.fixture
def team(db):
    return team_create()


def team_create():
    """A workspace with a pipeline (the default stages), two salespeople and a customer."""
    tenant = tenant_create("Sales team", sample_data=False)
    workspace = tenant.workspace
    ann, _ = member_add(
        workspace=workspace,
        email="ann@team.example.com",
        role=Role.SALES,
        password=None,
        actor=ACTOR,
    )
    bob, _ = member_add(
        workspace=workspace,
        email="bob@team.example.com",
        role=Role.SALES,
        password=None,
        actor=ACTOR,
    )
    now = timezone.now()
    customer = Profile.objects.create(
        workspace=workspace, traits={"email": "c@example.com"}, first_seen_at=now, last_seen_at=now
    )
    pipeline = services.pipeline_create(workspace=workspace, actor=ACTOR, name="Office plans")
    tenant.ann, tenant.bob, tenant.customer, tenant.pipeline = ann, bob, customer, pipeline
    return tenant


def stage(pipeline, name):
    return pipeline.stages.get(name=name)


def actor_of(member) -> Actor:
    return Actor.for_user(member.user)
