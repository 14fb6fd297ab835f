from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "rapport.core"
    label = "core"
    verbose_name = "Rapport core"

    def ready(self) -> None:
        from rapport.core.lookups import lookups_register
        from rapport.core.pgtypes import pgtypes_register

        lookups_register()
        pgtypes_register()
