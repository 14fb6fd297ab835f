from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "rapport.web"
    label = "web"
    verbose_name = "Web UI"

    def ready(self) -> None:
        from django.apps import apps

        from rapport.web import channel_settings, messages

        # Act: what a marketer makes first (journeys, broadcasts, templates), then the
        # upkeep.
        messages.nav_register()
        if apps.is_installed("rapport.journeys"):
            from rapport.web import journeys

            journeys.nav_register()
        if apps.is_installed("rapport.decisions"):
            from rapport.web import decisions

            decisions.nav_register()
        channel_settings.nav_register()
        # Work: the sales team's deals and tasks.
        if apps.is_installed("rapport.sales"):
            from rapport.web import sales

            sales.nav_register()
