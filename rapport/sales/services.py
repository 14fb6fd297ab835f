"""Writes of the sales app: pipelines and their stages, deals and their moves, tasks,
notes (with mentions), and owners. Every change is audited; a deal's move is also
kept as a `DealStageChange` and shows on the customer's timeline.

Ids that a body names (a profile, an account, a deal, a member) must be of the same
workspace: another workspace's id is refused naming the field, as an unknown one is.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal
from typing import Any

import nh3
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from rapport.core.errors import ConflictError, InvalidInputError
from rapport.core.money import currency_clean
from rapport.profiles.models import Account, Profile
from rapport.sales.models import (
    Deal,
    DealStageChange,
    LeadModel,
    LeadScore,
    Note,
    Notification,
    Owner,
    Pipeline,
    Stage,
    StageKind,
    Task,
)
from rapport.tenancy.models import Membership, Workspace
from rapport.tenancy.services import Actor, audit_log_record

MAX_AMOUNT = Decimal("99999999999999")
NOTE_MAX = 20_000
# Tags a note keeps (the editor's bold, italics, lists, links, quotes); everything else
# is dropped, with scripts and event handlers.
NOTE_TAGS = {
    "p",
    "br",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "s",
    "ul",
    "ol",
    "li",
    "a",
    "blockquote",
    "code",
    "pre",
}

DEFAULT_STAGES = [
    {"name": "Qualified", "probability": 10, "kind": "open"},
    {"name": "Meeting booked", "probability": 30, "kind": "open"},
    {"name": "Proposal sent", "probability": 60, "kind": "open"},
    {"name": "Negotiation", "probability": 80, "kind": "open"},
    {"name": "Won", "probability": 100, "kind": "won"},
    {"name": "Lost", "probability": 0, "kind": "lost"},
]


# --- References named in a body ------------------------------------------------------


def _named(queryset, pk: Any, *, message: str, field: str):
    """The row a body names by id, from a workspace-scoped queryset; None for no id. An
    unknown id (or another workspace's) is refused naming the field."""
    if pk is None:
        return None
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise InvalidInputError(message % {"pk": pk}, field=field)
    return found


def _member(workspace: Workspace, member_id: Any, *, field: str) -> Membership | None:
    return _named(
        Membership.objects.filter(workspace=workspace).select_related("user"),
        member_id,
        message=_("No member with id %(pk)s in this workspace"),
        field=field,
    )


def _profile(workspace: Workspace, profile_id: Any, *, field: str = "profile_id") -> Profile | None:
    profile = _named(
        Profile.objects.filter(workspace=workspace),
        profile_id,
        message=_("No profile with id %(pk)s in this workspace"),
        field=field,
    )
    # A merged profile's records belong to the one it was merged into.
    while profile is not None and profile.merged_into_id is not None:
        profile = Profile.objects.get(pk=profile.merged_into_id)
    return profile


def _account(workspace: Workspace, account_id: Any, *, field: str = "account_id") -> Account | None:
    return _named(
        Account.objects.filter(workspace=workspace),
        account_id,
        message=_("No account with id %(pk)s in this workspace"),
        field=field,
    )


def _deal(workspace: Workspace, deal_id: Any, *, field: str = "deal_id") -> Deal | None:
    return _named(
        Deal.objects.filter(workspace=workspace),
        deal_id,
        message=_("No deal with id %(pk)s in this workspace"),
        field=field,
    )


def _stage(workspace: Workspace, stage_id: Any, *, field: str = "stage_id") -> Stage:
    if stage_id is None:
        raise InvalidInputError(_("Choose a stage"), field=field)
    return _named(
        Stage.objects.filter(workspace=workspace).select_related("pipeline"),
        stage_id,
        message=_("No stage with id %(pk)s in this workspace"),
        field=field,
    )


def actor_member(workspace: Workspace, actor: Actor) -> Membership | None:
    """The member behind a person's change (None for a token or the system)."""
    if actor.user is None:
        return None
    return Membership.objects.filter(workspace=workspace, user=actor.user).first()


def _name(value: Any, *, field: str, max_length: int) -> str:
    text = str(value or "").strip()
    if not text:
        raise InvalidInputError(_("may not be empty"), field=field)
    if len(text) > max_length:
        raise InvalidInputError(
            _("at most %(max)s characters") % {"max": max_length},
            field=field,
        )
    return text


# --- Pipelines ------------------------------------------------------------------------


def _stages_clean(stages: list[dict]) -> list[dict]:
    if not stages:
        raise InvalidInputError(_("A pipeline needs stages"), field="stages")
    if len(stages) > 30:
        raise InvalidInputError(_("A pipeline has at most 30 stages"), field="stages")
    names = [
        _name(s.get("name"), field=f"stages.{n}.name", max_length=100) for n, s in enumerate(stages)
    ]
    if len({n.casefold() for n in names}) != len(names):
        raise InvalidInputError(_("Two stages have the same name"), field="stages")
    kinds = [s.get("kind", "open") for s in stages]
    for wanted in (StageKind.OPEN, StageKind.WON, StageKind.LOST):
        if wanted not in kinds:
            raise InvalidInputError(
                _("A pipeline needs at least one %(kind)s stage") % {"kind": wanted.label.lower()},
                field="stages",
            )
    cleaned = []
    for n, (stage, name) in enumerate(zip(stages, names, strict=True)):
        kind = stage.get("kind", "open")
        default = 100 if kind == "won" else 0 if kind == "lost" else 10
        probability = stage.get("probability")
        cleaned.append(
            {
                "id": stage.get("id"),
                "name": name,
                "kind": kind,
                "probability": default if probability is None else int(probability),
                "position": n,
            }
        )
    return cleaned


def pipeline_create(
    *,
    workspace: Workspace,
    actor: Actor,
    name: str,
    currency: str = "USD",
    stages: list[dict] | None = None,
) -> Pipeline:
    """A pipeline with its stages in order (the default sales stages when none given)."""
    name = _name(name, field="name", max_length=100)
    currency = currency_clean(currency, field="currency")
    cleaned = _stages_clean(stages if stages is not None else DEFAULT_STAGES)
    if any(s["id"] for s in cleaned):
        raise InvalidInputError(_("A new pipeline's stages have no ids yet"), field="stages")
    if Pipeline.objects.filter(workspace=workspace, name__iexact=name).exists():
        raise ConflictError(_("A pipeline named %(name)s exists already") % {"name": name})
    try:
        with transaction.atomic():
            position = Pipeline.objects.filter(workspace=workspace).count()
            pipeline = Pipeline.objects.create(
                workspace=workspace, name=name, currency=currency, position=position
            )
            Stage.objects.bulk_create(
                [
                    Stage(
                        workspace=workspace,
                        pipeline=pipeline,
                        **{k: v for k, v in s.items() if k != "id"},
                    )
                    for s in cleaned
                ]
            )
            audit_log_record(
                workspace=workspace,
                actor=actor,
                action="pipeline.create",
                target=pipeline,
                details={"name": name},
            )
    except IntegrityError:
        raise ConflictError(
            _("A pipeline named %(name)s exists already") % {"name": name}
        ) from None
    return pipeline


def pipeline_update(*, pipeline: Pipeline, actor: Actor, data: dict) -> Pipeline:
    """Rename, change the currency, or replace the stages: a stage given with its id is
    kept (renamed, moved, its probability changed), one without is added, one left out
    is removed, which a stage still holding deals refuses (409)."""
    workspace = pipeline.workspace
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
        if "name" in data:
            name = _name(data["name"], field="name", max_length=100)
            if (
                Pipeline.objects.filter(workspace=workspace, name__iexact=name)
                .exclude(pk=pipeline.pk)
                .exists()
            ):
                raise ConflictError(_("A pipeline named %(name)s exists already") % {"name": name})
            pipeline.name = name
        if "currency" in data:
            pipeline.currency = currency_clean(data["currency"], field="currency")
        pipeline.save()
        if "stages" in data:
            _stages_replace(pipeline, _stages_clean(data["stages"]))
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="pipeline.update",
            target=pipeline,
            details={"fields": sorted(data)},
        )
    return pipeline


