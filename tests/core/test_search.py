"""The global search: customers by any identifier, any part of the name, part of an
email and a phone number as typed; accounts; segments; one workspace only; masking for
roles without pii.read; bad input answered with a 4xx or nothing, never a 500."""

import re

import pytest

from rapport.core.search import search_query_parse, search_run
from rapport.identity.services import identity_rules_update
from rapport.tenancy.auth import Principal
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor
from tests.web.clients import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(tenant):
    tenant.send(
        {
            "type": "identify",
            "userId": "u-haruto",
            "traits": {
                "name": "Haruto Ito",
                "email": "haruto.ito7@kitchen.example",
                "phone": "+447700901534",
                "company": "Kitchen Co",
            },
            "messageId": "s-1",
        },
        {
            "type": "identify",
            "userId": "u-hitomi",
            "traits": {"name": "Hitomi Sato", "email": "hs@other.example"},
            "messageId": "s-2",
        },
        {
            "type": "identify",
            "userId": "jane@secret.example",
            "traits": {"name": "Jane Secret"},
            "messageId": "s-3",
        },
        {
            "type": "group",
            "userId": "u-haruto",
            "groupId": "grp-kitchen",
            "traits": {"name": "Kitchen Company", "website": "https://kitchen.example"},
            "messageId": "s-4",
        },
    )
    return tenant


def principal(tenant, role=Role.ADMIN):
    return Principal(workspace=tenant.workspace, role=role)


def labels(sections, kind="customers"):
    return [h.label for s in sections if s.key == kind for h in s.hits]


@pytest.mark.parametrize(
    "q",
    [
        "Ito",
        "ito",
        "haruto",
        "Haruto Ito",
        "u-haruto",
        "haruto.ito7@kitchen.example",
        "HARUTO.ITO7@Kitchen.Example",
        "ito7@kitch",
        "+44 7700 901534",
        "+44-7700-901534",
        "+447700901534",
        "07700 901534",
        "07700-901534",
        "0044 7700 901534",
        "7700 9015",
    ],
)
def test_a_customer_is_found_as_people_type(people, q):
    assert "Haruto Ito" in labels(search_run(principal(people), q))


def test_a_surname_finds_the_word_before_the_middle_of_a_word(people):
    found = labels(search_run(principal(people), "ito"))
    assert found[0] == "Haruto Ito"


def test_a_national_number_uses_the_workspace_region(people):
    identity_rules_update(
        workspace=people.workspace, actor=Actor.system("tests"), default_phone_region="GB"
    )
    assert labels(search_run(principal(people), "07700 901534")) == ["Haruto Ito"]


def test_accounts_and_segments(people):
    from rapport.segments.services import segment_create

    segment_create(
        workspace=people.workspace,
        actor=Actor.system("tests"),
        name="Kitchen lovers",
        kind="static",
    )
    assert labels(search_run(principal(people), "lovers"), "segments") == ["Kitchen lovers"]
    sections = search_run(principal(people), "kitchen")
    assert "Kitchen Company" in labels(sections, "accounts")
    assert labels(search_run(principal(people), "kitchen.example"), "accounts") == [
        "Kitchen Company"
    ]
    assert labels(search_run(principal(people), "grp-kitchen"), "accounts") == ["Kitchen Company"]


def test_another_workspace_finds_nothing(people, other_tenant):
    for q in ("Ito", "u-haruto", "+447700901534", "kitchen"):
        assert search_run(principal(other_tenant), q) == []


def test_without_pii_read_hidden_values_find_nothing(people):
    analyst = principal(people, Role.ANALYST)
    assert not analyst.can_see_pii
    # The name and an id shown unmasked still find the customer...
    assert "Haruto Ito" in labels(search_run(analyst, "Ito"))
    assert "Haruto Ito" in labels(search_run(analyst, "u-haruto"))
    # ...what the role sees masked does not, not even in part.
    for q in (
        "haruto.ito7@kitchen.example",
        "ito7@kitch",
        "+447700901534",
        "07700 901534",
        "jane@secret.example",
        "secret.example",
    ):
        assert labels(search_run(analyst, q)) == [], q
    # What is shown is masked too.
    hits = [h for s in search_run(analyst, "Haruto") for h in s.hits]
    assert all("haruto.ito7@" not in h.detail for h in hits)
    assert any("•" in h.detail for h in hits)


