"""Writes of the journeys app: journeys and their versions, enrolments, and the runner
that walks customers through the steps.

The runner (`enrolments_advance`) takes due enrolments in batches and runs each until
it waits or ends, all in one transaction per batch: the claim (`SELECT ... FOR UPDATE
SKIP LOCKED` on PostgreSQL; a `claimed_until` lease on SQLite), every step's effect
(messages planned through the channels' exactly-once path, traits, segment lists),
the step log (`StepRun`, UNIQUE per enrolment, step and visit: a second run of a step
fails the whole batch, which then rolls back) and the enrolments' new positions. A
worker killed half-way leaves nothing half done: its transaction rolls back and the
rows are due again for the next worker.

Steps of one kind at one place of the graph run together for the whole batch (a
branch is one query for all the customers at it, a segment step one list write), so
a batch costs a few statements per step of the graph, not per customer.
"""

import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from rapport.core.bulk import rows_insert, rows_update
from rapport.core.errors import ConflictError, InvalidInputError, RapportError
from rapport.core.shares import stable_share
from rapport.journeys import graph as g
from rapport.journeys.models import Enrolment, Journey, JourneyVersion, StepRun
from rapport.profiles.models import Profile
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor, audit_log_record

logger = logging.getLogger(__name__)

# Enrolments a batch (one transaction); RAPPORT_JOURNEYS_BATCH overrides.
BATCH = 2000
# Steps one enrolment may run in one go: a graph has no loop without a wait
# (`journey_validate`), so this is only a guard against a graph that slipped through.
MAX_STEPS_AT_ONCE = 100
LEASE_SECONDS = 120


def _system() -> Actor:
    return Actor.system("journeys")


# --- journeys and versions --------------------------------------------------------------


def _copy_fields(journey: Journey, graph: g.Graph) -> None:
    journey.name = graph.name
    journey.description = graph.description
    journey.holdout_percent = graph.holdout_percent
    journey.goal = graph.goal.model_dump(mode="json") if graph.goal else {}
    journey.reentry = (graph.reentry or g.JourneyReentry()).model_dump(mode="json")
    journey.trigger = graph.trigger.model_dump(mode="json")
    journey.trigger_type = graph.trigger.type
    journey.trigger_event = graph.trigger.event if graph.trigger.type == "event" else ""
    journey.goal_event = (graph.goal.event or "") if graph.goal else ""


def _problems_raise(problems: list[dict[str, str]]) -> None:
    if problems:
        error = InvalidInputError(problems[0]["message"], field=problems[0]["path"])
        error.details = [{"field": p["path"], "message": p["message"]} for p in problems]
        raise error


def journey_create(*, workspace: Workspace, graph: dict, actor: Actor) -> Journey:
    """A draft journey from its graph (JOURNEY_SCHEMA.md); version 1."""
    parsed = g.graph_parse(graph)
    with transaction.atomic():
        journey = Journey(workspace=workspace, created_by=actor.label[:200], version=1)
        _copy_fields(journey, parsed)
        journey.save()
        JourneyVersion.objects.create(
            workspace=workspace,
            journey=journey,
            number=1,
            graph=g.graph_dump(parsed),
            created_by=actor.label[:200],
        )
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="journey.create",
            target=journey,
            details={"name": journey.name},
        )
    return journey


def journey_update(*, journey: Journey, graph: dict, actor: Actor) -> Journey:
    """A new version of the graph. Customers already in stay on the version they
    entered (move them with `journey_migrate`); new ones enter this one. A running
    journey takes only a graph that could start."""
    parsed = g.graph_parse(graph)
    if journey.status in (Journey.Status.ACTIVE, Journey.Status.PAUSED):
        _problems_raise(g.journey_validate(workspace=journey.workspace, graph=parsed))
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        number = locked.version + 1
        JourneyVersion.objects.create(
            workspace_id=locked.workspace_id,
            journey=locked,
            number=number,
            graph=g.graph_dump(parsed),
            created_by=actor.label[:200],
        )
        _copy_fields(locked, parsed)
        locked.version = number
        locked.save()
        audit_log_record(
            workspace=locked.workspace,
            actor=actor,
            action="journey.update",
            target=locked,
            details={"version": number},
        )
    return locked


def journey_version(journey: Journey, number: int | None = None) -> JourneyVersion:
    return JourneyVersion.objects.get(journey=journey, number=number or journey.version)


def journey_migrate(
    *,
    journey: Journey,
    from_version: int,
    version: int | None = None,
    mapping: dict[str, str] | None = None,
    actor: Actor,
) -> int:
    """Move the live enrolments on `from_version` to `version` (the current one by
    default). `mapping` names the new step for an old step key; a key left out keeps
    its name, and must exist in the new graph. Customers waiting keep their timer;
    one whose step has no place in the new graph is refused, nothing moved."""
    target = journey_version(journey, version)
    source = journey_version(journey, from_version)
    new_graph = g.graph_parse(target.graph)
    mapping = dict(mapping or {})
    live = Enrolment.objects.filter(journey=journey, version=source, state__in=Enrolment.LIVE)
    with transaction.atomic():
        rows = list(live.select_for_update().values("pk", "step", "resume", "state", "waiting_for"))
        updates = []
        for row in rows:
            if row["state"] == Enrolment.State.HELD_OUT:
                updates.append({"id": row["pk"], "version_id": target.pk, "step": row["step"]})
                continue
            step = mapping.get(row["step"], row["step"])
            if step not in new_graph.steps:
                raise InvalidInputError(
                    gettext("no step %(key)s in version %(number)s: map it to one that is")
                    % {"key": row["step"], "number": target.number},
                    field=f"mapping.{row['step']}",
                )
            updates.append({"id": row["pk"], "version_id": target.pk, "step": step})
        # Where a waiting customer goes next is the new graph's: its step's way out.
        for chunk in _chunks(updates, 5000):
            rows_update(Enrolment, chunk, fields=["version_id", "step"])
        waiting = Enrolment.objects.filter(
            journey=journey, version=target, state=Enrolment.State.ACTIVE, resume__isnull=False
        )
        for key, step in new_graph.steps.items():
            outs = dict(g.targets(step))
            if isinstance(step, g.WaitEventStep):
                waiting.filter(step=key).exclude(waiting_for="").update(
                    resume=step.timeout_next or "", waiting_for=step.event
                )
                waiting.filter(step=key, waiting_for="").update(resume=step.next or "")
            elif "next" in outs:
                waiting.filter(step=key).update(resume=outs["next"] or "")
        audit_log_record(
            workspace=journey.workspace,
            actor=actor,
            action="journey.migrate",
            target=journey,
            details={"from": source.number, "to": target.number, "moved": len(updates)},
        )
    return len(updates)


