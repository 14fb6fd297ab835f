from django_tasks import task

from rapport.identity import services
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor


@task()
def duplicates_refresh(*, workspace_id: str, kind: str, actor_label: str = "") -> dict:
    workspace = Workspace.objects.get(pk=workspace_id)
    return services.duplicate_candidates_refresh(
        workspace=workspace, kind=kind, actor=Actor.system(actor_label or "duplicate detection")
    )
