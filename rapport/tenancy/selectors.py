"""Reads of workspaces, members, tokens, sources and the audit log. Every selector
that returns domain rows takes the workspace first: a row of another workspace is
simply not found."""

import logging
import mmap
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from rapport.core.errors import NotFoundError
from rapport.core.selectors import object_get
from rapport.tenancy.keys import API_TOKEN_PREFIX, secret_hash, secret_looks_valid
from rapport.tenancy.models import (
    ApiToken,
    AuditLogEntry,
    Invitation,
    Membership,
    Source,
    User,
    Workspace,
    WriteKey,
)

logger = logging.getLogger(__name__)


def workspace_list() -> QuerySet[Workspace]:
    return Workspace.objects.order_by("name")


def workspace_get_by_name(*, name: str) -> Workspace:
    workspace = Workspace.objects.filter(name__iexact=name.strip()).first()
    if workspace is None:
        raise NotFoundError(gettext("No workspace named %(name)r") % {"name": name})
    return workspace


def workspace_for_user(*, user: User, workspace_id: str | uuid.UUID | None) -> Workspace | None:
    """The workspace a person opens: the one asked for (this session's choice), else the
    one they last chose, else the first by name; only among their own."""
    workspaces = workspace_list_for_user(user=user)
    for candidate in (workspace_id, user.last_workspace_id):
        if candidate:
            try:
                found = workspaces.filter(pk=candidate).first()
            except (ValueError, ValidationError):
                found = None
            if found is not None:
                return found
    return workspaces.first()


def workspace_list_for_user(*, user: User) -> QuerySet[Workspace]:
    return Workspace.objects.filter(
        pk__in=Membership.objects.filter(user=user).values("workspace_id")
    ).order_by("name")


def membership_for_user(*, workspace: Workspace, user: User) -> Membership | None:
    return Membership.objects.filter(workspace=workspace, user=user).first()


def member_list(*, workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__email")
    )


def member_get(*, workspace: Workspace, member_id: uuid.UUID) -> Membership:
    return object_get(
        member_list(workspace=workspace),
        message=gettext("No member with id %(pk)s in this workspace"),
        pk=member_id,
    )


def invitation_list(*, workspace: Workspace, include_closed: bool = False) -> QuerySet[Invitation]:
    """Open invitations (not accepted, not revoked, not expired); all with include_closed."""
    invitations = Invitation.objects.filter(workspace=workspace).order_by("-created_at", "id")
    if not include_closed:
        invitations = invitations.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
    return invitations


def invitation_get(*, workspace: Workspace, invitation_id: uuid.UUID) -> Invitation:
    return object_get(
        invitation_list(workspace=workspace, include_closed=True),
        message=gettext("No invitation with id %(pk)s in this workspace"),
        pk=invitation_id,
    )


def invitation_get_by_secret(*, raw: str) -> Invitation | None:
    """The invitation a link's secret belongs to, whatever its state, or None."""
    if not secret_looks_valid(raw):
        return None
    return (
        Invitation.objects.select_related("workspace").filter(token_hash=secret_hash(raw)).first()
    )


def api_token_list(*, workspace: Workspace, include_revoked: bool = False) -> QuerySet[ApiToken]:
    tokens = ApiToken.objects.filter(workspace=workspace).order_by("-created_at", "id")
    if not include_revoked:
        tokens = tokens.filter(revoked_at__isnull=True)
    return tokens


def api_token_get(*, workspace: Workspace, token_id: uuid.UUID) -> ApiToken:
    return object_get(
        api_token_list(workspace=workspace, include_revoked=True),
        message=gettext("No token with id %(pk)s in this workspace"),
        pk=token_id,
    )


