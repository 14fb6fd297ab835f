from django_tasks import task

from rapport.channels import services

# A single message (a receipt, a password reset) goes before other queued work; a
# broadcast's batches take their turn with the pipeline's tasks, so a large broadcast
# does not hold back incoming events.
SINGLE_MESSAGE_PRIORITY = 50


@task(priority=SINGLE_MESSAGE_PRIORITY)
def message_send(*, message_id: str) -> str:
    return services.message_send(message_id=message_id)


@task()
def messages_send(*, message_ids: list[str]) -> dict:
    return services.messages_send(message_ids=message_ids)


@task()
def broadcast_plan(*, broadcast_id: str) -> dict:
    return services.broadcast_plan(broadcast_id=broadcast_id)
