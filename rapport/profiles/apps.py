from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "rapport.profiles"
    label = "profiles"
    verbose_name = "Customer profiles"