def journey_start(*, journey: Journey, actor: Actor) -> Journey:
    """Start (or resume) the journey once it validates."""
    current = journey_version(journey)
    _problems_raise(g.journey_validate(workspace=journey.workspace, graph=current.graph))
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        resumed = locked.status == Journey.Status.PAUSED
        locked.status = Journey.Status.ACTIVE
        locked.started_at = locked.started_at or timezone.now()
        locked.stopped_at = None
        locked.save()
        audit_log_record(
            workspace=locked.workspace,
            actor=actor,
            action="journey.resume" if resumed else "journey.start",
            target=locked,
        )
        if resumed:
            _runner_enqueue(locked.workspace_id)
    return locked


def journey_pause(*, journey: Journey, actor: Actor) -> Journey:
    """Due steps wait until the journey is started again; nobody new enters. Goals
    still count."""
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        if locked.status != Journey.Status.ACTIVE:
            raise ConflictError(gettext("only an active journey can be paused"))
        locked.status = Journey.Status.PAUSED
        locked.save()
        audit_log_record(
            workspace=locked.workspace, actor=actor, action="journey.pause", target=locked
        )
    return locked


def journey_stop(*, journey: Journey, actor: Actor) -> Journey:
    """Every customer still in exits; the journey takes nobody new until started."""
    now = timezone.now()
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        locked.status = Journey.Status.STOPPED
        locked.stopped_at = now
        locked.save()
        exited = Enrolment.objects.filter(journey=locked, state__in=Enrolment.LIVE).update(
            state=Enrolment.State.EXITED,
            exit_reason="stopped",
            exited_at=now,
            due_at=None,
            waiting_for="",
            updated_at=now,
        )
        audit_log_record(
            workspace=locked.workspace,
            actor=actor,
            action="journey.stop",
            target=locked,
            details={"exited": exited},
        )
    return locked


# --- enrolment --------------------------------------------------------------------------


def held_out(journey: Journey, profile_id: Any) -> bool:
    return stable_share("holdout", journey.pk, profile_id) < journey.holdout_percent


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def enrolments_create_many(
    *, journey: Journey, profile_ids: list, now: datetime | None = None
) -> list[Enrolment]:
    """Enrol these customers (ids of this workspace's live profiles; others are
    ignored) in an active journey, by its re-entry rule; returns the enrolments made.
    Customers already in, or refused by re-entry, are left out; two callers at once
    enrol a customer once (UNIQUE live enrolment per journey and customer). The runner
    is woken to run their first steps."""
    if journey.status != Journey.Status.ACTIVE or not profile_ids:
        return []
    now = now or timezone.now()
    version = journey_version(journey)
    parsed = _graph(version.pk)
    wanted = list(dict.fromkeys(str(p) for p in profile_ids))
    made: list[Enrolment] = []
    mode = (journey.reentry or {}).get("mode", "never")
    days = (journey.reentry or {}).get("days") or 0
    within = (journey.goal or {}).get("within_days")
    for chunk in _chunks(wanted, 5000):
        ids = set(
            Profile.objects.filter(
                workspace_id=journey.workspace_id, pk__in=chunk, merged_into__isnull=True
            ).values_list("pk", flat=True)
        )
        before = Enrolment.objects.filter(journey=journey, profile_id__in=ids)
        if mode == "never":
            taken = set(before.values_list("profile_id", flat=True))
        elif mode == "after_days":
            taken = set(
                before.filter(
                    Q(state__in=Enrolment.LIVE) | Q(entered_at__gt=now - timedelta(days=days))
                ).values_list("profile_id", flat=True)
            )
        else:
            taken = set(
                before.filter(state__in=Enrolment.LIVE).values_list("profile_id", flat=True)
            )
        rows = []
        for profile_id in sorted(ids - taken, key=str):
            out = held_out(journey, profile_id)
            goal_until = now + timedelta(days=within) if within else None
            rows.append(
                Enrolment(
                    workspace_id=journey.workspace_id,
                    journey=journey,
                    version=version,
                    profile_id=profile_id,
                    state=Enrolment.State.HELD_OUT if out else Enrolment.State.ACTIVE,
                    holdout=out,
                    step="" if out else parsed.start,
                    visit=1,
                    visits={} if out else {parsed.start: 1},
                    # A held-out customer is only watched for the goal, until its window ends.
                    due_at=goal_until if out else now,
                    entered_at=now,
                    goal_until=goal_until,
                )
            )
        if not rows:
            continue
        with transaction.atomic():
            Enrolment.objects.bulk_create(rows, ignore_conflicts=True)
            # Those another caller enrolled first collided with the live-enrolment index.
            created = set(
                Enrolment.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", flat=True)
            )
            made += [r for r in rows if r.pk in created]
            if created:
                _runner_enqueue(journey.workspace_id)
    return made


