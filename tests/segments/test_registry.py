"""Every condition of the rule language, whichever app registered it, is covered
everywhere: it validates (and refuses what it does not know), compiles to a query the
database runs (SQLite and PostgreSQL: the suite runs on both), reads in English and in
Russian, is in the JSON Schema, and the builder offers it with fields it can draw."""

import re
from pathlib import Path

import pytest
from django.utils import translation

import rapport
from rapport.core.errors import InvalidInputError
from rapport.segments import rules as r
from rapport.segments.compiler import Context, rule_profiles
from rapport.segments.models import Segment
from tests.segments.conftest import NOW

CONDITIONS = r.conditions_all()
EXAMPLES = [
    pytest.param(c, example, id=f"{c.key}-{i}")
    for c in CONDITIONS
    for i, example in enumerate(c.examples)
]
BUILDER_JS = Path(rapport.__file__).parent / "web" / "static" / "web" / "rule-builder.js"
CYRILLIC = re.compile("[\u0400-\u04ff]")


def test_the_language_has_the_conditions_of_segments_and_predictions():
    keys = {c.key for c in CONDITIONS}
    assert {"trait", "event", "aggregate", "consent", "rfm", "lifecycle"} <= keys
    # Registered by the predictions app, not written into segments.
    assert "prediction" in keys


@pytest.mark.parametrize(("condition", "example"), EXAMPLES)
def test_each_example_validates_and_reads_back_the_same(condition, example):
    parsed = r.rule_parse(example)
    assert isinstance(parsed, condition.model)
    assert r.condition_of(parsed) is condition
    stored = parsed.model_dump(by_alias=True, exclude_defaults=True)
    assert r.rule_parse(stored) == parsed


@pytest.mark.parametrize("condition", CONDITIONS, ids=lambda c: c.key)
def test_each_condition_refuses_an_unknown_key_naming_it(condition):
    bad = {"all": [{**condition.examples[0], "bogus": 1}]}
    with pytest.raises(InvalidInputError) as caught:
        r.rule_parse(bad)
    assert caught.value.field == "rule.all.0.bogus"


@pytest.mark.django_db
@pytest.mark.parametrize(("condition", "example"), EXAMPLES)
def test_each_example_compiles_and_runs_on_the_database(tenant, condition, example):
    if condition.key == "segment":
        segment = Segment.objects.filter(workspace=tenant.workspace).first()
        example = {"segment": str(segment.pk)}
    ctx = Context(workspace_id=tenant.workspace.pk, now=NOW)
    everyone = rule_profiles(r.rule_parse({"all": []}), ctx).count()
    assert everyone > 0
    for rule in (example, {"not": example}, {"any": [example, {"trait": "plan", "op": "exists"}]}):
        matched = rule_profiles(r.rule_parse(rule), ctx).count()
        assert 0 <= matched <= everyone


@pytest.mark.django_db
@pytest.mark.parametrize(("condition", "example"), EXAMPLES)
def test_each_example_reads_in_english_and_in_russian(condition, example):
    parsed = r.rule_parse(example)
    with translation.override("en"):
        english = r.rule_describe(parsed)
    with translation.override("ru"):
        russian = r.rule_describe(parsed)
    assert english and not CYRILLIC.search(english)
    assert russian != english and CYRILLIC.search(russian), russian


def test_the_json_schema_holds_every_condition():
    defs = r.rule_schema()["$defs"]
    for condition in CONDITIONS:
        assert condition.model.__name__ in defs
        refs = {d["$ref"].rsplit("/", 1)[1] for d in defs["Rule"]["oneOf"]}
        assert condition.model.__name__ in refs


def _widgets_the_builder_draws() -> set[str]:
    source = BUILDER_JS.read_text()
    block = source[source.index("var WIDGETS = {") : source.index("function conditionRow")]
    return set(re.findall(r"^\s{4}(\w+): function", block, re.MULTILINE))


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_builder_offers_every_condition_with_fields_it_can_draw(language):
    options = r.BuilderOptions(
        segments=[{"id": "00000000-0000-0000-0000-000000000000", "name": "VIP"}],
        stages=[{"key": "customer", "name": "Customer"}],
    )
    with translation.override(language):
        offered = r.builder_options(options)
    by_key = {c["key"]: c for c in offered["conditions"]}
    assert list(by_key) == [c.key for c in CONDITIONS]
    widgets = _widgets_the_builder_draws()
    assert {"text", "select", "value", "count", "where", "window"} <= widgets
    for condition in CONDITIONS:
        fields = by_key[condition.key]["fields"]
        names = [f["name"] for f in fields]
        assert condition.key in names
        required = {
            field.alias or name
            for name, field in condition.model.model_fields.items()
            if field.is_required()
        }
        assert required <= set(names), condition.key
        for f in fields:
            assert f["widget"] in widgets, (condition.key, f)
            assert f["label"], (condition.key, f)
        if language == "ru":
            assert CYRILLIC.search(by_key[condition.key]["label"]), condition.key
    if language == "ru":
        assert all(CYRILLIC.search(text) for text in offered["texts"].values())
