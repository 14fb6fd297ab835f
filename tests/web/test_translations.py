"""English and Russian ship complete: every string of the catalogue is translated, the
compiled catalogue is the one the sources give, and a person's choice of language
is the one their pages speak."""

from pathlib import Path

import polib
from django.test import Client

import rapport

CATALOGUE = Path(rapport.__file__).parent / "locale" / "ru" / "LC_MESSAGES"
PASSWORD = "correct-horse-battery"


def test_every_string_has_a_russian_translation():
    po = polib.pofile(str(CATALOGUE / "django.po"))
    assert len(po) > 100
    untranslated = [e.msgid for e in po if not _translated(e) or e.fuzzy or e.obsolete]
    assert untranslated == []
    # Russian has four plural forms (one, few, many, other); each must be given.
    for entry in (e for e in po if e.msgid_plural):
        assert len(entry.msgstr_plural) == 4, entry.msgid
    # Placeholders survive translation.
    for entry in po:
        for name in ("%(q)s", "%(name)s", "%(role)s", "%(at)s", "%(label)s", "%(email)s"):
            for text in (entry.msgstr, *entry.msgstr_plural.values()):
                if text:
                    assert (name in entry.msgid) == (name in text), entry.msgid


def test_the_compiled_catalogue_is_up_to_date():
    po = polib.pofile(str(CATALOGUE / "django.po"))
    mo = polib.mofile(str(CATALOGUE / "django.mo"))
    assert _texts(po) == _texts(mo)


def _translated(entry) -> bool:
    if entry.msgid_plural:
        return bool(entry.msgstr_plural) and all(entry.msgstr_plural.values())
    return bool(entry.msgstr)


def _texts(catalogue) -> dict:
    # By context and text: "Loyal" the lifecycle stage and "Loyal" the RFM cell differ.
    return {
        (e.msgctxt, e.msgid): tuple(sorted(e.msgstr_plural.items())) if e.msgid_plural else e.msgstr
        for e in catalogue
        if _translated(e)
    }


def test_a_person_sees_pages_in_the_language_they_chose(tenant):
    person = tenant.extra_member.user
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.login(username=person.email, password=PASSWORD)
    assert "Customers" in client.get("/customers/").content.decode()
    response = client.post("/preferences/language/", {"language": "ru", "next": "/customers/"})
    assert response.status_code == 302 and response["Location"] == "/customers/"
    html = client.get("/customers/").content.decode()
    assert '<html lang="ru">' in html and "Клиенты" in html and "Найти клиента" in html
    # An unknown language changes nothing; a foreign `next` is not followed.
    response = client.post(
        "/preferences/language/", {"language": "xx", "next": "https://evil.example"}
    )
    assert response["Location"] == "/"
    person.refresh_from_db()
    assert person.language == "ru"
