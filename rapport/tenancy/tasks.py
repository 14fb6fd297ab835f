from django_tasks import task

from rapport.tenancy import services
from rapport.tenancy.models import Workspace


@task()
def audit_log_prune(*, workspace_id: str, older_than_days: int) -> int:
    workspace = Workspace.objects.get(pk=workspace_id)
    return services.audit_log_prune(workspace=workspace, older_than_days=older_than_days)
