from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "rapport.profiles"
    label = "profiles"
    verbose_name = "Customer profiles"

    def ready(self) -> None:
        from rapport.profiles import permissions  # noqa: F401 - registers permissions
