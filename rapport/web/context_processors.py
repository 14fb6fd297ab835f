from django.http import HttpRequest

from rapport.tenancy.auth import principal_from_session
from rapport.tenancy.selectors import workspace_list_for_user


def workspace(request: HttpRequest) -> dict:
    """The signed-in person's current workspace and role, for the page frame."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    principal = getattr(request, "principal", None) or principal_from_session(request)
    return {
        "principal": principal,
        "perms_sources_read": bool(principal and principal.has_perm("sources.read")),
        "perms_events_read": bool(principal and principal.has_perm("events.read")),
        "workspaces": list(workspace_list_for_user(user=request.user)),
    }
