"""The journey graph: the JSON contract of `POST /api/v1/journeys` (JOURNEY_SCHEMA.md,
docs/journeys.md), its pydantic models and `journey_validate`.

Two levels of checking. `graph_parse` is the shape: unknown keys refused, each value
of its type, the first error naming its path (`steps.welcome.next`); it runs on every
write, so a stored graph always parses. `journey_validate` is what a journey needs
before it can start, against the graph as a whole and the workspace: targets that
exist, every step reachable from `start`, no loop that never waits, a send that has
content and a known purpose, splits summing to 100, templates and segments of this
workspace. It answers a list of {path, message}; an empty list means it can start.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from django.utils.translation import gettext
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from rapport.core.errors import InvalidInputError
from rapport.core.pydantic_messages import pydantic_message
from rapport.segments.rules import PropertyCondition

MAX_STEPS = 200
MAX_WAIT_SECONDS = 10 * 366 * 86400
KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"

StepKey = Annotated[str, Field(pattern=KEY_PATTERN, min_length=1, max_length=100)]
Target = StepKey | None
Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]
Where = Annotated[list[PropertyCondition], Field(max_length=50)]
TimeOfDay = Annotated[StrictStr, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Id = Annotated[StrictStr, Field(min_length=1, max_length=64)]
WaitSeconds = Annotated[StrictInt, Field(gt=0, le=MAX_WAIT_SECONDS)]


def _uuid(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise ValueError(gettext("must be a UUID")) from None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- triggers -------------------------------------------------------------------------


class EventTrigger(Strict):
    type: Literal["event"]
    event: Name
    where: Where = []


class SegmentTrigger(Strict):
    type: Literal["segment_entered", "segment_left"]
    segment_id: Id

    _check_id = field_validator("segment_id")(_uuid)


class LifecycleTrigger(Strict):
    type: Literal["lifecycle_changed"]
    stage: Name
    sub_stage: Name | None = None


class PredictionTrigger(Strict):
    type: Literal["prediction"]
    model: Name
    field: Name
    op: Literal["gt", "gte", "lt", "lte"]
    value: float | StrictInt


class DateTrigger(Strict):
    type: Literal["date_trait"]
    trait: Name
    offset_days: Annotated[StrictInt, Field(ge=-366, le=366)] = 0
    time: TimeOfDay = "09:00"
    yearly: StrictBool = True


class ScheduleTrigger(Strict):
    type: Literal["schedule"]
    cron: Annotated[StrictStr, Field(min_length=9, max_length=100)]
    segment_id: Id

    _check_id = field_validator("segment_id")(_uuid)


class ManualTrigger(Strict):
    type: Literal["manual"]


Trigger = Annotated[
    EventTrigger
    | SegmentTrigger
    | LifecycleTrigger
    | PredictionTrigger
    | DateTrigger
    | ScheduleTrigger
    | ManualTrigger,
    Field(discriminator="type"),
]


class JourneyGoal(Strict):
    """Met when the customer does `event` (matching `where`), or matches `rule`."""

    event: Name | None = None
    where: Where = []
    rule: dict[str, Any] | None = None
    within_days: Annotated[StrictInt, Field(ge=1, le=3660)] | None = None


class JourneyReentry(Strict):
    mode: Literal["never", "after_days", "always"] = "never"
    days: Annotated[StrictInt, Field(ge=1, le=3660)] | None = None


# --- steps ----------------------------------------------------------------------------


class JourneyContent(Strict):
    subject: Annotated[StrictStr, Field(max_length=500)] = ""
    html: Annotated[StrictStr, Field(max_length=500_000)] = ""
    text: Annotated[StrictStr, Field(max_length=100_000)] = ""
    url: Annotated[StrictStr, Field(max_length=2000)] = ""


class JourneyDecide(Strict):
    """Content decided by the decision engine: the action it gives the customer at the
    step, on the step's channel and this placement."""

    placement: Annotated[StrictStr, Field(max_length=100)] = ""


class SendStep(Strict):
    type: Literal["send"]
    channel: Literal["email", "sms", "push", "in_app", "webhook"]
    purpose: Annotated[StrictStr, Field(max_length=40)] = ""
    template_id: Id | None = None
    content: JourneyContent | None = None
    # true, or {"placement": ...}: the engine chooses the content; a template_id or
    # content given with it goes to the customers it gives nothing.
    decide: StrictBool | JourneyDecide = False
    next: Target = None

    @property
    def decided(self) -> bool:
        return self.decide is not False

    @property
    def placement(self) -> str:
        return self.decide.placement if isinstance(self.decide, JourneyDecide) else ""

    _check_id = field_validator("template_id")(lambda v: v if v is None else _uuid(v))


