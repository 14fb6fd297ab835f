import logging
import smtplib

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import task

from rapport.sales import services
from rapport.sales.models import Notification

logger = logging.getLogger(__name__)


@task()
def notification_email(*, notification_id: str) -> bool:
    """Email a member what Rapport notified them of (a mention, a task, a reminder),
    in their language. A mail server that refuses is logged: the notification stays in
    Rapport either way."""
    notification = (
        Notification.objects.filter(pk=notification_id)
        .select_related("member__user", "workspace")
        .first()
    )
    if notification is None:
        return False
    user = notification.member.user
    link = f"{settings.RAPPORT_PUBLIC_URL}{notification.link}" if notification.link else ""
    with translation.override(user.language or settings.LANGUAGE_CODE):
        subject = f"[{notification.workspace.name}] {notification.text}"[:200]
        body = "\n\n".join(
            part
            for part in (
                notification.text,
                link,
                _("You are receiving this as a member of %(workspace)s on Rapport.")
                % {"workspace": notification.workspace.name},
            )
            if part
        )
    try:
        send_mail(subject, body, None, [user.email], fail_silently=False)
    except (smtplib.SMTPException, OSError):
        logger.warning("notification %s could not be emailed", notification_id, exc_info=True)
        return False
    return True


@task()
def tasks_remind(*, workspace_id: str) -> int:
    """Notify assignees of tasks whose reminder time has come."""
    return services.tasks_remind(workspace_id=workspace_id)


@task()
def lead_model_train(*, workspace_id: str, actor_label: str = "sales.leads") -> dict:
    """Train the lead score and score the leads; too few won or lost deals is an answer,
    not a failure (the next run tries again)."""
    from rapport.core.errors import ConflictError
    from rapport.tenancy.models import Workspace
    from rapport.tenancy.services import Actor

    workspace = Workspace.objects.get(pk=workspace_id)
    try:
        model = services.lead_model_train(workspace=workspace, actor=Actor.system(actor_label))
    except ConflictError as error:
        return {"trained": False, "reason": error.message}
    return {"trained": True, "version": model.version, **model.metrics}
