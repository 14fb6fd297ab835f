"""Scheduled audience exports (rapport/segments/audiences.py): each run writes a hashed
file honouring consent as it stands then; the API creates, lists, deletes and downloads
them, only for people who may export, only in their own workspace."""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rapport.profiles.services import consent_set
from rapport.segments import audiences, services
from rapport.segments.models import AudienceRun, AudienceSchedule
from rapport.tenancy.models import AuditLogEntry
from rapport.tenancy.services import Actor
from tests.conftest import tenant_create
from tests.segments.conftest import profile_of

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def listed(shop):
    for user_id in ("ann", "ben"):
        shop.send(
            {"type": "identify", "userId": user_id, "traits": {"email": f"{user_id}@example.com"}}
        )
        consent_set(
            profile=profile_of(shop, user_id),
            channel="email",
            purpose="marketing",
            status="granted",
            actor=ACTOR,
        )
    segment = services.segment_create(
        workspace=shop.workspace, name="Fans", kind="static", actor=ACTOR
    )
    services.segment_members_add(segment=segment, values=["ann", "ben"], actor=ACTOR)
    return segment


def _lines(run) -> list[str]:
    return Path(audiences.audience_run_path(run)).read_text().splitlines()


def test_next_run_is_the_hour_after_now_and_a_week_on_for_weekly():
    at = datetime(2026, 12, 4, 10, 30, tzinfo=UTC)
    assert audiences.next_run(every="daily", hour=3, after=at) == datetime(
        2026, 12, 5, 3, tzinfo=UTC
    )
    assert audiences.next_run(every="daily", hour=11, after=at) == datetime(
        2026, 12, 4, 11, tzinfo=UTC
    )
    assert audiences.next_run(every="weekly", hour=11, after=at) == datetime(
        2026, 12, 10, 11, tzinfo=UTC
    )


def test_each_run_honours_consent_at_run_time(shop, listed):
    schedule = audiences.audience_schedule_create(
        segment=listed, format="google", every="daily", hour=3, actor=ACTOR
    )
    first = audiences.audience_schedule_run(schedule=schedule)
    assert first.status == "done"
    assert _lines(first) == [
        "Email,Phone",
        f"{sha('ann@example.com')},",
        f"{sha('ben@example.com')},",
    ]
    assert first.counts == {"members": 2, "exported": 2, "no_consent": 0, "no_identifier": 0}

    # Ben withdraws: the next file leaves him out; the first stays as it was.
    consent_set(
        profile=profile_of(shop, "ben"),
        channel="email",
        purpose="marketing",
        status="denied",
        actor=ACTOR,
    )
    second = audiences.audience_schedule_run(schedule=schedule)
    assert _lines(second) == ["Email,Phone", f"{sha('ann@example.com')},"]
    assert second.counts["no_consent"] == 1
    schedule.refresh_from_db()
    assert schedule.last_counts == second.counts and schedule.last_run_at
    assert (
        AuditLogEntry.objects.filter(
            workspace=shop.workspace, action="segment.export", actor_label="audience schedule"
        ).count()
        == 2
    )


def test_due_schedules_run_once_and_old_files_go(shop, listed, settings):
    settings.RAPPORT_AUDIENCE_RUNS_KEPT = 2
    schedule = audiences.audience_schedule_create(
        segment=listed, format="meta", every="weekly", hour=3, actor=ACTOR
    )
    assert audiences.audience_schedules_run_due(workspace_id=shop.workspace.pk) == 0
    later = schedule.next_run_at + timedelta(minutes=1)
    assert audiences.audience_schedules_run_due(workspace_id=shop.workspace.pk, now=later) == 1
    # Claimed: the same moment again runs nothing.
    assert audiences.audience_schedules_run_due(workspace_id=shop.workspace.pk, now=later) == 0
    schedule.refresh_from_db()
    assert schedule.next_run_at > later + timedelta(days=6)
    [run] = AudienceRun.objects.filter(schedule=schedule)
    assert _lines(run)[0] == "EMAIL,PHONE"
    for _ in range(2):
        audiences.audience_schedule_run(schedule=schedule)
    runs = list(audiences.audience_runs(schedule=schedule))
    assert [bool(r.file) for r in runs] == [True, True, False]
    assert audiences.audience_run_path(runs[2]) is None
    assert len(list(Path(settings.RAPPORT_EXPORT_DIR).rglob("*.csv"))) == 2