def enrolment_create(
    *, journey: Journey, profile: Profile, actor: Actor, now: datetime | None = None
) -> Enrolment:
    """Enrol one customer (the API's explicit enrolment); ConflictError when the
    journey is not running, the customer is in it, or its re-entry rule says no."""
    if journey.status != Journey.Status.ACTIVE:
        raise ConflictError(gettext("the journey is not running: start it first"))
    if profile.workspace_id != journey.workspace_id:
        raise InvalidInputError(gettext("No such profile in this workspace"), field="profile_id")
    made = enrolments_create_many(journey=journey, profile_ids=[profile.pk], now=now)
    if not made:
        raise ConflictError(
            gettext("this customer is in the journey already, or may not enter it again yet")
        )
    audit_log_record(
        workspace=journey.workspace,
        actor=actor,
        action="journey.enrol",
        target=journey,
        details={"profile_id": str(profile.pk)},
    )
    return made[0]


# --- the runner -------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _graph_cached(version_id: Any) -> g.Graph:
    graph = JourneyVersion.objects.values_list("graph", flat=True).get(pk=version_id)
    return g.graph_parse(graph)


def _graph(version_id: Any) -> g.Graph:
    """A version's parsed graph (versions never change once written)."""
    return _graph_cached(version_id)


@dataclass
class _Run:
    """One batch: the enrolments, what they need read once, and what to write."""

    workspace_id: Any
    now: datetime
    enrolments: list[Enrolment]
    journeys: dict
    runs: list[dict] = field(default_factory=list)
    profiles: dict | None = None
    zone: Any = None
    templates: dict = field(default_factory=dict)
    counts: dict = field(default_factory=lambda: defaultdict(int))

    def profile(self, profile_id: Any) -> Profile:
        if self.profiles is None:
            self.profiles = Profile.objects.in_bulk([e.profile_id for e in self.enrolments])
        return self.profiles[profile_id]

    def log(self, enrolment: Enrolment, outcome: str, detail: dict | None = None) -> None:
        self.runs.append(
            {
                "workspace_id": enrolment.workspace_id,
                "journey_id": enrolment.journey_id,
                "enrolment_id": enrolment.pk,
                "step": enrolment.step,
                "visit": enrolment.visit,
                "outcome": outcome[:60],
                "detail": detail or {},
                "at": self.now,
            }
        )
        self.counts["steps"] += 1


def _goto(e: Enrolment, target: str | None, run: _Run) -> bool:
    """Move to `target` (None or "": the end); True when there is a step to run."""
    e.resume = None
    e.waiting_for = ""
    if not target:
        e.state = Enrolment.State.COMPLETED
        e.exit_reason = "end"
        e.exited_at = run.now
        e.due_at = None
        run.counts["completed"] += 1
        return False
    visit = int(e.visits.get(target, 0)) + 1
    e.visits = {**e.visits, target: visit}
    e.step, e.visit, e.due_at = target, visit, run.now
    return True


def _wait(e: Enrolment, until: datetime, resume: str | None, waiting_for: str = "") -> None:
    e.resume = resume or ""
    e.waiting_for = waiting_for
    e.due_at = until


def next_time_of_day(*, at: str, zone: Any, now: datetime) -> datetime:
    """The next moment (after now) the clock in `zone` shows `at` ("HH:MM")."""
    hours, minutes = (int(x) for x in at.split(":"))
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), time(hours, minutes), tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(
            local.date() + timedelta(days=1), time(hours, minutes), tzinfo=zone
        )
    return candidate.astimezone(now.tzinfo)


def _zone_of(run: _Run, profile_id: Any):
    from rapport.channels.rules import _zone, policy_of

    if run.zone is None:
        run.zone = policy_of(run.workspace_id).timezone
    traits = run.profile(profile_id).traits or {}
    return _zone(traits.get("timezone"), run.zone)


def _messages(
    run: _Run,
    group: list[Enrolment],
    *,
    channel: str,
    purpose: str,
    outcome: str,
    template_id: str | None = None,
    content: dict | None = None,
    own_content: Any = None,
) -> None:
    """A message to each customer of the group through the channels' exactly-once path
    (one row per idempotency key `journey:{enrolment}:{step}:{visit}`), sent by the
    channels' batch tasks. Held-out customers get nothing."""
    from rapport.channels.models import Template
    from rapport.channels.services import messages_create_many

    sending = [e for e in group if not e.holdout]
    for e in group:
        if e.holdout:
            run.log(e, "held_out")
    if not sending:
        return
    template = None
    try:
        if template_id:
            if template_id not in run.templates:
                run.templates[template_id] = Template.objects.filter(
                    workspace_id=run.workspace_id, pk=template_id
                ).first()
            template = run.templates[template_id]
            if template is None:
                raise InvalidInputError(
                    gettext("No template with id %(pk)s in this workspace") % {"pk": template_id},
                    field="template_id",
                )
        keys = {e.pk: f"journey:{e.pk}:{e.step}:{e.visit}" for e in sending}
        made = messages_create_many(
            workspace=Workspace(pk=run.workspace_id),
            channel=channel,
            purpose=purpose,
            template=template,
            content=content,
            items=[
                {
                    "profile_id": e.profile_id,
                    "idempotency_key": keys[e.pk],
                    **({"content": own_content(e)} if own_content else {}),
                }
                for e in sending
            ],
        )
    except RapportError as error:
        for e in sending:
            run.log(e, "failed", {"error": error.message})
        return
    for e in sending:
        message = made.get(keys[e.pk])
        if message is None:
            run.log(e, "failed")
            continue
        run.counts["sent"] += 1
        run.log(e, outcome, {"message_id": str(message.pk), "channel": channel})