def api_token_get_by_secret(*, raw: str, now: datetime | None = None) -> ApiToken | None:
    """The live token whose secret this is, or None (malformed, unknown, revoked or
    expired alike: the caller answers 401 without saying which)."""
    if not secret_looks_valid(raw, prefix=API_TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("workspace", "created_by")
        .filter(token_hash=secret_hash(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    if token.expires_at is not None and token.expires_at <= (now or timezone.now()):
        return None
    return token


def source_list(*, workspace: Workspace) -> QuerySet[Source]:
    return (
        Source.objects.filter(workspace=workspace)
        .prefetch_related(
            Prefetch("write_keys", queryset=WriteKey.objects.order_by("-created_at", "id"))
        )
        .order_by("name")
    )


def source_get(*, workspace: Workspace, source_id: uuid.UUID) -> Source:
    return object_get(
        source_list(workspace=workspace),
        message=gettext("No source with id %(pk)s in this workspace"),
        pk=source_id,
    )


def write_key_get(*, workspace: Workspace, source_id: uuid.UUID, key_id: uuid.UUID) -> WriteKey:
    keys = WriteKey.objects.filter(workspace=workspace, source_id=source_id).select_related(
        "source"
    )
    return object_get(
        keys, message=gettext("No write key with id %(pk)s in this workspace"), pk=key_id
    )


def write_key_get_by_secret(*, raw: str) -> WriteKey | None:
    """The live write key whose secret this is, with its source and workspace."""
    if not secret_looks_valid(raw):
        return None
    return (
        WriteKey.objects.select_related("source", "workspace")
        .filter(key_hash=secret_hash(raw), revoked_at__isnull=True)
        .first()
    )


@dataclass(frozen=True)
class WriteKeyGrant:
    """What a live write key lets its holder do: send to this source of this workspace."""

    workspace_id: uuid.UUID
    source_id: uuid.UUID
    write_key_id: uuid.UUID
    # The source's CORS setting: which web pages' browsers may use the key.
    allowed_origins: tuple[str, ...] = ("*",)


# Ingestion checks a write key on every request; a database look-up each time would
# cost a measurable share of a single-event request. Each process keeps the answers, and
# every change to write keys (create, revoke, disable a source) writes a new generation
# stamp into a small file under the data directory before its answer is sent. Every
# server process maps that file into memory and compares the stamp on each request (a
# 32-byte read, no system call), forgetting its answers when it changed: a revoked key
# is refused at once by every server process on the machine. The file is written in
# place, never replaced, so that the mappings stay on it (deleting it by hand while
# servers run leaves them on the old one until restarted, with the TTL below as the
# bound). Server processes on other machines (sharing the database, not the data
# directory) do not see the stamp: they re-check within WRITE_KEY_CACHE_SECONDS.
WRITE_KEY_CACHE_SECONDS = 5.0
WRITE_KEY_STAMP_NAME = "write_keys.generation"
_STAMP_SIZE = 32
_write_key_cache: dict[str, tuple[float, WriteKeyGrant | None]] = {}
_write_key_cache_lock = threading.Lock()
_write_key_generation: list[bytes | None] = [None]
_write_key_stamp: list = [None, None]  # [the DATA_DIR it maps, the mapping]


def _write_key_stamp_map() -> mmap.mmap:
    data_dir = settings.DATA_DIR
    if _write_key_stamp[0] is not data_dir:
        # Once a process (and again whenever the tests give the data directory anew).
        with _write_key_cache_lock:
            if _write_key_stamp[0] is not data_dir:
                path = os.path.join(str(data_dir), WRITE_KEY_STAMP_NAME)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    if os.fstat(fd).st_size < _STAMP_SIZE:
                        # Extends with zeros; never overwrites a stamp already written.
                        os.ftruncate(fd, _STAMP_SIZE)
                    mapping = mmap.mmap(fd, _STAMP_SIZE)
                finally:
                    os.close(fd)
                # An earlier mapping is left to the garbage collector: another thread
                # may be reading it right now.
                _write_key_stamp[:] = [data_dir, mapping]
    return _write_key_stamp[1]


def _write_key_stamp_read() -> bytes:
    return _write_key_stamp_map()[:_STAMP_SIZE]


def write_key_cache_clear() -> None:
    """Forget every process's write-key answers: this one's now, the others' at their
    next request. A torn read of the stamp while it is written only makes a reader
    forget its answers once more than needed."""
    try:
        _write_key_stamp_map()[:_STAMP_SIZE] = uuid.uuid4().hex.encode("ascii")
    except OSError:
        # The change is committed already; the other processes fall back to the TTL.
        logger.exception(
            "could not write the write-key stamp under %s; other processes re-check "
            "keys within %ss",
            settings.DATA_DIR,
            WRITE_KEY_CACHE_SECONDS,
        )
    with _write_key_cache_lock:
        _write_key_cache.clear()
        _origins_cache.clear()


def write_key_resolve(*, raw: str) -> WriteKeyGrant | None:
    """The grant of a live write key, or None (unknown, malformed or revoked)."""
    if not secret_looks_valid(raw):
        return None
    digest = secret_hash(raw)
    now = time.monotonic()
    generation = _write_key_stamp_read()
    if generation != _write_key_generation[0]:
        with _write_key_cache_lock:
            _write_key_cache.clear()
            _write_key_generation[0] = generation
    cached = _write_key_cache.get(digest)
    if cached is not None and cached[0] > now:
        return cached[1]
    key = (
        WriteKey.objects.filter(key_hash=digest, revoked_at__isnull=True)
        .select_related("source")
        .only("id", "workspace_id", "source_id", "last_used_at", "source__allowed_origins")
        .first()
    )
    grant = None
    if key is not None:
        grant = WriteKeyGrant(
            workspace_id=key.workspace_id,
            source_id=key.source_id,
            write_key_id=key.pk,
            allowed_origins=tuple(key.source.allowed_origins or ()),
        )
        from rapport.tenancy.services import write_key_mark_used

        write_key_mark_used(write_key=key)
    with _write_key_cache_lock:
        if len(_write_key_cache) > 10_000:
            _write_key_cache.clear()
        # Only if no change happened meanwhile: an answer read before a revoke that
        # finished during the look-up must not outlive it.
        if _write_key_stamp_read() == generation == _write_key_generation[0]:
            _write_key_cache[digest] = (now + WRITE_KEY_CACHE_SECONDS, grant)
    return grant


_origins_cache: dict[str, tuple[float, frozenset[str]]] = {}


def origins_allowed_by_any_source() -> frozenset[str]:
    """The origin patterns of every live source together. A CORS preflight carries no
    write key, so a preflight to a tracking endpoint is answered for the union; each
    event is then held to its own source's setting."""
    now = time.monotonic()
    cached = _origins_cache.get("all")
    if cached is not None and cached[0] > now:
        return cached[1]
    patterns: set[str] = set()
    for origins in Source.objects.filter(disabled_at__isnull=True).values_list(
        "allowed_origins", flat=True
    ):
        patterns.update(origins or ())
    union = frozenset(["*"]) if "*" in patterns else frozenset(patterns)
    with _write_key_cache_lock:
        _origins_cache["all"] = (now + WRITE_KEY_CACHE_SECONDS, union)
    return union


def audit_log_list(
    *,
    workspace: Workspace,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditLogEntry]:
    entries = AuditLogEntry.objects.filter(workspace=workspace).order_by("-created_at", "-id")
    if action:
        entries = (
            entries.filter(action=action)
            if "." in action
            else entries.filter(action__startswith=f"{action}.")
        )
    if actor:
        entries = entries.filter(actor_label__icontains=actor)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lt=until)
    return entries
