"""`rapport check --deploy` warnings about access settings."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def trusted_proxies_check(app_configs, **kwargs) -> list[Warning]:
    if getattr(settings, "RAPPORT_BEHIND_PROXY", False) and not settings.RAPPORT_TRUSTED_PROXIES:
        return [
            Warning(
                "RAPPORT_BEHIND_PROXY is on but RAPPORT_TRUSTED_PROXIES is empty: every "
                "client counts as the proxy's address, so 30 failed sign-ins lock everyone "
                "out and the audit log records the proxy",
                hint="Set RAPPORT_TRUSTED_PROXIES to the proxy's address or network.",
                id="rapport.W001",
            )
        ]
    return []
