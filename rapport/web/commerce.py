"""Settings → Commerce: what a purchase is, the reporting currency, and the exchange
rates (uploaded as CSV) that convert other currencies into it."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from rapport.core.errors import InvalidInputError, PermissionDeniedError, RapportError
from rapport.core.money import currencies
from rapport.tenancy import commerce
from rapport.web.pages import error_text, uuid_or_none, workspace_page

MAX_UPLOAD_BYTES = commerce.MAX_CSV_BYTES


def _page(request: HttpRequest, *, error: RapportError | None = None, saved: str = ""):
    workspace = request.principal.workspace
    settings = commerce.commerce_settings_get(workspace=workspace)
    rates = list(commerce.exchange_rate_list(workspace=workspace)[:500])
    context = {
        "settings": settings,
        "rates": [r for r in rates if r.reporting_currency == settings.reporting_currency],
        "other_rates": sum(r.reporting_currency != settings.reporting_currency for r in rates),
        "currencies": sorted(currencies()),
        "can_manage": request.principal.has_perm("workspace.manage"),
        "error": error_text(error) if error else None,
        "saved": saved or request.GET.get("saved", ""),
        "form": request.POST if error else {},
    }
    return render(
        request, "web/settings/commerce.html", context, status=error.status if error else 200
    )


@workspace_page("workspace.read")
@require_http_methods(["GET", "POST"])
def commerce_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    if not request.principal.has_perm("workspace.manage"):
        return _page(request, error=_forbidden())
    post = request.POST
    try:
        commerce.commerce_settings_update(
            workspace=request.principal.workspace,
            actor=request.principal.actor,
            purchase_event=post.get("purchase_event", ""),
            value_properties=post.get("value_properties", "").replace("\n", ",").split(","),
            reporting_currency=post.get("reporting_currency", ""),
            key_event=post.get("key_event"),
        )
    except RapportError as error:
        return _page(request, error=error)
    return redirect(reverse("web:commerce_settings") + "?saved=settings")


def _forbidden() -> RapportError:
    return PermissionDeniedError(_("Your role may read these settings, not change them."))


@workspace_page("workspace.manage")
@require_POST
def exchange_rates_upload(request: HttpRequest) -> HttpResponse:
    """A CSV of rates: all of it, or (naming the first bad line and column) none."""
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise InvalidInputError(gettext("choose a CSV file"), field="file")
        if upload.size > MAX_UPLOAD_BYTES:
            raise InvalidInputError(gettext("the file is larger than 2 MB"), field="file")
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(gettext("the CSV is not UTF-8"), field="file") from None
        commerce.exchange_rates_upload(
            workspace=request.principal.workspace,
            actor=request.principal.actor,
            rows=commerce.exchange_rates_csv_parse(text),
        )
    except RapportError as error:
        return _page(request, error=error)
    return redirect(reverse("web:commerce_settings") + "?saved=rates#rates")


@workspace_page("workspace.manage")
@require_POST
def exchange_rate_delete(request: HttpRequest, rate_id) -> HttpResponse:
    try:
        commerce.exchange_rate_delete(
            workspace=request.principal.workspace,
            rate_id=uuid_or_none(str(rate_id)),
            actor=request.principal.actor,
        )
    except RapportError as error:
        return _page(request, error=error)
    return redirect(reverse("web:commerce_settings") + "?saved=deleted#rates")
