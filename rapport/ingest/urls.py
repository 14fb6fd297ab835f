from django.urls import path

from rapport.ingest import tracking

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
]
