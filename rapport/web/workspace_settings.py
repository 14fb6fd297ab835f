"""Settings: the workspace's members and their roles, API tokens, and identity rules."""

from datetime import datetime, time

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from rapport.core.errors import InvalidInputError, PermissionDeniedError, RapportError
from rapport.identity import services as identity_services
from rapport.identity.duplicates import FIELD_KINDS
from rapport.identity.graph import DEFAULT_LIMIT, EXTERNAL_PRIORITY
from rapport.identity.normalize import BUILT_IN_KINDS
from rapport.tenancy import selectors, services
from rapport.tenancy.links import public_base_url
from rapport.tenancy.permissions import Role
from rapport.web.pages import error_text, workspace_page


def _members_page(request, *, error=None, invited=None) -> HttpResponse:
    principal = request.principal
    context = {
        "members": selectors.member_list(workspace=principal.workspace),
        "invitations": selectors.invitation_list(workspace=principal.workspace),
        "roles": Role.choices,
        "error": error_text(error) if error else None,
        "invited": invited,
        "form": request.POST if error else {},
    }
    return render(
        request, "web/settings/members.html", context, status=error.status if error else 200
    )


@workspace_page("members.manage")
@require_http_methods(["GET", "POST"])
def member_list(request: HttpRequest) -> HttpResponse:
    """Who has access and with which role; invite a person by email."""
    if request.method == "GET":
        return _members_page(request)
    principal = request.principal
    try:
        invitation = services.invitation_create(
            workspace=principal.workspace,
            email=request.POST.get("email", ""),
            role=request.POST.get("role", ""),
            actor=principal.actor,
            base_url=public_base_url(request),
        )
    except RapportError as error:
        return _members_page(request, error=error)
    return _members_page(request, invited=invitation)


@workspace_page("members.manage")
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id) -> HttpResponse:
    principal = request.principal
    invitation = selectors.invitation_get(
        workspace=principal.workspace, invitation_id=invitation_id
    )
    services.invitation_revoke(invitation=invitation, actor=principal.actor)
    return redirect("web:member_list")


@workspace_page("members.manage")
@require_POST
def member_change_role(request: HttpRequest, member_id) -> HttpResponse:
    principal = request.principal
    membership = selectors.member_get(workspace=principal.workspace, member_id=member_id)
    try:
        services.member_change_role(
            membership=membership, role=request.POST.get("role", ""), actor=principal.actor
        )
    except RapportError as error:
        return _members_page(request, error=error)
    return redirect("web:member_list")


@workspace_page("members.manage")
@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, member_id) -> HttpResponse:
    principal = request.principal
    membership = selectors.member_get(workspace=principal.workspace, member_id=member_id)
    if request.method == "POST":
        try:
            services.member_remove(membership=membership, actor=principal.actor)
        except RapportError as error:
            return _members_page(request, error=error)
        return redirect("web:member_list")
    return render(request, "web/settings/member_remove.html", {"membership": membership})


def _tokens_page(request, *, error=None, new_token=None) -> HttpResponse:
    principal = request.principal
    context = {
        "tokens": selectors.api_token_list(workspace=principal.workspace, include_revoked=True),
        "roles": Role.choices,
        "error": error_text(error) if error else None,
        "new_token": new_token,
        "form": request.POST if error else {},
        "now": timezone.now(),
    }
    return render(
        request, "web/settings/tokens.html", context, status=error.status if error else 200
    )


def _expiry(text: str) -> datetime | None:
    """The end of the given day, in the server's time zone."""
    if not text.strip():
        return None
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInputError(_("must be a date like 2027-01-31"), field="expires_at") from None
    return timezone.make_aware(datetime.combine(day, time.max))


@workspace_page("tokens.manage")
@require_http_methods(["GET", "POST"])
def api_token_list(request: HttpRequest) -> HttpResponse:
    """API tokens for scripts and other systems: create (shown once), revoke."""
    if request.method == "GET":
        return _tokens_page(request)
    principal = request.principal
    try:
        token, raw = services.api_token_create(
            workspace=principal.workspace,
            name=request.POST.get("name", ""),
            role=request.POST.get("role", ""),
            expires_at=_expiry(request.POST.get("expires_at", "")),
            actor=principal.actor,
        )
    except RapportError as error:
        return _tokens_page(request, error=error)
    return _tokens_page(request, new_token={"token": token, "raw": raw})


