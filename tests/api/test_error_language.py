"""The API's error messages speak the person's language: Russian with
`Accept-Language: ru` (or a Russian session), English without the header, as API
clients have always had it. The code, status and shape stay the same in both; only
`message` (and the human text in `details`) changes. The Tracking API (/v1/*)
answers SDKs and speaks English whatever the header says."""

import re
import uuid

import pytest
from django.test import Client

from tests.conftest import ApiClient

PASSWORD = "correct-horse-battery"

CYRILLIC = re.compile("[\\u0400-\\u04ff]")
NO_SUCH = str(uuid.uuid4())

# (method, path, body, raw body): one bad request per app and per kind of failure.
CASES = {
    "tenancy-role": ("POST", "/api/v1/tokens", {"name": "x", "role": "boss"}, None),
    "profiles-limit": ("GET", "/api/v1/profiles?limit=100000", None, None),
    "profiles-not-found": ("GET", f"/api/v1/profiles/{NO_SUCH}", None, None),
    "profiles-traits": ("PATCH", "/api/v1/profiles/{profile}/traits", {"traits": {}}, None),
    "identity-rules": ("PATCH", "/api/v1/identity/rules", {"default_phone_region": "ZZ"}, None),
    "segments-rule": (
        "POST",
        "/api/v1/segments/preview",
        {"rule": {"all": [{"trait": "plan", "op": "in", "value": "x"}]}},
        None,
    ),
    "segments-not-found": ("GET", f"/api/v1/segments/{NO_SUCH}", None, None),
    "predictions-settings": ("PATCH", "/api/v1/models/settings", {"clv_time_unit": "year"}, None),
    "analytics-cohorts": ("GET", "/api/v1/analytics/cohorts?months=999", None, None),
    "analytics-settings": ("PATCH", "/api/v1/analytics/settings", {"refund_event": " "}, None),
    "search-limit": ("GET", "/api/v1/search?q=anna&limit=0", None, None),
    "ingest-replay": (
        "POST",
        "/api/v1/pipeline/replay",
        {"consumer": "nobody", "since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
        None,
    ),
    "ingest-not-found": ("GET", f"/api/v1/events/{NO_SUCH}", None, None),
    "method-not-allowed": ("DELETE", "/api/v1/search", None, None),
    "pydantic-literal": ("GET", "/api/v1/analytics/cohorts?by=birthday", None, None),
    "pydantic-type": ("GET", "/api/v1/profiles?limit=many", None, None),
    "invalid-json": ("POST", "/api/v1/segments", None, b'{"name":'),
    "nul-in-query": ("GET", "/api/v1/profiles?email=a%00b", None, None),
}


def _call(tenant, case: str, language: str | None):
    method, path, body, raw = CASES[case]
    path = path.replace("{profile}", tenant.path_objects()["profile_id"])
    extra = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    return tenant.api().request(method, path, body, raw=raw, **extra)


def _error(response) -> dict:
    assert response.status_code >= 400, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


def _human_details(error: dict) -> list[str]:
    details = error["details"]
    if not isinstance(details, list):
        return []
    return [d["message"] for d in details if isinstance(d, dict) and d.get("message")]


@pytest.mark.parametrize("case", CASES)
def test_an_error_speaks_russian_when_asked_and_english_by_default(case, tenant):
    english = _call(tenant, case, None)
    russian = _call(tenant, case, "ru")
    assert russian.status_code == english.status_code
    en, ru = _error(english), _error(russian)
    assert ru["code"] == en["code"]
    assert not CYRILLIC.search(en["message"]), en["message"]
    assert CYRILLIC.search(ru["message"]), ru["message"]
    # The same answer in another language: the details keep their shape and fields.
    assert type(ru["details"]) is type(en["details"])
    if isinstance(en["details"], list):
        assert [d.get("field") for d in ru["details"]] == [d.get("field") for d in en["details"]]
    for text in _human_details(en):
        assert not CYRILLIC.search(text), text
    for text in _human_details(ru):
        assert CYRILLIC.search(text), text
    # An explicit English wins too.
    assert _error(_call(tenant, case, "en"))["message"] == en["message"]


def test_the_field_path_is_kept_as_it_is(tenant):
    error = _error(_call(tenant, "segments-rule", "ru"))
    assert error["message"].startswith("Недопустимое значение «rule.all.0»: ")
    assert error["details"][0]["field"] == "rule.all.0"


def test_english_messages_are_the_ones_clients_always_had(tenant):
    """No header: the English wording, pydantic's own sentences included."""
    assert _error(_call(tenant, "pydantic-type", None))["message"] == (
        "Invalid value for 'limit': Input should be a valid integer, "
        "unable to parse string as an integer"
    )
    assert _error(_call(tenant, "pydantic-literal", None))["message"] == (
        "Invalid value for 'by': Input should be 'signup' or 'first_purchase'"
    )
    assert _error(_call(tenant, "identity-rules", None))["message"] == (
        "Invalid value for 'default_phone_region': 'ZZ' is not a region code like GB or US"
    )
    assert _error(_call(tenant, "pydantic-literal", "ru"))["message"] == (
        "Недопустимое значение «by»: допустимо: 'signup' или 'first_purchase'"
    )


def test_missing_credentials_are_refused_in_the_language_asked(db):
    english = _error(ApiClient(None).get("/api/v1/profiles"))
    russian = _error(ApiClient(None).get("/api/v1/profiles", HTTP_ACCEPT_LANGUAGE="ru"))
    assert english["code"] == russian["code"] == "unauthorized"
    assert english["message"].startswith("Missing, malformed, expired or revoked credentials")
    assert CYRILLIC.search(russian["message"])


def test_a_russian_session_gets_russian_api_errors(tenant):
    """The UI's JavaScript calls the API with the session: the person's language
    (chosen in the corner menu) wins over the browser's."""
    person = tenant.extra_member.user
    person.language = "ru"
    person.save(update_fields=["language"])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.login(username=person.email, password=PASSWORD)
    response = client.get("/api/v1/profiles?limit=many")
    assert response.status_code == 422, response.content
    assert response.json()["error"]["message"] == (
        "Недопустимое значение «limit»: нужно целое число"
    )
    person.language = "en"
    person.save(update_fields=["language"])
    english = client.get("/api/v1/profiles?limit=many").json()["error"]["message"]
    assert english.startswith("Invalid value for 'limit': Input should be a valid integer")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/track?anonymousId=a%00b"), ("DELETE", "/v1/track"), ("GET", "/v1/nowhere")],
    ids=["nul", "method", "unknown-path"],
)
def test_the_tracking_api_speaks_english_whatever_the_header(method, path, tenant):
    response = ApiClient(None).request(method, path, HTTP_ACCEPT_LANGUAGE="ru")
    error = _error(response)
    assert not CYRILLIC.search(error["message"]), error["message"]
    assert error["message"] == _error(ApiClient(None).request(method, path))["message"]