def _stages_replace(pipeline: Pipeline, cleaned: list[dict]) -> None:
    existing = {str(s.pk): s for s in pipeline.stages.all()}
    kept = set()
    for n, stage in enumerate(cleaned):
        if stage["id"] is not None and str(stage["id"]) not in existing:
            raise InvalidInputError(
                _("No stage with id %(pk)s in this pipeline") % {"pk": stage["id"]},
                field=f"stages.{n}.id",
            )
        kept.add(str(stage["id"]))
    gone = [s for pk, s in existing.items() if pk not in kept]
    held = Deal.objects.filter(stage__in=gone).values("stage__name").annotate(n=Count("id"))
    for row in held:
        raise ConflictError(
            _("The stage %(name)s still holds %(count)s deals: move them first")
            % {"name": row["stage__name"], "count": row["n"]}
        )
    Stage.objects.filter(pk__in=[s.pk for s in gone]).delete()
    # Names are unique within a pipeline: park the kept ones first, then set them.
    for stage in existing.values():
        if str(stage.pk) in kept:
            Stage.objects.filter(pk=stage.pk).update(name=f"~{stage.pk}")
    for stage in cleaned:
        fields = {k: v for k, v in stage.items() if k != "id"}
        if stage["id"] is None:
            Stage.objects.create(workspace=pipeline.workspace, pipeline=pipeline, **fields)
        else:
            Stage.objects.filter(pk=stage["id"]).update(**fields)
    # A deal in a stage whose kind changed follows it.
    for stage in pipeline.stages.all():
        Deal.objects.filter(stage=stage).exclude(status=stage.kind).update(
            status=stage.kind, version=F("version") + 1
        )


