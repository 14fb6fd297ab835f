import json
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from rapport.tenancy.models import ApiToken, Invitation, Membership
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import (
    Actor,
    NewWorkspace,
    api_token_create,
    invitation_create,
    member_add,
)
from rapport.tenancy.services import workspace_create as _workspace_create


def pytest_collection_modifyitems(config, items):
    """Skipped on a PostgreSQL run, where they would repeat the SQLite run's work:

    - `embedded_sqlite`: tests that start Rapport with DATABASE_URL removed, so they
      run on the embedded SQLite whatever the suite's database is (about 3 minutes);
    - `one_database`: browser tests of what the browser shows (layout at each width,
      the service worker, the JavaScript SDKs) whose server side the rest of the suite
      runs on both databases: every page is rendered on both by the Russian crawl
      (tests/web/test_russian_pages.py), every endpoint by the API sweeps. A test that
      reaches code written for one database (raw SQL, locks, the worker) is not one."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return
    skip_embedded = pytest.mark.skip(
        reason="runs on the embedded SQLite whatever DATABASE_URL says"
    )
    skip_repeat = pytest.mark.skip(reason="tests nothing database-specific: run on SQLite only")
    for item in items:
        if item.get_closest_marker("embedded_sqlite"):
            item.add_marker(skip_embedded)
        elif item.get_closest_marker("one_database"):
            item.add_marker(skip_repeat)


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    # PBKDF2's deliberate slowness is for attackers, not for the test suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Uploaded files and other local state go to a folder of the test's own.
    settings.DATA_DIR = tmp_path
    # Decisions see a catalogue changed by hand at once (in production, within a second).
    settings.RAPPORT_DECISIONS_CACHE_SECONDS = 0
    settings.RAPPORT_EXPORT_DIR = str(tmp_path / "exports")
    # A cache of the test's own (sign-in throttle counts), not the machine's data folder.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": str(tmp_path),
        }
    }
    # Tests run inside one database transaction; the writer thread has a connection of
    # its own. The group-commit path is tested against live servers (tests/ingest).
    settings.RAPPORT_INGEST_GROUP_COMMIT = False
    yield
    # A request's language stays active in its thread (Django activates one per request
    # and never deactivates it): a Russian answer must not make the next test's direct
    # service calls speak Russian.
    translation.deactivate()


class ApiClient:
    """Django's test client speaking JSON with a bearer token."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.token = token

    def request(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **extra
    ):
        headers = {}
        if self.token is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        headers.update(extra)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": "application/json"} if data is not None else {}
        handler = getattr(self.client, method.lower())
        if data is None:
            return handler(path, **headers)
        return handler(path, data=data, **kwargs, **headers)

    def get(self, path: str, **extra):
        return self.request("GET", path, **extra)

    def post(self, path: str, body: Any = None, **extra):
        return self.request("POST", path, body, **extra)

    def patch(self, path: str, body: Any = None, **extra):
        return self.request("PATCH", path, body, **extra)

    def delete(self, path: str, **extra):
        return self.request("DELETE", path, **extra)


@dataclass
class _Sample:
    merge: Any
    other: Any


