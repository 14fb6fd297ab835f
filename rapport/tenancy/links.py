from django.conf import settings
from django.http import HttpRequest


def public_base_url(request: HttpRequest) -> str:
    """Where people reach Rapport, for links in emails: RAPPORT_PUBLIC_URL, else the
    address this request came to (its host already checked against ALLOWED_HOSTS)."""
    return settings.RAPPORT_PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")