def pipeline_delete(*, pipeline: Pipeline, actor: Actor) -> None:
    with transaction.atomic():
        count = Deal.objects.filter(pipeline=pipeline).count()
        if count:
            raise ConflictError(
                _("The pipeline still holds %(count)s deals: move or delete them first")
                % {"count": count}
            )
        audit_log_record(
            workspace=pipeline.workspace,
            actor=actor,
            action="pipeline.delete",
            target=pipeline,
            details={"name": pipeline.name},
        )
        pipeline.delete()


# --- Deals ----------------------------------------------------------------------------


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise InvalidInputError(_("The amount is not a number"), field="amount") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise InvalidInputError(
            _("The amount must be between 0 and %(max)s") % {"max": MAX_AMOUNT}, field="amount"
        )
    return amount


def _deal_fields(workspace: Workspace, data: dict) -> dict:
    fields: dict[str, Any] = {}
    if "name" in data:
        fields["name"] = _name(data["name"], field="name", max_length=200)
    if "amount" in data:
        fields["amount"] = _amount(data["amount"] if data["amount"] is not None else 0)
    if data.get("currency") is not None:
        fields["currency"] = currency_clean(data["currency"], field="currency")
    if "expected_close" in data:
        fields["expected_close"] = data["expected_close"]
    if "owner_id" in data:
        fields["owner"] = _member(workspace, data["owner_id"], field="owner_id")
    if "profile_id" in data:
        fields["profile"] = _profile(workspace, data["profile_id"])
    if "account_id" in data:
        fields["account"] = _account(workspace, data["account_id"])
    return fields


