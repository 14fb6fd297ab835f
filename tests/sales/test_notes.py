import pytest

from rapport.core.errors import InvalidInputError
from rapport.profiles.selectors import profile_timeline
from rapport.sales import services, tasks
from rapport.sales.models import Note, Notification
from tests.sales.conftest import actor_of


def test_a_note_keeps_its_formatting_and_loses_scripts_and_handlers(team):
    note = services.note_create(
        workspace=team.workspace,
        actor=actor_of(team.ann),
        data={
            "body": '<p onclick="steal()">Wants <b>40</b> seats<script>alert(1)</script>'
            '<a href="javascript:alert(1)">x</a><a href="https://acme.example">site</a></p>',
            "profile_id": team.customer.pk,
        },
    )
    assert "<b>40</b>" in note.body
    assert (
        "script" not in note.body and "onclick" not in note.body and "javascript" not in note.body
    )
    assert (
        'href="https://acme.example"' in note.body
        and 'rel="noopener noreferrer nofollow"' in note.body
    )


def test_an_empty_or_unattached_note_is_refused(team):
    with pytest.raises(InvalidInputError) as caught:
        services.note_create(
            workspace=team.workspace,
            actor=actor_of(team.ann),
            data={"body": "<p> </p>", "profile_id": team.customer.pk},
        )
    assert caught.value.field == "body"
    with pytest.raises(InvalidInputError) as caught:
        services.note_create(
            workspace=team.workspace, actor=actor_of(team.ann), data={"body": "hello"}
        )
    assert caught.value.field == "profile_id"
    assert not Note.objects.exists()


def test_a_mention_notifies_the_colleague_in_rapport_and_by_email(team, mailbox):
    note = services.note_create(
        workspace=team.workspace,
        actor=actor_of(team.ann),
        data={
            "kind": "call",
            "body": "Bob, can you send the contract?",
            "profile_id": team.customer.pk,
            "mentions": [team.bob.pk, team.ann.pk],
        },
    )
    assert set(note.mentions.all()) == {team.ann, team.bob}
    (notice,) = Notification.objects.filter(kind="mention")  # not the author herself
    assert notice.member == team.bob and notice.link == f"/customers/{team.customer.pk}/"
    tasks.notification_email.call(notification_id=str(notice.pk))
    message = mailbox.messages[-1]
    assert message["To"] == "bob@team.example.com"
    assert "ann@team.example.com mentioned you" in message["Subject"]


def test_a_logged_call_shows_on_the_customers_timeline(team):
    services.note_create(
        workspace=team.workspace,
        actor=actor_of(team.ann),
        data={"kind": "call", "body": "Asked for a discount", "profile_id": team.customer.pk},
    )
    page = profile_timeline(workspace=team.workspace, profile_id=team.customer.pk)
    entry = next(e for e in page.items if e.channel == "sales")
    assert (
        entry.data["sales"]["what"] == "call"
        and entry.data["sales"]["by"] == "ann@team.example.com"
    )


def test_mentioning_a_member_of_another_workspace_is_refused_and_writes_nothing(team, other_tenant):
    theirs = other_tenant.extra_member
    response = team.api("admin").post(
        "/api/v1/notes",
        {"body": "hi", "profile_id": str(team.customer.pk), "mentions": [str(theirs.pk)]},
    )
    assert response.status_code == 422 and "mentions.0" in response.json()["error"]["message"]
    assert not Note.objects.filter(workspace=team.workspace).exists()
