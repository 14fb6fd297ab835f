from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="identity.read", description="See the workspace's identity rules", roles=ALL_ROLES
)
permission_register(
    code="identity.manage",
    description="Change identity rules: kinds, priorities, limits, blocked values",
    roles={Role.ADMIN},
)
