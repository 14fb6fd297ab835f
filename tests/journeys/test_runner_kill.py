"""10,000 customers walked by real `rapport worker` processes; the worker is killed
(SIGKILL) in the middle, two more are started: every customer walks the whole
journey, each step ran once per customer (the step log, UNIQUE per enrolment, step and
visit, is complete and has nothing twice), and each message was planned once."""

import pytest

from tests.core.test_leases_kill import _migrated, deployment  # noqa: F401 - fixtures

CUSTOMERS = 10_000
PRO_EVERY = 10

PLAN = """
import json
from django.utils import timezone
from rapport.journeys import services
from rapport.profiles.models import Profile
from rapport.tenancy.models import Workspace
from rapport.tenancy.services import Actor
actor = Actor.system("test")
ws = Workspace.objects.get(name={workspace!r})
now = timezone.now()
people = Profile.objects.bulk_create(
    [Profile(workspace=ws, traits={{"plan": "pro" if i % {pro_every} == 0 else "free"}},
             first_seen_at=now, last_seen_at=now)
     for i in range({count})],
    batch_size=5000,
)
journey = services.journey_create(workspace=ws, actor=actor, graph={{
    "name": "Walk",
    "start": "ab",
    "steps": {{
        "ab": {{"type": "split",
                "paths": [{{"share": 50, "next": "a"}}, {{"share": 50, "next": "b"}}]}},
        "a": {{"type": "wait", "seconds": 1, "next": "tag"}},
        "b": {{"type": "wait", "seconds": 2, "next": "tag"}},
        "tag": {{"type": "branch", "rule": {{"trait": "plan", "op": "eq", "value": "pro"}},
                "yes": "hi", "no": "bye"}},
        "hi": {{"type": "send", "channel": "in_app", "purpose": "transactional",
               "content": {{"subject": "Hi", "text": "Welcome"}}, "next": None}},
        "bye": {{"type": "exit"}},
    }},
}})
journey = services.journey_start(journey=journey, actor=actor)
made = services.enrolments_create_many(journey=journey, profile_ids=[p.pk for p in people])
print(json.dumps({{"journey": str(journey.pk), "enrolled": len(made)}}))
"""


@pytest.mark.slow
def test_a_run_killed_midway_runs_each_step_once_per_customer(deployment):  # noqa: F811
    deployment.env["RAPPORT_JOURNEYS_BATCH"] = "500"
    try:
        planned = deployment.script(
            PLAN.format(workspace=deployment.workspace, count=CUSTOMERS, pro_every=PRO_EVERY)
        )
        assert planned["enrolled"] == CUSTOMERS
        journey = deployment.key(planned["journey"])
        first = deployment.worker_start()
        deployment.wait_for(
            "SELECT COUNT(*) > 1500 FROM journeys_steprun WHERE journey_id = %s",
            journey,
            what="the journey to be under way",
        )
        deployment.worker_kill(first)
        runs_before = deployment.value(
            "SELECT COUNT(*) FROM journeys_steprun WHERE journey_id = %s", journey
        )
        assert runs_before < CUSTOMERS * 4
        deployment.worker_start()
        deployment.worker_start()
        deployment.wait_for(
            "SELECT COUNT(*) = 0 FROM journeys_enrolment WHERE journey_id = %s "
            "AND state = 'active'",
            journey,
            what="every customer to finish the journey",
            timeout=600,
        )
        deployment.queue_drained()
    finally:
        deployment.env.pop("RAPPORT_JOURNEYS_BATCH", None)

    assert deployment.rows(
        "SELECT state, COUNT(*) FROM journeys_enrolment WHERE journey_id = %s GROUP BY state",
        journey,
    ) == [("completed", CUSTOMERS)]
    # Four steps a customer (the split, a wait, the branch, a send or the exit), each once.
    per_customer = deployment.rows(
        "SELECT n, COUNT(*) FROM (SELECT enrolment_id, COUNT(*) AS n FROM journeys_steprun "
        "WHERE journey_id = %s GROUP BY enrolment_id) AS c GROUP BY n",
        journey,
    )
    assert per_customer == [(4, CUSTOMERS)]
    assert (
        deployment.value(
            "SELECT COUNT(*) FROM (SELECT enrolment_id, step FROM journeys_steprun "
            "WHERE journey_id = %s GROUP BY enrolment_id, step HAVING COUNT(*) > 1) AS d",
            journey,
        )
        == 0
    )
    pros = CUSTOMERS // PRO_EVERY
    assert (
        deployment.value(
            "SELECT COUNT(*) FROM journeys_steprun WHERE journey_id = %s AND outcome = 'sent'",
            journey,
        )
        == pros
    )
    # One message per customer sent to, under the step's idempotency key.
    assert (
        deployment.value(
            "SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM channels_message "
            "WHERE idempotency_key LIKE 'journey:%%'"
        )
        == pros
    )
    assert (
        deployment.value(
            "SELECT COUNT(DISTINCT idempotency_key) FROM channels_message "
            "WHERE idempotency_key LIKE 'journey:%%'"
        )
        == pros
    )
