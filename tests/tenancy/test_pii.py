import pytest

from rapport.tenancy.pii import (
    looks_like_phone,
    mask_email,
    mask_identifier,
    mask_personal_data,
    mask_phone,
    masked_record,
)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("jane.doe@example.com", "j•••@e••••••.com"),
        ("a@b.co", "a•••@b.co"),
        ("x@localhost", "x•••@l••••••••"),
        ("not an email", "•••"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_email(value, masked):
    assert mask_email(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [("+44 20 7946 0958", "••••••••••58"), ("12", "••"), ("", ""), (None, None)],
)
def test_mask_phone(value, masked):
    assert mask_phone(value) == masked


def test_masked_values_reveal_no_full_address():
    assert "jane" not in mask_email("jane@example.com")
    assert "example" not in mask_email("jane@example.com")


@pytest.mark.parametrize(
    "value",
    [
        "+447700900123",
        "+44 7700 900123",
        "0044 7700 900123",
        "(020) 7946 0958",
        "020 7946 0958",
        "415-555-0199",
        "+1 (415) 555-0199",
    ],
)
def test_phone_numbers_as_people_write_them(value):
    assert looks_like_phone(value)
    assert mask_personal_data({"anything": value})["anything"].endswith(value[-2:])
    assert value not in str(mask_personal_data({"anything": value}))


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-31",
        "31/01/2026",
        "192.168.100.200",
        "1 234 567.50",
        "1234.5678",
        "3.2.1",
        "ORD-2026-000123",
        "77009001",  # a bare number: an order or customer number
        "Europe/London",
        "2026-01-31T10:00:00+00:00",
    ],
)
def test_values_written_like_phones_are_left_alone(value):
    assert not looks_like_phone(value)
    assert mask_personal_data({"anything": value}) == {"anything": value}


@pytest.mark.parametrize(
    "key",
    ["phone", "telephone", "contact_phone", "contactPhone", "Mobile Number", "homePhone", "fax"],
)
def test_phones_under_any_key_that_names_one(key):
    assert mask_personal_data({key: "07700 900456"}) == {key: "•••••••••56"}
    assert mask_personal_data({"nested": [{key: 447700900456}]}) == {
        "nested": [{key: "••••••••••56"}]
    }


def test_keys_that_name_a_phone_keep_what_is_no_phone():
    assert mask_personal_data({"mobile_app_version": "3.2.1", "is_mobile": True}) == {
        "mobile_app_version": "3.2.1",
        "is_mobile": True,
    }


@pytest.mark.parametrize(
    ("data", "masked"),
    [
        ({"email": "jane@example.com"}, {"email": "j•••@e••••••.com"}),
        ({"billing_email": "jane@example.com"}, {"billing_email": "j•••@e••••••.com"}),
        ({"email_status": "bounced"}, {"email_status": "bounced"}),
        ({"backup": "jane@example.com"}, {"backup": "j•••@e••••••.com"}),
        ({"note": "write to jane@example.com"}, {"note": "write to j•••@e••••••.com"}),
        ({"note": "call +44 7700 900123 today"}, {"note": "call ••••••••••23 today"}),
        ({"note": "order 123456789 shipped"}, {"note": "order 123456789 shipped"}),
    ],
)
def test_emails_under_any_key_and_inside_text(data, masked):
    assert mask_personal_data(data) == masked


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("user_id", "lena@example.org", "l•••@e••••••.org"),
        ("user_id", "+447700900999", "••••••••••99"),
        ("user_id", "customer-42", "customer-42"),
        (
            "anonymous_id",
            "6f1c0a4e-7f7d-4c1e-9d55-1b2f3c4d5e6f",
            "6f1c0a4e-7f7d-4c1e-9d55-1b2f3c4d5e6f",
        ),
        ("email", "lena@example.org", "l•••@e••••••.org"),
        ("phone", "+447700900999", "••••••••••99"),
    ],
)
def test_identifiers_of_any_kind_that_are_an_email_or_a_phone(kind, value, masked):
    assert mask_identifier(kind, value) == masked


class _Role:
    def __init__(self, can_see_pii):
        self.can_see_pii = can_see_pii


def test_a_masked_record_is_a_copy_and_the_original_is_untouched():
    merge = {"identifiers": [["email", "lena@example.org"], ["user_id", "u1"]], "reason": "x"}
    shown = masked_record(_Role(False), merge, "merge")
    assert shown["identifiers"] == [["email", "l•••@e••••••.org"], ["user_id", "u1"]]
    assert merge["identifiers"][0][1] == "lena@example.org"
    assert masked_record(_Role(True), merge, "merge") is merge