class WaitStep(Strict):
    type: Literal["wait"]
    seconds: WaitSeconds
    next: Target = None


class WaitUntilStep(Strict):
    type: Literal["wait_until"]
    time: TimeOfDay
    next: Target = None


class WaitEventStep(Strict):
    type: Literal["wait_event"]
    event: Name
    where: Where = []
    timeout_seconds: WaitSeconds
    next: Target = None
    timeout_next: Target = None


class BranchStep(Strict):
    type: Literal["branch"]
    rule: dict[str, Any]
    yes: Target = None
    no: Target = None


class JourneySplitPath(Strict):
    share: Annotated[StrictInt, Field(ge=0, le=100)]
    next: Target = None
    label: Annotated[StrictStr, Field(max_length=100)] = ""


class SplitStep(Strict):
    type: Literal["split"]
    paths: Annotated[list[JourneySplitPath], Field(min_length=1, max_length=20)]


class UpdateTraitStep(Strict):
    type: Literal["update_trait"]
    trait: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    value: StrictStr | StrictInt | float | StrictBool | None
    next: Target = None


class SegmentStep(Strict):
    type: Literal["segment_add", "segment_remove"]
    segment_id: Id
    next: Target = None

    _check_id = field_validator("segment_id")(_uuid)


class TaskStep(Strict):
    type: Literal["create_task"]
    title: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    due_in_days: Annotated[StrictInt, Field(ge=0, le=3660)] = 0
    # A member's id; left out: the customer's owner, else unassigned.
    assignee_id: Id | None = None
    next: Target = None

    @field_validator("assignee_id")
    @classmethod
    def _check_assignee(cls, value):
        return None if value is None else _uuid(value)


class WebhookStep(Strict):
    type: Literal["webhook"]
    url: Annotated[StrictStr, Field(min_length=8, max_length=2000, pattern=r"^https?://")]
    next: Target = None


class ExitStep(Strict):
    type: Literal["exit"]


Step = Annotated[
    SendStep
    | WaitStep
    | WaitUntilStep
    | WaitEventStep
    | BranchStep
    | SplitStep
    | UpdateTraitStep
    | SegmentStep
    | TaskStep
    | WebhookStep
    | ExitStep,
    Field(discriminator="type"),
]

WAIT_KINDS = ("wait", "wait_until", "wait_event")


class JourneyPoint(Strict):
    x: float | StrictInt
    y: float | StrictInt


