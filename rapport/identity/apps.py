from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "rapport.identity"
    label = "identity"
    verbose_name = "Identity resolution"

    def ready(self) -> None:
        from rapport.identity import permissions  # noqa: F401 - registers permissions
        from rapport.identity.selectors import identifier_profile_ids, merge_timeline_entries
        from rapport.profiles.selectors import profile_finder_register, timeline_source_register

        # Customers are found by their identifiers; merges show on their timeline.
        profile_finder_register(identifier_profile_ids)
        timeline_source_register(kinds=("merge", "unmerge"), entries=merge_timeline_entries)

        from rapport.core.search import search_provider_register
        from rapport.identity.search import PROVIDER as CUSTOMERS

        # Customers come first in the global search, before accounts and segments.
        search_provider_register(CUSTOMERS, before="accounts")
