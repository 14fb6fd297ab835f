from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from rapport.api import api
from rapport.core.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/", api.urls),
    path("", include("rapport.ingest.urls")),
    path("", include("rapport.channels.urls")),
    path("", include("rapport.decisions.urls")),
    path("", include("rapport.web.urls")),
]
if settings.RAPPORT_ADMIN_ENABLED:
    urlpatterns.insert(-1, path("admin/", admin.site.urls))
