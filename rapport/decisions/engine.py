"""The decision: for one customer, now, on one channel and placement, which actions of
the catalogue to give, in which order, and why.

1. **Candidates**: the workspace's enabled actions offered on the channel (and the
   placement, when the action names placements), within their dates, with budget and
   today's capacity left.
2. **Eligibility**: each candidate's rule (the segment rule language) is evaluated for
   this one customer, all of them in one query (one boolean column per rule), with the
   customer's stage, RFM cell, churn band and CLV read by the same query.
3. **Rules of contact**, for outbound channels (email, SMS, push, webhook): consent for
   the channel's marketing purpose, suppression of the address and the contact policy's
   caps, as the channels app checks them when it sends (`profile_verdict`). They apply
   to every action alike: a customer who may not be written to gets nothing.
4. **Arbitration** (as Pega's): priority = propensity x channel weight x placement
   weight x value x lever x channel lever. The propensity is a Thompson sample from the
   action's model (learner.py) for a decision, and its posterior mean for a simulation.
   Ties go to the key that sorts first.
5. **Control group**: a stable share of customers (`control_percent`, by a hash of the
   workspace and the customer) gets a random eligible action, or nothing; never a
   model-chosen one. Their rows are marked `control`, so uplift is measured.
6. **Budgets and capacity** are taken when an action is given, by a conditional UPDATE
   (`given < budget`), so concurrent decisions never give more than the budget: an
   action whose budget ran out in between is passed over for the next one.

Everything a decision needs that changes slowly (the actions, their parsed rules and
their models, stacked for scoring) is cached per process and reloaded when an action
or a model changes (one aggregate query per decision checks that).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    Max,
    OuterRef,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from rapport.decisions import learner
from rapport.decisions.models import (
    OUTBOUND,
    Action,
    ActionModel,
    ActionUsage,
    Decision,
    DecisionAction,
    DecisionSettings,
)
from rapport.decisions.predictors import predictor_names
from rapport.journeys.services import stable_share
from rapport.profiles.models import Profile

MAX_LIMIT = 20


@dataclass
class Candidate:
    action: Action
    key: str
    priority: float
    propensity: float
    value: Decimal
    eligible: bool
    reasons: list[str] = field(default_factory=list)
    control: bool = False
    # The factors of the priority, for the simulator and the API.
    factors: dict[str, float] = field(default_factory=dict)
    # The eligibility rule (parsed) and whether `reasons` says why it holds and what
    # the priority is made of yet: a decision writes that only for what it gives.
    rule: Any = field(default=None, repr=False)
    explained: bool = True


@dataclass
class DecisionResult:
    decision_id: Any
    control: bool
    actions: list[Candidate]


@dataclass
class Simulation:
    control: bool
    candidates: list[Candidate]
    blocked: str = ""


# --- the per-process catalogue ---------------------------------------------------------


@dataclass
class _Catalogue:
    signature: tuple
    actions: list[Action]
    rules: dict[Any, Any]  # action id -> parsed rule (None: everyone)
    stack: learner.Stack
    rows: dict[Any, int]  # action id -> row of the stack
    facts: dict[str, Any] = field(default_factory=dict)  # channel -> _FactsQuery


_catalogues: dict[Any, _Catalogue] = {}
_lock = threading.Lock()
_rng = np.random.default_rng()


def _signature(workspace_id: Any) -> tuple:
    found = Action.objects.filter(workspace_id=workspace_id).aggregate(
        n=Count("pk"), changed=Max("updated_at"), versions=Sum("model__version")
    )
    return (found["n"], found["changed"], found["versions"])


def catalogue_forget(workspace_id: Any | None = None) -> None:
    """Drop the cached catalogue (of one workspace, or all): tests, and after a change
    made in this process that the signature might not show (same microsecond)."""
    with _lock:
        if workspace_id is None:
            _catalogues.clear()
        else:
            _catalogues.pop(workspace_id, None)


def _catalogue(workspace_id: Any) -> _Catalogue:
    from rapport.segments.rules import rule_parse

    signature = _signature(workspace_id)
    cached = _catalogues.get(workspace_id)
    if cached is not None and cached.signature == signature:
        return cached
    actions = list(Action.objects.filter(workspace_id=workspace_id).order_by("key"))
    models = {m.action_id: m for m in ActionModel.objects.filter(workspace_id=workspace_id)}
    means, variances, rows, rules = [], [], {}, {}
    for action in actions:
        model = models.get(action.pk)
        if model is not None and model.dims == learner.DIMS:
            mean, variance = learner.from_bytes(model.mean), learner.from_bytes(model.variance)
        else:
            mean, variance = learner.model_new(prior_propensity=action.prior_propensity)
        rows[action.pk] = len(means)
        means.append(mean)
        variances.append(variance)
        try:
            rules[action.pk] = rule_parse(action.eligibility) if action.eligibility else None
        except Exception:
            rules[action.pk] = False  # never eligible until it is fixed
    catalogue = _Catalogue(signature, actions, rules, learner.Stack(means, variances), rows)
    with _lock:
        _catalogues[workspace_id] = catalogue
    return catalogue


def settings_of(workspace_id: Any) -> DecisionSettings:
    return DecisionSettings.objects.filter(workspace_id=workspace_id).first() or DecisionSettings(
        workspace_id=workspace_id
    )


def in_control(*, workspace_id: Any, profile_id: Any, settings: DecisionSettings) -> bool:
    """Whether the customer is in the workspace's control group: stable per customer."""
    return stable_share("decisions-control", workspace_id, profile_id) < settings.control_percent


