from rapport.tenancy.permissions import ALL_ROLES, permission_register

permission_register(
    code="profiles.read",
    description="Find customers and see their profile and timeline (masked without pii.read)",
    roles=ALL_ROLES,
)