def test_the_periodic_job_is_registered(shop):
    from rapport.core.schedule import schedule_jobs

    assert "segments.audiences" in {job.name for job in schedule_jobs()}


def test_api_create_list_download_delete(shop, listed, settings):
    api = shop.api()
    base = f"/api/v1/segments/{listed.pk}/audience-schedules"
    created = api.post(base, {"format": "google", "every": "daily", "hour": 5})
    assert created.status_code == 201, created.content
    schedule_id = created.json()["id"]
    assert (
        created.json()["next_run_at"].endswith("05:00:00Z")
        or "T05:00:00" in (created.json()["next_run_at"])
    )
    assert [s["id"] for s in api.get(base).json()] == [schedule_id]

    run = audiences.audience_schedule_run(schedule=AudienceSchedule.objects.get(pk=schedule_id))
    runs = api.get(f"{base}/{schedule_id}/runs").json()
    assert runs[0]["id"] == str(run.pk) and runs[0]["downloadable"]
    assert runs[0]["counts"]["exported"] == 2
    download = api.get(f"{base}/{schedule_id}/runs/{run.pk}/download")
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    body = b"".join(download.streaming_content).decode()
    assert sha("ann@example.com") in body and "ann@example.com" not in body

    assert api.delete(f"{base}/{schedule_id}").status_code == 204
    assert api.get(base).json() == []
    assert not list(Path(settings.RAPPORT_EXPORT_DIR).rglob("*.csv"))
    gone = api.get(f"{base}/{schedule_id}/runs/{run.pk}/download")
    assert gone.status_code == 404


@pytest.mark.parametrize(
    "body,field",
    [
        ({"format": "csv"}, "format"),
        ({"format": "google", "every": "hourly"}, "every"),
        ({"format": "google", "hour": 24}, "hour"),
        ({"format": "google", "hour": "noon"}, "hour"),
        ({"format": "google", "surprise": 1}, "surprise"),
        ({}, "format"),
    ],
)
def test_api_refuses_bad_input_naming_the_field(shop, listed, body, field):
    answer = shop.api().post(f"/api/v1/segments/{listed.pk}/audience-schedules", body)
    assert answer.status_code == 422, answer.content
    assert field in str(answer.json())
    assert not AudienceSchedule.objects.exists()


def test_other_workspaces_and_roles_see_nothing(shop, listed):
    schedule = audiences.audience_schedule_create(
        segment=listed, format="google", every="daily", hour=3, actor=ACTOR
    )
    run = audiences.audience_schedule_run(schedule=schedule)
    base = f"/api/v1/segments/{listed.pk}/audience-schedules"
    other = tenant_create("Elsewhere", sample_data=False)
    for path in (
        base,
        f"{base}/{schedule.pk}/runs",
        f"{base}/{schedule.pk}/runs/{run.pk}/download",
    ):
        assert other.api().get(path).status_code == 404, path
    assert other.api().delete(f"{base}/{schedule.pk}").status_code == 404
    assert other.api().post(base, {"format": "google"}).status_code == 404
    # An analyst may read segments, not export them.
    analyst = shop.api("analyst")
    assert analyst.get(base).status_code == 403
    assert analyst.get(f"{base}/{schedule.pk}/runs/{run.pk}/download").status_code == 403
    # A run of another schedule of the same segment is not this one's.
    second = audiences.audience_schedule_create(
        segment=listed, format="meta", every="daily", hour=3, actor=ACTOR
    )
    assert shop.api().get(f"{base}/{second.pk}/runs/{run.pk}/download").status_code == 404
    assert AudienceSchedule.objects.filter(pk=schedule.pk).exists()