def deal_create(*, workspace: Workspace, actor: Actor, data: dict) -> Deal:
    """A deal in a pipeline: at the stage given, or the pipeline's first stage. Its owner
    is the member given, or the person creating it."""
    if data.get("stage_id") is not None:
        stage = _stage(workspace, data["stage_id"])
        if data.get("pipeline_id") is not None and str(stage.pipeline_id) != str(
            data["pipeline_id"]
        ):
            raise InvalidInputError(_("The stage is not one of the pipeline's"), field="stage_id")
    else:
        if data.get("pipeline_id") is None:
            raise InvalidInputError(_("Choose a pipeline or a stage"), field="pipeline_id")
        pipeline = _named(
            Pipeline.objects.filter(workspace=workspace),
            data["pipeline_id"],
            message=_("No pipeline with id %(pk)s in this workspace"),
            field="pipeline_id",
        )
        stage = pipeline.stages.order_by("position").first()
    fields = _deal_fields(workspace, data)
    if "owner" not in fields:
        fields["owner"] = actor_member(workspace, actor)
    fields.setdefault("currency", stage.pipeline.currency)
    now = timezone.now()
    with transaction.atomic():
        deal = Deal.objects.create(
            workspace=workspace,
            pipeline=stage.pipeline,
            stage=stage,
            status=stage.kind,
            stage_changed_at=now,
            closed_at=now if stage.kind != StageKind.OPEN else None,
            **fields,
        )
        DealStageChange.objects.create(
            workspace=workspace,
            deal=deal,
            to_stage=stage,
            to_name=stage.name,
            actor_label=actor.label[:200],
            at=now,
        )
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="deal.create",
            target=deal,
            details={"name": deal.name, "stage": stage.name},
        )
    return deal


def _stale(deal: Deal) -> ConflictError:
    current = Deal.objects.filter(pk=deal.pk).values_list("version", flat=True).first()
    return ConflictError(
        _(
            "Someone else changed this deal since you read it (it is now at version %(version)s): "
            "reload it and try again"
        )
        % {"version": current},
        code="stale_version",
    )


def deal_update(*, deal: Deal, actor: Actor, data: dict, version: int | None = None) -> Deal:
    """Change the fields given (not the stage: that is a move). With `version`, refused
    (409) when the deal changed since that version."""
    fields = _deal_fields(deal.workspace, data)
    if not fields:
        return deal
    with transaction.atomic():
        query = Deal.objects.filter(pk=deal.pk)
        if version is not None:
            query = query.filter(version=version)
        if not query.update(**fields, version=F("version") + 1, updated_at=timezone.now()):
            raise _stale(deal)
        audit_log_record(
            workspace=deal.workspace,
            actor=actor,
            action="deal.update",
            target=deal,
            details={"fields": sorted(data)},
        )
    return Deal.objects.select_related("stage", "pipeline", "owner__user").get(pk=deal.pk)


def deal_move(*, deal: Deal, actor: Actor, stage_id: Any, version: int | None = None) -> Deal:
    """Move a deal to a stage (of its pipeline or another), kept in its history, on the
    timeline and in the audit log. Won or lost stages close it; an open one reopens it.
    With `version`, a deal changed since is refused (409) and nothing is written."""
    stage = _stage(deal.workspace, stage_id)
    now = timezone.now()
    with transaction.atomic():
        # The row alone: locked with a join, a row another move changed meanwhile would
        # be re-checked against the stage it left and found missing (PostgreSQL).
        current = Deal.objects.select_for_update().get(pk=deal.pk)
        if version is not None and current.version != version:
            raise _stale(deal)
        if current.stage_id == stage.pk:
            return current
        closed_at = (current.closed_at or now) if stage.kind != StageKind.OPEN else None
        Deal.objects.filter(pk=deal.pk).update(
            stage=stage,
            pipeline=stage.pipeline,
            status=stage.kind,
            stage_changed_at=now,
            closed_at=closed_at,
            version=F("version") + 1,
            updated_at=now,
        )
        DealStageChange.objects.create(
            workspace=deal.workspace,
            deal=deal,
            from_stage=current.stage,
            to_stage=stage,
            from_name=current.stage.name,
            to_name=stage.name,
            actor_label=actor.label[:200],
            at=now,
        )
        audit_log_record(
            workspace=deal.workspace,
            actor=actor,
            action="deal.move",
            target=deal,
            details={"from": current.stage.name, "to": stage.name, "version": current.version + 1},
        )
    current.refresh_from_db()
    return current


