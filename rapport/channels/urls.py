from django.urls import path

from rapport.channels import public, views

app_name = "channels"

urlpatterns = [
    path("m/unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("m/o/<str:token>", views.tracked_open, name="open"),
    path("m/c/<str:token>", views.tracked_click, name="click"),
    # Providers' tracking webhooks (bounces, complaints, deliveries, opens, clicks).
    # SMS providers' delivery reports and replies (signed; the token names the workspace).
    path("m/sms/<slug:provider>/<str:token>/", views.sms_callback, name="sms_callback"),
    path("m/esp/<slug:esp>/tracking/", views.esp_tracking, name="esp_tracking"),
    # What a customer's site or app calls with its source's write key (public.py).
    path("v1/push/public-key", public.push_public_key, name="push_public_key"),
    path("v1/push/subscriptions", public.push_subscriptions, name="push_subscriptions"),
    path("m/push/<str:token>", public.push_report, name="push_report"),
    path("v1/in-app/messages", public.inapp_messages, name="inapp_messages"),
    path(
        "v1/in-app/messages/<uuid:message_id>/events",
        public.inapp_message_events,
        name="inapp_message_events",
    ),
]
