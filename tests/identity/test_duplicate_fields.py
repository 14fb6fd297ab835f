"""How a pair's fields are labelled on review: equal once normalised ("agree"), close
enough to count for the match ("similar"), different ("disagree"); phone numbers are
compared as numbers in the workspace's default region, not as text."""

import pytest

from rapport.identity.duplicates import PROFILE_FIELDS, fields_compare, records_build


def _states(a: dict, b: dict, agreeing=(), region="GB") -> dict[str, str]:
    rows = fields_compare(PROFILE_FIELDS, a, b, agreeing, default_region=region)
    return {row["field"]: row["state"] for row in rows}


def test_names_that_differ_are_similar_not_agreeing():
    # Scoring counted Kai/Kaai for the match (a fuzzy name level): not the same name.
    states = _states({"first_name": "Kai"}, {"first_name": "Kaai"}, agreeing=["first_name"])
    assert states["first_name"] == "similar"
    states = _states({"first_name": "Kai"}, {"first_name": "Kaai"})
    assert states["first_name"] == "disagree"
    states = _states({"first_name": "Kai "}, {"first_name": "kai"}, agreeing=["first_name"])
    assert states["first_name"] == "agree"


@pytest.mark.parametrize(
    "a, b, region, state",
    [
        ("020 7946 0100", "+44 20 7946 0100", "GB", "agree"),
        ("(020) 7946-0100", "+442079460100", "GB", "agree"),
        ("020 7946 0100", "+44 20 7946 0101", "GB", "disagree"),
        ("020 7946 0100", "+44 20 7946 0100", "US", "disagree"),  # not a US number
    ],
)
def test_phone_numbers_are_compared_as_numbers(a, b, region, state):
    assert _states({"phone": a}, {"phone": b}, region=region)["phone"] == state


def test_scoring_sees_the_same_normalised_phone():
    records, _ = records_build(
        [("1", {"phone": "020 7946 0100"}), ("2", {"phone": "+44 20 7946 0100"})],
        PROFILE_FIELDS,
        default_region="GB",
    )
    assert records[0]["phone"] == records[1]["phone"] == "+442079460100"
