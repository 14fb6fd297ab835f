from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "rapport.identity"
    label = "identity"
    verbose_name = "Identity resolution"

    def ready(self) -> None:
        from rapport.identity import permissions  # noqa: F401 - registers permissions
        from rapport.identity.selectors import identifier_profile_ids, merge_timeline_entries
        from rapport.identity.services import events_resolve
        from rapport.ingest.services import event_consumer_register
        from rapport.profiles.selectors import profile_finder_register, timeline_source_register

        # Identity resolution is the first consumer of every stored event.
        event_consumer_register(events_resolve, order=10)
        # Customers are found by their identifiers; merges show on their timeline.
        profile_finder_register(identifier_profile_ids)
        timeline_source_register(kinds=("merge", "unmerge"), entries=merge_timeline_entries)
