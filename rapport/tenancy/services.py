"""Every change to workspaces, members, tokens and sources, each recorded in the audit
log in the same transaction as the change itself."""

import base64
import secrets
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from rapport.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RapportError,
)
from rapport.tenancy.keys import (
    API_TOKEN_PREFIX,
    secret_display_prefix,
    secret_generate,
    secret_hash,
)
from rapport.tenancy.models import (
    ApiToken,
    AuditLogEntry,
    Invitation,
    Membership,
    Source,
    User,
    Workspace,
    WriteKey,
    any_origin,
)
from rapport.tenancy.origins import InvalidOrigin, origin_patterns_clean
from rapport.tenancy.permissions import Role
from rapport.tenancy.selectors import write_key_cache_clear


@dataclass(frozen=True)
class Actor:
    """Who is making a change: a signed-in person, an API token, or the system (CLI,
    a task). Services take it so that the audit log can say who did what."""

    label: str
    user: User | None = None
    token: ApiToken | None = None
    ip_address: str | None = None

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(label=label)

    @classmethod
    def for_user(cls, user: User, *, ip_address: str | None = None) -> "Actor":
        return cls(label=user.email, user=user, ip_address=ip_address)

    @classmethod
    def for_token(cls, token: ApiToken, *, ip_address: str | None = None) -> "Actor":
        return cls(label=f"token:{token.name}", token=token, ip_address=ip_address)


def audit_log_record(
    *,
    workspace: Workspace,
    actor: Actor,
    action: str,
    target: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditLogEntry:
    return AuditLogEntry.objects.create(
        workspace=workspace,
        actor_user=actor.user,
        actor_token=actor.token,
        actor_label=actor.label[:200],
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        details=details or {},
        ip_address=actor.ip_address,
    )


def audit_log_prune(*, workspace: Workspace, older_than_days: int) -> int:
    if older_than_days < 30:
        raise InvalidInputError(
            gettext("Audit entries are kept at least 30 days"), field="older_than_days"
        )
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = AuditLogEntry.objects.filter(workspace=workspace, created_at__lt=cutoff).delete()
    return deleted


# --- Workspaces -----------------------------------------------------------------------


@dataclass(frozen=True)
class NewWorkspace:
    workspace: Workspace
    source: Source
    write_key: str
    token: str


def _clean_name(value: str, *, field: str, max_length: int = 100) -> str:
    cleaned = " ".join((value or "").split())
    if not cleaned:
        raise InvalidInputError(
            gettext("%(field)s must not be empty") % {"field": field}, field=field
        )
    if len(cleaned) > max_length:
        raise InvalidInputError(
            gettext("%(field)s must be at most %(max)s characters")
            % {"field": field, "max": max_length},
            field=field,
        )
    return cleaned


def workspace_create(*, name: str, actor: Actor) -> NewWorkspace:
    """A new workspace with what it needs to be used at once: a first source with its
    write key (for sending data) and an admin API token (for managing it)."""
    name = _clean_name(name, field="name")
    with transaction.atomic():
        if Workspace.objects.filter(name__iexact=name).exists():
            raise ConflictError(
                gettext("A workspace named %(name)r already exists") % {"name": name},
                code="name_taken",
            )
        try:
            with transaction.atomic():
                workspace = Workspace.objects.create(name=name)
        except IntegrityError as exc:
            raise ConflictError(
                gettext("A workspace named %(name)r already exists") % {"name": name},
                code="name_taken",
            ) from exc
        audit_log_record(
            workspace=workspace, actor=actor, action="workspace.create", target=workspace
        )
        source, write_key = source_create(
            workspace=workspace, name="Default", kind=Source.Kind.HTTP, actor=actor
        )
        _, token = api_token_create(
            workspace=workspace, name="Admin token", role=Role.ADMIN, actor=actor
        )
    return NewWorkspace(workspace=workspace, source=source, write_key=write_key, token=token)


def workspace_update(*, workspace: Workspace, name: str, actor: Actor) -> Workspace:
    name = _clean_name(name, field="name")
    with transaction.atomic():
        if Workspace.objects.filter(name__iexact=name).exclude(pk=workspace.pk).exists():
            raise ConflictError(
                gettext("A workspace named %(name)r already exists") % {"name": name},
                code="name_taken",
            )
        before = workspace.name
        workspace.name = name
        workspace.save(update_fields=["name", "updated_at"])
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="workspace.update",
            target=workspace,
            details={"name": [before, name]},
        )
    return workspace


