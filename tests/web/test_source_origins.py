"""A source's allowed origins (the Tracking API's CORS), set on the source's page."""

from rapport.tenancy.models import Source
from rapport.tenancy.permissions import Role
from tests.web.clients import signed_in


def test_an_admin_sets_the_origins_one_a_line(tenant):
    source = tenant.created.source
    client = signed_in(tenant)
    page = client.get(f"/data/sources/{source.pk}/").content.decode()
    assert 'name="allowed_origins"' in page and ">*</textarea>" in page

    response = client.post(
        f"/data/sources/{source.pk}/origins/",
        {"allowed_origins": "https://Shop.example.com/\r\n\r\n  https://*.example.org  \n"},
    )

    assert response.status_code == 302
    source.refresh_from_db()
    assert source.allowed_origins == ["https://shop.example.com", "https://*.example.org"]
    page = client.get(f"/data/sources/{source.pk}/").content.decode()
    assert "https://shop.example.com\nhttps://*.example.org</textarea>" in page


def test_a_bad_origin_is_refused_naming_it_and_changes_nothing(tenant):
    source = tenant.created.source
    client = signed_in(tenant)

    response = client.post(
        f"/data/sources/{source.pk}/origins/",
        {"allowed_origins": "https://shop.example.com\nshop.example.net/path"},
    )

    assert response.status_code == 422
    html = response.content.decode()
    assert "shop.example.net/path" in html and 'role="alert"' in html
    assert Source.objects.get(pk=source.pk).allowed_origins == ["*"]


def test_readers_see_the_origins_and_cannot_change_them(tenant):
    source = tenant.created.source
    client = signed_in(tenant, Role.ANALYST)

    page = client.get(f"/data/sources/{source.pk}/")
    response = client.post(f"/data/sources/{source.pk}/origins/", {"allowed_origins": ""})

    assert page.status_code == 200
    assert "<code>*</code>" in page.content.decode()
    assert 'name="allowed_origins"' not in page.content.decode()
    assert response.status_code == 403
    assert Source.objects.get(pk=source.pk).allowed_origins == ["*"]


def test_another_workspaces_source_is_not_found(tenant, other_tenant):
    theirs = other_tenant.created.source

    response = signed_in(tenant).post(
        f"/data/sources/{theirs.pk}/origins/", {"allowed_origins": ""}
    )

    assert response.status_code == 404
    assert Source.objects.get(pk=theirs.pk).allowed_origins == ["*"]
