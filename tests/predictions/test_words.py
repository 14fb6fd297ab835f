"""Churn drivers and model features read in the person's language; the events and
traits they are about keep their names."""

import pytest
from django.utils import translation

from rapport.predictions.words import FIXED_FEATURES, driver_text, feature_label
from tests.web.test_russian_pages import english_words

DRIVERS = [
    ("not_in_first_days", {"event": "Brew Planner Used", "days": 30}),
    ("in_first_days", {"event": "Brew Planner Used", "days": 30}),
    ("low_usage", {"event": "App Opened", "days": 30, "threshold": 3}),
    ("support", {"days": 90}),
    ("trait_numeric", {"trait": "employees", "op": "lt", "value": 12.0}),
    ("trait_numeric", {"trait": "employees", "op": "gte", "value": 12.0}),
    ("trait_value", {"trait": "plan", "value": "subscription"}),
]
FEATURES = [
    *((name, "stored") for name in FIXED_FEATURES),
    ("e0_30d", "Brew Planner Used, last 30 days"),
    ("e0_7d", "Brew Planner Used, last 7 days"),
    ("e0_trend", "Brew Planner Used, trend (last 30 days minus the 30 before)"),
    ("e0_first", "Brew Planner Used in the first 30 days"),
]
DATA = {"Brew", "Planner", "Used", "App", "Opened", "employees", "plan", "subscription"}


@pytest.mark.parametrize(("kind", "params"), DRIVERS)
def test_a_driver_reads_in_russian(kind, params):
    with translation.override("en"):
        english = driver_text(kind, params, "stored")
    with translation.override("ru"):
        russian = driver_text(kind, params, "stored")
    assert english != "stored" and russian != english
    assert english_words([russian]) <= DATA, russian


@pytest.mark.parametrize(("name", "label"), FEATURES)
def test_a_feature_reads_in_russian(name, label):
    with translation.override("en"):
        english = feature_label(name, label)
    with translation.override("ru"):
        russian = feature_label(name, label)
    assert russian != english
    assert english_words([russian]) <= DATA, russian
    if not name.startswith("e0"):
        return
    assert english == label  # the words training stored, in English


def test_an_unknown_kind_keeps_its_stored_words():
    assert driver_text("new_kind", {}, "As stored") == "As stored"
    assert feature_label("n0", "employees") == "employees"
