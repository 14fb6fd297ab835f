from django.urls import path

from rapport.channels import views

app_name = "channels"

urlpatterns = [
    path("m/unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("m/o/<str:token>", views.tracked_open, name="open"),
    path("m/c/<str:token>", views.tracked_click, name="click"),
    # Providers' tracking webhooks (bounces, complaints, deliveries, opens, clicks).
    # SMS providers' delivery reports and replies (signed; the token names the workspace).
    path("m/sms/<slug:provider>/<str:token>/", views.sms_callback, name="sms_callback"),
    path("m/esp/<slug:esp>/tracking/", views.esp_tracking, name="esp_tracking"),
]