# --- Members --------------------------------------------------------------------------


def _clean_email(value: str) -> str:
    email = (value or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidInputError(
            gettext("%(value)r is not a valid email address") % {"value": value}, field="email"
        ) from exc
    return email


def _clean_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        choices = ", ".join(f"“{role}”" for role in Role.values)
        raise InvalidInputError(
            gettext("Unknown role %(value)r; one of: %(choices)s")
            % {"value": value, "choices": choices},
            field="role",
        ) from exc


def _check_password(password: str, *, user: User | None = None) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise InvalidInputError(" ".join(exc.messages), field="password") from exc


def user_create(*, email: str, password: str | None, name: str = "") -> tuple[User, str | None]:
    """A person who can sign in. Without a password, one is generated and returned
    once so that it can be handed over."""
    email = _clean_email(email)
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(12)
    candidate = User(email=email, name=name)
    _check_password(password, user=candidate)
    if User.objects.filter(email__iexact=email).exists():
        raise ConflictError(
            gettext("A user with email %(email)s already exists") % {"email": email},
            code="email_taken",
        )
    user = User.objects.create_user(email=email, password=password, name=name.strip()[:150])
    return user, generated


def member_add(
    *,
    workspace: Workspace,
    email: str,
    role: str,
    actor: Actor,
    name: str = "",
    password: str | None = None,
) -> tuple[Membership, str | None]:
    """Give a person a role in the workspace, creating their login if they have none.
    Returns the membership and, for a new login without a given password, the
    generated one (shown once)."""
    email = _clean_email(email)
    role = _clean_role(role)
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first()
        generated = None
        if user is None:
            user, generated = user_create(email=email, password=password, name=name)
        elif Membership.objects.filter(workspace=workspace, user=user).exists():
            raise ConflictError(
                gettext("%(email)s is already a member of this workspace") % {"email": email},
                code="member_exists",
            )
        membership = Membership.objects.create(workspace=workspace, user=user, role=role)
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="member.add",
            target=membership,
            details={"email": email, "role": role.value},
        )
    return membership, generated


# --- Invitations ----------------------------------------------------------------------


class EmailUnavailableError(RapportError):
    status = 503
    code = "email_unavailable"


def _invitation_email_send(*, invitation: Invitation, link: str) -> None:
    workspace = invitation.workspace
    context = {
        "workspace": workspace.name,
        "inviter": invitation.invited_by_label,
        "role": Role(invitation.role).label,
        "link": link,
        "expires": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    subject = _("You are invited to %(workspace)s on Rapport") % context
    body = (
        _(
            "%(inviter)s invites you to the workspace %(workspace)s on Rapport as %(role)s.\n\n"
            "To accept, open this link (it works once, until %(expires)s):\n%(link)s\n\n"
            "If you did not expect this, ignore this email: nothing happens until you accept."
        )
        % context
    )
    try:
        send_mail(subject, body, None, [invitation.email], fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        raise EmailUnavailableError(
            gettext("The invitation email could not be sent; nothing was saved. Try again later"),
            details={"reason": type(exc).__name__},
        ) from exc


def invitation_create(
    *, workspace: Workspace, email: str, role: str, actor: Actor, base_url: str
) -> Invitation:
    """Invite an address to the workspace with a role, and mail it a link to accept.

    The answer is the same whether or not the address has a login anywhere: nothing
    here looks at other workspaces' people. Inviting an address again replaces its open
    invitation (the earlier link stops working). The mail is sent before the commit:
    if it cannot be sent, the invitation is not kept."""
    email = _clean_email(email)
    role = _clean_role(role)
    raw = secret_generate()
    now = timezone.now()
    with transaction.atomic():
        if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
            raise ConflictError(
                gettext("%(email)s is already a member of this workspace") % {"email": email},
                code="member_exists",
            )
        replaced = Invitation.objects.filter(
            workspace=workspace,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        ).update(revoked_at=now, updated_at=now)
        invitation = Invitation.objects.create(
            workspace=workspace,
            email=email,
            role=role,
            token_hash=secret_hash(raw),
            invited_by=actor.user,
            invited_by_label=actor.label[:200],
            expires_at=now + timedelta(hours=settings.RAPPORT_INVITATION_HOURS),
        )
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="invitation.create",
            target=invitation,
            details={"email": email, "role": role.value, "replaced": replaced},
        )
        _invitation_email_send(invitation=invitation, link=invitation_link(base_url, raw))
    return invitation


def invitation_link(base_url: str, raw: str) -> str:
    return f"{base_url.rstrip('/')}/invitations/{raw}/"


def invitation_revoke(*, invitation: Invitation, actor: Actor) -> Invitation:
    with transaction.atomic():
        if invitation.accepted_at is None and invitation.revoked_at is None:
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at", "updated_at"])
            audit_log_record(
                workspace=invitation.workspace,
                actor=actor,
                action="invitation.revoke",
                target=invitation,
                details={"email": invitation.email, "role": invitation.role},
            )
    return invitation


class InvitationClosedError(RapportError):
    status = 410
    code = "invitation_closed"


def _invitation_claim(*, raw: str) -> Invitation:
    """The open invitation behind a link, locked until the transaction ends, so that the
    same link cannot be used twice at once."""
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("workspace")
        .filter(token_hash=secret_hash(raw or ""))
        .first()
    )
    if invitation is None or invitation.status != Invitation.Status.PENDING:
        raise InvitationClosedError(
            gettext("This invitation is no longer valid: it was used, withdrawn or has expired")
        )
    return invitation


