from django.urls import path

from rapport.channels import views

app_name = "channels"

urlpatterns = [
    path("m/unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("m/o/<str:token>", views.tracked_open, name="open"),
    path("m/c/<str:token>", views.tracked_click, name="click"),
    # Providers' tracking webhooks (bounces, complaints, deliveries, opens, clicks).
    path("m/esp/<slug:esp>/tracking/", views.esp_tracking, name="esp_tracking"),
]