def deal_delete(*, deal: Deal, actor: Actor) -> None:
    with transaction.atomic():
        audit_log_record(
            workspace=deal.workspace,
            actor=actor,
            action="deal.delete",
            target=deal,
            details={"name": deal.name},
        )
        deal.delete()


# --- Tasks ----------------------------------------------------------------------------


def _task_fields(workspace: Workspace, data: dict) -> dict:
    fields: dict[str, Any] = {}
    if "title" in data:
        fields["title"] = _name(data["title"], field="title", max_length=200)
    if "description" in data:
        fields["description"] = str(data["description"] or "")[:5000]
    for key in ("due_at", "remind_at"):
        if key in data:
            fields[key] = data[key]
    if "all_day" in data and data["all_day"] is not None:
        fields["all_day"] = bool(data["all_day"])
    if "assignee_id" in data:
        fields["assignee"] = _member(workspace, data["assignee_id"], field="assignee_id")
    if "profile_id" in data:
        fields["profile"] = _profile(workspace, data["profile_id"])
    if "account_id" in data:
        fields["account"] = _account(workspace, data["account_id"])
    if "deal_id" in data:
        fields["deal"] = _deal(workspace, data["deal_id"])
    return fields


def _notify(
    *,
    workspace: Workspace,
    member: Membership,
    kind: str,
    text: str,
    link: str = "",
    note=None,
    task=None,
) -> Notification:
    from rapport.sales import tasks

    notification = Notification.objects.create(
        workspace=workspace,
        member=member,
        kind=kind,
        text=text[:300],
        link=link[:300],
        note=note,
        task=task,
    )
    transaction.on_commit(
        lambda: tasks.notification_email.enqueue(notification_id=str(notification.pk))
    )
    return notification


def task_create(
    *, workspace: Workspace, actor: Actor, data: dict, journey_key: str | None = None
) -> Task:
    """A task for a member (the one given, or the person creating it); its assignee is
    notified when someone else gave it. A journey's step passes `journey_key`: the same
    key makes no second task."""
    if journey_key is not None:
        existing = Task.objects.filter(workspace=workspace, journey_key=journey_key).first()
        if existing is not None:
            return existing
    fields = _task_fields(workspace, data)
    if "title" not in fields:
        raise InvalidInputError(_("A task needs a title"), field="title")
    creator = actor_member(workspace, actor)
    if "assignee" not in fields:
        fields["assignee"] = creator
    try:
        with transaction.atomic():
            task = Task.objects.create(
                workspace=workspace, created_by=actor.label[:200], journey_key=journey_key, **fields
            )
            if task.assignee is not None and task.assignee != creator:
                _notify(
                    workspace=workspace,
                    member=task.assignee,
                    kind="task",
                    text=_("%(who)s gave you a task: %(title)s")
                    % {"who": actor.label, "title": task.title},
                    link="/tasks/",
                    task=task,
                )
            audit_log_record(
                workspace=workspace,
                actor=actor,
                action="task.create",
                target=task,
                details={"title": task.title},
            )
    except IntegrityError:
        if journey_key is None:
            raise
        return Task.objects.get(workspace=workspace, journey_key=journey_key)
    return task


def task_update(*, task: Task, actor: Actor, data: dict) -> Task:
    fields = _task_fields(task.workspace, data)
    with transaction.atomic():
        for key, value in fields.items():
            setattr(task, key, value)
        if "due_at" in fields or "remind_at" in fields:
            task.reminded_at = None
        task.save()
        audit_log_record(
            workspace=task.workspace,
            actor=actor,
            action="task.update",
            target=task,
            details={"fields": sorted(data)},
        )
    return task


