"""The Django admin for operators: every workspace's rows, so its door is guarded like
no other. Signing in takes the password and a TOTP code from a device the operator
enrolled (`rapport user totp-enrol`, django-otp); without one nobody gets in. Attempts
count against the same throttle as the web sign-in. `RAPPORT_ADMIN_ENABLED=false`
takes the admin off entirely (rapport/urls.py)."""

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from rapport.tenancy.throttle import sign_in_attempt_limited


class AdminSignInForm(OTPAdminAuthenticationForm):
    """Password and code in one step: with a single device there is nothing to choose
    (django-otp otherwise asks for the device first and the code on a second round)."""

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user, confirmed=True, for_verify=True))
            if len(devices) == 1:
                device = devices[0]
        return device


class RapportAdminSite(OTPAdminSite):
    site_header = "Rapport"
    site_title = "Rapport admin"
    login_form = AdminSignInForm

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if request.method == "POST" and sign_in_attempt_limited(
            request, account=request.POST.get("username", "")
        ):
            return TemplateResponse(
                request,
                "admin/rapport_throttled.html",
                {
                    **self.each_context(request),
                    "title": _("Log in"),
                    "message": _("Too many attempts to sign in. Wait a few minutes and try again."),
                },
                status=429,
            )
        return super().login(request, extra_context)