@workspace_page("tokens.manage")
@require_POST
def api_token_revoke(request: HttpRequest, token_id) -> HttpResponse:
    principal = request.principal
    token = selectors.api_token_get(workspace=principal.workspace, token_id=token_id)
    services.api_token_revoke(token=token, actor=principal.actor)
    return redirect("web:api_token_list")


def _number(text: str, *, field: str, kind=int):
    try:
        return kind(text.strip())
    except (TypeError, ValueError):
        message = (
            _("%(text)r is not a whole number") if kind is int else _("%(text)r is not a number")
        )
        raise InvalidInputError(message % {"text": text}, field=field) from None


def _rules_changes(post, rules) -> dict:
    """The identity rules form as the arguments of identity_rules_update."""
    external = [k.strip() for k in post.get("external_kinds", "").replace("\n", ",").split(",")]
    external = [k for k in external if k]
    kinds = [*BUILT_IN_KINDS, *(k for k in external if k not in BUILT_IN_KINDS)]
    priorities, limits = {}, {}
    for kind in kinds:
        if post.get(f"priority_{kind}", "").strip():
            priorities[kind] = _number(post[f"priority_{kind}"], field="priorities")
        if post.get(f"limit_{kind}", "").strip():
            limits[kind] = _number(post[f"limit_{kind}"], field="limits")
    fields = {}
    for line in post.get("duplicate_fields", "").splitlines():
        if not line.strip():
            continue
        trait, sep, field_kind = line.partition("=")
        if not sep:
            raise InvalidInputError(
                _("%(line)r: write one trait a line, as trait = kind") % {"line": line.strip()},
                field="duplicate_fields",
            )
        fields[trait.strip()] = field_kind.strip()
    auto = post.get("duplicate_auto_merge_probability", "").strip()
    return {
        "external_kinds": external,
        "priorities": priorities,
        "limits": limits,
        "blocked_values": [v for v in post.get("blocked_values", "").splitlines() if v.strip()],
        "default_phone_region": post.get("default_phone_region", ""),
        "duplicate_min_probability": _number(
            post.get("duplicate_min_probability", ""),
            field="duplicate_min_probability",
            kind=float,
        ),
        "duplicate_auto_merge_probability": _number(
            auto, field="duplicate_auto_merge_probability", kind=float
        )
        if auto
        else None,
        "duplicate_fields": fields,
    }


@workspace_page("identity.read")
@require_http_methods(["GET", "POST"])
def identity_rules(request: HttpRequest) -> HttpResponse:
    """Which identifiers merge profiles, in what priority, how many of each one profile
    may hold, which values are placeholders, and how duplicates are judged."""
    principal = request.principal
    can_manage = principal.has_perm("identity.manage")
    rules = identity_services.identity_rules_get(workspace_id=principal.workspace.pk)
    error, saved = None, False
    if request.method == "POST":
        if not can_manage:
            raise PermissionDeniedError(_("Your role does not allow changing the rules."))
        try:
            rules = identity_services.identity_rules_update(
                workspace=principal.workspace,
                actor=principal.actor,
                **_rules_changes(request.POST, rules),
            )
            saved = True
        except RapportError as failure:
            error = failure
    kinds = [*BUILT_IN_KINDS, *rules.external_kinds]
    context = {
        "rules": rules,
        "kinds": [
            {
                "kind": k,
                "priority": rules.priorities.get(k, EXTERNAL_PRIORITY),
                "limit": rules.limits.get(k, DEFAULT_LIMIT),
            }
            for k in kinds
        ],
        "duplicate_fields": "\n".join(
            f"{trait} = {kind}" for trait, kind in sorted(rules.duplicate_fields.items())
        ),
        "blocked_values": "\n".join(rules.blocked_values),
        "field_kinds": FIELD_KINDS,
        "can_manage": can_manage,
        "error": error_text(error) if error else None,
        "saved": saved,
    }
    return render(
        request, "web/settings/identity.html", context, status=error.status if error else 200
    )