@dataclass
class Tenant:
    """A workspace with a token per role and a few objects to act on."""

    created: NewWorkspace
    tokens: dict[str, str]
    extra_member: Membership

    @property
    def workspace(self):
        return self.created.workspace

    def api(self, role: str = Role.ADMIN) -> ApiClient:
        return ApiClient(self.tokens[role])

    def send(self, *items: dict) -> list[str]:
        """Events through the ingestion service and the downstream consumers (identity,
        accounts, consent), as the Tracking API and a worker would; their messageIds."""
        from django.utils import timezone

        from rapport.ingest.services import (
            Destination,
            events_dispatch,
            events_ingest,
            events_parse,
        )

        now = timezone.now()
        rows, refused = events_parse(list(items), received_at=now)
        destination = Destination(workspace_id=self.workspace.pk, source_id=self.created.source.pk)
        stored = events_ingest(destination=destination, rows=rows, refused=refused, received_at=now)
        events_dispatch(workspace_id=self.workspace.pk, message_ids=stored.message_ids)
        return stored.message_ids

    def path_objects(self) -> dict[str, str]:
        """A value of this workspace for every path parameter the API has."""
        from rapport.identity.models import DuplicateCandidate, ProfileMerge
        from rapport.ingest.models import Event, ImportJob
        from rapport.journeys.models import Journey
        from rapport.profiles.models import Account, AccountMerge, Profile

        sample = _Sample(
            merge=ProfileMerge.objects.filter(workspace=self.workspace).first(),
            other=Profile.objects.filter(
                workspace=self.workspace,
                merged_into__isnull=True,
                identifiers__value=f"{self.workspace.name}-u3",
            ).first(),
        )

        source = self.created.source
        name = self.workspace.name
        merge = AccountMerge.objects.filter(workspace=self.workspace).first()
        from rapport.predictions.models import ChurnDriver
        from rapport.profiles.models import SavedView
        from rapport.segments.models import LifecycleStage, Segment

        stages = LifecycleStage.objects.filter(workspace=self.workspace)
        from rapport.tenancy.models import ExchangeRate

        return {
            "rate_id": str(ExchangeRate.objects.filter(workspace=self.workspace).first().pk),
            "member_id": str(self.extra_member.pk),
            "token_id": str(ApiToken.objects.get(workspace=self.workspace, name="Admin token").pk),
            "source_id": str(source.pk),
            "key_id": str(source.write_keys.order_by("created_at").first().pk),
            "event_id": str(Event.objects.filter(workspace=self.workspace).first().pk),
            "import_id": str(ImportJob.objects.filter(workspace=self.workspace).first().pk),
            "profile_id": str(sample.merge.survivor_id),
            "other_profile_id": str(sample.other.pk),
            "merge_id": str(sample.merge.pk),
            "account_id": str(merge.survivor_id),
            "other_account_id": str(
                Account.objects.get(workspace=self.workspace, group_id=f"{name}-globex").pk
            ),
            "account_merge_id": str(merge.pk),
            "candidate_id": str(
                DuplicateCandidate.objects.filter(workspace=self.workspace).first().pk
            ),
            "segment_id": str(
                Segment.objects.filter(workspace=self.workspace, kind="static")
                .order_by("created_at")
                .first()
                .pk
            ),
            "stage_id": str(stages.get(key="onboarding").pk),
            "sub_stage_id": str(stages.get(key="first_week").pk),
            "driver_id": str(ChurnDriver.objects.get(workspace=self.workspace).pk),
            "invitation_id": str(
                Invitation.objects.filter(workspace=self.workspace)
                .order_by("created_at")
                .first()
                .pk
            ),
            **_channel_objects(self.workspace),
            "journey_id": str(
                Journey.objects.filter(workspace=self.workspace).order_by("created_at").first().pk
            ),
            **_audience_objects(self.workspace),
            **_decision_objects(self.workspace),
            **_sales_objects(self.workspace),
            "view_id": str(
                SavedView.objects.filter(workspace=self.workspace, shared=True)
                .order_by("created_at")
                .first()
                .pk
            ),
        }


def _audience_objects(workspace) -> dict[str, str]:
    from rapport.segments.models import AudienceRun

    run = AudienceRun.objects.filter(workspace=workspace).select_related("schedule").first()
    return {"schedule_id": str(run.schedule_id), "run_id": str(run.pk)}


def _channel_objects(workspace) -> dict[str, str]:
    from rapport.channels.models import Broadcast, Message, OutboxMail, Suppression, Template

    return {
        "mail_id": str(OutboxMail.objects.filter(workspace=workspace).first().pk),
        "suppression_id": str(Suppression.objects.filter(workspace=workspace).first().pk),
        "template_id": str(Template.objects.filter(workspace=workspace).first().pk),
        "broadcast_id": str(Broadcast.objects.filter(workspace=workspace).first().pk),
        "message_id": str(Message.objects.filter(workspace=workspace).first().pk),
    }


def _sales_objects(workspace) -> dict[str, str]:
    from rapport.sales.models import Deal, Note, Pipeline, Task

    deal = Deal.objects.filter(workspace=workspace).select_related("pipeline").first()
    return {
        # An empty pipeline (one with deals cannot be deleted), and the deal's own.
        "pipeline_id": str(
            Pipeline.objects.filter(workspace=workspace).exclude(pk=deal.pipeline_id).first().pk
        ),
        "deal_pipeline_id": str(deal.pipeline_id),
        "deal_id": str(deal.pk),
        "deal_stage_id": str(deal.pipeline.stages.exclude(pk=deal.stage_id).first().pk),
        "task_id": str(Task.objects.filter(workspace=workspace).first().pk),
        "note_id": str(Note.objects.filter(workspace=workspace).first().pk),
    }


