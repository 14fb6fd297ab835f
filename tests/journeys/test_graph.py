"""The graph's schema: each error names its path; the whole-graph checks."""

import pytest

from rapport.core.errors import InvalidInputError
from rapport.journeys.graph import graph_parse, graph_problems

BASE = {
    "name": "G",
    "start": "a",
    "steps": {
        "a": {"type": "wait", "seconds": 60, "next": "ab"},
        "ab": {
            "type": "split",
            "paths": [{"share": 50, "next": "x"}, {"share": 50, "next": "x"}],
        },
        "x": {"type": "exit"},
    },
}


def _with(**changes):
    return {**BASE, **changes}


@pytest.mark.parametrize(
    ("graph", "path"),
    [
        (_with(steps={**BASE["steps"], "a": {"type": "wait", "seconds": 0}}), "steps.a.seconds"),
        (
            _with(
                steps={
                    **BASE["steps"],
                    "ab": {"type": "split", "paths": [{"share": "half", "next": "x"}]},
                }
            ),
            "steps.ab.paths[0].share",
        ),
        (_with(steps={**BASE["steps"], "x": {"type": "teleport"}}), "steps.x"),
        (
            _with(goal={"event": "E", "where": [{"property": "p", "op": "nope"}]}),
            "goal.where[0].op",
        ),
        (_with(trigger={"type": "segment_entered", "segment_id": "x"}), "trigger.segment_id"),
        (_with(holdout_percent=101), "holdout_percent"),
        (_with(colour="red"), "colour"),
        (_with(start="not a key!"), "start"),
    ],
)
def test_each_error_names_its_path(graph, path):
    with pytest.raises(InvalidInputError) as error:
        graph_parse(graph)
    assert error.value.field == path


def test_a_loop_must_wait():
    steps = {
        "a": {"type": "update_trait", "trait": "t", "value": 1, "next": "b"},
        "b": {
            "type": "branch",
            "rule": {"trait": "t", "op": "eq", "value": 1},
            "yes": "a",
            "no": None,
        },
    }
    problems = graph_problems(graph_parse(_with(start="a", steps=steps)))
    assert any("loop" in p["message"] for p in problems)
    steps["b"]["yes"] = "w"
    steps["w"] = {"type": "wait", "seconds": 60, "next": "a"}
    assert graph_problems(graph_parse(_with(start="a", steps=steps))) == []


def test_the_example_validates():
    assert graph_problems(graph_parse(BASE)) == []
