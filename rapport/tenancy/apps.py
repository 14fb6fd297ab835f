from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "rapport.tenancy"
    label = "tenancy"
    verbose_name = "Workspaces and access"

    def ready(self) -> None:
        from rapport.tenancy import checks  # noqa: F401 - registers the deploy checks
