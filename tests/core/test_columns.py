"""Queries read as columns (rapport.core.columns), on whichever database the suite runs
against: PostgreSQL through COPY and pyarrow, SQLite through fetched rows. Both must
give the same columns."""

from datetime import UTC, datetime

import numpy as np
import pytest
from django.db.models.functions import TruncDate

from rapport.core.columns import columns_read
from rapport.core.jsonkeys import json_number, json_text
from rapport.profiles.models import Profile

T0 = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
# Text the CSV between the database and pyarrow must carry unchanged.
AWKWARD = ['a, "quoted"\nline', "", "Ünïcødé ✓", "NULL", "\\N", "  spaced  "]


@pytest.mark.django_db
def test_text_numbers_times_and_nulls_come_back_as_written(tenant):
    ws = tenant.workspace.pk
    made = [
        Profile.objects.create(
            workspace_id=ws,
            first_seen_at=T0 if i % 2 == 0 else None,
            traits={"note": text, "score": i * 1.5} if i % 3 else {"score": "not a number"},
        )
        for i, text in enumerate(AWKWARD)
    ]
    query = (
        Profile.objects.filter(pk__in=[p.pk for p in made])
        .order_by("created_at", "id")
        .annotate(note=json_text("traits", "note"), score=json_number("traits", "score"))
        .values_list("id", "first_seen_at", "note", "score")
    )
    ids, first, note, score = columns_read(query, texts=[0, 2], epochs=[1])

    assert list(ids) == [str(p.pk) for p in made]
    assert first.dtype == float and score.dtype == float
    for i, text in enumerate(AWKWARD):
        if i % 2 == 0:
            assert first[i] == pytest.approx(T0.timestamp())
        else:
            assert np.isnan(first[i])
        if i % 3:
            assert note[i] == text
            assert score[i] == i * 1.5
        else:
            # A missing key is NULL, told apart from the empty string.
            assert note[i] is None
            assert np.isnan(score[i])


@pytest.mark.django_db
def test_a_date_column_counts_whole_days_and_an_empty_result_has_every_column(tenant):
    made = Profile.objects.create(workspace_id=tenant.workspace.pk, first_seen_at=T0)
    days = columns_read(
        Profile.objects.filter(pk=made.pk)
        .annotate(day=TruncDate("first_seen_at"))
        .values_list("id", "day"),
        epochs=[1],
    )[1]
    assert days[0] / 86400 == (T0.date() - datetime(1970, 1, 1).date()).days

    empty = columns_read(Profile.objects.none().values_list("id", "first_seen_at"), epochs=[1])
    assert [len(column) for column in empty] == [0, 0]


@pytest.mark.django_db
def test_uuid_keys_are_the_last_64_bits_without_a_python_string_per_row(tenant):
    from rapport.core.columns import uuid_key

    made = [Profile.objects.create(workspace_id=tenant.workspace.pk) for _ in range(5)]
    query = (
        Profile.objects.filter(pk__in=[p.pk for p in made])
        .order_by("created_at", "id")
        .values_list("id", "first_seen_at")
    )
    keys, _ = columns_read(query, keys=[0], epochs=[1])
    assert keys.dtype == np.uint64
    assert list(keys) == [int(p.pk) & (2**64 - 1) for p in made]
    assert uuid_key(str(made[0].pk)) == uuid_key(made[0].pk) == keys[0]
    empty = columns_read(Profile.objects.none().values_list("id"), keys=[0])[0]
    assert empty.dtype == np.uint64 and len(empty) == 0