def _invitation_join(*, invitation: Invitation, user: User, ip_address: str | None) -> Membership:
    actor = Actor.for_user(user, ip_address=ip_address)
    membership = Membership.objects.filter(workspace=invitation.workspace, user=user).first()
    if membership is None:
        membership = Membership.objects.create(
            workspace=invitation.workspace, user=user, role=invitation.role
        )
        audit_log_record(
            workspace=invitation.workspace,
            actor=actor,
            action="member.add",
            target=membership,
            details={
                "email": user.email,
                "role": invitation.role,
                "invitation": str(invitation.pk),
            },
        )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    audit_log_record(
        workspace=invitation.workspace,
        actor=actor,
        action="invitation.accept",
        target=invitation,
        details={"email": invitation.email, "role": invitation.role},
    )
    user.last_workspace = invitation.workspace
    user.save(update_fields=["last_workspace"])
    return membership


def invitation_accept(*, raw: str, user: User, ip_address: str | None = None) -> Membership:
    """The signed-in person takes up the invitation sent to their address."""
    with transaction.atomic():
        invitation = _invitation_claim(raw=raw)
        if user.email.lower() != invitation.email.lower():
            raise PermissionDeniedError(
                gettext("This invitation was sent to %(email)s; sign in with that address")
                % {"email": invitation.email}
            )
        return _invitation_join(invitation=invitation, user=user, ip_address=ip_address)


def invitation_accept_new_user(
    *, raw: str, password: str, name: str = "", ip_address: str | None = None
) -> tuple[User, Membership]:
    """Create the login for the invited address (proved by holding the link) and join."""
    with transaction.atomic():
        invitation = _invitation_claim(raw=raw)
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise ConflictError(
                gettext("%(email)s already has a login: sign in to accept")
                % {"email": invitation.email},
                code="email_taken",
            )
        name = " ".join((name or "").split())[:150]
        _check_password(password, user=User(email=invitation.email, name=name))
        user = User.objects.create_user(email=invitation.email, password=password, name=name)
        membership = _invitation_join(invitation=invitation, user=user, ip_address=ip_address)
    return user, membership


def user_workspace_choose(*, user: User, workspace: Workspace) -> None:
    """Remember the workspace a person switched to, for their next sign-in."""
    if not Membership.objects.filter(workspace=workspace, user=user).exists():
        raise NotFoundError(gettext("No such workspace"))
    if user.last_workspace_id != workspace.pk:
        user.last_workspace = workspace
        user.save(update_fields=["last_workspace"])


