from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "rapport.profiles"
    label = "profiles"
    verbose_name = "Customer profiles"

    def ready(self) -> None:
        from rapport.ingest.services import event_consumer_register
        from rapport.profiles import permissions  # noqa: F401 - registers permissions
        from rapport.profiles.services import accounts_from_events, consents_from_events

        # After identity resolution (order 10): these need each event's profile.
        event_consumer_register(accounts_from_events, order=20)
        event_consumer_register(consents_from_events, order=30)