def _decision_objects(workspace) -> dict[str, str]:
    from rapport.decisions.models import Decision

    decision = Decision.objects.filter(workspace=workspace).first()
    return {
        "decision_id": str(decision.pk),
        "action_key": decision.given.first().action.key,
    }


def tenant_create(name: str, *, sample_data: bool = True) -> Tenant:
    actor = Actor.system("tests")
    created = _workspace_create(name=name, actor=actor)
    tokens = {Role.ADMIN.value: created.token}
    for role in Role:
        if role != Role.ADMIN:
            _, raw = api_token_create(
                workspace=created.workspace, name=f"{role} token", role=role, actor=actor
            )
            tokens[role.value] = raw
    extra, _ = member_add(
        workspace=created.workspace,
        email=f"marketer@{name.lower().replace(' ', '-')}.example.com",
        role=Role.MARKETER,
        password="correct-horse-battery",
        actor=actor,
    )
    tenant = Tenant(created=created, tokens=tokens, extra_member=extra)
    invitation_create(
        workspace=created.workspace,
        email=f"invited@{name.lower().replace(' ', '-')}.example.com",
        role=Role.ANALYST,
        actor=actor,
        base_url="http://testserver",
    )
    if sample_data:
        _sample_data(tenant, actor)
        from rapport.profiles.services import saved_view_create

        saved_view_create(
            workspace=created.workspace,
            actor=actor,
            list_name="customers",
            name="Everyone on email",
            shared=True,
            columns=["email", "stage"],
            filters={"consent": "email"},
        )
    return tenant


