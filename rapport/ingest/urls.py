from django.urls import path

from rapport.ingest import sdk_settings, tracking

app_name = "ingest"

urlpatterns = [
    path("v1/identify", tracking.identify, name="identify"),
    path("v1/track", tracking.track, name="track"),
    path("v1/page", tracking.page, name="page"),
    path("v1/screen", tracking.screen, name="screen"),
    path("v1/group", tracking.group, name="group"),
    path("v1/alias", tracking.alias, name="alias"),
    path("v1/batch", tracking.batch, name="batch"),
    # analytics.js and RudderStack send batches here too.
    path("v1/import", tracking.batch, name="import"),
    # The short paths of analytics.js / analytics-next (one event each) and of
    # analytics-swift / analytics-kotlin (`/b`, batches).
    path("v1/i", tracking.identify, name="identify_short"),
    path("v1/t", tracking.track, name="track_short"),
    path("v1/p", tracking.page, name="page_short"),
    path("v1/s", tracking.screen, name="screen_short"),
    path("v1/g", tracking.group, name="group_short"),
    path("v1/a", tracking.alias, name="alias_short"),
    path("v1/b", tracking.batch, name="batch_short"),
    # RudderStack's BeaconQueue: navigator.sendBeacon, write key in the query string.
    path("beacon/v1/batch", tracking.batch, name="beacon_batch"),
    # What the SDKs fetch at start-up from Segment's CDN or RudderStack's control
    # plane, served here so that they need nothing but Rapport (sdk_settings.py).
    path(
        "v1/projects/<str:write_key>/settings",
        sdk_settings.segment_settings,
        name="segment_settings",
    ),
    path("sourceConfig", sdk_settings.rudderstack_source_config, name="rudderstack_config"),
    path("sourceConfig/", sdk_settings.rudderstack_source_config),
]
