import pytest

from rapport.tenancy.pii import mask_email, mask_phone


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
