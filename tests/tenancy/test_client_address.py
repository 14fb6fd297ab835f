"""The client's address behind reverse proxies: X-Forwarded-For is believed only as far
as the hops are trusted proxies, for throttling and for the audit log alike."""

import pytest
from django.test import Client

from rapport.tenancy.client_address import client_address_resolve, trusted_networks_parse
from rapport.tenancy.models import AuditLogEntry

PASSWORD = "correct-horse-battery"
PROXY = "10.0.0.2"
TRUSTED = trusted_networks_parse(["10.0.0.0/24", "fd00::/8"])


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # No proxy trusted for this peer: the header is the client's own claim.
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("203.0.113.9", "", "203.0.113.9"),
        # Through a trusted proxy: the entry it appended.
        (PROXY, "198.51.100.1", "198.51.100.1"),
        (PROXY, " 198.51.100.1 ", "198.51.100.1"),
        # Forged entries left of the one the proxy appended are ignored.
        (PROXY, "192.0.2.66, 1.1.1.1, 198.51.100.1", "198.51.100.1"),
        # Two trusted proxies in a row: the first untrusted address from the right.
        (PROXY, "198.51.100.1, 10.0.0.7", "198.51.100.1"),
        # Garbage where the proxy's entry should be: the proxy is all that is known.
        (PROXY, "not-an-address", PROXY),
        (PROXY, "198.51.100.1, nonsense", PROXY),
        # Only trusted hops: the leftmost.
        (PROXY, "10.0.0.8, 10.0.0.7", "10.0.0.8"),
        # Ports and IPv6 as proxies write them.
        (PROXY, "198.51.100.1:5123", "198.51.100.1"),
        (PROXY, "[2001:db8::1]:443", "2001:db8::1"),
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
        ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("", "198.51.100.1", None),
    ],
)
def test_client_address(remote, forwarded, expected):
    assert (
        client_address_resolve(remote_addr=remote, forwarded_for=forwarded, trusted=TRUSTED)
        == expected
    )


def test_a_bad_trusted_proxy_setting_is_refused():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="not-a-network"):
        trusted_networks_parse(["10.0.0.1", "not-a-network"])


def sign_in(remote: str, forwarded: str | None, *, email: str, password: str):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return Client().post("/login/", {"username": email, "password": password}, **extra)


def test_forged_attempts_through_the_proxy_lock_out_only_the_attacker(tenant, settings):
    settings.RAPPORT_TRUSTED_PROXIES = ["10.0.0.0/24"]
    settings.RAPPORT_SIGN_IN_RATE_IP = "30/5m"
    settings.RAPPORT_SIGN_IN_RATE_ACCOUNT = "1000/5m"
    person = tenant.extra_member.user
    for attempt in range(31):
        # The attacker claims to be the victim; the proxy appends the real address.
        sign_in(
            PROXY,
            f"198.51.100.1, 203.0.113.{attempt % 3}, 192.0.2.66",
            email=f"nobody{attempt}@example.com",
            password="x",
        )
    assert sign_in(PROXY, "192.0.2.66", email=person.email, password=PASSWORD).status_code == 429
    # Everyone else behind the same proxy, the victim included, signs in.
    response = sign_in(PROXY, "198.51.100.1", email=person.email, password=PASSWORD)
    assert response.status_code == 302


def test_without_trusted_proxies_the_header_does_not_dodge_the_throttle(tenant, settings):
    settings.RAPPORT_TRUSTED_PROXIES = []
    settings.RAPPORT_SIGN_IN_RATE_IP = "30/5m"
    settings.RAPPORT_SIGN_IN_RATE_ACCOUNT = "1000/5m"
    for attempt in range(30):
        sign_in("192.0.2.66", f"203.0.113.{attempt}", email=f"n{attempt}@x.example", password="x")
    person = tenant.extra_member.user
    assert (
        sign_in("192.0.2.66", "198.51.100.200", email=person.email, password=PASSWORD).status_code
        == 429
    )


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "recorded"),
    [
        (["10.0.0.0/24"], PROXY, "192.0.2.1, 198.51.100.1", "198.51.100.1"),
        ([], PROXY, "192.0.2.1, 198.51.100.1", PROXY),
        (["10.0.0.0/24"], "203.0.113.5", "198.51.100.1", "203.0.113.5"),
    ],
)
def test_the_audit_log_records_the_client_address(
    tenant, settings, trusted, remote, forwarded, recorded
):
    settings.RAPPORT_TRUSTED_PROXIES = trusted
    response = tenant.api().post(
        "/api/v1/tokens",
        {"name": "Behind the proxy", "role": "analyst"},
        REMOTE_ADDR=remote,
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    assert response.status_code == 201
    entry = AuditLogEntry.objects.get(
        workspace=tenant.workspace, action="token.create", details__name="Behind the proxy"
    )
    assert entry.ip_address == recorded


@pytest.mark.parametrize(
    ("behind_proxy", "trusted", "warned"),
    [(True, [], True), (True, ["10.0.0.2"], False), (False, [], False)],
)
def test_deploy_check_warns_of_a_proxy_nobody_trusts(settings, behind_proxy, trusted, warned):
    from rapport.tenancy.checks import trusted_proxies_check

    settings.RAPPORT_BEHIND_PROXY = behind_proxy
    settings.RAPPORT_TRUSTED_PROXIES = trusted
    assert [w.id for w in trusted_proxies_check(None)] == (["rapport.W001"] if warned else [])
