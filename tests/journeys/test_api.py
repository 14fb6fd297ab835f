from rapport.journeys.models import Enrolment, Journey, JourneyVersion
from tests.conftest import tenant_create

GRAPH = {
    "name": "Welcome",
    "trigger": {"type": "event", "event": "Signed Up", "where": []},
    "goal": {"event": "Order Completed", "within_days": 30},
    "holdout_percent": 0,
    "start": "hello",
    "steps": {
        "hello": {
            "type": "send",
            "channel": "email",
            "purpose": "marketing",
            "content": {"subject": "Welcome", "html": "<p>Hi</p>"},
            "next": "later",
        },
        "later": {"type": "wait", "seconds": 86400, "next": "bye"},
        "bye": {"type": "exit"},
    },
}


def _shop(db, settings):
    settings.RAPPORT_JOURNEYS_ENQUEUE = False
    return tenant_create("Shop", sample_data=False)


def test_create_start_enrol_and_read_counts(db, settings):
    shop = _shop(db, settings)
    api = shop.api()
    made = api.post("/api/v1/journeys", GRAPH)
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["status"] == "draft" and body["version"] == 1
    assert body["graph"]["steps"]["later"]["seconds"] == 86400
    assert set(body["steps"]) == {"hello", "later", "bye"}
    journey_id = body["id"]
    assert api.post(f"/api/v1/journeys/{journey_id}/validate").json() == {
        "valid": True,
        "problems": [],
    }
    started = api.post(f"/api/v1/journeys/{journey_id}/start")
    assert started.json()["status"] == "active"
    shop.send({"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com"}})
    enrolled = api.post(f"/api/v1/journeys/{journey_id}/enrolments", {"user_id": "ann"})
    assert enrolled.status_code == 201, enrolled.content
    again = api.post(f"/api/v1/journeys/{journey_id}/enrolments", {"user_id": "ann"})
    assert again.status_code == 409
    from rapport.journeys.services import enrolments_advance

    enrolments_advance(workspace_id=shop.workspace.pk)
    read = api.get(f"/api/v1/journeys/{journey_id}").json()
    assert read["steps"]["hello"]["passed"] == 1
    assert read["steps"]["later"]["waiting"] == 1
    assert read["conversion"]["enrolled"] == 1
    listed = api.get("/api/v1/journeys").json()
    assert [j["id"] for j in listed["items"]] == [journey_id]


def test_bad_graph_is_422_naming_the_path_and_writes_nothing(db, settings):
    shop = _shop(db, settings)
    api = shop.api()
    bad = {**GRAPH, "steps": {**GRAPH["steps"], "later": {"type": "wait", "seconds": "soon"}}}
    response = api.post("/api/v1/journeys", bad)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["details"][0]["field"] == "steps.later.seconds"
    extra = {**GRAPH, "steps": {**GRAPH["steps"], "bye": {"type": "exit", "colour": "red"}}}
    error = api.post("/api/v1/journeys", extra).json()["error"]
    assert error["details"][0]["field"] == "steps.bye.colour"
    trigger = {**GRAPH, "trigger": {"type": "event"}}
    error = api.post("/api/v1/journeys", trigger).json()["error"]
    assert error["details"][0]["field"] == "trigger.event"
    assert not Journey.objects.exists() and not JourneyVersion.objects.exists()


def test_a_journey_that_cannot_start_says_why(db, settings):
    shop = _shop(db, settings)
    api = shop.api()
    graph = {
        **GRAPH,
        "steps": {
            **GRAPH["steps"],
            "hello": {"type": "send", "channel": "email", "purpose": "spam", "next": "nowhere"},
            "lost": {"type": "exit"},
            "ab": {"type": "split", "paths": [{"share": 30, "next": "bye"}]},
        },
    }
    journey_id = api.post("/api/v1/journeys", graph).json()["id"]
    problems = api.post(f"/api/v1/journeys/{journey_id}/validate").json()["problems"]
    paths = {p["path"] for p in problems}
    assert {
        "steps.hello.next",
        "steps.hello",
        "steps.hello.purpose",
        "steps.lost",
        "steps.ab.paths",
    } <= paths
    started = api.post(f"/api/v1/journeys/{journey_id}/start")
    assert started.status_code == 422
    assert {d["field"] for d in started.json()["error"]["details"]} == paths
    assert Journey.objects.get().status == "draft"


def test_an_analyst_reads_but_does_not_write(db, settings):
    shop = _shop(db, settings)
    journey_id = shop.api().post("/api/v1/journeys", GRAPH).json()["id"]
    viewer = shop.api("analyst")
    assert viewer.get(f"/api/v1/journeys/{journey_id}").status_code == 200
    assert viewer.post(f"/api/v1/journeys/{journey_id}/start").status_code == 403
    assert viewer.post("/api/v1/journeys", GRAPH).status_code == 403
    assert not Enrolment.objects.exists()