def _send(run: _Run, group: list[Enrolment], step: g.SendStep) -> None:
    if step.decided:
        _send_decided(run, group, step)
        return
    _messages(
        run,
        group,
        channel=step.channel,
        purpose=step.purpose or "marketing",
        outcome="sent",
        template_id=step.template_id,
        content=step.content.model_dump() if step.content else None,
    )


def _send_decided(run: _Run, group: list[Enrolment], step: g.SendStep) -> None:
    """A send whose content the decision engine chooses for each customer (origin
    `journey`, the step's channel and placement): the action's content for the channel
    or its template, the decision's id on the message (its opens and clicks are the
    action's impressions and clicks). A customer given nothing (a control customer,
    nothing eligible, no consent) gets the step's own content when it has some, else
    nothing: logged `no_action`, and on to the next step. A step run again (a batch
    retried) finds its messages by their idempotency keys and decides nothing more."""
    from rapport.channels.models import Message, Template
    from rapport.channels.services import messages_create_many
    from rapport.decisions.messages import decide_content

    sending = [e for e in group if not e.holdout]
    for e in group:
        if e.holdout:
            run.log(e, "held_out")
    if not sending:
        return
    keys = {e.pk: f"journey:{e.pk}:{e.step}:{e.visit}" for e in sending}
    made = dict(
        Message.objects.filter(
            workspace_id=run.workspace_id, idempotency_key__in=list(keys.values())
        ).values_list("idempotency_key", "pk")
    )
    fallback: dict[str, Any] = {}
    if step.template_id:
        fallback["template"] = Template.objects.filter(
            workspace_id=run.workspace_id, pk=step.template_id
        ).first()
    elif step.content is not None:
        fallback["content"] = step.content.model_dump()
    workspace = Workspace(pk=run.workspace_id)
    items: list[dict] = []
    details: dict[Any, dict] = {}
    for e in sending:
        key = keys[e.pk]
        if key in made:
            continue
        result, candidate, template, content = decide_content(
            workspace=workspace,
            profile=run.profile(e.profile_id),
            channel=step.channel,
            placement=step.placement,
            origin="journey",
            context={"journey_id": str(e.journey_id), "step": e.step},
            now=run.now,
        )
        # No decision id: the customer was erased meanwhile (the send is skipped too).
        detail = {
            "decision_id": str(result.decision_id) if result.decision_id else None,
            "control": result.control,
        }
        item: dict[str, Any] = {
            "profile_id": e.profile_id,
            "idempotency_key": key,
            "decision_id": result.decision_id,
        }
        if candidate is not None:
            detail["action"] = candidate.key
            item["decision_action"] = candidate.key
            item.update({"template": template} if template is not None else {"content": content})
        elif fallback.get("template") or fallback.get("content"):
            item.update(fallback)
        else:
            run.log(e, "no_action", detail)
            continue
        details[e.pk] = detail
        items.append(item)

    def create(batch: list[dict]) -> dict:
        return messages_create_many(
            workspace=workspace,
            channel=step.channel,
            purpose=step.purpose or "marketing",
            items=batch,
        )

    errors: dict[str, str] = {}
    try:
        created = create(items) if items else {}
    except RapportError:
        # One action's content refused (an email action with no subject...): the others
        # are sent, that customer's step fails.
        created = {}
        for item in items:
            try:
                created.update(create([item]))
            except RapportError as error:
                errors[item["idempotency_key"]] = error.message
    for e in sending:
        key = keys[e.pk]
        if key in made:
            run.log(e, "sent", {"message_id": str(made[key]), "channel": step.channel})
            run.counts["sent"] += 1
            continue
        if e.pk not in details:
            continue  # logged `no_action`
        message = created.get(key)
        if message is None:
            run.log(e, "failed", {**details[e.pk], "error": errors.get(key, "")})
            continue
        run.counts["sent"] += 1
        run.log(
            e, "sent", {"message_id": str(message.pk), "channel": step.channel, **details[e.pk]}
        )


def _webhook(run: _Run, group: list[Enrolment], step: g.WebhookStep, journey_name: str) -> None:
    """A signed POST through the channels' webhook transport (a message of its own,
    sent exactly once by its idempotency key, retried on the send path's backoff)."""
    import json

    def body(e: Enrolment) -> dict:
        text = json.dumps(
            {
                "journey_id": str(e.journey_id),
                "journey": journey_name,
                "enrolment_id": str(e.pk),
                "step": e.step,
                "profile_id": str(e.profile_id),
            }
        )
        return {"url": step.url, "text": text}

    _messages(
        run, group, channel="webhook", purpose="transactional", outcome="called", own_content=body
    )


def _branch(run: _Run, group: list[Enrolment], step: g.BranchStep) -> dict:
    from rapport.segments.compiler import Context, rule_profiles
    from rapport.segments.rules import rule_parse

    rule = rule_parse(step.rule)
    ids = [e.profile_id for e in group]
    ctx = Context(workspace_id=run.workspace_id, now=run.now, profile_ids=ids)
    yes = set(rule_profiles(rule, ctx).values_list("pk", flat=True))
    return {e.pk: e.profile_id in yes for e in group}


def _segment(run: _Run, group: list[Enrolment], step: g.SegmentStep) -> str:
    from rapport.segments.models import Segment
    from rapport.segments.services import segment_members_add, segment_members_remove

    segment = Segment.objects.filter(workspace_id=run.workspace_id, pk=step.segment_id).first()
    if segment is None:
        return "failed"
    ids = [str(e.profile_id) for e in group]
    try:
        if step.type == "segment_add":
            segment_members_add(segment=segment, values=ids, actor=_system())
        else:
            segment_members_remove(segment=segment, profile_ids=ids, actor=_system())
    except RapportError:
        return "failed"
    return "added" if step.type == "segment_add" else "removed"


