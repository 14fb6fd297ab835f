"""The action catalogue and the decision settings: every change goes through here,
checked field by field (an error names the field), audited, and written whole or not
at all. The decision itself is in engine.py, outcomes and learning in outcomes.py."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from rapport.core.errors import ConflictError, InvalidInputError
from rapport.decisions import learner
from rapport.decisions.models import Action, ActionModel, Channel, DecisionSettings
from rapport.decisions.selectors import decision_settings_get
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor, audit_log_record

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CONTENT_FIELDS = {"title": 200, "body": 5000, "image_url": 2000, "link_url": 2000, "cta": 100}
# Other content a site or an agent's screen shows (a badge, a coupon code): text.
MAX_CONTENT_EXTRAS = 20
EXTRA_LIMIT = 2000
MAX_PLACEMENTS = 50
MAX_VALUE = Decimal("99999999999999")
EDITABLE = (
    "key",
    "name",
    "description",
    "kind",
    "channels",
    "placements",
    "content",
    "template_id",
    "value",
    "currency",
    "starts_at",
    "ends_at",
    "budget",
    "daily_capacity",
    "eligibility",
    "lever",
    "channel_levers",
    "prior_propensity",
    "enabled",
)


def _forget_on_commit(workspace_id: Any) -> None:
    """This process's decisions see the change at once (others within
    RAPPORT_DECISIONS_CACHE_SECONDS)."""
    from rapport.decisions.engine import catalogue_forget

    catalogue_forget(workspace_id)
    transaction.on_commit(lambda: catalogue_forget(workspace_id))


def _text(value: Any, *, field: str, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInputError(gettext("text"), field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInputError(gettext("this field is required"), field=field)
    if len(value) > limit:
        raise InvalidInputError(
            gettext("at most %(limit)s characters") % {"limit": limit}, field=field
        )
    return value


def _number(value: Any, *, field: str, low: float = 0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidInputError(gettext("a number"), field=field)
    number = float(value)
    if number != number or number < low or (high is not None and number > high):
        if high is None:
            message = gettext("a number of at least %(low)s") % {"low": low}
        else:
            message = gettext("a number from %(low)s to %(high)s") % {"low": low, "high": high}
        raise InvalidInputError(message, field=field)
    return number


def _count(value: Any, *, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 2**31 - 1:
        raise InvalidInputError(gettext("a whole number of at least 1, or nothing"), field=field)
    return value


def _moment(value: Any, *, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise InvalidInputError(gettext("an ISO 8601 time"), field=field)
        value = parsed
    if not isinstance(value, datetime):
        raise InvalidInputError(gettext("an ISO 8601 time"), field=field)
    if value.tzinfo is None:
        raise InvalidInputError(gettext("a time with its UTC offset"), field=field)
    return value


def _link(value: str, *, field: str) -> str:
    if value and not (
        value.startswith(("https://", "http://"))
        or (value.startswith("/") and not value.startswith("//"))
    ):
        raise InvalidInputError(gettext("an http(s) URL or a path starting with /"), field=field)
    return value


def _clean(workspace: Workspace, data: dict, current: Action | None) -> dict[str, Any]:
    """The fields given in `data`, checked; unknown fields are refused."""
    from rapport.segments.services import segment_rule_check

    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise InvalidInputError(gettext("not a field of an action"), field=unknown[0])
    out: dict[str, Any] = {}
    if "key" in data or current is None:
        key = _text(data.get("key"), field="key", limit=64, required=True)
        if not KEY.match(key):
            raise InvalidInputError(
                gettext("lower-case letters, digits, - and _, starting with a letter or digit"),
                field="key",
            )
        out["key"] = key
    if "name" in data or current is None:
        out["name"] = _text(data.get("name"), field="name", limit=200, required=True)
    if "description" in data:
        out["description"] = _text(data["description"], field="description", limit=5000)
    if "kind" in data:
        if data["kind"] not in Action.Kind.values:
            raise InvalidInputError(
                gettext("one of %(choices)s") % {"choices": ", ".join(Action.Kind.values)},
                field="kind",
            )
        out["kind"] = data["kind"]
    if "channels" in data or current is None:
        channels = data.get("channels")
        if not isinstance(channels, list) or not channels:
            raise InvalidInputError(gettext("a list of at least one channel"), field="channels")
        for n, channel in enumerate(channels):
            if channel not in Channel.values:
                raise InvalidInputError(
                    gettext("one of %(choices)s") % {"choices": ", ".join(Channel.values)},
                    field=f"channels.{n}",
                )
        out["channels"] = list(dict.fromkeys(channels))
    channels = out.get("channels", current.channels if current else [])
    if "placements" in data:
        placements = data["placements"] or []
        if not isinstance(placements, list) or len(placements) > MAX_PLACEMENTS:
            raise InvalidInputError(
                gettext("a list of at most %(count)s names") % {"count": MAX_PLACEMENTS},
                field="placements",
            )
        out["placements"] = list(
            dict.fromkeys(
                _text(p, field=f"placements.{n}", limit=100, required=True)
                for n, p in enumerate(placements)
            )
        )
    if "content" in data:
        content = data["content"] or {}
        if not isinstance(content, dict):
            raise InvalidInputError(
                gettext('an object: {"web": {"title", "body", ...}}'), field="content"
            )
        cleaned: dict[str, dict] = {}
        for channel, fields in content.items():
            if channel not in Channel.values:
                raise InvalidInputError(
                    gettext("one of %(choices)s") % {"choices": ", ".join(Channel.values)},
                    field=f"content.{channel}",
                )
            if not isinstance(fields, dict):
                raise InvalidInputError(gettext("an object"), field=f"content.{channel}")
            part = {}
            extras = [name for name in fields if name not in CONTENT_FIELDS]
            if len(extras) > MAX_CONTENT_EXTRAS:
                raise InvalidInputError(
                    gettext("at most %(count)s fields besides %(fields)s")
                    % {"count": MAX_CONTENT_EXTRAS, "fields": ", ".join(CONTENT_FIELDS)},
                    field=f"content.{channel}",
                )
            for name, value in fields.items():
                where = f"content.{channel}.{name}"
                if not isinstance(name, str) or not 0 < len(name) <= 100:
                    raise InvalidInputError(
                        gettext("a name of 1 to 100 characters"), field=f"content.{channel}"
                    )
                text = _text(value, field=where, limit=CONTENT_FIELDS.get(name, EXTRA_LIMIT))
                if name.endswith("_url"):
                    text = _link(text, field=where)
                part[name] = text
            cleaned[channel] = part
        out["content"] = cleaned
    if "template_id" in data:
        from rapport.channels.models import Template

        raw = data["template_id"]
        if raw in (None, ""):
            out["template_id"] = None
        else:
            try:
                template_id = uuid.UUID(str(raw))
            except ValueError:
                raise InvalidInputError(gettext("a template id"), field="template_id") from None
            if not Template.objects.filter(workspace=workspace, pk=template_id).exists():
                raise InvalidInputError(
                    gettext("no template with this id in this workspace"), field="template_id"
                )
            out["template_id"] = template_id
    if "value" in data:
        raw = data["value"]
        try:
            value = Decimal(str(raw)) if not isinstance(raw, bool) and raw is not None else None
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value < 0 or value > MAX_VALUE:
            raise InvalidInputError(
                gettext("a number from 0 to %(max)s") % {"max": MAX_VALUE}, field="value"
            )
        out["value"] = value.quantize(Decimal("0.0001"))
    if "currency" in data:
        currency = _text(data["currency"], field="currency", limit=3).upper()
        if currency and not re.fullmatch(r"[A-Z]{3}", currency):
            raise InvalidInputError(
                gettext("an ISO 4217 code such as EUR, or empty for a weight"), field="currency"
            )
        out["currency"] = currency
    for name in ("starts_at", "ends_at"):
        if name in data:
            out[name] = _moment(data[name], field=name)
    starts = out.get("starts_at", current.starts_at if current else None)
    ends = out.get("ends_at", current.ends_at if current else None)
    if starts and ends and ends <= starts:
        raise InvalidInputError(gettext("after starts_at"), field="ends_at")
    for name in ("budget", "daily_capacity"):
        if name in data:
            out[name] = _count(data[name], field=name)
    if "eligibility" in data:
        rule = data["eligibility"] or {}
        if rule:
            segment_rule_check(workspace=workspace, rule=rule, field="eligibility")
        out["eligibility"] = rule
    if "lever" in data:
        out["lever"] = _number(data["lever"], field="lever", high=1_000_000)
    if "channel_levers" in data:
        levers = data["channel_levers"] or {}
        if not isinstance(levers, dict):
            raise InvalidInputError(gettext('an object: {"web": 1.5}'), field="channel_levers")
        out["channel_levers"] = {}
        for channel, lever in levers.items():
            if channel not in channels:
                raise InvalidInputError(
                    gettext("not one of the action's channels"), field=f"channel_levers.{channel}"
                )
            out["channel_levers"][channel] = _number(
                lever, field=f"channel_levers.{channel}", high=1_000_000
            )
    if "prior_propensity" in data:
        prior = _number(data["prior_propensity"], field="prior_propensity", high=1)
        if not 0 < prior < 1:
            raise InvalidInputError(
                gettext("a number between 0 and 1 (not 0 nor 1)"), field="prior_propensity"
            )
        out["prior_propensity"] = prior
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise InvalidInputError(gettext("true or false"), field="enabled")
        out["enabled"] = data["enabled"]
    return out


def _key_taken(key: str) -> ConflictError:
    error = ConflictError(
        gettext("An action with the key %(key)r exists already") % {"key": key},
        details=[{"field": "key"}],
    )
    error.field = "key"  # for the forms, as an InvalidInputError names its field
    return error


def action_create(*, workspace: Workspace, actor: Actor, data: dict) -> Action:
    """A new action of the catalogue, and its model at the prior."""
    fields = _clean(workspace, data, None)
    if Action.objects.filter(workspace=workspace, key=fields["key"]).exists():
        raise _key_taken(fields["key"])
    action = Action(workspace=workspace, **fields)
    try:
        with transaction.atomic():
            action.save()
            mean, variance = learner.model_new(prior_propensity=action.prior_propensity)
            ActionModel.objects.create(
                action=action,
                workspace=workspace,
                dims=learner.DIMS,
                mean=learner.to_bytes(mean),
                variance=learner.to_bytes(variance),
            )
            audit_log_record(
                workspace=workspace,
                actor=actor,
                action="action.create",
                details={"key": action.key},
            )
            _forget_on_commit(workspace.pk)
    except IntegrityError:
        raise _key_taken(fields["key"]) from None
    return action


def action_update(*, action: Action, actor: Actor, data: dict) -> Action:
    """Change the fields `data` names. A new prior propensity restarts a model that
    has learned nothing yet."""
    fields = _clean(action.workspace, data, action)
    if (
        "key" in fields
        and fields["key"] != action.key
        and Action.objects.filter(workspace_id=action.workspace_id, key=fields["key"]).exists()
    ):
        raise _key_taken(fields["key"])
    try:
        with transaction.atomic():
            locked = Action.objects.select_for_update().get(pk=action.pk)
            for name, value in fields.items():
                setattr(locked, name, value)
            locked.save()
            if "prior_propensity" in fields:
                model = ActionModel.objects.filter(action=locked, learned=0).first()
                if model is not None:
                    mean, variance = learner.model_new(prior_propensity=locked.prior_propensity)
                    model.mean, model.variance = learner.to_bytes(mean), learner.to_bytes(variance)
                    model.version += 1
                    model.save()
            audit_log_record(
                workspace=locked.workspace,
                actor=actor,
                action="action.update",
                details={"key": locked.key, "fields": sorted(fields)},
            )
            _forget_on_commit(locked.workspace_id)
    except IntegrityError:
        raise _key_taken(fields.get("key", action.key)) from None
    return locked


def action_delete(*, action: Action, actor: Actor) -> None:
    """Remove the action, with its model and the decisions' rows that gave it (the
    decisions themselves stay)."""
    with transaction.atomic():
        key = action.key
        action.delete()
        audit_log_record(
            workspace=action.workspace, actor=actor, action="action.delete", details={"key": key}
        )
        _forget_on_commit(action.workspace_id)


SETTINGS_EDITABLE = (
    "control_percent",
    "control_mode",
    "channel_weights",
    "placement_weights",
    "response_window_hours",
    "half_life_days",
)


def _weights(value: Any, *, field: str, names: list[str] | None) -> dict[str, float]:
    if not isinstance(value, dict) or len(value) > 200:
        raise InvalidInputError(gettext('an object: {"web": 1.5}'), field=field)
    out = {}
    for name, weight in value.items():
        if names is not None and name not in names:
            raise InvalidInputError(
                gettext("one of %(choices)s") % {"choices": ", ".join(names)},
                field=f"{field}.{name}",
            )
        if len(name) > 100:
            raise InvalidInputError(gettext("at most 100 characters"), field=f"{field}.{name}")
        out[name] = _number(weight, field=f"{field}.{name}", high=1_000_000)
    return out


def decision_settings_update(*, workspace: Workspace, actor: Actor, data: dict) -> DecisionSettings:
    """Change the control group, the weights, the response window or the half-life."""
    unknown = sorted(set(data) - set(SETTINGS_EDITABLE))
    if unknown:
        raise InvalidInputError(gettext("not a setting"), field=unknown[0])
    fields: dict[str, Any] = {}
    if "control_percent" in data:
        value = data["control_percent"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 50:
            raise InvalidInputError(gettext("a whole number from 0 to 50"), field="control_percent")
        fields["control_percent"] = value
    if "control_mode" in data:
        if data["control_mode"] not in DecisionSettings.ControlMode.values:
            raise InvalidInputError(
                gettext("one of %(choices)s")
                % {"choices": ", ".join(DecisionSettings.ControlMode.values)},
                field="control_mode",
            )
        fields["control_mode"] = data["control_mode"]
    if "channel_weights" in data:
        fields["channel_weights"] = _weights(
            data["channel_weights"], field="channel_weights", names=list(Channel.values)
        )
    if "placement_weights" in data:
        fields["placement_weights"] = _weights(
            data["placement_weights"], field="placement_weights", names=None
        )
    if "response_window_hours" in data:
        value = data["response_window_hours"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24 * 365:
            raise InvalidInputError(
                gettext("a whole number of hours from 1 to 8760"), field="response_window_hours"
            )
        fields["response_window_hours"] = value
    if "half_life_days" in data:
        value = _number(data["half_life_days"], field="half_life_days", high=3650)
        if value <= 0:
            raise InvalidInputError(gettext("more than 0 days"), field="half_life_days")
        fields["half_life_days"] = value
    with transaction.atomic():
        settings = decision_settings_get(workspace)
        for name, value in fields.items():
            setattr(settings, name, value)
        settings.save()
        audit_log_record(
            workspace=workspace,
            actor=actor,
            action="decisions.settings",
            details={"fields": sorted(fields)},
        )
        _forget_on_commit(workspace.pk)
    return settings
