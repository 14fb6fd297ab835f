from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "rapport.identity"
    label = "identity"
    verbose_name = "Identity resolution"

    def ready(self) -> None:
        from rapport.identity import permissions  # noqa: F401 - registers permissions
        from rapport.identity.services import events_resolve
        from rapport.ingest.services import event_consumer_register

        # Identity resolution is the first consumer of every stored event.
        event_consumer_register(events_resolve, order=10)