def _trait(run: _Run, group: list[Enrolment], step: g.UpdateTraitStep) -> None:
    from rapport.profiles.services import profile_traits_edit

    workspace = Workspace.objects.get(pk=run.workspace_id)
    for e in group:
        try:
            profile_traits_edit(
                workspace=workspace,
                profile=run.profile(e.profile_id),
                changes={step.trait: step.value},
                actor=_system(),
                can_see_pii=True,
            )
        except RapportError as error:
            run.log(e, "failed", {"error": error.message})
            continue
        run.log(e, "updated", {"trait": step.trait})


def _render_title(title: str, profile: Profile) -> str:
    traits = profile.traits or {}
    out = title
    for name in ("first_name", "last_name", "name", "email"):
        out = out.replace("{{ customer." + name + " }}", str(traits.get(name) or ""))
    return out


def _step_group(run: _Run, key: tuple, group: list[Enrolment]) -> list[Enrolment]:
    """Run one step for everyone at it; returns those that go on to another step."""
    version_id, step_key = key
    graph = _graph(version_id)
    step = graph.steps.get(step_key)
    going: list[Enrolment] = []
    if step is None:  # a migration left someone at a step the graph no longer has
        for e in group:
            run.log(e, "missing")
            _exit(e, run, "missing_step")
        return going

    def then(e: Enrolment, target: str | None) -> None:
        if _goto(e, target, run):
            going.append(e)

    kind = step.type
    if kind in g.WAIT_KINDS:
        # A wait begun: its timer is set (its run is logged when it ends).
        run.counts["waits"] += len(group)
    if kind == "exit":
        for e in group:
            run.log(e, "exit")
            _goto(e, None, run)
    elif kind == "wait":
        for e in group:
            _wait(e, run.now + timedelta(seconds=step.seconds), step.next)
    elif kind == "wait_until":
        for e in group:
            _wait(
                e,
                next_time_of_day(at=step.time, zone=_zone_of(run, e.profile_id), now=run.now),
                step.next,
            )
    elif kind == "wait_event":
        for e in group:
            _wait(
                e, run.now + timedelta(seconds=step.timeout_seconds), step.timeout_next, step.event
            )
    elif kind == "branch":
        answers = _branch(run, group, step)
        for e in group:
            yes = answers[e.pk]
            run.log(e, "yes" if yes else "no")
            then(e, step.yes if yes else step.no)
    elif kind == "split":
        for e in group:
            share = stable_share("split", e.journey_id, e.profile_id, step_key)
            for i, path in enumerate(step.paths):
                share -= path.share
                if share < 0 or i == len(step.paths) - 1:
                    break
            label = path.label or str(i)
            e.path = label[:100]
            run.log(e, f"path:{label}"[:60], {"path": i})
            then(e, path.next)
    elif kind == "send":
        _send(run, group, step)
        for e in group:
            then(e, step.next)
    elif kind == "webhook":
        _webhook(run, group, step, run.journeys[group[0].journey_id].name)
        for e in group:
            then(e, step.next)
    elif kind == "update_trait":
        _trait(run, group, step)
        for e in group:
            then(e, step.next)
    elif kind in ("segment_add", "segment_remove"):
        outcome = _segment(run, group, step)
        for e in group:
            run.log(e, outcome, {"segment_id": step.segment_id})
            then(e, step.next)
    elif kind == "create_task":
        _tasks(run, group, step)
        for e in group:
            then(e, step.next)
    return going


def _tasks(run: _Run, group: list[Enrolment], step) -> None:
    """A task per customer in the sales app: for the member the step names, else the
    customer's owner, else nobody yet (the team's unassigned tasks). A step run again
    after a crash finds its task by its key instead of making a second."""
    from rapport.sales import selectors as sales_selectors
    from rapport.sales import services as sales

    workspace = Workspace.objects.get(pk=run.workspace_id)
    journey_name = run.journeys[group[0].journey_id].name
    actor = Actor.system(f"journey: {journey_name}"[:200])
    for e in group:
        profile = run.profile(e.profile_id)
        assignee = step.assignee_id
        if assignee is None:
            owner = sales_selectors.owner_of(workspace=workspace, profile_id=e.profile_id)
            assignee = owner.pk if owner else None
        due = run.now + timedelta(days=step.due_in_days)
        task = sales.task_create(
            workspace=workspace,
            actor=actor,
            data={
                "title": _render_title(step.title, profile)[:200],
                "due_at": due,
                "profile_id": e.profile_id,
                "assignee_id": assignee,
            },
            journey_key=f"{e.pk}:{e.step}:{e.visit}",
        )
        run.log(e, "task_created", {"task_id": str(task.pk), "title": task.title})


_MOVING = ("state", "step", "visit", "visits", "resume", "due_at", "waiting_for", "path")


def _step_group_safely(run: _Run, key: tuple, group: list[Enrolment]) -> list[Enrolment]:
    """`_step_group` in a savepoint. A step that fails for a reason no retry would
    mend (a rule naming a segment since deleted, a bug) must not stall the runner on
    the same due rows batch after batch: what it did is rolled back and its customers
    leave the journey (`exited`, reason `error`, the error in the step log)."""
    before = [(e, {f: getattr(e, f) for f in _MOVING}) for e in group]
    logged = len(run.runs)
    try:
        with transaction.atomic():
            return _step_group(run, key, group)
    except Exception as error:
        logger.exception("journey step %s failed for %s customers", key[1], len(group))
        del run.runs[logged:]
        for e, fields in before:
            for name, value in fields.items():
                setattr(e, name, value)
            run.log(e, "error", {"error": str(error)[:500]})
            _exit(e, run, "error")
        return []


