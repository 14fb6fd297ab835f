from django.urls import path

from rapport.decisions import views

app_name = "decisions"

urlpatterns = [
    path("m/nba/<str:token>.png", views.block_image, name="block_image"),
    path("m/nba/<str:token>/click", views.block_click, name="block_click"),
]