def _sample_data(tenant: Tenant, actor: Actor) -> None:
    """An event with personal data, a refused one, three customers (two merged by hand),
    an account, and a finished import."""
    from datetime import date

    from rapport.tenancy.commerce import exchange_rates_upload

    exchange_rates_upload(
        workspace=tenant.workspace,
        actor=actor,
        rows=[{"currency": "JPY", "rate": "0.0067", "valid_from": date(2026, 1, 1)}],
    )
    import tempfile
    from pathlib import Path

    from rapport.identity.models import DuplicateCandidate
    from rapport.identity.services import profile_merge
    from rapport.ingest.models import Event
    from rapport.ingest.services import events_dispatch, import_job_create, import_run
    from rapport.profiles.models import Account, Profile
    from rapport.profiles.services import account_merge

    created, name = tenant.created, tenant.workspace.name
    tenant.send(
        {
            "type": "identify",
            "userId": f"{name}-u1",
            "traits": {"email": "jane.doe@example.com", "phone": "+44 20 7946 0958"},
        },
        {"type": "track", "userId": "u1", "messageId": "refused-1"},
        {"type": "identify", "userId": f"{name}-u2"},
        {"type": "identify", "userId": f"{name}-u3"},
        {
            "type": "group",
            "userId": f"{name}-u1",
            "groupId": f"{name}-acme",
            "traits": {"name": "Acme"},
        },
        {
            "type": "group",
            "userId": f"{name}-u3",
            "groupId": f"{name}-acme-2",
            "traits": {"name": "ACME Inc."},
        },
        {"type": "group", "userId": f"{name}-u3", "groupId": f"{name}-globex"},
    )
    accounts = {a.group_id: a for a in Account.objects.filter(workspace=created.workspace)}
    account_merge(
        survivor=accounts[f"{name}-acme"],
        merged=accounts[f"{name}-acme-2"],
        reason="same company",
        actor=actor,
    )
    first, second = (
        Profile.objects.get(workspace=created.workspace, identifiers__value=f"{name}-{u}")
        for u in ("u1", "u2")
    )
    profile_merge(survivor=first, merged=second, reason="same person", actor=actor)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "customers.csv"
        path.write_text(f"id,email\n{created.workspace.name}-c1,c1@example.com\n")
        job = import_job_create(
            workspace=created.workspace,
            kind="customers",
            path=path,
            filename=path.name,
            id_column="id",
            actor=actor,
        )
        import_run(import_job_id=job.pk, path=path)
    # The import's rows through the consumers, as a worker would.
    events_dispatch(
        workspace_id=created.workspace.pk,
        message_ids=list(
            Event.objects.filter(workspace=created.workspace, profile__isnull=True).values_list(
                "message_id", flat=True
            )
        ),
    )
    a, b = sorted(
        Profile.objects.filter(
            workspace=created.workspace, identifiers__value__in=[f"{name}-u3", f"{name}-c1"]
        ).values_list("pk", flat=True)
    )
    DuplicateCandidate.objects.create(
        workspace=created.workspace,
        kind="profile",
        record_a=a,
        record_b=b,
        probability=0.97,
        agreeing_fields=["last_name", "birthday"],
    )
    # A static segment with a member, and the lifecycle with a sub-stage.
    from rapport.segments import services as segments

    listed = segments.segment_create(
        workspace=created.workspace, name="Trade fair leads", kind="static", actor=actor
    )
    segments.segment_members_add(segment=listed, values=[f"{name}-u1"], actor=actor)
    # A scheduled audience export of it with a run and its file (written here: a real
    # run is an export, audited as one, which tests of exports count).
    from django.utils import timezone

    from rapport.segments import audiences
    from rapport.segments.models import AudienceRun

    schedule = audiences.audience_schedule_create(
        segment=listed, format="google", every="daily", hour=3, actor=actor
    )
    relative = f"{created.workspace.pk}/{schedule.pk}/sample.csv"
    (audiences.export_dir() / relative).parent.mkdir(parents=True, exist_ok=True)
    (audiences.export_dir() / relative).write_text("Email,Phone\n")
    AudienceRun.objects.create(
        workspace=created.workspace,
        schedule=schedule,
        status="done",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        file=relative,
        size_bytes=12,
    )
    # A template, a draft broadcast to the segment, and a message (queued, not sent).
    from rapport.channels import services as channels

    template = channels.template_create(
        workspace=created.workspace,
        name="Welcome",
        channel="email",
        subject="Welcome, {{ customer.first_name|default:'friend' }}",
        html="<p>Glad to have you.</p>",
        actor=actor,
    )
    channels.broadcast_create(
        workspace=created.workspace,
        name="Fair follow-up",
        channel="email",
        purpose="marketing",
        segment=listed,
        template=template,
        actor=actor,
    )
    # A running journey that sends the template (no customer in it yet).
    from rapport.journeys import services as journeys

    journey = journeys.journey_create(
        workspace=created.workspace,
        graph={
            "name": "Welcome month",
            "trigger": {"type": "manual"},
            "goal": {"event": "Order Completed", "within_days": 30},
            "start": "welcome",
            "steps": {
                "welcome": {
                    "type": "send",
                    "channel": "email",
                    "purpose": "marketing",
                    "template_id": str(template.pk),
                    "next": "wait",
                },
                "wait": {"type": "wait", "seconds": 86400, "next": None},
            },
        },
        actor=actor,
    )
    journeys.journey_start(journey=journey, actor=actor)
    channels.message_create(
        workspace=created.workspace,
        profile=first,
        channel="email",
        purpose="transactional",
        template=template,
        actor=actor,
    )
    channels.suppression_add(
        workspace_id=created.workspace.pk,
        channel="email",
        address=f"{name}-bounced@example.com",
        reason="bounce",
    )
    from rapport.channels.models import OutboxMail

    OutboxMail.objects.create(
        workspace=created.workspace,
        message_id="<kept@localhost>",
        from_email="shop@example.com",
        to=[f"{name}-kept@example.com"],
        subject="Welcome, friend",
        text="Glad to have you.",
        html="<p>Glad to have you.</p>",
        headers={"Message-ID": "<kept@localhost>"},
    )
    onboarding = next(
        s
        for s in segments.lifecycle_stages_ensure(workspace_id=created.workspace.pk)
        if s.key == "onboarding"
    )
    segments.lifecycle_sub_stage_create(
        parent=onboarding,
        key="first_week",
        name="First week",
        actor=actor,
        rule={"profile": "first_seen_at", "op": "within_last_days", "value": 7},
    )
    _sample_models(tenant)
    _sample_decisions(tenant, first)
    _sample_sales(tenant, first, actor)


def _sample_sales(tenant: Tenant, profile, actor: Actor) -> None:
    """Two pipelines (one empty), a deal on a customer, a task and a note."""
    from rapport.sales import services as sales

    workspace = tenant.workspace
    pipeline = sales.pipeline_create(workspace=workspace, actor=actor, name="Office plans")
    sales.pipeline_create(workspace=workspace, actor=actor, name="Wholesale", currency="EUR")
    deal = sales.deal_create(
        workspace=workspace,
        actor=actor,
        data={"name": "Acme office plan", "pipeline_id": pipeline.pk, "profile_id": profile.pk},
    )
    sales.task_create(
        workspace=workspace,
        actor=actor,
        data={"title": "Send the quote", "profile_id": profile.pk, "deal_id": deal.pk},
    )
    sales.note_create(
        workspace=workspace,
        actor=actor,
        data={"kind": "call", "body": "Asked for a quote", "profile_id": profile.pk},
    )