class JourneyGraph(Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    description: Annotated[StrictStr, Field(max_length=5000)] = ""
    trigger: Trigger = Field(default_factory=lambda: ManualTrigger(type="manual"))
    goal: JourneyGoal | None = None
    holdout_percent: Annotated[StrictInt, Field(ge=0, le=100)] = 0
    # None: never again (as {"mode": "never"}).
    reentry: JourneyReentry | None = None
    start: StepKey
    steps: Annotated[dict[StepKey, Step], Field(min_length=1, max_length=MAX_STEPS)]
    layout: Annotated[dict[StepKey, JourneyPoint], Field(max_length=MAX_STEPS)] = {}


def _path(loc: tuple) -> str:
    """pydantic's location as the graph's path: `steps.welcome.next`,
    `steps.ab.paths[1].share` (list positions in brackets)."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def _clean_loc(loc: tuple, data: Any) -> tuple:
    """Drop the discriminated union's tag from a location (`trigger.event.event` ->
    `trigger.event`, `steps.a.send.next` -> `steps.a.next`)."""
    out: list = []
    node = data
    i = 0
    while i < len(loc):
        part = loc[i]
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part) if not isinstance(part, int) else None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if (
            isinstance(node, dict)
            and isinstance(nxt, str)
            and node.get("type") == nxt
            and (
                (out[:1] == ["trigger"] and len(out) == 1)
                or (out[:1] == ["steps"] and len(out) == 2)
            )
        ):
            i += 1  # skip the tag
        i += 1
    return tuple(out)


def graph_parse(data: Any, *, field: str = "") -> JourneyGraph:
    """The graph, or InvalidInputError naming the first wrong path."""
    if not isinstance(data, dict):
        raise InvalidInputError(gettext("must be a JSON object"), field=field or "body")
    try:
        return JourneyGraph.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        path = _path(_clean_loc(tuple(first["loc"]), data))
        if field:
            path = f"{field}.{path}" if path else field
        raise InvalidInputError(pydantic_message(first), field=path or "body") from None


def graph_dump(graph: JourneyGraph) -> dict:
    return graph.model_dump(mode="json", exclude_none=False)


# --- whole-graph checks ---------------------------------------------------------------


def targets(step: Any) -> list[tuple[str, str | None]]:
    """(field path within the step, target) for each way out of a step."""
    if isinstance(step, ExitStep):
        return []
    if isinstance(step, BranchStep):
        return [("yes", step.yes), ("no", step.no)]
    if isinstance(step, SplitStep):
        return [(f"paths[{i}].next", p.next) for i, p in enumerate(step.paths)]
    if isinstance(step, WaitEventStep):
        return [("next", step.next), ("timeout_next", step.timeout_next)]
    return [("next", step.next)]


def _cycles_without_wait(graph: JourneyGraph) -> list[str]:
    """Steps on a loop that never waits: the runner would go round forever."""
    edges = {
        key: [t for _, t in targets(step) if t in graph.steps and not isinstance(step, WAIT_TYPES)]
        for key, step in graph.steps.items()
    }
    found: list[str] = []
    state: dict[str, int] = {}

    def visit(key: str, trail: list[str]) -> None:
        state[key] = 1
        trail.append(key)
        for target in edges[key]:
            if state.get(target) == 1:
                cycle = trail[trail.index(target) :]
                if cycle[0] not in found:
                    found.append(cycle[0])
            elif target not in state:
                visit(target, trail)
        trail.pop()
        state[key] = 2

    for key in graph.steps:
        if key not in state:
            visit(key, [])
    return found


WAIT_TYPES = (WaitStep, WaitUntilStep, WaitEventStep)


def graph_problems(graph: JourneyGraph) -> list[dict[str, str]]:
    """What is wrong with the graph itself (no database)."""
    problems: list[dict[str, str]] = []

    def add(path: str, message: str) -> None:
        problems.append({"path": path, "message": message})

    if graph.start not in graph.steps:
        add("start", gettext("no step %(key)s in this journey") % {"key": graph.start})
    for key, step in graph.steps.items():
        for where, target in targets(step):
            if target is not None and target not in graph.steps:
                add(
                    f"steps.{key}.{where}",
                    gettext("no step %(key)s in this journey") % {"key": target},
                )
        if isinstance(step, SplitStep):
            total = sum(p.share for p in step.paths)
            if total != 100:
                add(
                    f"steps.{key}.paths",
                    gettext("the shares add up to %(total)s, not 100") % {"total": total},
                )
        if isinstance(step, SendStep):
            given = [step.template_id is not None, step.content is not None]
            if step.decided and step.channel == "webhook":
                add(
                    f"steps.{key}.decide",
                    gettext("the decision engine chooses content for messages, not webhooks"),
                )
            elif sum(given) == 0 and not step.decided:
                add(
                    f"steps.{key}",
                    gettext("a send needs a template_id, content or content decided by the engine"),
                )
            elif sum(given) > 1:
                add(f"steps.{key}", gettext("give either a template_id or content, not both"))
            elif step.content is not None and not any(
                (step.content.subject, step.content.html, step.content.text, step.content.url)
            ):
                add(f"steps.{key}.content", gettext("the content is empty"))
            if not step.purpose:
                add(f"steps.{key}.purpose", gettext("a send needs a consent purpose"))
        if isinstance(step, BranchStep):
            from rapport.segments.rules import rule_parse

            try:
                rule_parse(step.rule, field=f"steps.{key}.rule")
            except InvalidInputError as error:
                add(error.field, error.message)
    if graph.goal is not None:
        goal = graph.goal
        if (goal.event is None) == (goal.rule is None):
            add("goal", gettext("a goal is an event or a rule, one of the two"))
        if goal.rule is not None:
            from rapport.segments.rules import rule_parse

            try:
                rule_parse(goal.rule, field="goal.rule")
            except InvalidInputError as error:
                add(error.field, error.message)
    if graph.reentry and graph.reentry.mode == "after_days" and not graph.reentry.days:
        add("reentry.days", gettext("re-entry after days needs the number of days"))
    if graph.start in graph.steps:
        reached = reachable(graph)
        for key in graph.steps:
            if key not in reached:
                add(f"steps.{key}", gettext("no path from the start reaches this step"))
    for key in _cycles_without_wait(graph):
        add(f"steps.{key}", gettext("this step is on a loop with no wait: it would never stop"))
    for key in graph.layout:
        if key not in graph.steps:
            add(f"layout.{key}", gettext("no step %(key)s in this journey") % {"key": key})
    return problems


def reachable(graph: JourneyGraph) -> set[str]:
    seen: set[str] = set()
    todo = [graph.start]
    while todo:
        key = todo.pop()
        if key in seen or key not in graph.steps:
            continue
        seen.add(key)
        todo.extend(t for _, t in targets(graph.steps[key]) if t is not None)
    return seen


def journey_validate(*, workspace: Any, graph: JourneyGraph | dict) -> list[dict[str, str]]:
    """Everything that stops the journey from starting, as [{path, message}]: the
    graph's own problems and what it names that this workspace lacks (templates for
    another channel or none at all, segments that are not there or not static)."""
    from rapport.channels.models import Purpose, Template
    from rapport.segments.models import Segment

    if not isinstance(graph, JourneyGraph):
        try:
            graph = graph_parse(graph)
        except InvalidInputError as error:
            return [{"path": error.field, "message": error.message}]
    problems = graph_problems(graph)

    def add(path: str, message: str) -> None:
        problems.append({"path": path, "message": message})

    template_ids = {
        s.template_id for s in graph.steps.values() if isinstance(s, SendStep) and s.template_id
    }
    segment_ids = {s.segment_id for s in graph.steps.values() if isinstance(s, SegmentStep)}
    if isinstance(graph.trigger, SegmentTrigger | ScheduleTrigger):
        segment_ids.add(graph.trigger.segment_id)
    templates = dict(
        Template.objects.filter(workspace=workspace, pk__in=template_ids).values_list(
            "pk", "channel"
        )
    )
    templates = {str(k): v for k, v in templates.items()}
    segments = {
        str(k): v
        for k, v in Segment.objects.filter(workspace=workspace, pk__in=segment_ids).values_list(
            "pk", "kind"
        )
    }
    for key, step in graph.steps.items():
        if isinstance(step, SendStep):
            if step.purpose and step.purpose not in Purpose.values:
                add(
                    f"steps.{key}.purpose",
                    gettext("no consent purpose %(purpose)s: use one of %(choices)s")
                    % {"purpose": step.purpose, "choices": ", ".join(Purpose.values)},
                )
            if step.template_id:
                channel = templates.get(step.template_id)
                if channel is None:
                    add(
                        f"steps.{key}.template_id",
                        gettext("No template with id %(pk)s in this workspace")
                        % {"pk": step.template_id},
                    )
                elif channel != step.channel:
                    add(
                        f"steps.{key}.template_id",
                        gettext("the template is for %(template_channel)s, not %(channel)s")
                        % {"template_channel": channel, "channel": step.channel},
                    )
        if isinstance(step, WebhookStep):
            from rapport.channels.webhook import webhook_url_check

            try:
                webhook_url_check(step.url, field=f"steps.{key}.url")
            except InvalidInputError as error:
                add(error.field, error.message)
        if isinstance(step, TaskStep) and step.assignee_id is not None:
            from rapport.tenancy.models import Membership

            if not Membership.objects.filter(workspace=workspace, pk=step.assignee_id).exists():
                add(
                    f"steps.{key}.assignee_id",
                    gettext("No member with id %(pk)s in this workspace")
                    % {"pk": step.assignee_id},
                )
        if isinstance(step, SegmentStep):
            kind = segments.get(step.segment_id)
            if kind is None:
                add(
                    f"steps.{key}.segment_id",
                    gettext("No segment with id %(pk)s in this workspace")
                    % {"pk": step.segment_id},
                )
            elif kind != Segment.Kind.STATIC:
                add(f"steps.{key}.segment_id", gettext("only a static segment takes a list"))
    if (
        isinstance(graph.trigger, SegmentTrigger | ScheduleTrigger)
        and graph.trigger.segment_id not in segments
    ):
        add(
            "trigger.segment_id",
            gettext("No segment with id %(pk)s in this workspace")
            % {"pk": graph.trigger.segment_id},
        )
    from rapport.journeys.triggers import trigger_problems

    problems += trigger_problems(workspace=workspace, trigger=graph.trigger.model_dump(mode="json"))
    return problems


# The short name the services use.
Graph = JourneyGraph
