"""Who is calling: an API token or a signed-in person, always inside one workspace.

Both resolve to a `Principal`, which every endpoint receives as `request.auth` and
asks for permissions, so that an endpoint never works outside its caller's workspace.
"""

from dataclasses import dataclass, field

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja.security import HttpBearer, SessionAuth

from rapport.core.errors import PermissionDeniedError
from rapport.tenancy.client_address import client_address
from rapport.tenancy.models import ApiToken, User, Workspace
from rapport.tenancy.permissions import PII_READ, Role, role_has_permission, role_permissions
from rapport.tenancy.selectors import (
    api_token_get_by_secret,
    membership_for_user,
    workspace_for_user,
)
from rapport.tenancy.services import Actor, api_token_mark_used

SESSION_WORKSPACE_KEY = "rapport_workspace_id"


@dataclass(frozen=True)
class Principal:
    workspace: Workspace
    role: str
    user: User | None = None
    token: ApiToken | None = None
    ip_address: str | None = field(default=None, compare=False)

    def has_perm(self, code: str) -> bool:
        return role_has_permission(role=self.role, code=code)

    def require(self, code: str) -> None:
        if not self.has_perm(code):
            raise PermissionDeniedError(
                gettext(
                    "Your role (%(role)s) does not allow this; it needs the %(code)r permission"
                )
                % {"role": self.role, "code": code},
                details={"permission": code, "role": self.role},
            )

    @property
    def role_label(self) -> str:
        return str(Role(self.role).label)

    @property
    def permissions(self) -> list[str]:
        return role_permissions(role=self.role)

    @property
    def can_see_pii(self) -> bool:
        return self.has_perm(PII_READ)

    @property
    def actor(self) -> Actor:
        if self.token is not None:
            return Actor.for_token(self.token, ip_address=self.ip_address)
        if self.user is not None:
            return Actor.for_user(self.user, ip_address=self.ip_address)
        return Actor.system()


def principal_from_session(request: HttpRequest) -> Principal | None:
    """The signed-in person in the workspace they chose in this session, else the one
    they chose last time (kept with their account), else their first."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    workspace = workspace_for_user(
        user=user, workspace_id=request.session.get(SESSION_WORKSPACE_KEY)
    )
    if workspace is None:
        return None
    if request.session.get(SESSION_WORKSPACE_KEY) != str(workspace.pk):
        request.session[SESSION_WORKSPACE_KEY] = str(workspace.pk)
    membership = membership_for_user(workspace=workspace, user=user)
    if membership is None:
        return None
    return Principal(
        workspace=workspace, role=membership.role, user=user, ip_address=client_address(request)
    )


class ApiTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        api_token = api_token_get_by_secret(raw=token.strip())
        if api_token is None:
            return None
        api_token_mark_used(token=api_token)
        return Principal(
            workspace=api_token.workspace,
            role=api_token.role,
            token=api_token,
            ip_address=client_address(request),
        )


class WorkspaceSessionAuth(SessionAuth):
    """The UI's own calls: the session cookie, with Ninja's CSRF check."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        return principal_from_session(request)
