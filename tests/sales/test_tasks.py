from datetime import UTC, date, datetime, timedelta

import time_machine

from rapport.sales import selectors, services, tasks
from rapport.sales.models import Notification, Task
from tests.sales.conftest import ACTOR, actor_of

# 23:30 on 4 December in UTC is already 5 December in Tokyo and still the 4th in
# Los Angeles (15:30).
NOW = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)


def views_of(team, zone_name, member):
    zone = selectors.zone_of(workspace=team.workspace, user=None, override=zone_name)
    return {
        view: {
            t.title
            for t in selectors.task_list(
                workspace=team.workspace, view=view, assignee_id=member.pk, zone=zone, now=NOW
            )
        }
        for view in ("overdue", "today", "upcoming")
    }


def test_a_task_due_on_a_day_is_overdue_once_that_day_has_passed_where_its_reader_is(team):
    with time_machine.travel(NOW, tick=False):
        services.task_create(
            workspace=team.workspace,
            actor=actor_of(team.ann),
            data={
                "title": "Send the quote",
                "due_at": selectors.all_day_due(date(2026, 12, 4)),
                "all_day": True,
            },
        )
        services.task_create(
            workspace=team.workspace,
            actor=actor_of(team.ann),
            data={"title": "Call at nine", "due_at": NOW - timedelta(minutes=30)},
        )
        services.task_create(
            workspace=team.workspace,
            actor=actor_of(team.ann),
            data={"title": "Next week", "due_at": NOW + timedelta(days=7)},
        )
    tokyo = views_of(team, "Asia/Tokyo", team.ann)
    assert tokyo["overdue"] == {"Send the quote", "Call at nine"}
    assert tokyo["upcoming"] == {"Next week"}
    la = views_of(team, "America/Los_Angeles", team.ann)
    assert la["overdue"] == {"Call at nine"}
    assert la["today"] == {"Send the quote"}
    task = Task.objects.get(title="Send the quote")
    tokyo_zone = selectors.zone_of(workspace=team.workspace, user=None, override="Asia/Tokyo")
    la_zone = selectors.zone_of(workspace=team.workspace, user=None, override="America/Los_Angeles")
    assert selectors.task_is_overdue(task, zone=tokyo_zone, now=NOW)
    assert not selectors.task_is_overdue(task, zone=la_zone, now=NOW)


def test_the_api_reads_overdue_in_the_signed_in_persons_zone(team):
    user = team.ann.user
    user.time_zone = "Asia/Tokyo"
    user.save()
    services.task_create(
        workspace=team.workspace,
        actor=actor_of(team.ann),
        data={
            "title": "Yesterday's call",
            "due_at": selectors.all_day_due(date(2026, 12, 4)),
            "all_day": True,
        },
    )
    from django.test import Client

    client = Client()
    client.force_login(user)
    with time_machine.travel(NOW, tick=False):
        mine = client.get("/api/v1/tasks", {"view": "overdue", "assignee": "me"}).json()
    assert [t["title"] for t in mine["items"]] == ["Yesterday's call"]
    assert mine["items"][0]["overdue"] is True and mine["items"][0]["due_date"] == "2026-12-04"


def test_a_task_given_to_someone_else_notifies_them_and_emails_them(team, mailbox):
    task = services.task_create(
        workspace=team.workspace,
        actor=actor_of(team.ann),
        data={"title": "Visit Acme", "assignee_id": team.bob.pk, "profile_id": team.customer.pk},
    )
    assert task.assignee == team.bob
    notice = Notification.objects.get(member=team.bob)
    assert "Visit Acme" in notice.text and notice.task == task
    assert not Notification.objects.filter(member=team.ann).exists()
    assert tasks.notification_email.call(notification_id=str(notice.pk)) is True
    assert mailbox.messages[-1]["To"] == "bob@team.example.com"
    assert "Visit Acme" in mailbox.messages[-1]["Subject"]


def test_completing_twice_is_one_completion_and_reopening_clears_it(team):
    task = services.task_create(workspace=team.workspace, actor=ACTOR, data={"title": "Follow up"})
    done = services.task_complete(task=task, actor=ACTOR)
    first = done.done_at
    assert services.task_complete(task=task, actor=ACTOR).done_at == first
    assert services.task_complete(task=task, actor=ACTOR, done=False).done_at is None


def test_a_reminder_is_sent_once_however_often_the_job_runs(team):
    services.task_create(
        workspace=team.workspace,
        actor=actor_of(team.ann),
        data={"title": "Renewal", "remind_at": NOW - timedelta(minutes=1)},
    )
    assert services.tasks_remind(workspace_id=team.workspace.pk, now=NOW) == 1
    assert services.tasks_remind(workspace_id=team.workspace.pk, now=NOW) == 0
    assert Notification.objects.filter(member=team.ann, kind="reminder").count() == 1


def test_the_api_refuses_a_due_time_and_a_due_day_together_and_a_number_for_a_time(team):
    api = team.api("admin")
    both = api.post(
        "/api/v1/tasks", {"title": "x", "due_at": "2027-01-01T09:00:00Z", "due_date": "2027-01-01"}
    )
    assert both.status_code == 422 and "due_date" in both.json()["error"]["message"]
    number = api.post("/api/v1/tasks", {"title": "x", "due_at": 1767225600})
    assert number.status_code == 422 and "due_at" in number.json()["error"]["message"]
    assert not Task.objects.filter(title="x").exists()