def _exit(e: Enrolment, run: _Run, reason: str, state: str = Enrolment.State.EXITED) -> None:
    e.state = state
    e.exit_reason = reason
    e.exited_at = run.now
    e.due_at = None
    e.resume = None
    e.waiting_for = ""
    run.counts[state] += 1


def _walk(run: _Run) -> None:
    """Run every enrolment of the batch until it waits or ends."""
    ready: list[Enrolment] = []
    for e in run.enrolments:
        if e.state == Enrolment.State.HELD_OUT:
            # A held-out customer's goal window has ended.
            _exit(e, run, "holdout_window", Enrolment.State.COMPLETED)
            continue
        if e.resume is not None:
            # The wait at `step` is over: log it, then go where it leads.
            step = _graph(e.version_id).steps.get(e.step)
            outcome = "waited"
            if isinstance(step, g.WaitEventStep):
                outcome = "timeout" if e.waiting_for else "event"
            run.log(e, outcome)
            if _goto(e, e.resume, run):
                ready.append(e)
            continue
        ready.append(e)
    rounds = 0
    while ready and rounds < MAX_STEPS_AT_ONCE:
        rounds += 1
        groups: dict[tuple, list[Enrolment]] = defaultdict(list)
        for e in ready:
            groups[(e.version_id, e.step)].append(e)
        ready = []
        for key, group in groups.items():
            ready += _step_group_safely(run, key, group)
    # Left over by the guard: due again at once, for the next batch.
    for e in ready:
        e.due_at = run.now


_FIELDS = [
    "state",
    "step",
    "visit",
    "visits",
    "resume",
    "due_at",
    "waiting_for",
    "claimed_until",
    "path",
    "exited_at",
    "exit_reason",
    "updated_at",
]


def _claim(workspace_id: Any, now: datetime, limit: int) -> list[Enrolment]:
    paused = list(
        Journey.objects.filter(workspace_id=workspace_id)
        .exclude(status=Journey.Status.ACTIVE)
        .values_list("pk", flat=True)
    )
    due = Enrolment.objects.filter(
        workspace_id=workspace_id,
        state__in=Enrolment.LIVE,
        due_at__isnull=False,
        due_at__lte=now,
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    if paused:
        # Held-out customers' windows end whatever the journey's status.
        due = due.exclude(Q(journey_id__in=paused) & Q(state=Enrolment.State.ACTIVE))
    due = due.order_by("due_at")
    if connection.vendor == "postgresql":
        return list(due.select_for_update(skip_locked=True, of=("self",))[:limit])
    # SQLite: one writer at a time; the lease marks the rows as this run's.
    token = now + timedelta(seconds=LEASE_SECONDS, microseconds=random.randint(1, 999_999))  # noqa: S311
    ids = list(due.values_list("pk", flat=True)[:limit])
    Enrolment.objects.filter(pk__in=ids).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    ).update(claimed_until=token)
    return list(Enrolment.objects.filter(pk__in=ids, claimed_until=token))


def enrolments_advance(
    *, workspace_id: Any, limit: int = BATCH, now: datetime | None = None
) -> dict[str, int]:
    """Run one batch of due enrolments of the workspace; returns counts (`claimed`,
    `steps`, `sent`, `completed`, ...). Call again while `claimed` is `limit`."""
    now = now or timezone.now()
    with transaction.atomic():
        enrolments = _claim(workspace_id, now, limit)
        if not enrolments:
            return {"claimed": 0, "steps": 0}
        journeys = Journey.objects.in_bulk({e.journey_id for e in enrolments})
        run = _Run(workspace_id=workspace_id, now=now, enrolments=enrolments, journeys=journeys)
        _walk(run)
        # The step log first: a step already logged (another runner got here) fails the
        # batch, and everything above rolls back with it.
        for chunk in _chunks(run.runs, 5000):
            rows_insert(StepRun, chunk, conflict=())
        rows = [
            {
                "id": e.pk,
                "state": e.state,
                "step": e.step,
                "visit": e.visit,
                "visits": e.visits,
                "resume": e.resume,
                "due_at": e.due_at,
                "waiting_for": e.waiting_for,
                "claimed_until": None,
                "path": e.path,
                "exited_at": e.exited_at,
                "exit_reason": e.exit_reason,
                "updated_at": now,
            }
            for e in enrolments
        ]
        rows_update(Enrolment, rows, fields=_FIELDS)
    counts = dict(run.counts)
    counts["claimed"] = len(enrolments)
    counts.setdefault("steps", 0)
    return counts


def enrolments_advance_all(
    *, workspace_id: Any, limit: int | None = None, seconds: float = 10.0
) -> dict[str, int]:
    """Batches until nothing is due (or `seconds` have passed: the task enqueues
    itself again)."""
    import time as clock

    limit = limit or getattr(settings, "RAPPORT_JOURNEYS_BATCH", BATCH)
    started = clock.monotonic()
    total: dict[str, int] = defaultdict(int)
    while True:
        counts = enrolments_advance(workspace_id=workspace_id, limit=limit)
        for name, value in counts.items():
            total[name] += value
        if counts["claimed"] < limit:
            return dict(total)
        if clock.monotonic() - started > seconds:
            total["more"] = 1
            return dict(total)


