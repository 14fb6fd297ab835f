from django.http import HttpRequest

from rapport.tenancy.auth import principal_from_session
from rapport.tenancy.selectors import workspace_list_for_user
from rapport.web.navigation import navigation_for


def workspace(request: HttpRequest) -> dict:
    """The signed-in person's current workspace and role, for the page frame."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    principal = getattr(request, "principal", None) or principal_from_session(request)
    return {
        "principal": principal,
        "perms_sources_read": bool(principal and principal.has_perm("sources.read")),
        "perms_events_read": bool(principal and principal.has_perm("events.read")),
        "perms_quarantine_read": bool(principal and principal.has_perm("events.quarantine.read")),
        "perms_imports_manage": bool(principal and principal.has_perm("imports.manage")),
        "perms_pipeline_read": bool(principal and principal.has_perm("pipeline.read")),
        "perms_members_manage": bool(principal and principal.has_perm("members.manage")),
        "perms_tokens_manage": bool(principal and principal.has_perm("tokens.manage")),
        "workspaces": list(workspace_list_for_user(user=request.user)),
        "navigation": navigation_for(principal, _url_name(request)) if principal else [],
    }


def _url_name(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    return match.url_name if match else None
