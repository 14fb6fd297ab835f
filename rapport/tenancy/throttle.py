"""One throttle for every door that takes a password: the web sign-in, the Django
admin's and accepting an invitation with an existing login. They count together, per
client address and per account, so that an attacker gains nothing by switching doors.
The counts live in the cache every server process shares (settings.CACHES)."""

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

SIGN_IN_GROUP = "rapport.sign_in"


def sign_in_attempt_limited(request: HttpRequest, *, account: str) -> bool:
    """Count this attempt to sign in; True when the address or the account is over
    its limit (the attempt must then be refused without checking the password)."""
    by_address = is_ratelimited(
        request,
        group=f"{SIGN_IN_GROUP}.address",
        key="ip",
        rate=settings.RAPPORT_SIGN_IN_RATE_IP,
        method="POST",
        increment=True,
    )
    by_account = is_ratelimited(
        request,
        group=f"{SIGN_IN_GROUP}.account",
        key=lambda _group, _request: (account or "").strip().lower(),
        rate=settings.RAPPORT_SIGN_IN_RATE_ACCOUNT,
        method="POST",
        increment=True,
    )
    return by_address or by_account
