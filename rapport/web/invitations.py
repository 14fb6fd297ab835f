"""Taking up an invitation: the link mailed to a person. They sign in with the invited
address (or are signed in already), or create their login for it, and only then
become a member."""

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from rapport.core.errors import RapportError
from rapport.tenancy import selectors, services
from rapport.tenancy.auth import SESSION_WORKSPACE_KEY
from rapport.tenancy.client_address import client_address
from rapport.tenancy.models import Invitation, User
from rapport.tenancy.permissions import Role
from rapport.tenancy.throttle import sign_in_attempt_limited
from rapport.web.pages import error_text

TEMPLATE = "web/invitation.html"


def _closed(request: HttpRequest) -> HttpResponse:
    return render(request, TEMPLATE, {"closed": True}, status=410)


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, secret: str) -> HttpResponse:
    invitation = selectors.invitation_get_by_secret(raw=secret)
    if invitation is None or invitation.status != Invitation.Status.PENDING:
        return _closed(request)
    user = request.user if request.user.is_authenticated else None
    has_login = user is not None or User.objects.filter(email__iexact=invitation.email).exists()
    context = {
        "invitation": invitation,
        "role": Role(invitation.role).label,
        "signed_in_as": user,
        "wrong_person": user is not None and user.email.lower() != invitation.email.lower(),
        "has_login": has_login,
        "form": {},
    }
    if request.method == "GET" or context["wrong_person"]:
        return render(request, TEMPLATE, context, status=403 if context["wrong_person"] else 200)

    ip_address = client_address(request)
    try:
        if user is not None:
            services.invitation_accept(raw=secret, user=user, ip_address=ip_address)
        elif has_login:
            if sign_in_attempt_limited(request, account=invitation.email):
                context["error"] = _(
                    "Too many attempts to sign in. Wait a few minutes and try again."
                )
                return render(request, TEMPLATE, context, status=429)
            user = authenticate(
                request, username=invitation.email, password=request.POST.get("password", "")
            )
            if user is None:
                context["error"] = _("That password does not match the login of this address.")
                return render(request, TEMPLATE, context, status=200)
            services.invitation_accept(raw=secret, user=user, ip_address=ip_address)
            login(request, user)
        else:
            password = request.POST.get("password", "")
            if password != request.POST.get("password_again", ""):
                context["error"] = _("The two passwords differ.")
                context["form"] = {"name": request.POST.get("name", "")}
                return render(request, TEMPLATE, context, status=422)
            user, _membership = services.invitation_accept_new_user(
                raw=secret,
                password=password,
                name=request.POST.get("name", ""),
                ip_address=ip_address,
            )
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    except services.InvitationClosedError:
        return _closed(request)
    except RapportError as error:
        context["error"] = error_text(error)
        context["form"] = {"name": request.POST.get("name", "")}
        return render(request, TEMPLATE, context, status=error.status)
    request.session[SESSION_WORKSPACE_KEY] = str(invitation.workspace_id)
    return redirect("web:home")
