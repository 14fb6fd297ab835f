"""Browsers' stand-in for page tests: a Django test client signed in with a role."""

from django.test import Client

from rapport.tenancy.models import User
from rapport.tenancy.permissions import Role
from rapport.tenancy.services import Actor, member_add

PASSWORD = "correct-horse-battery"


def signed_in(tenant, role=Role.ADMIN) -> Client:
    email = f"{role}-pages@example.com"
    if not User.objects.filter(email=email, memberships__workspace=tenant.workspace).exists():
        member_add(
            workspace=tenant.workspace,
            email=email,
            role=role,
            password=PASSWORD,
            actor=Actor.system(),
        )
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client