@pytest.mark.parametrize("q", [None, "", "   "])
def test_nothing_to_look_for_finds_nothing(people, q):
    assert search_query_parse(q) is None
    assert search_run(principal(people), q) == []


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        "%",
        "_",
        "\\",
        "<script>alert(1)</script>",
        "Ito'; DROP TABLE profiles_profile; --",
        "😀 ito",
        "+",
        "00",
        "a",
    ],
)
def test_odd_text_is_only_text(people, q):
    # Wildcards and quotes are matched literally: "%" is not "everything".
    assert labels(search_run(principal(people), q)) in ([], ["Haruto Ito"])
    client = signed_in(people)
    assert client.get("/search/", {"q": q}).status_code == 200
    assert people.api().get(f"/api/v1/search?q={q}").status_code in (200, 422)


def test_the_api(people):
    api = people.api()
    response = api.get("/api/v1/search?q=Ito&limit=3")
    assert response.status_code == 200, response.content
    body = response.json()
    customers = next(s for s in body["sections"] if s["kind"] == "customers")
    assert customers["hits"][0]["label"] == "Haruto Ito"
    assert customers["hits"][0]["url"].startswith("/customers/")
    assert len(customers["hits"]) <= 3
    masked = people.api(Role.ANALYST).get("/api/v1/search?q=haruto.ito7@kitchen.example")
    assert masked.status_code == 200 and masked.json()["sections"] == []


@pytest.mark.parametrize(
    "query",
    ["", "q=", f"q={'x' * 201}", "q=ito&limit=0", "q=ito&limit=51", "q=ito&limit=x", "q=a%00b"],
)
def test_the_api_refuses_bad_input(people, query):
    response = people.api().get(f"/api/v1/search?{query}")
    assert response.status_code == 422 or (
        response.status_code == 200 and response.json()["sections"] == []
    ), response.content
    if response.status_code == 422:
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_the_page_and_its_live_results(people):
    client = signed_in(people)
    page = client.get("/search/", {"q": "Ito"})
    assert page.status_code == 200
    assert "Haruto Ito" in page.content.decode()
    live = client.get(
        "/search/", {"q": "Ito"}, headers={"HX-Request": "true", "HX-Target": "search-popover"}
    )
    assert "Haruto Ito" in live.content.decode() and "<html" not in live.content.decode()
    assert client.get("/search/").status_code == 200
    too_long = client.get("/search/", {"q": "x" * 500})
    assert too_long.status_code == 422 and "q:" in too_long.content.decode()
    html = client.get("/search/", {"q": "<b>x</b>"}).content.decode()
    assert "<b>x</b>" not in html


@pytest.mark.django_db(transaction=True)
def test_a_demo_customer_by_surname_part_of_the_email_and_a_national_phone():
    from rapport.demo.services import demo_load
    from rapport.identity.models import Identifier
    from tests.conftest import tenant_create

    tenant = tenant_create("Demo search", sample_data=False)
    demo_load(workspace=tenant.workspace, customers=60, months=3, seed=7)
    phone = (
        Identifier.objects.filter(workspace=tenant.workspace, kind="phone")
        .select_related("profile")
        .first()
    )
    person = phone.profile
    name = person.traits["name"]
    email = Identifier.objects.get(workspace=tenant.workspace, profile=person, kind="email").value
    assert phone.value.startswith("+44")
    national = "0" + phone.value[3:]  # +447700900123 -> 07700900123
    for q in (
        name.split()[-1],
        email.split("@")[0][2:],
        f"{national[:5]} {national[5:]}",
        f"+44 {phone.value[3:7]} {phone.value[7:]}",
    ):
        sections = search_run(principal(tenant), q, limit=50)
        ids = [h.id for s in sections if s.key == "customers" for h in s.hits]
        assert str(person.pk) in ids, q


