import pytest

from rapport.decisions import engine, learner
from rapport.decisions.models import Action, ActionModel, DecisionSettings
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create

ACTOR = Actor.system("tests")


@pytest.fixture
def shop(db):
    """A workspace without the API sweep's sample data, and a fresh engine cache."""
    engine.catalogue_forget()
    yield tenant_create("Shop", sample_data=False)
    engine.catalogue_forget()


def action_add(tenant, key: str, **fields) -> Action:
    """An action and its prior model, written directly (the catalogue's services are
    tested on their own)."""
    fields.setdefault("name", key.replace("-", " ").title())
    fields.setdefault("channels", ["web"])
    made = Action.objects.create(workspace=tenant.workspace, key=key, **fields)
    mean, variance = learner.model_new(prior_propensity=made.prior_propensity)
    ActionModel.objects.create(
        action=made,
        workspace=tenant.workspace,
        dims=learner.DIMS,
        mean=learner.to_bytes(mean),
        variance=learner.to_bytes(variance),
    )
    return made


def settings_set(tenant, **fields) -> DecisionSettings:
    found, _ = DecisionSettings.objects.update_or_create(
        workspace=tenant.workspace, defaults=fields
    )
    return found


def given_plant(
    workspace,
    action: Action,
    *,
    at,
    control: bool = False,
    outcomes=(),
    shown: bool = True,
    value=None,
    propensity: float = 0.1,
):
    """A decision that gave `action` to a new customer at `at` (shown, or not), with
    these outcomes: history for the reports, written directly."""
    from rapport.decisions.models import Decision, DecisionAction, Outcome
    from rapport.profiles.models import Profile

    profile = Profile.objects.create(workspace=workspace)
    decision = Decision.objects.create(
        workspace=workspace, profile=profile, channel="web", control=control, created_at=at
    )
    DecisionAction.objects.create(
        workspace=workspace,
        decision=decision,
        action=action,
        rank=1,
        priority=0.1,
        propensity=propensity,
        value=action.value if value is None else value,
        control=control,
        impression_at=at if shown else None,
        created_at=at,
    )
    for outcome in outcomes:
        Outcome.objects.create(
            workspace=workspace, decision=decision, action=action, outcome=outcome, at=at
        )
    return decision
