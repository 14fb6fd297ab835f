import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rapport.tenancy import selectors, services
from rapport.tenancy.auth import SESSION_WORKSPACE_KEY
from rapport.tenancy.throttle import sign_in_attempt_limited
from rapport.web.home_cards import home_cards_for
from rapport.web.pages import workspace_page


class RapportLoginView(LoginView):
    """Django's sign-in, throttled per address and per account name together with
    every other door that takes a password (rapport/tenancy/throttle.py)."""

    template_name = "web/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if sign_in_attempt_limited(request, account=request.POST.get("username", "")):
            form = self.get_form()
            form.errors.clear()
            context = self.get_context_data(
                form=form,
                throttled=_("Too many attempts to sign in. Wait a few minutes and try again."),
            )
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)


class RapportLogoutView(LogoutView):
    pass


@workspace_page()
def home(request: HttpRequest) -> HttpResponse:
    """What needs the person now: the cards registered in `home_cards`, each shown
    only to those allowed to see it and only when it has something to say."""
    return render(request, "web/home.html", {"cards": home_cards_for(request.principal)})


@login_required
@require_POST
def workspace_switch(request: HttpRequest) -> HttpResponse:
    workspace_id = request.POST.get("workspace", "")
    allowed = selectors.workspace_list_for_user(user=request.user)
    workspace = allowed.filter(pk=workspace_id).first() if _is_uuid(workspace_id) else None
    if workspace is not None:
        request.session[SESSION_WORKSPACE_KEY] = str(workspace.pk)
        # Kept with the account: the next sign-in opens it again.
        services.user_workspace_choose(user=request.user, workspace=workspace)
    return redirect("web:home")


@login_required
@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The person's own choice of language for the UI ("" = the browser's)."""
    language = request.POST.get("language", "")
    if language in {code for code, _name in settings.LANGUAGES} | {""}:
        request.user.language = language
        request.user.save(update_fields=["language"])
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/"
    return redirect(next_url)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
