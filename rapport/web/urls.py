from django.urls import path

from rapport.web import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.RapportLoginView.as_view(), name="login"),
    path("logout/", views.RapportLogoutView.as_view(), name="logout"),
    path("workspace/switch/", views.workspace_switch, name="workspace_switch"),
]