def _sample_decisions(tenant: Tenant, profile) -> None:
    """An action of the catalogue, and a decision that gave it to a customer."""
    from rapport.decisions import engine, learner
    from rapport.decisions.models import Action, ActionModel

    workspace = tenant.workspace
    action = Action.objects.create(
        workspace=workspace,
        key=f"{workspace.name.lower().replace(' ', '-')}-offer",
        name="Welcome offer",
        channels=["web", "email"],
        content={"web": {"title": "10% off your first bag"}},
    )
    mean, variance = learner.model_new(prior_propensity=action.prior_propensity)
    ActionModel.objects.create(
        action=action,
        workspace=workspace,
        dims=learner.DIMS,
        mean=learner.to_bytes(mean),
        variance=learner.to_bytes(variance),
    )
    engine.decision_make(workspace=workspace, profile=profile, channel="web")


def _sample_models(tenant: Tenant) -> None:
    """A CLV and a churn model version (as a training would register them), a churn
    driver, and the scores of one customer."""
    from django.utils import timezone

    from rapport.predictions.models import (
        ChurnDriver,
        ChurnScore,
        ClvScore,
        PredictionModel,
    )
    from rapport.profiles.models import Profile

    now = timezone.now()
    workspace = tenant.workspace
    clv = PredictionModel.objects.create(
        workspace=workspace,
        kind="clv",
        version=1,
        trained_at=now,
        config={"as_of": "2026-01-31", "time_unit": "week", "months": 12},
        params={
            "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
            "gamma_gamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
        },
    )
    churn = PredictionModel.objects.create(
        workspace=workspace,
        kind="churn",
        version=1,
        trained_at=now,
        config={"label": {"kind": "inactive", "inactive_days": 30}},
        metrics={"roc_auc": 0.8, "pr_auc": 0.5, "brier": 0.1, "lift_top_decile": 3.0},
        features=[{"name": "recency_days", "label": "Days since last activity", "importance": 1}],
    )
    ChurnDriver.objects.create(
        workspace=workspace,
        model=churn,
        rank=1,
        kind="trait_value",
        params={"trait": "plan", "value": "free"},
        description="plan is free",
        rule={"trait": "plan", "op": "eq", "value": "free"},
        support=40,
        churn_rate=0.3,
        churn_rate_others=0.1,
        relative_risk=3.0,
        ci_low=2.0,
        ci_high=4.5,
    )
    profile = Profile.objects.filter(workspace=workspace, merged_into__isnull=True).first()
    ChurnScore.objects.create(
        workspace=workspace,
        profile=profile,
        model=churn,
        probability=0.81,
        band="high",
        reasons=[
            {
                "feature": "recency_days",
                "label": "Days since last activity",
                "value": 45,
                "contribution": 1.2,
            }
        ],
        computed_at=now,
    )
    ClvScore.objects.create(
        workspace=workspace,
        profile=profile,
        model=clv,
        frequency=3,
        recency=20,
        age=30,
        p_alive=0.9,
        expected_purchases_30=0.4,
        expected_purchases_90=1.1,
        expected_purchases_365=3.5,
        expected_order_value=Decimal("42.0000"),
        clv=Decimal("120.5000"),
        currency="USD",
        computed_at=now,
    )


@pytest.fixture
def mailbox(settings):
    """Rapport's mail goes to a real SMTP server (aiosmtpd) for the test."""
    from tests.smtp_server import smtp_server

    with smtp_server() as box:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = box.host
        settings.EMAIL_PORT = box.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        yield box


@pytest.fixture
def tenant(db) -> Tenant:
    return tenant_create("Alpha")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return tenant_create("Beta")


@pytest.fixture
def admin_api(tenant) -> ApiClient:
    return tenant.api(Role.ADMIN)


@pytest.fixture
def money_shop(db) -> Tenant:
    """A workspace reporting in pounds, euros at 0.5 from 2020, no rate for dollars
    (tests/money_fixtures.py, with the `order` calls the money tests send it)."""
    from tests.money_fixtures import money_shop_create

    return money_shop_create()
