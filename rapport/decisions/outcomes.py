"""What customers answered to the actions decisions gave, and the learning from it.

`outcome_record` stores an answer once per decision, action and outcome (a retry
records nothing twice) and labels the decision's row: clicked, accepted or converted
is a success (1), declined a failure (0); the first label stays. It does not touch the
models, so recording an outcome costs a decision nothing: `decisions_learn`, a task
the workers run every minute, folds the labelled rows into each action's model once
(`learned_at`), after fading the model's old evidence by the workspace's half-life, and
labels as failures the impressions whose response window closed with no success.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from rapport.core.errors import InvalidInputError, NotFoundError, RapportError
from rapport.decisions import learner
from rapport.decisions.models import (
    POSITIVE,
    Action,
    ActionModel,
    Decision,
    DecisionAction,
    DecisionSettings,
    Outcome,
    OutcomeKind,
)

LEARN_BATCH = 5000
logger = logging.getLogger(__name__)


def outcome_record(
    *, workspace, decision_id: Any, action_key: str, outcome: str, at: datetime | None = None
) -> tuple[Outcome, bool]:
    """Record a customer's answer to an action a decision gave: (outcome, created)."""
    if outcome not in OutcomeKind.values:
        raise InvalidInputError(
            _("one of %(choices)s") % {"choices": ", ".join(OutcomeKind.values)}, field="outcome"
        )
    at = at or timezone.now()
    decision = Decision.objects.filter(workspace_id=workspace.pk, pk=decision_id).first()
    if decision is None:
        raise NotFoundError(_("no such decision"), details=[{"field": "decision_id"}])
    action = Action.objects.filter(workspace_id=workspace.pk, key=action_key).first()
    if action is None:
        raise NotFoundError(_("no such action"), details=[{"field": "action"}])
    row = DecisionAction.objects.filter(decision=decision, action=action).first()
    if row is None:
        raise InvalidInputError(_("this decision did not give that action"), field="action")
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = Outcome.objects.create(
                    workspace_id=workspace.pk,
                    decision=decision,
                    action=action,
                    outcome=outcome,
                    at=at,
                )
        except IntegrityError:
            return Outcome.objects.get(decision=decision, action=action, outcome=outcome), False
        if outcome == OutcomeKind.IMPRESSION:
            DecisionAction.objects.filter(pk=row.pk, impression_at__isnull=True).update(
                impression_at=at
            )
        else:
            label = 1 if outcome in POSITIVE else 0
            DecisionAction.objects.filter(pk=row.pk, label__isnull=True).update(
                label=label, labelled_at=at
            )
    return record, True


def outcomes_record_quietly(
    *, workspace_id: Any, decision_id: Any, action_key: str, outcomes, at: datetime, about: str
) -> None:
    """Record what a message or an email block saw (an open, a click) as outcomes of the
    decision it carries; one whose decision or action was deleted since is logged and
    skipped: there is nothing left to learn from."""
    from rapport.tenancy.models import Workspace

    workspace = Workspace(pk=workspace_id)
    for outcome in outcomes:
        try:
            outcome_record(
                workspace=workspace,
                decision_id=decision_id,
                action_key=action_key,
                outcome=outcome,
                at=at,
            )
        except RapportError as error:
            logger.info("outcome %s of %s not recorded: %s", outcome, about, error)


def _settings(workspace_id: Any) -> DecisionSettings:
    return DecisionSettings.objects.filter(workspace_id=workspace_id).first() or DecisionSettings(
        workspace_id=workspace_id
    )


def decisions_expire(*, workspace_id: Any, now: datetime | None = None) -> int:
    """Impressions with no answer within the response window are failures."""
    now = now or timezone.now()
    window = timedelta(hours=_settings(workspace_id).response_window_hours)
    return DecisionAction.objects.filter(
        workspace_id=workspace_id,
        label__isnull=True,
        impression_at__isnull=False,
        impression_at__lt=now - window,
    ).update(label=0, labelled_at=now)


def decisions_learn(*, workspace_id: Any, now: datetime | None = None) -> dict[str, int]:
    """Fold every labelled, unlearned row into its action's model, once."""
    now = now or timezone.now()
    expired = decisions_expire(workspace_id=workspace_id, now=now)
    settings = _settings(workspace_id)
    learned = 0
    while True:
        with transaction.atomic():
            rows = list(
                DecisionAction.objects.select_for_update(skip_locked=True)
                .filter(workspace_id=workspace_id, label__isnull=False, learned_at__isnull=True)
                .order_by("labelled_at", "pk")
                .values_list("pk", "action_id", "label", "decision__features")[:LEARN_BATCH]
            )
            if not rows:
                break
            by_action: dict[Any, list[tuple[int, list]]] = defaultdict(list)
            for _pk, action_id, label, features in rows:
                by_action[action_id].append((label, features or [learner.BIAS]))
            for model in (
                ActionModel.objects.select_for_update(of=("self",))
                .filter(action_id__in=list(by_action))
                .select_related("action")
            ):
                mean, variance = learner.from_bytes(model.mean), learner.from_bytes(model.variance)
                if model.decayed_at is not None:
                    elapsed = (now - model.decayed_at).total_seconds() / 86400
                    fraction = learner.decay_fraction(
                        elapsed_days=elapsed, half_life_days=settings.half_life_days
                    )
                    if fraction > 0:
                        prior_mean, prior_variance = learner.prior(
                            prior_propensity=model.action.prior_propensity, dims=model.dims
                        )
                        learner.model_decay(
                            mean,
                            variance,
                            prior_mean=prior_mean,
                            prior_variance=prior_variance,
                            fraction=fraction,
                        )
                        model.positives *= 1 - fraction
                        model.negatives *= 1 - fraction
                for label, features in by_action[model.action_id]:
                    index = np.asarray(sorted(set(features)), dtype=np.int64)
                    index = index[(index >= 0) & (index < model.dims)]
                    learner.model_update(mean, variance, index, label=label)
                    if label:
                        model.positives += 1
                    else:
                        model.negatives += 1
                model.mean = learner.to_bytes(mean)
                model.variance = learner.to_bytes(variance)
                model.learned = F("learned") + len(by_action[model.action_id])
                model.version = F("version") + 1
                model.decayed_at = now
                model.save()
            DecisionAction.objects.filter(pk__in=[r[0] for r in rows]).update(learned_at=now)
            learned += len(rows)
        if len(rows) < LEARN_BATCH:
            break
    return {"expired": expired, "learned": learned}