def _ensure_another_admin(*, membership: Membership) -> None:
    # Lock the workspace's admin rows so that two admins demoting each other at once
    # cannot both succeed and leave the workspace with nobody to manage it.
    admins = list(
        Membership.objects.select_for_update()
        .filter(workspace_id=membership.workspace_id, role=Role.ADMIN)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if admins == [membership.id]:
        raise ConflictError(
            gettext("This is the workspace's last admin; make someone else admin first"),
            code="last_admin",
        )


def member_change_role(*, membership: Membership, role: str, actor: Actor) -> Membership:
    role = _clean_role(role)
    with transaction.atomic():
        if membership.role == Role.ADMIN and role != Role.ADMIN:
            _ensure_another_admin(membership=membership)
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
        audit_log_record(
            workspace=membership.workspace,
            actor=actor,
            action="member.change_role",
            target=membership,
            details={"email": membership.user.email, "role": [before, role.value]},
        )
    return membership


def member_remove(*, membership: Membership, actor: Actor) -> None:
    with transaction.atomic():
        if membership.role == Role.ADMIN:
            _ensure_another_admin(membership=membership)
        audit_log_record(
            workspace=membership.workspace,
            actor=actor,
            action="member.remove",
            target=membership,
            details={"email": membership.user.email, "role": membership.role},
        )
        membership.delete()


# --- API tokens -----------------------------------------------------------------------


def api_token_create(
    *,
    workspace: Workspace,
    name: str,
    role: str,
    actor: Actor,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token; the returned string is the only time the token is seen in clear."""
    name = _clean_name(name, field="name")
    role = _clean_role(role)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInputError(gettext("must be in the future"), field="expires_at")
    raw = secret_generate(prefix=API_TOKEN_PREFIX)
    with transaction.atomic():
        token = ApiToken.objects.create(
            workspace=workspace,
            name=name,
            role=role,
            prefix=secret_display_prefix(raw),
            token_hash=secret_hash(raw),
            created_by=actor.user,
            expires_at=expires_at,
        )
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="token.create",
            target=token,
            details={"name": name, "role": role.value},
        )
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    with transaction.atomic():
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at", "updated_at"])
            audit_log_record(
                workspace=token.workspace,
                actor=actor,
                action="token.revoke",
                target=token,
                details={"name": token.name},
            )
    return token


# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_mark_used(*, token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


# --- Sources and write keys -----------------------------------------------------------


def write_key_mark_used(*, write_key: WriteKey) -> None:
    now = timezone.now()
    if write_key.last_used_at is None or now - write_key.last_used_at > LAST_USED_RESOLUTION:
        WriteKey.objects.filter(pk=write_key.pk).update(last_used_at=now)
        write_key.last_used_at = now


def _clean_source_kind(value: str) -> str:
    if value not in Source.Kind.values:
        choices = ", ".join(f"“{kind}”" for kind in Source.Kind.values)
        raise InvalidInputError(
            gettext("Unknown source kind %(value)r; one of: %(choices)s")
            % {"value": value, "choices": choices},
            field="kind",
        )
    return value


def _clean_origins(values: list[str]) -> list[str]:
    try:
        return origin_patterns_clean(values)
    except InvalidOrigin as error:
        raise InvalidInputError(
            gettext("allowed_origins: %(error)s") % {"error": error}, field="allowed_origins"
        ) from None


def source_create(
    *,
    workspace: Workspace,
    name: str,
    actor: Actor,
    kind: str = Source.Kind.HTTP,
    allowed_origins: list[str] | None = None,
) -> tuple[Source, str]:
    """A new source with its first write key (returned in clear, once)."""
    name = _clean_name(name, field="name")
    kind = _clean_source_kind(kind)
    origins = _clean_origins(allowed_origins) if allowed_origins is not None else any_origin()
    with transaction.atomic():
        if Source.objects.filter(workspace=workspace, name__iexact=name).exists():
            raise ConflictError(
                gettext("A source named %(name)r already exists") % {"name": name},
                code="name_taken",
            )
        source = Source.objects.create(
            workspace=workspace, name=name, kind=kind, allowed_origins=origins
        )
        transaction.on_commit(write_key_cache_clear)  # the origins any source allows
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="source.create",
            target=source,
            details={"name": name, "kind": kind},
        )
        _, raw = write_key_create(source=source, actor=actor)
    return source, raw


def source_update(
    *,
    source: Source,
    actor: Actor,
    name: str | None = None,
    allowed_origins: list[str] | None = None,
) -> Source:
    """Rename a source and/or set the web origins its browsers may send from (None:
    unchanged)."""
    changes: dict[str, list] = {}
    if name is not None:
        name = _clean_name(name, field="name")
    if allowed_origins is not None:
        allowed_origins = _clean_origins(allowed_origins)
    with transaction.atomic():
        if name is not None and name != source.name:
            taken = (
                Source.objects.filter(workspace_id=source.workspace_id, name__iexact=name)
                .exclude(pk=source.pk)
                .exists()
            )
            if taken:
                raise ConflictError(
                    gettext("A source named %(name)r already exists") % {"name": name},
                    code="name_taken",
                )
            changes["name"] = [source.name, name]
            source.name = name
        if allowed_origins is not None and allowed_origins != source.allowed_origins:
            changes["allowed_origins"] = [source.allowed_origins, allowed_origins]
            source.allowed_origins = allowed_origins
            # The Tracking API caches what a write key may do, origins included.
            transaction.on_commit(write_key_cache_clear)
        if changes:
            source.save(update_fields=[*changes, "updated_at"])
            audit_log_record(
                workspace=source.workspace,
                actor=actor,
                action="source.update",
                target=source,
                details=changes,
            )
    return source


def source_disable(*, source: Source, actor: Actor) -> Source:
    """Stop accepting data from a source: every key it has is revoked."""
    with transaction.atomic():
        now = timezone.now()
        if source.disabled_at is None:
            source.disabled_at = now
            source.save(update_fields=["disabled_at", "updated_at"])
        revoked = WriteKey.objects.filter(source=source, revoked_at__isnull=True).update(
            revoked_at=now, updated_at=now
        )
        transaction.on_commit(write_key_cache_clear)
        audit_log_record(
            workspace=source.workspace,
            actor=actor,
            action="source.disable",
            target=source,
            details={"name": source.name, "keys_revoked": revoked},
        )
    return source


def write_key_create(*, source: Source, actor: Actor) -> tuple[WriteKey, str]:
    """A further write key for a source: rotation is create-new, then revoke-old once
    the senders use the new one, so no event is refused in between."""
    if source.disabled_at is not None:
        raise ConflictError(gettext("The source is disabled"), code="source_disabled")
    raw = secret_generate()
    with transaction.atomic():
        key = WriteKey.objects.create(
            workspace_id=source.workspace_id,
            source=source,
            prefix=secret_display_prefix(raw),
            key_hash=secret_hash(raw),
        )
        # Processes that were told "unknown key" a moment ago learn of it at once.
        transaction.on_commit(write_key_cache_clear)
        audit_log_record(
            workspace=source.workspace,
            actor=actor,
            action="write_key.create",
            target=key,
            details={"source": source.name, "prefix": key.prefix},
        )
    return key, raw


def write_key_revoke(*, write_key: WriteKey, actor: Actor) -> WriteKey:
    with transaction.atomic():
        if write_key.revoked_at is None:
            write_key.revoked_at = timezone.now()
            write_key.save(update_fields=["revoked_at", "updated_at"])
            transaction.on_commit(write_key_cache_clear)
            audit_log_record(
                workspace=write_key.source.workspace,
                actor=actor,
                action="write_key.revoke",
                target=write_key,
                details={"source": write_key.source.name, "prefix": write_key.prefix},
            )
    return write_key


# --- The Django admin's second factor -------------------------------------------------


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str  # base32, as authenticator apps take it typed in
    uri: str  # otpauth://, as they take it from a QR code


def _staff_user(email: str) -> User:
    user = User.objects.filter(email__iexact=(email or "").strip()).first()
    if user is None:
        raise NotFoundError(gettext("No user with email %(email)r") % {"email": email})
    if not user.is_staff:
        raise ConflictError(
            gettext("%(email)s is not staff: only staff sign in to the Django admin")
            % {"email": user.email},
            code="not_staff",
        )
    return user


def admin_totp_enrol(*, email: str) -> TotpEnrolment:
    """A new TOTP secret for a staff member, not yet usable: admin_totp_confirm with a
    code from the app proves it was stored there before the admin accepts it, and then
    replaces the member's earlier device. An earlier unconfirmed one is dropped now."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = _staff_user(email)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="Rapport admin", confirmed=False)
    return TotpEnrolment(
        secret=base64.b32encode(device.bin_key).decode("ascii"), uri=device.config_url
    )


def admin_totp_confirm(*, email: str, code: str) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = _staff_user(email)
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("-id")
            .first()
        )
        if device is None:
            raise ConflictError(
                gettext("%(email)s has no device waiting; run 'rapport user totp-enrol' first")
                % {"email": user.email},
                code="nothing_to_confirm",
            )
        if not device.verify_token((code or "").strip()):
            raise InvalidInputError(
                gettext("The code does not match; try the next one"), field="code"
            )
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        # Enrolling again is how a lost phone is replaced: the old device stops working.
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()


def admin_totp_remove(*, email: str) -> int:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = _staff_user(email)
    deleted, _ = TOTPDevice.objects.filter(user=user).delete()
    return deleted