def test_an_api_answer_in_russian_leaves_no_russian_behind(tenant):
    """A Russian answer does not leak into the next request of the same thread."""
    _call(tenant, "nul-in-query", "ru")
    assert not CYRILLIC.search(_error(_call(tenant, "nul-in-query", None))["message"])
    _call(tenant, "pydantic-type", "ru")
    assert not CYRILLIC.search(_error(_call(tenant, "pydantic-type", None))["message"])


LATIN_WORD = re.compile("[A-Za-z]{3,}")


@pytest.mark.parametrize("case", ["profiles-not-found", "segments-not-found", "ingest-not-found"])
def test_a_russian_not_found_names_the_object_in_russian(case, tenant):
    """One whole sentence per kind of object, not an English model word in a Russian
    frame: only the id is left in Latin letters."""
    message = _error(_call(tenant, case, "ru"))["message"]
    assert not LATIN_WORD.search(message.replace(NO_SUCH, "")), message


@pytest.mark.parametrize("kind", ["profile", "account"])
def test_a_refused_merge_names_the_object_in_russian(kind, tenant):
    objects = tenant.path_objects()
    record = objects[f"{kind}_id"]
    path = f"/api/v1/{kind.replace('account', 'accounts').replace('profile', 'profiles')}"
    api = tenant.api()
    itself = {"other": record, "reason": "the same"}
    english = _error(api.post(f"{path}/{record}/merge", itself))
    russian = _error(api.post(f"{path}/{record}/merge", itself, HTTP_ACCEPT_LANGUAGE="ru"))
    assert english["message"] == (
        f"Invalid value for 'other': A{'n' if kind == 'account' else ''} {kind} "
        "cannot be merged with itself"
    )
    sentence = russian["message"].replace("«other»", "")
    assert CYRILLIC.search(sentence) and not LATIN_WORD.search(sentence), sentence