def _runner_enqueue(workspace_id: Any, *, at: datetime | None = None) -> None:
    """Wake the runner for this workspace (at `at`, or now), in the caller's
    transaction: one task waiting is enough, however many enrolments were made."""
    from rapport.journeys import tasks

    if getattr(settings, "RAPPORT_JOURNEYS_ENQUEUE", True) is False:
        return
    try:
        from django_tasks_db.models import DBTaskResult, get_date_max

        soon = Q(run_after=get_date_max()) | Q(run_after__lte=at or timezone.now())
        if DBTaskResult.objects.filter(
            soon,
            status="READY",
            task_path=tasks.journeys_advance.module_path,
            args_kwargs__kwargs__workspace_id=str(workspace_id),
        ).exists():
            return
    except Exception:  # another task backend: enqueue every time
        logger.debug("no database task queue to look in", exc_info=True)
    task = tasks.journeys_advance if at is None else tasks.journeys_advance.using(run_after=at)
    task.enqueue(workspace_id=str(workspace_id))


# A timer due within this many seconds of a run gets a task of its own at its time;
# later ones wait for the periodic run (RAPPORT_JOURNEYS_RUN_SECONDS).
WAKE_AHEAD_SECONDS = 60


def runner_wake_next(*, workspace_id: Any, now: datetime | None = None) -> datetime | None:
    """After a run: the next timer of the workspace, if it is soon, gets a task at its
    time (one index probe)."""
    now = now or timezone.now()
    paused = Journey.objects.filter(workspace_id=workspace_id).exclude(status=Journey.Status.ACTIVE)
    nearest = (
        Enrolment.objects.filter(
            workspace_id=workspace_id, state__in=Enrolment.LIVE, due_at__isnull=False
        )
        .exclude(Q(journey_id__in=paused.values("pk")) & Q(state=Enrolment.State.ACTIVE))
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    if nearest is None or nearest > now + timedelta(seconds=WAKE_AHEAD_SECONDS):
        return None
    _runner_enqueue(workspace_id, at=max(nearest, now))
    return nearest


# --- events: triggers, event waits, goals -------------------------------------------------


def _current_profiles(workspace_id: Any, profile_ids: set) -> dict:
    """Each profile id as the customer it now is (following merges)."""
    found = dict(
        Profile.objects.filter(workspace_id=workspace_id, pk__in=profile_ids).values_list(
            "pk", "merged_into_id"
        )
    )
    out = {}
    for pid in profile_ids:
        current, hops = pid, 0
        while found.get(current) is not None and hops < 5:
            current, hops = found[current], hops + 1
            if current not in found:
                found.update(Profile.objects.filter(pk=current).values_list("pk", "merged_into_id"))
        out[pid] = current
    return out


def _where_matching(workspace_id: Any, event_ids: list, where: list, now: datetime) -> set:
    """The events among these whose properties meet every `where` condition."""
    from rapport.ingest.models import Event
    from rapport.segments.compiler import Context, json_compare
    from rapport.segments.rules import PropertyCondition

    if not where:
        return set(event_ids)
    ctx = Context(workspace_id=workspace_id, now=now)
    query = Event.objects.filter(workspace_id=workspace_id, pk__in=event_ids)
    for raw in where:
        c = raw if isinstance(raw, PropertyCondition) else PropertyCondition.model_validate(raw)
        query = query.filter(json_compare("properties", c.property, c.op, c.value, ctx))
    return set(query.values_list("pk", flat=True))


def journeys_from_events(workspace_id: Any, events: list) -> dict[str, int]:
    """The pipeline's consumer (after segments): events that enrol customers in
    journeys triggered by them, wake the customers waiting for them (`wait_event`:
    due now, to the step's `next`), and meet goals (the enrolment ends `converted`, even
    mid-wait). Rule goals are checked for the events' customers too. One transaction
    with the consumer's step: run once per batch."""
    from rapport.ingest.models import Event

    counts = {"enrolled": 0, "woken": 0, "converted": 0}
    journeys = list(
        Journey.objects.filter(
            workspace_id=workspace_id,
            status__in=(Journey.Status.ACTIVE, Journey.Status.PAUSED),
        )
    )
    if not journeys:
        return counts
    now = timezone.now()
    tracks = [e for e in events if getattr(e, "type", "") == "track" and e.event]
    names = {e.event for e in tracks}
    triggered = [
        j
        for j in journeys
        if j.status == Journey.Status.ACTIVE
        and j.trigger_type == "event"
        and j.trigger_event in names
    ]
    goal_names = {j.goal_event for j in journeys if j.goal_event} & names
    rule_goals = [j for j in journeys if (j.goal or {}).get("rule")]
    # One index probe per name (a partial index of the waiting), however many wait.
    waiting = Enrolment.objects.filter(
        workspace_id=workspace_id, state=Enrolment.State.ACTIVE
    ).exclude(waiting_for="")
    waited = {name for name in names if waiting.filter(waiting_for=name).exists()}
    wanted_names = {j.trigger_event for j in triggered} | goal_names | waited
    rows = []
    if wanted_names:
        rows = list(
            Event.objects.filter(
                workspace_id=workspace_id,
                pk__in=[e.id for e in tracks if e.event in wanted_names],
                profile_id__isnull=False,
            ).values("pk", "event", "timestamp", "profile_id")
        )
    current = _current_profiles(workspace_id, {r["profile_id"] for r in rows})
    for r in rows:
        r["profile_id"] = current[r["profile_id"]]

    # 1. Enrolment by an event trigger.
    for j in triggered:
        mine = [r for r in rows if r["event"] == j.trigger_event]
        ok = _where_matching(workspace_id, [r["pk"] for r in mine], j.trigger.get("where"), now)
        made = enrolments_create_many(
            journey=j, profile_ids=[r["profile_id"] for r in mine if r["pk"] in ok], now=now
        )
        counts["enrolled"] += len(made)

    # 2. Goals met by an event: the live enrolments of these customers end converted.
    for j in journeys:
        if j.goal_event not in goal_names:
            continue
        mine = [r for r in rows if r["event"] == j.goal_event]
        ok = _where_matching(workspace_id, [r["pk"] for r in mine], j.goal.get("where"), now)
        by_profile: dict = {}
        for r in mine:
            if r["pk"] in ok:
                by_profile[r["profile_id"]] = min(
                    by_profile.get(r["profile_id"], r["timestamp"]), r["timestamp"]
                )
        counts["converted"] += _convert(j, by_profile, now)

    # 3. Rule goals: these customers, checked against the rule.
    if rule_goals:
        from rapport.identity.services import events_profiles_resolved
        from rapport.segments.compiler import Context, rule_profiles
        from rapport.segments.rules import rule_parse

        ids = [e.id for e in events]
        # Resolution in this run says where the events went; else the events do.
        resolved = events_profiles_resolved(ids)
        if resolved is not None:
            batch_profiles = set(resolved.values()) | {
                e.profile_id for e in events if e.id not in resolved and e.profile_id
            }
        else:
            batch_profiles = set(
                Event.objects.filter(pk__in=ids, profile_id__isnull=False).values_list(
                    "profile_id", flat=True
                )
            )
        batch_profiles = set(_current_profiles(workspace_id, batch_profiles).values())
        for j in rule_goals:
            live = set(
                Enrolment.objects.filter(journey=j, profile_id__in=batch_profiles)
                .filter(goal_watched(now))
                .values_list("profile_id", flat=True)
            )
            if not live:
                continue
            ctx = Context(workspace_id=workspace_id, now=now, profile_ids=list(live))
            met = rule_profiles(rule_parse(j.goal["rule"], field="goal.rule"), ctx).values_list(
                "pk", flat=True
            )
            counts["converted"] += _convert(j, {pid: now for pid in met}, now)

    # 4. Event waits: due now, to the step's `next`.
    if waited:
        counts["woken"] += _wake(workspace_id, [r for r in rows if r["event"] in waited], now)
    if counts["enrolled"] or counts["woken"]:
        _runner_enqueue(workspace_id)
    return counts


def goal_watched(now: datetime) -> Q:
    """The enrolments a goal met now still counts for: those in the journey or the
    holdout, and those who came to the journey's end while its goal window is open.
    The same for both groups, so that the comparison with the holdout is fair: a
    held-out customer is watched for the whole window, and so is one whose steps ended
    early (a short journey would otherwise count only the conversions made while it
    ran)."""
    return Q(state__in=Enrolment.LIVE) | (
        Q(state=Enrolment.State.COMPLETED, exit_reason="end")
        & (Q(goal_until__isnull=True) | Q(goal_until__gte=now))
    )


def _convert(journey: Journey, first_at: dict, now: datetime) -> int:
    """Mark the watched enrolments (`goal_watched`) of these customers converted, if the
    goal was met (at `first_at[profile]`) after they entered and within the goal's
    window: the live ones end there, the finished ones keep when they finished."""
    if not first_at:
        return 0
    converted = 0
    watched = (
        Enrolment.objects.filter(journey=journey, profile_id__in=list(first_at))
        .filter(goal_watched(now))
        .values_list("pk", "profile_id", "entered_at", "goal_until", "state")
    )
    live, finished = [], []
    for pk, profile_id, entered_at, goal_until, state in watched:
        if first_at[profile_id] >= entered_at - timedelta(seconds=1) and (
            goal_until is None or first_at[profile_id] <= goal_until
        ):
            (live if state in Enrolment.LIVE else finished).append(pk)
    for chunk in _chunks(live, 5000):
        converted += Enrolment.objects.filter(pk__in=chunk, state__in=Enrolment.LIVE).update(
            state=Enrolment.State.CONVERTED,
            exit_reason="goal",
            exited_at=now,
            due_at=None,
            resume=None,
            waiting_for="",
            updated_at=now,
        )
    for chunk in _chunks(finished, 5000):
        converted += Enrolment.objects.filter(
            pk__in=chunk, state=Enrolment.State.COMPLETED, exit_reason="end"
        ).update(state=Enrolment.State.CONVERTED, exit_reason="goal", updated_at=now)
    return converted


def _wake(workspace_id: Any, rows: list, now: datetime) -> int:
    """Customers waiting for these events (`wait_event`), due now, headed for `next`."""
    profiles = {r["profile_id"] for r in rows}
    waiting = list(
        Enrolment.objects.filter(
            workspace_id=workspace_id,
            state=Enrolment.State.ACTIVE,
            profile_id__in=profiles,
            waiting_for__in={r["event"] for r in rows},
        ).values("pk", "version_id", "step", "profile_id", "waiting_for", "updated_at")
    )
    woken = 0
    groups: dict[tuple, list] = defaultdict(list)
    for w in waiting:
        step = _graph(w["version_id"]).steps.get(w["step"])
        if not isinstance(step, g.WaitEventStep) or step.event != w["waiting_for"]:
            continue
        # Events of this customer since the wait began, matching the step's `where`.
        mine = [
            r["pk"]
            for r in rows
            if r["profile_id"] == w["profile_id"]
            and r["event"] == step.event
            and r["timestamp"] >= w["updated_at"] - timedelta(seconds=1)
        ]
        if mine and _where_matching(workspace_id, mine, step.where, now):
            groups[(w["version_id"], w["step"], step.next or "")].append(w["pk"])
    for (_version, key, target), ids in groups.items():
        # Conditional on still waiting there: a runner that moved on first wins.
        woken += (
            Enrolment.objects.filter(pk__in=ids, state=Enrolment.State.ACTIVE, step=key)
            .exclude(waiting_for="")
            .update(resume=target, waiting_for="", due_at=now, updated_at=now)
        )
    return woken
