"""The column chooser moves a shown column up or down with buttons (no drag and drop):
the order lands in the address, in what the list shows, and in saved views."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from rapport.core.errors import InvalidInputError
from rapport.profiles.models import SavedView
from rapport.segments.models import Segment
from rapport.web.lists import columns_moved
from tests.web.clients import signed_in


def test_columns_moved():
    cols = ["email", "stage", "churn"]
    assert columns_moved(cols, "up:stage") == ["stage", "email", "churn"]
    assert columns_moved(cols, "down:stage") == ["email", "churn", "stage"]
    assert columns_moved(cols, "up:email") == cols  # past the end: unchanged
    assert columns_moved(cols, "down:churn") == cols
    assert columns_moved(cols, "up:clv") == cols  # not shown: unchanged
    assert columns_moved(cols, "") == cols
    with pytest.raises(InvalidInputError) as refused:
        columns_moved(cols, "left:email")
    assert refused.value.field == "move"


def _cols(location: str) -> list[str]:
    return parse_qs(urlsplit(location).query)["col"]


def _headers(html: str) -> list[str]:
    head = html.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return [
        re.sub(r"<[^>]+>|[↑↓]", "", th).strip() for th in re.findall(r"<th[^>]*>(.*?)</th>", head)
    ]


@pytest.mark.parametrize(
    "path,cols,move,expected",
    [
        ("/customers/", ["email", "stage", "churn"], "up:churn", ["email", "churn", "stage"]),
        ("/customers/", ["email", "stage", "churn"], "down:email", ["stage", "email", "churn"]),
        (
            "/accounts/",
            ["domain", "parent", "last_seen"],
            "up:last_seen",
            ["domain", "last_seen", "parent"],
        ),
    ],
)
def test_a_move_redirects_to_the_address_with_the_new_order(tenant, path, cols, move, expected):
    client = signed_in(tenant)
    response = client.get(path, {"col": cols, "move": move, "sort": "name"})
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(path) and "move=" not in location and "picker=open" in location
    assert _cols(location) == expected
    page = client.get(location).content.decode()
    assert 'id="column-picker" open' in page
    # The chooser lists the shown columns first, in the new order, each with its arrows.
    chosen = re.findall(r'name="move" value="up:([^"]+)"', page)
    assert chosen == expected


def test_the_list_shows_the_columns_in_the_order_of_the_address(tenant):
    client = signed_in(tenant)
    first = _headers(client.get("/customers/", {"col": ["email", "stage"]}).content.decode())
    second = _headers(client.get("/customers/", {"col": ["stage", "email"]}).content.decode())
    assert first[-2:] == ["Email", "Lifecycle stage"]
    assert second[-2:] == ["Lifecycle stage", "Email"]


def test_the_first_cannot_move_up_nor_the_last_down(tenant):
    page = signed_in(tenant).get("/customers/", {"col": ["email", "stage"]}).content.decode()
    assert re.search(r'value="up:email"[^>]*disabled', page)
    assert re.search(r'value="down:stage"[^>]*disabled', page)
    assert not re.search(r'value="down:email"[^>]*disabled', page)


def test_a_bad_move_names_the_parameter(tenant):
    response = signed_in(tenant).get("/customers/", {"col": ["email"], "move": "sideways"})
    assert response.status_code == 422
    assert "move" in response.content.decode()


@pytest.mark.parametrize("list_name", ["customers", "accounts"])
def test_a_saved_view_keeps_the_order(tenant, list_name):
    client = signed_in(tenant)
    cols = ["last_seen", "email"] if list_name == "customers" else ["last_seen", "domain"]
    state = "&".join(f"col={c}" for c in cols)
    saved = client.post(f"/{list_name}/views/", {"name": "Reordered", "state": state})
    assert saved.status_code == 302
    view = SavedView.objects.get(workspace=tenant.workspace, name="Reordered")
    assert view.columns == cols
    opened = client.get(f"/{list_name}/", {"view": str(view.pk)})
    assert _cols(opened["Location"]) == cols
    # Moving a column of the view shows "changed" and updating the view keeps the move.
    moved = client.get(
        f"/{list_name}/", {"col": cols, "view": str(view.pk), "move": f"up:{cols[1]}"}
    )
    page = client.get(moved["Location"]).content.decode()
    assert _cols(moved["Location"]) == cols[::-1]
    state = urlsplit(moved["Location"]).query
    client.post(f"/{list_name}/views/{view.pk}/", {"action": "update", "state": state})
    view.refresh_from_db()
    assert view.columns == cols[::-1]
    assert page


def test_a_segments_members_take_the_order_too(tenant):
    segment = Segment.objects.get(workspace=tenant.workspace, kind="static")
    client = signed_in(tenant)
    response = client.get(
        f"/segments/{segment.pk}/", {"col": ["email", "stage"], "move": "down:email"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(f"/segments/{segment.pk}/?")
    assert _cols(response["Location"]) == ["stage", "email"]
    page = client.get(response["Location"]).content.decode()
    members = page.split('id="h-members"', 1)[1]
    assert _headers(members)[-2:] == ["Lifecycle stage", "Email"]
