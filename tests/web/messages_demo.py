"""A template and a sent broadcast in a demo workspace, so that the page crawls
(Russian, 390 px) reach the messages' detail pages. Sent through the local outbox (no
mail server), by the tasks a worker runs."""

from rapport.channels import services
from rapport.segments import services as segments
from rapport.segments.models import SegmentMembership
from rapport.tenancy.services import Actor

ACTOR = Actor.system("тесты")  # data, as a Russian team would name it


def messages_demo(workspace) -> None:
    from tests.channels.test_api import _run_tasks

    members = list(
        SegmentMembership.objects.filter(segment__workspace=workspace, left_at__isnull=True)
        .values_list("profile__identifiers__value", flat=True)
        .filter(profile__identifiers__kind="user_id")
        .distinct()[:6]
    )
    listed = segments.segment_create(
        workspace=workspace, name="Рассылка", kind="static", actor=ACTOR
    )
    segments.segment_members_add(segment=listed, values=members, actor=ACTOR)
    template = services.template_create(
        workspace=workspace,
        name="Приветствие",
        channel="email",
        subject="Здравствуйте, {{ customer.first_name|default:'друг' }}",
        html="<p>Здравствуйте, {{ customer.first_name|default:'друг' }}</p>",
        actor=ACTOR,
    )
    broadcast = services.broadcast_create(
        workspace=workspace,
        name="Весенняя рассылка",
        channel="email",
        purpose="marketing",
        segment=listed,
        template=template,
        actor=ACTOR,
    )
    services.broadcast_send(broadcast=broadcast, actor=ACTOR, holdout=0.2)
    _run_tasks()