def task_complete(*, task: Task, actor: Actor, done: bool = True) -> Task:
    """Mark a task done (or not done again); doing it twice changes nothing."""
    with transaction.atomic():
        if done and task.done_at is None:
            task.done_at = timezone.now()
        elif not done:
            task.done_at = None
        else:
            return task
        task.save(update_fields=["done_at", "updated_at"])
        audit_log_record(
            workspace=task.workspace,
            actor=actor,
            action="task.complete" if done else "task.reopen",
            target=task,
            details={"title": task.title},
        )
    return task


def task_delete(*, task: Task, actor: Actor) -> None:
    with transaction.atomic():
        audit_log_record(
            workspace=task.workspace,
            actor=actor,
            action="task.delete",
            target=task,
            details={"title": task.title},
        )
        task.delete()


def tasks_remind(*, workspace_id: Any, now: datetime | None = None) -> int:
    """Notify the assignees of a workspace's tasks whose reminder time has come (once
    each, however many workers run this at once)."""
    now = now or timezone.now()
    count = 0
    due = Task.objects.filter(
        workspace_id=workspace_id,
        remind_at__lte=now,
        reminded_at__isnull=True,
        done_at__isnull=True,
        assignee__isnull=False,
    )
    for task in due.select_related("workspace", "assignee")[:1000]:
        with transaction.atomic():
            if not Task.objects.filter(pk=task.pk, reminded_at__isnull=True).update(
                reminded_at=now
            ):
                continue
            _notify(
                workspace=task.workspace,
                member=task.assignee,
                kind="reminder",
                text=_("Reminder: %(title)s") % {"title": task.title},
                link="/tasks/",
                task=task,
            )
            count += 1
    return count


# --- Notes ----------------------------------------------------------------------------


def note_body_clean(body: Any) -> str:
    text = str(body or "")
    if len(text) > NOTE_MAX:
        raise InvalidInputError(
            _("A note is at most %(max)s characters") % {"max": NOTE_MAX}, field="body"
        )
    clean = nh3.clean(
        text, tags=NOTE_TAGS, attributes={"a": {"href"}}, link_rel="noopener noreferrer nofollow"
    )
    if not nh3.clean(clean, tags=set()).strip():
        raise InvalidInputError(_("A note may not be empty"), field="body")
    return clean


def note_create(*, workspace: Workspace, actor: Actor, data: dict) -> Note:
    """A note, or a logged call, meeting or email, on a customer, an account and/or a
    deal (at least one). Each member mentioned is notified in Rapport and by email."""
    body = note_body_clean(data.get("body"))
    profile = _profile(workspace, data.get("profile_id"))
    account = _account(workspace, data.get("account_id"))
    deal = _deal(workspace, data.get("deal_id"))
    if profile is None and account is None and deal is None:
        raise InvalidInputError(
            _("A note is about a customer, an account or a deal"), field="profile_id"
        )
    mentioned = []
    for n, member_id in enumerate(dict.fromkeys(data.get("mentions") or [])):
        mentioned.append(_member(workspace, member_id, field=f"mentions.{n}"))
    author = actor_member(workspace, actor)
    with transaction.atomic():
        note = Note.objects.create(
            workspace=workspace,
            kind=data.get("kind") or "note",
            body=body,
            occurred_at=data.get("occurred_at") or timezone.now(),
            author=author,
            author_label=actor.label[:200],
            profile=profile,
            account=account,
            deal=deal,
        )
        if mentioned:
            note.mentions.set(mentioned)
        link = (
            f"/customers/{profile.pk}/"
            if profile
            else f"/accounts/{account.pk}/"
            if account
            else "/deals/"
        )
        for member in mentioned:
            if member != author:
                _notify(
                    workspace=workspace,
                    member=member,
                    kind="mention",
                    text=_("%(who)s mentioned you in a note") % {"who": actor.label},
                    link=link,
                    note=note,
                )
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="note.create",
            target=note,
            details={"kind": note.kind},
        )
    return note


