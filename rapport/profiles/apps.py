from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "rapport.profiles"
    label = "profiles"
    verbose_name = "Customer profiles"

    def ready(self) -> None:
        from rapport.core.search import search_provider_register
        from rapport.profiles import permissions  # noqa: F401 - registers permissions
        from rapport.profiles.search import PROVIDER as ACCOUNTS

        search_provider_register(ACCOUNTS)
