import uuid

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from rapport.tenancy import selectors
from rapport.tenancy.auth import SESSION_WORKSPACE_KEY, principal_from_session


class RapportLoginView(LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True


class RapportLogoutView(LogoutView):
    pass


@login_required
def home(request: HttpRequest) -> HttpResponse:
    principal = principal_from_session(request)
    if principal is None:
        return render(request, "web/no_workspace.html", status=403)
    request.principal = principal
    workspace = principal.workspace
    context = {
        "members": selectors.member_list(workspace=workspace),
        "sources": selectors.source_list(workspace=workspace)
        if principal.has_perm("sources.read")
        else None,
        "recent_audit": selectors.audit_log_list(workspace=workspace)[:10]
        if principal.has_perm("audit.read")
        else None,
    }
    return render(request, "web/home.html", context)


@login_required
@require_POST
def workspace_switch(request: HttpRequest) -> HttpResponse:
    workspace_id = request.POST.get("workspace", "")
    allowed = selectors.workspace_list_for_user(user=request.user)
    workspace = allowed.filter(pk=workspace_id).first() if _is_uuid(workspace_id) else None
    if workspace is not None:
        request.session[SESSION_WORKSPACE_KEY] = str(workspace.pk)
    return redirect("web:home")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