def note_delete(*, note: Note, actor: Actor) -> None:
    with transaction.atomic():
        audit_log_record(
            workspace=note.workspace, actor=actor, action="note.delete", target=note, details={}
        )
        note.delete()


def notification_read(
    *, workspace: Workspace, member: Membership, notification_ids: list | None = None
) -> int:
    """Mark the member's notifications read (those given, or all)."""
    query = Notification.objects.filter(workspace=workspace, member=member, read_at__isnull=True)
    if notification_ids is not None:
        query = query.filter(pk__in=notification_ids)
    return query.update(read_at=timezone.now(), updated_at=timezone.now())


# --- Owners ---------------------------------------------------------------------------


def owner_set(
    *,
    workspace: Workspace,
    actor: Actor,
    member_id: Any,
    profile: Profile | None = None,
    account: Account | None = None,
) -> Owner | None:
    """Give a customer or an account an owner (a member), or none."""
    member = _member(workspace, member_id, field="member_id")
    subject = {"profile": profile} if profile is not None else {"account": account}
    with transaction.atomic():
        if member is None:
            Owner.objects.filter(workspace=workspace, **subject).delete()
            owner = None
        else:
            owner, _created = Owner.objects.update_or_create(
                workspace=workspace, **subject, defaults={"member": member}
            )
        target = profile if profile is not None else account
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="owner.set",
            target=target,
            details={"member": str(member.pk) if member else None},
        )
    return owner


def owners_assign(
    *,
    workspace: Workspace,
    actor: Actor,
    member_ids: list,
    profile_ids: list | None = None,
    account_ids: list | None = None,
    mode: str = "round_robin",
) -> dict[str, int]:
    """Give owners to many customers or accounts at once: each to the one member given,
    or in turn to the members given (round-robin, starting from the one who owns the
    fewest), all in one transaction."""
    if not member_ids:
        raise InvalidInputError(_("Name at least one member"), field="member_ids")
    members = [
        _member(workspace, m, field=f"member_ids.{n}")
        for n, m in enumerate(dict.fromkeys(member_ids))
    ]
    if mode == "one" and len(members) != 1:
        raise InvalidInputError(_("Mode one takes exactly one member"), field="member_ids")
    profile_ids = list(dict.fromkeys(profile_ids or []))
    account_ids = list(dict.fromkeys(account_ids or []))
    if not profile_ids and not account_ids:
        raise InvalidInputError(
            _("Name the customers or the accounts to assign"), field="profile_ids"
        )
    if len(profile_ids) + len(account_ids) > 10_000:
        raise InvalidInputError(_("At most 10,000 at a time"), field="profile_ids")
    profiles = {
        str(p.pk): p for p in Profile.objects.filter(workspace=workspace, pk__in=profile_ids)
    }
    accounts = {
        str(a.pk): a for a in Account.objects.filter(workspace=workspace, pk__in=account_ids)
    }
    for field, wanted, found in (
        ("profile_ids", profile_ids, profiles),
        ("account_ids", account_ids, accounts),
    ):
        for n, pk in enumerate(wanted):
            if str(pk) not in found:
                raise InvalidInputError(
                    _("No customer or account with id %(pk)s in this workspace") % {"pk": pk},
                    field=f"{field}.{n}",
                )
    loads = dict(
        Owner.objects.filter(workspace=workspace, member__in=members)
        .values("member")
        .annotate(n=Count("id"))
        .values_list("member", "n")
    )
    members.sort(key=lambda m: (loads.get(m.pk, 0), str(m.pk)))
    turn = itertools.cycle(members)
    with transaction.atomic():
        for subject_field, subjects in (("profile", profiles), ("account", accounts)):
            for pk in profile_ids if subject_field == "profile" else account_ids:
                Owner.objects.update_or_create(
                    workspace=workspace,
                    **{subject_field: subjects[str(pk)]},
                    defaults={"member": next(turn)},
                )
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="owner.assign",
            details={
                "members": [str(m.pk) for m in members],
                "profiles": len(profile_ids),
                "accounts": len(account_ids),
                "mode": mode,
            },
        )
    return {"profiles": len(profile_ids), "accounts": len(account_ids), "members": len(members)}


