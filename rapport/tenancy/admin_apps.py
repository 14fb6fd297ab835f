from django.contrib.admin.apps import AdminConfig


class RapportAdminConfig(AdminConfig):
    """Django's admin, on a site that asks for a second factor (admin_site.py)."""

    default_site = "rapport.tenancy.admin_site.RapportAdminSite"