def test_on_postgresql_the_searches_use_their_indexes(people):
    """The trigram indexes (migrations identity 0006, profiles 0008) match the SQL the
    ORM writes: with sequential scans off, the customer searches read theirs. (The
    accounts' indexes are left to the planner: on 20,000 accounts it prefers another.)"""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's indexes")
    # Enough rows that an index is worth reading (the planner scans a few rows whole).
    ws = people.workspace.pk
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_profile (id, workspace_id, traits, trait_sources, created_at,
                                          updated_at)
            SELECT gen_random_uuid(), %s, jsonb_build_object('name', 'Person ' || n), '{}',
                   now(), now()
            FROM generate_series(1, 20000) AS n
            """,
            [ws],
        )
        cursor.execute(
            """
            INSERT INTO identity_identifier (id, workspace_id, profile_id, kind, value, created_at)
            SELECT gen_random_uuid(), %s, id, k.kind,
                   CASE k.kind WHEN 'email' THEN 'p' || md5(id::text) || '@mail.example'
                        ELSE '+1555' || substr(md5(id::text), 1, 7) END, now()
            FROM profiles_profile, (VALUES ('email'), ('phone')) AS k(kind)
            WHERE workspace_id = %s AND traits ->> 'name' LIKE 'Person %%'
            ON CONFLICT DO NOTHING
            """,
            [ws, ws],
        )
        cursor.execute(
            """
            INSERT INTO profiles_account (id, workspace_id, group_id, name, traits,
                                          trait_sources, created_at, updated_at)
            SELECT gen_random_uuid(), %s, 'g' || n, 'Company ' || n,
                   jsonb_build_object('website', 'https://c' || n || '.example'), '{}', now(),
                   now()
            FROM generate_series(1, 20000) AS n
            """,
            [ws],
        )
        cursor.execute("ANALYZE")
    used = set()
    for q in ("Ito", "ito7@kitch", "7700 9015", "kitchen"):
        with CaptureQueriesContext(connection) as captured:
            search_run(principal(people), q)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            for query in captured.captured_queries:
                if not query["sql"].startswith("SELECT"):
                    continue  # the SAVEPOINT and SET LOCAL around the name search
                cursor.execute("EXPLAIN " + query["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
                used |= set(re.findall(r"\b(\w+_trgm)\b", plan))
    assert used >= {
        "profiles_profile_name_trgm",
        "identity_identifier_email_trgm",
        "identity_identifier_phone_trgm",
    }, used


def test_on_postgresql_a_name_no_one_has_is_looked_up_in_the_trigram_index(people):
    """Under a LIMIT the planner expects a walk of the table (or of the name b-tree) to
    find a few matches early; for text no name holds (a user id, a domain) that walk
    read every profile (0.8-6 s at 1,000,000). The name search forbids both walks, so
    its plan is a bitmap scan of the trigram index whatever the statistics say."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rapport.identity.search import _names, _trigram_index_only

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_profile (id, workspace_id, traits, trait_sources, created_at,
                                          updated_at)
            SELECT gen_random_uuid(), %s, jsonb_build_object('name', 'Person ' || n), '{}',
                   now(), now()
            FROM generate_series(1, 20000) AS n
            """,
            [people.workspace.pk],
        )
        cursor.execute("ANALYZE profiles_profile")
    query = search_query_parse("user-500002")
    with CaptureQueriesContext(connection) as captured:
        assert _names(people.workspace, query, 50) == []
    statements = [q["sql"] for q in captured.captured_queries]
    assert "SET LOCAL enable_seqscan = off" in statements, statements
    assert "SET LOCAL enable_indexscan = off" in statements, statements
    selects = [sql for sql in statements if sql.startswith("SELECT")]
    assert selects
    with _trigram_index_only(), connection.cursor() as cursor:
        for sql in selects:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "profiles_profile_name_trgm" in plan, plan
            assert "Seq Scan" not in plan and "Index Scan using" not in plan, plan