# --- Lead scoring -----------------------------------------------------------------------


SCORE_LIMIT = 200_000


def lead_model_train(*, workspace: Workspace, actor: Actor) -> LeadModel:
    """Learn the lead score from the won and lost deals (each customer as they were
    when their deal opened), judge it by cross-validation against the prior-only
    baseline, keep it as the next version, and score the leads with it."""
    from rapport.sales import leads

    closed = list(
        Deal.objects.filter(workspace=workspace, status__in=(StageKind.WON, StageKind.LOST))
        .filter(Q(profile__isnull=False) | Q(account__isnull=False))
        .values_list("profile_id", "account_id", "created_at", "status")
        .order_by("created_at", "id")
    )
    rows = leads.lead_rows(workspace=workspace, subjects=[(p, a, t) for p, a, t, _s in closed])
    won = [1 if status == StageKind.WON else 0 for *_rest, status in closed]
    try:
        params = leads.lead_fit(rows, won)
        metrics = leads.lead_cross_validate(rows, won)
    except leads.LeadTrainError as error:
        raise ConflictError(str(error), code="too_few_deals") from None
    with transaction.atomic():
        latest = LeadModel.objects.filter(workspace=workspace).order_by("-version").first()
        model = LeadModel.objects.create(
            workspace=workspace,
            version=(latest.version + 1) if latest else 1,
            deals=len(won),
            won=sum(won),
            params=params,
            metrics=metrics,
        )
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="lead_model.train",
            target=model,
            details={"roc_auc": metrics["roc_auc"], "deals": len(won)},
        )
    leads_score(workspace=workspace, model=model)
    return model


def leads_score(*, workspace: Workspace, model: LeadModel | None = None) -> int:
    """Score the leads (the customers with a deal, an owner or a company) with the
    latest model, now; a customer no longer among them keeps no score."""
    from rapport.sales import leads

    model = model or LeadModel.objects.filter(workspace=workspace).order_by("-version").first()
    if model is None:
        return 0
    from rapport.profiles.models import AccountMember

    ids = set(
        Deal.objects.filter(workspace=workspace, profile__isnull=False).values_list(
            "profile_id", flat=True
        )
    )
    ids |= set(
        Owner.objects.filter(workspace=workspace, profile__isnull=False).values_list(
            "profile_id", flat=True
        )
    )
    ids |= set(
        AccountMember.objects.filter(workspace=workspace).values_list("profile_id", flat=True)[
            :SCORE_LIMIT
        ]
    )
    live = list(
        Profile.objects.filter(
            workspace=workspace, pk__in=ids, merged_into__isnull=True
        ).values_list("pk", flat=True)[:SCORE_LIMIT]
    )
    now = timezone.now()
    rows = leads.lead_rows(workspace=workspace, subjects=[(p, None, now) for p in live])
    probabilities = leads.lead_predict(model.params, rows)
    scores = [
        LeadScore(
            profile_id=profile_id,
            workspace=workspace,
            model=model,
            probability=float(probability),
            reasons=leads.lead_reasons(model.params, row),
            scored_at=now,
        )
        for profile_id, row, probability in zip(live, rows, probabilities, strict=True)
    ]
    with transaction.atomic():
        LeadScore.objects.filter(workspace=workspace).exclude(profile_id__in=live).delete()
        LeadScore.objects.bulk_create(
            scores,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["profile"],
            update_fields=["model", "probability", "reasons", "scored_at"],
        )
    return len(scores)
