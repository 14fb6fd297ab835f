"""What every page of the UI shares: a signed-in person inside a workspace, the
permission the page needs, and domain errors shown as pages rather than tracebacks."""

import functools
import json
import re
import uuid
from collections.abc import Callable

from csp.constants import NONE
from csp.decorators import csp_replace, csp_update
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import format_html
from django.utils.translation import gettext as _

from rapport.core.errors import RapportError
from rapport.tenancy.auth import principal_from_session
from rapport.tenancy.pii import shown_identifier, shown_json


def letter_framed(view: Callable) -> Callable:
    """A page that shows a message's HTML in a sandboxed `srcdoc` frame, which inherits
    the page's policy: the letter's inline styles apply, its scripts never run (sandbox,
    script-src 'self'), and its links lead nowhere (frame-src 'none'), so reading it
    counts no click."""
    return csp_update({"style-src": ["'unsafe-inline'"]})(csp_replace({"frame-src": [NONE]})(view))


_REMOTE_IMAGE = re.compile(r"""(<img\b[^>]*?\s)src=(["']?)(?!["']?data:)""", re.IGNORECASE)


def letter_images_held(html: str) -> str:
    """A letter for a framed page with its images from elsewhere left unloaded: the
    page's policy would refuse them anyway (an error in the console), and an open pixel
    must not count the reading as an open."""
    return _REMOTE_IMAGE.sub(r"\1data-held-src=\2", html)


def workspace_page(permission: str | None = None) -> Callable:
    """A page for a signed-in member of a workspace holding `permission`."""

    def decorate(view: Callable) -> Callable:
        @login_required
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            principal = principal_from_session(request)
            if principal is None:
                return render(request, "web/no_workspace.html", status=403)
            request.principal = principal
            if permission and not principal.has_perm(permission):
                return error_page(
                    request,
                    _("Your role does not allow this page."),
                    status=403,
                )
            try:
                return view(request, *args, **kwargs)
            except RapportError as error:
                return error_page(request, error_text(error), status=error.status)

        return wrapped

    return decorate


def error_page(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(request, "web/error.html", {"message": message}, status=status)


def error_text(error: RapportError) -> str:
    """The message, after the name of the field it is about (a code, not translated)."""
    field = getattr(error, "field", None)
    if not field:
        return error.message
    return format_html('<span translate="no">{}:</span> {}', field, error.message)


def uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def traits_shown(principal, traits: dict) -> dict:
    return shown_json(principal, traits)


def trait_rows(traits: dict, sources: dict) -> list[dict]:
    """Traits as the pages list them, by name: nested values (an address) as JSON,
    as they were sent, rather than as Python writes them."""
    return [
        {
            "name": name,
            "value": json.dumps(traits[name], ensure_ascii=False)
            if isinstance(traits[name], dict | list | bool) or traits[name] is None
            else traits[name],
            "source": sources.get(name, {}),
        }
        for name in sorted(traits)
    ]


def identifier_shown(principal, kind: str, value: str) -> str:
    return shown_identifier(principal, kind, value)


def page_query(request: HttpRequest) -> str:
    """This page's query without its page number, ready for `?{query}page=N`."""
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("done", None)
    query.pop("scan", None)
    encoded = query.urlencode()
    return f"{encoded}&" if encoded else ""
