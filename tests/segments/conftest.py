from datetime import UTC, datetime, timedelta

import pytest

from rapport.segments.compiler import Context, rule_profiles
from rapport.segments.rules import rule_parse
from tests.conftest import tenant_create

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


@pytest.fixture
def shop():
    return tenant_create("Segments", sample_data=False)


def profile_of(shop, user_id: str):
    from rapport.identity.models import Identifier

    return Identifier.objects.get(workspace=shop.workspace, kind="user_id", value=user_id).profile


def matching(shop, rule: dict, *, now=NOW, profile_ids=None) -> set[str]:
    """The user ids of the customers the rule selects."""
    from rapport.identity.models import Identifier

    ctx = Context(workspace_id=shop.workspace.pk, now=now, profile_ids=profile_ids)
    ids = list(rule_profiles(rule_parse(rule), ctx).values_list("pk", flat=True))
    return set(
        Identifier.objects.filter(profile_id__in=ids, kind="user_id").values_list(
            "value", flat=True
        )
    )
