# ruff: noqa: RUF001 - Russian sentences are compared as Russian
"""Every merge reason reads as a sentence in the person's language: the codes Rapport
writes for its own merges ("shared identifier", "probable duplicate (p), merged
automatically") are never shown as they are stored; a person's words are quoted."""

import pytest
from django.utils import translation

from rapport.identity.models import ProfileMerge
from rapport.profiles.models import Profile
from rapport.tenancy.models import User
from rapport.web.merge_reasons import merge_reason_sentence
from tests.web.clients import signed_in


def _pair(tenant):
    return list(
        Profile.objects.filter(workspace=tenant.workspace, merged_into__isnull=True).order_by("pk")[
            :2
        ]
    )


def _merge(tenant, **fields) -> ProfileMerge:
    survivor, merged = _pair(tenant)
    return ProfileMerge.objects.create(
        workspace=tenant.workspace, survivor_id=survivor.pk, merged_id=merged.pk, **fields
    )


CASES = [
    (
        {"automatic": True, "reason": "shared identifier", "identifiers": [["email", "a@b.co"]]},
        "Merged automatically: the two profiles shared an identifier (email",
        "Объединены автоматически: у двух профилей был общий идентификатор (эл. почта",
    ),
    (
        {"automatic": True, "reason": "shared identifier", "identifiers": []},
        "Merged automatically: the two profiles shared an identifier.",
        "Объединены автоматически: у двух профилей был общий идентификатор.",
    ),
    (
        {
            "automatic": False,
            "reason": "probable duplicate (0.9731), merged automatically",
            "actor_label": "duplicate detection",
        },
        "Merged automatically by duplicate detection: 97.3% likely the same customer.",
        "Объединены автоматически поиском дубликатов: с вероятностью 97,3% это один клиент.",
    ),
    (
        {"automatic": False, "reason": "Same person, two emails", "actor_label": "ann@x.io"},
        'Merged by ann@x.io, because: “<span translate="no">Same person, two emails</span>”',
        'Объединил(а) ann@x.io, причина: «<span translate="no">Same person, two emails</span>»',
    ),
    (
        {"automatic": True, "reason": ""},
        "Merged automatically.",
        "Объединены автоматически.",
    ),
]


@pytest.mark.parametrize("fields,english,russian", CASES)
def test_each_reason_is_a_sentence_in_both_languages(tenant, fields, english, russian):
    merge = _merge(tenant, **fields)
    with translation.override("en"):
        assert english in merge_reason_sentence(merge, merge)
    with translation.override("ru"):
        assert russian in merge_reason_sentence(merge, merge)


def test_the_person_page_in_russian_shows_no_reason_code(tenant):
    merge = _merge(
        tenant, automatic=True, reason="shared identifier", identifiers=[["user_id", "u-77"]]
    )
    client = signed_in(tenant, "admin")
    User.objects.filter(email="admin-pages@example.com").update(language="ru")
    html = client.get(f"/customers/{merge.survivor_id}/").content.decode()
    assert "shared identifier" not in html
    assert "у двух профилей был общий идентификатор" in html
    unmerge = client.get(f"/customers/merges/{merge.pk}/unmerge/")
    if unmerge.status_code == 200:
        assert "shared identifier" not in unmerge.content.decode()


def test_a_masked_reader_sees_the_sentence_without_the_words(tenant):
    merge = _merge(
        tenant, automatic=False, reason="jane.doe@example.com twice", actor_label="ann@x.io"
    )
    client = signed_in(tenant, "analyst")
    html = client.get(f"/customers/{merge.survivor_id}/").content.decode()
    assert "Merged by ann@x.io, because:" in html and "jane.doe@example.com" not in html
