from django.urls import path

from rapport.channels import views

app_name = "channels"

urlpatterns = [
    path("m/unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
]
