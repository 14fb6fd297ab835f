from django_tasks import task

from rapport.channels import services


@task()
def message_send(*, message_id: str) -> str:
    return services.message_send(message_id=message_id)


@task()
def messages_send(*, message_ids: list[str]) -> dict:
    return services.messages_send(message_ids=message_ids)


@task()
def broadcast_plan(*, broadcast_id: str) -> dict:
    return services.broadcast_plan(broadcast_id=broadcast_id)