# --- the customer's facts --------------------------------------------------------------


# The customer and the time a facts query is compiled for, to be replaced by the real
# ones in its parameters; a second pair checks that the replacement is exact.
_SENTINELS = (
    (
        uuid.UUID("5e5e5e5e-5e5e-4e5e-8e5e-5e5e5e5e5e5e"),
        datetime(2222, 2, 22, 22, 22, 22, 222222, UTC),
    ),
    (
        uuid.UUID("7b7b7b7b-7b7b-4b7b-8b7b-7b7b7b7b7b7b"),
        datetime(2244, 4, 4, 4, 44, 44, 444444, UTC),
    ),
)
_NOW_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


@dataclass
class _FactsQuery:
    """One channel's facts query: each rule's verdict (a boolean column per action) and
    the predictors' facts, for one customer. Compiled by the ORM once per catalogue and
    channel, then run as SQL with the customer and the time put in its parameters;
    `sql` is None when a rule's SQL cannot be rebound that way (it is then compiled
    for every decision)."""

    rules: dict[Any, Any]
    names: dict[str, Any]  # column -> action id
    sql: str | None = None
    params: tuple = ()


def _facts_queryset(profile_id: Any, rules: dict[Any, Any], workspace_id: Any, now: datetime):
    from rapport.predictions.models import ChurnScore, ClvScore
    from rapport.segments.compiler import Context, rule_q
    from rapport.segments.models import LifecycleState, RfmScore

    ctx = Context(workspace_id=workspace_id, now=now, profile_ids=[profile_id])
    annotations: dict[str, Any] = {
        "stage": Subquery(
            LifecycleState.objects.filter(profile=OuterRef("pk")).values("stage")[:1]
        ),
        "rfm": Subquery(RfmScore.objects.filter(profile=OuterRef("pk")).values("cell")[:1]),
        "churn": Subquery(ChurnScore.objects.filter(profile=OuterRef("pk")).values("band")[:1]),
        "clv": Subquery(ClvScore.objects.filter(profile=OuterRef("pk")).values("clv")[:1]),
    }
    names = {}
    for n, (action_id, rule) in enumerate(rules.items()):
        if rule is None or rule is False:
            continue
        name = f"e{n}"
        names[name] = action_id
        annotations[name] = Case(
            When(rule_q(rule, ctx), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    queryset = Profile.objects.filter(pk=profile_id).annotate(**annotations).values(*annotations)
    return queryset, names


def _rebind(value: Any, old: tuple, new: tuple) -> Any:
    """A parameter of a query compiled for `old` (customer, now), for `new`."""
    from rapport.core.lookups import ValuesArray

    old_id, old_now = old
    new_id, new_now = new
    if isinstance(value, uuid.UUID):
        return new_id if value == old_id else value
    if isinstance(value, datetime):
        if value.tzinfo is not None and abs(value - old_now) < timedelta(days=36600):
            return new_now + (value - old_now)
        return value
    if isinstance(value, date):
        if abs(value - old_now.date()) < timedelta(days=36600):
            return new_now.date() + (value - old_now.date())
        return value
    if isinstance(value, str):
        for form in (str(old_id), old_id.hex):
            if form in value:
                value = value.replace(form, str(new_id) if "-" in form else new_id.hex)
        for form in _NOW_FORMATS:
            if old_now.strftime(form) in value:
                value = value.replace(old_now.strftime(form), new_now.strftime(form))
        return value
    if isinstance(value, ValuesArray):
        return ValuesArray([_rebind(v, old, new) for v in value.values])
    if isinstance(value, list | tuple):
        return type(value)(_rebind(v, old, new) for v in value)
    return value


def _comparable(value: Any) -> Any:
    from rapport.core.lookups import ValuesArray

    if isinstance(value, ValuesArray):
        return ("values", tuple(value.values))
    if isinstance(value, list | tuple):
        return tuple(_comparable(v) for v in value)
    return value


def _facts_query(catalogue: _Catalogue, channel: str, workspace_id: Any) -> _FactsQuery:
    found = catalogue.facts.get(channel)
    if found is not None:
        return found
    rules = {
        a.pk: catalogue.rules.get(a.pk)
        for a in catalogue.actions
        if a.enabled and channel in (a.channels or [])
    }
    one, two = _SENTINELS
    queryset, names = _facts_queryset(one[0], rules, workspace_id, one[1])
    built = _FactsQuery(rules=rules, names=names)
    try:
        sql, params = queryset.query.sql_with_params()
        check_sql, check_params = _facts_queryset(two[0], rules, workspace_id, two[1])[
            0
        ].query.sql_with_params()
        if sql == check_sql and _comparable([_rebind(p, one, two) for p in params]) == _comparable(
            list(check_params)
        ):
            built.sql, built.params = _inline_constants(sql, list(params), one, two)
    except Exception:  # noqa: S110 - compiled per decision instead
        pass
    with _lock:
        catalogue.facts[channel] = built
    return built


def _inline_constants(sql: str, params: list, one: tuple, two: tuple) -> tuple[str, tuple]:
    """On PostgreSQL, the parameters that do not depend on the customer or the time
    written into the SQL once (psycopg's own quoting, `mogrify`), so that a decision
    binds a handful of values, not one per rule's constant; elsewhere, as it was."""
    variable = [
        i for i, p in enumerate(params) if _comparable(_rebind(p, one, two)) != _comparable(p)
    ]
    if connection.vendor != "postgresql":
        return sql, tuple(params)
    marker = uuid.uuid4().hex
    tokens = {i: f"rapport-rebind-{marker}-{i}" for i in variable}
    with connection.cursor() as cursor:
        mogrify = getattr(cursor.cursor, "mogrify", None)
        if mogrify is None:
            return sql, tuple(params)
        text = mogrify(sql, [tokens.get(i, p) for i, p in enumerate(params)]).replace("%", "%%")
    for i in variable:
        quoted = f"'{tokens[i]}'"
        if text.count(quoted) != 1:
            return sql, tuple(params)
        text = text.replace(quoted, "%s")
    if marker in text:
        return sql, tuple(params)
    return text, tuple(params[i] for i in variable)


def _facts(profile, query: _FactsQuery, workspace_id: Any, now: datetime) -> tuple[dict, dict]:
    """Each rule's verdict for the customer, and what the predictors need, in one query
    (plus one for the segments)."""
    from rapport.segments.models import SegmentMembership

    if query.sql is not None:
        params = [_rebind(p, _SENTINELS[0], (profile.pk, now)) for p in query.params]
        with connection.cursor() as cursor:
            cursor.execute(query.sql, params)
            found = cursor.fetchone()
            row = (
                dict(zip([c[0] for c in cursor.description], found, strict=True)) if found else None
            )
    else:
        queryset, _names = _facts_queryset(profile.pk, query.rules, workspace_id, now)
        row = next(iter(queryset), None)
    if row is None:
        return {}, {"erased": True}
    verdicts = {action_id: bool(row.get(name)) for name, action_id in query.names.items()}
    for action_id, rule in query.rules.items():
        if rule is None:
            verdicts[action_id] = True
        elif rule is False:
            verdicts[action_id] = False
    segments = list(
        SegmentMembership.objects.filter(
            workspace_id=workspace_id, profile_id=profile.pk, left_at__isnull=True
        )
        .order_by("segment_id")
        .values_list("segment_id", flat=True)[:50]
    )
    clv = row.get("clv")
    return verdicts, {
        "stage": row.get("stage"),
        "rfm_cell": row.get("rfm"),
        "churn_band": row.get("churn"),
        "clv": float(clv) if clv is not None else None,
        "segment_ids": segments,
    }


def _usage_today(actions: list[Action], now: datetime) -> dict[Any, int]:
    capped = [a.pk for a in actions if a.daily_capacity is not None]
    if not capped:
        return {}
    return dict(
        ActionUsage.objects.filter(action_id__in=capped, day=now.date()).values_list(
            "action_id", "given"
        )
    )


# --- the decision ----------------------------------------------------------------------


_descriptions: dict[tuple, tuple] = {}


def _describe(rule) -> str:
    """The rule in words (in the request's language), kept per process: describing 200
    rules for every decision would cost more than deciding."""
    from django.utils.translation import get_language

    from rapport.segments.rules import rule_describe

    key = (id(rule), get_language())
    found = _descriptions.get(key)
    if found is not None and found[0] is rule:
        return found[1]
    try:
        text = rule_describe(rule)
    except Exception:
        text = _("the rule")
    if len(_descriptions) > 10000:
        _descriptions.clear()
    _descriptions[key] = (rule, text)
    return text


def _candidates(
    *,
    workspace_id: Any,
    profile,
    channel: str,
    placement: str,
    context: dict,
    now: datetime,
    draw: bool,
    explain: bool = True,
    settings: DecisionSettings | None = None,
) -> tuple[list[Candidate], list[int], str]:
    """Every action considered, eligible or not, with its reasons and numbers; the
    customer's predictor index; and why nothing may be given at all (or "")."""
    catalogue = _catalogue(workspace_id)
    settings = settings or settings_of(workspace_id)
    considered: list[tuple[Action, list[str]]] = []
    failed: dict[Any, list[str]] = {}
    usage = _usage_today(catalogue.actions, now)
    for action in catalogue.actions:
        reasons: list[str] = []
        why_not: list[str] = []
        if not action.enabled:
            continue
        if channel not in (action.channels or []):
            continue
        if action.placements and placement not in action.placements:
            why_not.append(
                _("placement %(placement)s is not one of %(placements)s")
                % {"placement": placement or "-", "placements": ", ".join(action.placements)}
            )
        if action.starts_at and now < action.starts_at:
            why_not.append(_("starts on %(when)s") % {"when": action.starts_at.date().isoformat()})
        if action.ends_at and now >= action.ends_at:
            why_not.append(_("ended on %(when)s") % {"when": action.ends_at.date().isoformat()})
        if action.budget is not None:
            if action.given >= action.budget:
                why_not.append(
                    _("budget spent: %(given)s of %(budget)s given")
                    % {"given": action.given, "budget": action.budget}
                )
            else:
                reasons.append(
                    _("budget: %(given)s of %(budget)s given")
                    % {"given": action.given, "budget": action.budget}
                )
        if action.daily_capacity is not None:
            today = usage.get(action.pk, 0)
            if today >= action.daily_capacity:
                why_not.append(
                    _("today's capacity is used: %(given)s of %(capacity)s")
                    % {"given": today, "capacity": action.daily_capacity}
                )
            else:
                reasons.append(
                    _("capacity today: %(given)s of %(capacity)s")
                    % {"given": today, "capacity": action.daily_capacity}
                )
        considered.append((action, reasons))
        if why_not:
            failed[action.pk] = why_not
    verdicts, facts = (
        _facts(profile, _facts_query(catalogue, channel, workspace_id), workspace_id, now)
        if considered
        else ({}, {})
    )
    everyone, holds, fails = (
        _("eligibility: everyone"),
        _("eligibility holds: %(rule)s"),
        _("eligibility fails: %(rule)s"),
    )
    for action, reasons in considered:
        if action.pk in failed:
            continue
        rule = catalogue.rules.get(action.pk)
        if rule is None:
            reasons.append(everyone)
        elif rule is False:
            failed[action.pk] = [_("eligibility: the rule cannot be read; fix it in the catalogue")]
        elif verdicts.get(action.pk):
            if explain:
                reasons.append(holds % {"rule": _describe(rule)})
        else:
            failed[action.pk] = [fails % {"rule": _describe(rule)}]
    blocked = ""
    if facts.get("erased"):
        # The customer was erased since the caller read them: nothing, on every channel.
        blocked = _("the customer was erased")
    elif channel in OUTBOUND and considered:
        from rapport.channels.rules import profile_verdict

        verdict = profile_verdict(
            workspace_id=workspace_id,
            profile=profile,
            channel=channel,
            purpose="marketing",
            now=now,
        )
        if verdict.skip:
            blocked = {
                "no_consent": _("no consent to %(channel)s marketing") % {"channel": channel},
                "suppressed": _("the %(channel)s address is suppressed") % {"channel": channel},
                "contact_policy": _("the contact policy's cap for %(channel)s is reached")
                % {"channel": channel},
                "no_address": _("no %(channel)s address") % {"channel": channel},
                "erased": _("the customer was erased"),
            }.get(verdict.skip, verdict.skip)
    names = predictor_names(
        traits=profile.traits or {},
        stage=facts.get("stage"),
        rfm_cell=facts.get("rfm_cell"),
        segment_ids=facts.get("segment_ids") or [],
        churn_band=facts.get("churn_band"),
        clv=facts.get("clv"),
        channel=channel,
        placement=placement,
        context=context,
    )
    index = learner.predictor_index(names)
    rows = np.fromiter(
        (catalogue.rows[a.pk] for a, _ in considered), dtype=np.int64, count=len(considered)
    )
    propensities = (
        catalogue.stack.propensities(index, rng=_rng if draw else None, rows=rows)
        if len(rows)
        else np.zeros(0)
    )
    channel_weight = float((settings.channel_weights or {}).get(channel, 1.0))
    placement_weight = (
        float((settings.placement_weights or {}).get(placement, 1.0)) if placement else 1.0
    )
    out = []
    for (action, reasons), p in zip(considered, propensities, strict=True):
        lever = float(action.lever)
        channel_lever = float((action.channel_levers or {}).get(channel, 1.0))
        value = float(action.value)
        priority = float(p) * channel_weight * placement_weight * value * lever * channel_lever
        eligible = action.pk not in failed and not blocked
        reasons = list(reasons) + failed.get(action.pk, []) + ([blocked] if blocked else [])
        out.append(
            Candidate(
                action=action,
                key=action.key,
                priority=priority if eligible else 0.0,
                propensity=float(p),
                value=action.value,
                eligible=eligible,
                reasons=reasons,
                factors={
                    "propensity": float(p),
                    "channel_weight": channel_weight,
                    "placement_weight": placement_weight,
                    "value": value,
                    "lever": lever,
                    "channel_lever": channel_lever,
                },
                rule=catalogue.rules.get(action.pk),
                explained=False,
            )
        )
    if explain:
        for candidate in out:
            _explain(candidate, eligibility=False)
    out.sort(key=lambda c: (not c.eligible, -c.priority, c.key))
    return out, [int(i) for i in index], blocked


def _explain(candidate: Candidate, *, eligibility: bool = True) -> None:
    """Add why the rule holds (when `eligibility`) and the numbers behind the priority."""
    if candidate.explained:
        return
    candidate.explained = True
    if eligibility and candidate.rule is not None and candidate.rule is not False:
        candidate.reasons.append(
            _("eligibility holds: %(rule)s") % {"rule": _describe(candidate.rule)}
        )
    f = candidate.factors
    candidate.reasons.append(
        _(
            "priority %(priority).4g = propensity %(propensity).3f x channel weight "
            "%(channel_weight)g x placement weight %(placement_weight)g x value "
            "%(value)g x lever %(lever)g x channel lever %(channel_lever)g"
        )
        % {
            "priority": f["propensity"]
            * f["channel_weight"]
            * f["placement_weight"]
            * f["value"]
            * f["lever"]
            * f["channel_lever"],
            **f,
        }
    )


def decision_simulate(
    *,
    workspace,
    profile,
    channel: str,
    placement: str = "",
    context: dict | None = None,
    now: datetime | None = None,
) -> Simulation:
    """What the customer would get now, and why: every action offered on the channel,
    the eligible ones ranked by priority with each model's estimate (no random draw),
    then the others with the rules they fail. Writes nothing."""
    now = now or timezone.now()
    settings = settings_of(workspace.pk)
    candidates, _index, blocked = _candidates(
        settings=settings,
        workspace_id=workspace.pk,
        profile=profile,
        channel=channel,
        placement=placement or "",
        context=context or {},
        now=now,
        draw=False,
    )
    control = in_control(workspace_id=workspace.pk, profile_id=profile.pk, settings=settings)
    return Simulation(control=control, candidates=candidates, blocked=blocked)


def _take(action: Action, now: datetime) -> bool:
    """Use one of the action's budget and of today's capacity; False if either ran out
    (in another decision since this one read them)."""
    if action.budget is not None:
        taken = Action.objects.filter(pk=action.pk, given__lt=action.budget).update(
            given=F("given") + 1
        )
        if not taken:
            return False
    if action.daily_capacity is not None:
        ActionUsage.objects.bulk_create(
            [ActionUsage(workspace_id=action.workspace_id, action=action, day=now.date(), given=0)],
            ignore_conflicts=True,
        )
        taken = ActionUsage.objects.filter(
            action=action, day=now.date(), given__lt=action.daily_capacity
        ).update(given=F("given") + 1)
        if not taken:
            if action.budget is not None:
                Action.objects.filter(pk=action.pk).update(given=F("given") - 1)
            return False
    return True


def decision_make(
    *,
    workspace,
    profile,
    channel: str,
    placement: str = "",
    limit: int = 1,
    context: dict | None = None,
    origin: str = "api",
    now: datetime | None = None,
) -> DecisionResult:
    """Decide, record the decision and what it gave, and answer the actions in order."""
    now = now or timezone.now()
    limit = max(1, min(int(limit), MAX_LIMIT))
    settings = settings_of(workspace.pk)
    control = in_control(workspace_id=workspace.pk, profile_id=profile.pk, settings=settings)
    candidates, index, _blocked = _candidates(
        settings=settings,
        workspace_id=workspace.pk,
        profile=profile,
        channel=channel,
        placement=placement or "",
        context=context or {},
        now=now,
        draw=not control,
        explain=False,
    )
    eligible = [c for c in candidates if c.eligible]
    if control:
        if settings.control_mode == DecisionSettings.ControlMode.RANDOM and eligible:
            order = _rng.permutation(len(eligible))
            eligible = [eligible[i] for i in order]
        else:
            eligible = []
        for candidate in eligible:
            candidate.control = True
    if _blocked and not eligible and not Profile.objects.filter(pk=profile.pk).exists():
        # Erased: there is no one to record a decision for.
        return DecisionResult(decision_id=None, control=control, actions=[])
    given: list[Candidate] = []
    with transaction.atomic():
        decision = Decision.objects.create(
            workspace_id=workspace.pk,
            profile_id=profile.pk,
            channel=channel,
            placement=placement or "",
            context=context or {},
            control=control,
            origin=origin,
            features=index,
            created_at=now,
        )
        for candidate in eligible:
            if len(given) >= limit:
                break
            if (
                candidate.action.budget is not None or candidate.action.daily_capacity is not None
            ) and not _take(candidate.action, now):
                continue
            given.append(candidate)
        DecisionAction.objects.bulk_create(
            [
                DecisionAction(
                    workspace_id=workspace.pk,
                    decision=decision,
                    action=c.action,
                    rank=rank,
                    priority=c.priority,
                    propensity=c.propensity,
                    value=c.value,
                    control=control,
                    created_at=now,
                )
                for rank, c in enumerate(given, start=1)
            ]
        )
    if any(c.action.budget is not None for c in given):
        # The catalogue's `given` moved: the cached copy's budget checks must see it.
        for c in given:
            if c.action.budget is not None:
                c.action.given += 1
    for candidate in given:
        _explain(candidate)
        if control:
            candidate.reasons.append(
                _("control group: a random eligible action, not the model's choice")
            )
    return DecisionResult(decision_id=decision.pk, control=control, actions=given)
